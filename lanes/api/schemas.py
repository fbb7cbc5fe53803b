"""One schema per body and answer of the bot API (SPEC §9): the source of its validation and of the
OpenAPI document served at /api/v1/openapi.json.

Input fields validate with the functions of ``lanes.ranges`` and ``lanes.validation`` (the same
messages as the command line and the dashboard give), strictly: a JSON value of the wrong type is
refused, not coerced. Their JSON schema states each range, also for amounts sent as strings.
Answers are the JSON shapes of ``lanes.serializers`` (shared with the command line); their schemas
document them and the API's tests hold the two together.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Callable, Literal, Optional

from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field, RootModel, WithJsonSchema

from .. import engine
from ..models import Direction, LaneEventKind, LaneOutcome, LaneStatus, LockReason, TradeKind, TradeStatus
from ..ranges import (
    ACCOUNT, ALL_SETTINGS, DIRECTIONS, EXPECTED_PAYOUT, ID_MAX, LADDER_MODES, LANE_LIST_LIMIT, LOCK_MINUTES,
    LOCK_NOTE_MAX, MAX_WAIT_SECONDS, PAYOUT, RESULTS, RISK_SETTINGS, SETTINGS, STATS_DAYS, SYMBOL_MAX, Amount, Choice,
    Flag, Off, Whole,
)
from ..validation import ID_RE, SYMBOL_RE, clean_account_name, clean_note, clean_symbol, clean_trade_id

# --- Amount strings: a pattern that states the range ------------------------------------------------


def _digit(low: int, high: int) -> str:
    return str(low) if low == high else f"[{low}-{high}]"


def _digits(least: int, most: int) -> str:
    """From ``least`` to ``most`` digits, as a regex."""
    if most == 0:
        return ""
    return f"[0-9]{{{least},{most}}}" if least < most else "[0-9]" + (f"{{{most}}}" if most > 1 else "")


def _integers_below(n: str) -> list[str]:
    """Regexes for the whole numbers below ``n`` (digits without leading zeros, "" for 0), written
    without leading zeros ("" for 0)."""
    if not n:
        return []
    found = [""] + ["[1-9]" + _digits(k - 1, k - 1) for k in range(1, len(n))]
    for i, digit in enumerate(n):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            found.append(n[:i] + _digit(low, int(digit) - 1) + _digits(len(n) - i - 1, len(n) - i - 1))
    return found


def _integers_above(n: str, digits: int) -> list[str]:
    """Regexes for the whole numbers above ``n`` with at most ``digits`` digits, as in
    ``_integers_below``."""
    found = ["[1-9]" + _digits(len(n), digits - 1)] if len(n) < digits else []
    for i, digit in enumerate(n):
        if int(digit) < 9:
            found.append(n[:i] + _digit(int(digit) + 1, 9) + _digits(len(n) - i - 1, len(n) - i - 1))
    return found


def _fractions(bound: str, below: bool) -> list[str]:
    """Regexes for the fraction parts (``.ddd`` or none) that, padded with zeros to ``bound``'s
    length, are below (or above) ``bound``."""
    places = len(bound)
    found = []
    if below and bound.strip("0"):
        found.append("")  # no fraction: .000 < bound
    for i, digit in enumerate(bound):
        rest = _digits(0, places - i - 1)
        if below and int(digit) > 0:
            found.append(rf"\.{bound[:i]}{_digit(0, int(digit) - 1)}{rest}")
        elif not below and int(digit) < 9:
            found.append(rf"\.{bound[:i]}{_digit(int(digit) + 1, 9)}{rest}")
    if below:  # cut short where the bound goes on with a digit above the zeros it is padded with
        found += [rf"\.{bound[:m]}" for m in range(1, places) if bound[m:].strip("0")]
    return found


def decimal_pattern(low: Decimal, high: Decimal, places: int) -> str:
    """The decimal strings from ``low`` to ``high`` with at most ``places`` places, as a regex.

    JSON Schema's minimum and maximum bind numbers only, so for an amount sent as a string the
    range is stated by negative lookaheads that refuse the strings below ``low`` and above ``high``.
    Digits as lanes.ranges.PLAIN_DECIMAL takes them: no sign, no leading zeros.
    """
    digits = len(str(int(high)))

    def outside(bound: Decimal, below: bool) -> str:
        whole, _, fraction = f"{bound:.{places}f}".partition(".")
        whole = whole.lstrip("0")
        integers = _integers_below(whole) if below else _integers_above(whole, digits)
        options = [rf"{n or '0'}(\.[0-9]+)?$" for n in integers]
        options += [f"{whole or '0'}{f}$" for f in _fractions(fraction, below)]
        return f"(?!{'|'.join(options)})" if options else ""

    whole = "(0|[1-9]" + (f"[0-9]{{0,{digits - 1}}}" if digits > 1 else "") + ")"
    return rf"^{outside(low, True)}{outside(high, False)}{whole}(\.[0-9]{{1,{places}}})?$"


# --- Input fields: validated by lanes.ranges, documented with their range --------------------------


def _cleaner(clean: Callable[[Any], Any]) -> BeforeValidator:
    """A pydantic validator around one of ours: its ValueError message is the one every interface shows."""

    def run(value: Any) -> Any:
        return clean(value)

    return BeforeValidator(run)


def _schema_of(spec, description: str = "") -> dict:
    if isinstance(spec, Off):
        schema = _schema_of(spec.inner, description or spec.help)
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*types, "null"]
        schema["description"] += " null = off."
        return schema
    if isinstance(spec, Flag):
        schema: dict = {"type": "boolean"}
    elif isinstance(spec, Whole):
        schema = {"type": "integer", "minimum": spec.low, "maximum": spec.high}
    elif isinstance(spec, Choice):
        schema = {"type": "string", "enum": list(spec.choices)}
    else:
        schema = {
            "type": ["string", "number"],
            "pattern": decimal_pattern(spec.low, spec.high, spec.places),
            "minimum": float(spec.low),
            "maximum": float(spec.high),
            "multipleOf": float(spec.quantum),
        }
        description = (description or spec.help) + (
            f" From {spec.low} to {spec.high}, at most {spec.places} decimal places; send a string (\"1.85\") "
            "to keep it exact. NaN and Infinity are refused."
        )
    if not isinstance(spec, Amount) and spec.default is not None:
        schema["default"] = spec.default
    schema["description"] = description or spec.help
    return schema


def ranged(spec, python_type, description: str = ""):
    """A body or query field of ``lanes.ranges``: its own validation, its range in the document."""
    return Annotated[
        python_type,
        _cleaner(lambda value: spec.clean(value, from_text=False)),
        WithJsonSchema(_schema_of(spec, description)),
    ]


def queried(spec, python_type, description: str = ""):
    """A query parameter of ``lanes.ranges``: text, parsed as the range says."""
    return Annotated[
        python_type,
        _cleaner(lambda value: spec.clean(value, from_text=True)),
        WithJsonSchema(_schema_of(spec, description)),
    ]


def _text(clean, pattern, max_length: int, description: str):
    return Annotated[
        str,
        _cleaner(clean),
        WithJsonSchema({"type": "string", "pattern": f"^{pattern.pattern}$", "maxLength": max_length, "description": description}),
    ]


AccountName = _text(clean_account_name, ID_RE, ID_MAX, "the account's worker_name")
Symbol = _text(clean_symbol, SYMBOL_RE, SYMBOL_MAX, "the traded symbol, e.g. EURUSD")
TradeId = _text(clean_trade_id, ID_RE, ID_MAX, "the client's id of the trade")
LaneId = _text(lambda value: clean_trade_id(value, "lane_id"), ID_RE, ID_MAX, "the lane's lane_id")
LockId = _text(lambda value: clean_trade_id(value, "lock_id"), ID_RE, ID_MAX, "the lock's lock_id")
NullableDirection = Optional[ranged(Choice(DIRECTIONS, None), str, "call or put")]


class Body(Schema):
    """A request body: a JSON object of known fields only."""

    model_config = ConfigDict(extra="forbid")


class TradeRequest(Body):
    account: AccountName
    symbol: Symbol
    trade_id: TradeId = Field(
        None, description="the client's id; generated when absent. Send one so retries are idempotent."
    )
    direction: NullableDirection = None
    expected_payout: Optional[ranged(EXPECTED_PAYOUT, Decimal)] = None
    max_wait_seconds: ranged(
        MAX_WAIT_SECONDS, int, "how long the request may wait in the queue; 0 = refuse with 409 busy instead"
    ) = MAX_WAIT_SECONDS.default


class ResultRequest(Body):
    result: ranged(Choice(RESULTS, None), str, "win, loss or draw")
    payout: Optional[
        ranged(
            PAYOUT,
            Decimal,
            "What the broker returned: a win's must be more than the stake (default: the expected payout), "
            "a loss's at least 0 and less than the stake (default 0), a draw's the stake (its default).",
        )
    ] = None


class CancelRequest(Body):
    """An empty body or {}."""


class CompleteRequest(Body):
    status: ranged(Choice(engine.LANE_END_STATUSES, engine.COMPLETED), str, "completed (force_completed) or cancelled") = (
        engine.COMPLETED
    )


def _patch(spec: dict, name: str) -> type[Body]:
    """A PATCH body: any of ``spec``'s fields, at least one."""
    kinds = {Flag: bool, Whole: int, Choice: str, Amount: Decimal}

    def kind(field) -> type:
        return Optional[kinds[type(field.inner)]] if isinstance(field, Off) else kinds[type(field)]

    # Absent, not null: a setting cannot be unset (but one that may be off is off as null).
    fields = {key: (ranged(field, kind(field)), None) for key, field in spec.items()}
    annotations = {key: annotation for key, (annotation, _) in fields.items()}
    return type(
        name,
        (Body,),
        {
            "__annotations__": annotations,
            **{key: default for key, (_, default) in fields.items()},
            "model_config": ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1}),
        },
    )


SettingsPatch = _patch(ALL_SETTINGS, "SettingsPatch")
AccountPatch = type(
    "AccountPatch",
    (_patch(ACCOUNT, "AccountFields"),),
    {
        "__annotations__": {"complete_active_lanes": ranged(Flag(False), bool)},
        "complete_active_lanes": Field(
            None, description="also complete (force_completed) every active lane of the account in the same change"
        ),
        "model_config": ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1}),
    },
)


# --- Answers ---------------------------------------------------------------------------------------------


class Money(RootModel[str]):
    """A decimal amount as a string with two places"""

    model_config = ConfigDict(json_schema_extra={"pattern": r"^-?[0-9]+\.[0-9]{2}$", "examples": ["1.50"]})


Time = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time", "description": "ISO 8601 with offset"})]
Rate = Annotated[float, Field(ge=0, le=1)]


class Answer(Schema):
    model_config = ConfigDict(extra="allow")


def _enum(values, nullable: bool = False, description: str = ""):
    schema: dict = {"type": ["string", "null"] if nullable else "string", "enum": [*values, *([None] if nullable else [])]}
    if description:
        schema["description"] = description
    return Annotated[Optional[str] if nullable else str, WithJsonSchema(schema)]


class Trade(Answer):
    trade_id: str
    account: str
    symbol: str
    direction: _enum(Direction.values, nullable=True)
    status: _enum(TradeStatus.values)
    kind: _enum(TradeKind.values, nullable=True, description="null while queued")
    lane_id: Optional[str] = Field(description="null while queued or for a base/legacy trade")
    level: Optional[int] = Field(ge=0, description="null while queued")
    amount: Optional[Money]
    expected_payout: Optional[Money]
    payout: Optional[Money]
    profit: Optional[Money]
    requested_at: Time
    opened_at: Optional[Time]
    settled_at: Optional[Time]
    expires_at: Optional[Time]
    max_wait_seconds: int = Field(ge=MAX_WAIT_SECONDS.low, le=MAX_WAIT_SECONDS.high)
    queue_position: Optional[int] = Field(
        ge=1, description="place in the account's queue while queued (1 = next to open), else null"
    )


NullableMoney = Annotated[
    Optional[str],
    WithJsonSchema({"type": ["string", "null"], "pattern": r"^-?[0-9]+\.[0-9]{2}$", "description": "null = off"}),
]


class Lane(Answer):
    id: int
    lane_id: str
    account_name: str
    symbol: str
    status: _enum(LaneStatus.values)
    current_level: int = Field(ge=0)
    base_amount: Money
    current_amount: Money
    multiplier: Money
    max_level: int
    total_invested: Money
    total_potential_payout: Money
    trade_ids: list[str]
    created_at: Time
    updated_at: Time
    completed_at: Optional[Time]
    outcome: _enum(LaneOutcome.values, nullable=True)
    open_trade_id: Optional[str]
    ladder_mode: _enum(LADDER_MODES, description="copied from the account's settings when the lane was created")
    payout_rate: Optional[Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^[0-9]+\.[0-9]{4}$"})]] = Field(
        description="copied from the account when the lane was created; null for a lane from before the risk guard"
    )
    net_profit: Money = Field(description="the sum of its settled trades' profit, the base trade that opened it included")
    remaining_risk: Money = Field(
        description="what the lane can still lose: its stakes from the current level to its last (max_level, or "
        "within max_stake); 0.00 once finished"
    )


class TradeWithLane(Trade):
    lane: Optional[Lane]


class LaneEvent(Answer):
    id: int
    kind: _enum(LaneEventKind.values)
    trade_id: Optional[str]
    actor: str
    data: dict
    created_at: Time


class LaneDetail(Lane):
    events: list[LaneEvent]
    trades: list[Trade]


class LaneList(Schema):
    lanes: list[Lane]
    next: Optional[str] = Field(description="the cursor of the next page; null on the last")


class Settings(Schema):
    account: str
    concurrent_trading_enabled: bool
    max_concurrent_lanes: int = Field(ge=SETTINGS["max_concurrent_lanes"].low, le=SETTINGS["max_concurrent_lanes"].high)
    lane_assignment_strategy: _enum(SETTINGS["lane_assignment_strategy"].choices)
    auto_create_lanes: bool
    cool_down_seconds: int = Field(ge=SETTINGS["cool_down_seconds"].low, le=SETTINGS["cool_down_seconds"].high)
    max_daily_lanes: int = Field(ge=SETTINGS["max_daily_lanes"].low, le=SETTINGS["max_daily_lanes"].high)
    # The risk guard (SPEC §11).
    ladder_mode: _enum(LADDER_MODES)
    max_stake: NullableMoney
    max_exposure: NullableMoney
    daily_stop_loss: NullableMoney
    daily_take_profit: NullableMoney
    max_exhausted_lanes: Optional[int] = Field(
        ge=RISK_SETTINGS["max_exhausted_lanes"].inner.low, le=RISK_SETTINGS["max_exhausted_lanes"].inner.high,
        description="null = off",
    )
    exhausted_window_hours: int = Field(
        ge=RISK_SETTINGS["exhausted_window_hours"].low, le=RISK_SETTINGS["exhausted_window_hours"].high
    )
    lock_minutes: int = Field(ge=LOCK_MINUTES.low, le=LOCK_MINUTES.high)


class Account(Answer):
    id: int
    worker_name: str
    is_demo: bool
    enabled: bool
    balance: Money
    base_amount: Money
    martingale_multiplier: Money
    martingale_enabled: bool
    martingale_max_level: int = Field(ge=ACCOUNT["martingale_max_level"].low, le=ACCOUNT["martingale_max_level"].high)
    payout_rate: Annotated[str, WithJsonSchema({"type": "string", "pattern": r"^[0-9]+\.[0-9]{4}$"})]
    enhanced_martingale_enabled: bool
    legacy_consecutive_losses: int
    created_at: Time
    last_updated: Time


class Warning(Answer):
    code: str
    message: str
    active_lanes: Optional[int] = None


class AccountChange(Account):
    warnings: list[Warning] = Field(
        description="e.g. lanes_take_no_trades: active lanes stay idle while martingale is off or in legacy mode"
    )
    completed_lanes: list[str] = Field(description="the lanes complete_active_lanes completed")


class AccountWarning(Schema):
    kind: str
    message: str


class Lock(Answer):
    lock_id: str
    account: str
    reason: _enum(LockReason.values)
    created_at: Time
    locked_until: Time
    released_at: Optional[Time]
    released_by: str
    note: str
    active: bool = Field(description="locked_until is in the future and the lock is not released")


class LockList(Schema):
    locks: list[Lock] = Field(description="active locks first (the one ending last first), then the rest, newest first")


class LockRequest(Body):
    minutes: ranged(LOCK_MINUTES, int, "how long new trades are refused (409 account_locked)")
    note: Optional[
        Annotated[
            str,
            _cleaner(clean_note),
            WithJsonSchema({"type": "string", "maxLength": LOCK_NOTE_MAX, "description": "why, for the audit trail"}),
        ]
    ] = None


class AccountStatus(Answer):
    account: Account
    settings: Settings
    mode: Literal["enhanced", "legacy"]
    slots: int = Field(ge=1)
    free_slots: int = Field(ge=0)
    active_lanes: list[Lane]
    open_trades: list[Trade]
    queued_trades: list[Trade]
    lanes_created_today: int
    net_profit_today: Money
    lane_worst_case: Money
    worst_case_exposure: Money
    exposure: Money = Field(
        description="the active lanes' remaining risk plus the stakes of the open base and legacy trades (SPEC §11)"
    )
    max_exposure: NullableMoney
    exposure_headroom: NullableMoney = Field(description="max_exposure − exposure, at least 0.00; null when max_exposure is off")
    active_lock: Optional[Lock] = Field(description="the active lock that ends last, or null")
    warnings: list[AccountWarning]


class Status(Answer):
    generated_at: Time
    accounts: list[AccountStatus]


class TradeCounts(Answer):
    trades: int
    wins: int
    losses: int
    draws: int
    net_profit: Money


class LevelStats(TradeCounts):
    level: Optional[int]
    lanes_recovered: int
    lanes_exhausted: int


class SymbolStats(TradeCounts):
    symbol: str
    win_rate: Rate
    lanes_created: int
    lanes_recovered: int
    lanes_exhausted: int


class DayStats(TradeCounts):
    date: Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]
    lanes_created: int
    lanes_recovered: int
    lanes_exhausted: int


class OutcomeProfits(Schema):
    recovered: Money
    exhausted: Money
    force_completed: Money
    cancelled: Money
    active: Money


class Stats(TradeCounts):
    account: Optional[str]
    days: int = Field(ge=STATS_DAYS.low, le=STATS_DAYS.high)
    since: Time
    until: Time
    lanes_created: int
    lanes_active: int
    lanes_recovered: int
    lanes_exhausted: int
    lanes_cancelled: int
    lanes_force_completed: int
    recovery_rate: Rate = Field(description="recovered / (recovered + exhausted), 0 when both are 0")
    avg_level: float
    max_level: int
    total_invested: Money
    total_potential_payout: Money
    trades_open: int
    trades_cancelled: int
    win_rate: Rate = Field(description="wins / (wins + losses), 0 when both are 0")
    by_level: list[LevelStats]
    by_symbol: list[SymbolStats]
    daily: list[DayStats]
    # The risk guard's (SPEC §11).
    lanes_recovered_at_loss: int = Field(ge=0, description="recovered lanes whose net_profit is below 0")
    net_profit_by_outcome: OutcomeProfits = Field(description="the lanes' net_profit summed by outcome (active: not finished)")
    exposure: Money = Field(description="now: the active lanes' remaining risk plus the open base and legacy trades' stakes")
    max_drawdown: Money = Field(description="the largest fall of the cumulative net profit below its peak, trades in settle order")
    max_consecutive_losses: int = Field(ge=0, description="the longest run of losses in settle order (draws neither end nor extend one)")


class Check(Answer):
    status: Literal["ok", "error", "unreachable"]
    latency_ms: Optional[float] = None
    error: Optional[str] = Field(None, description="the class of the error, when the check failed")


class Alarm(Answer):
    count: Optional[int]


class StuckLanes(Alarm):
    """Active lanes unchanged for MARTINGALE_STUCK_LANE_HOURS (count null without a database)"""

    after_hours: float


class OverdueTrades(Alarm):
    """Trades open longer than MARTINGALE_TRADE_TIMEOUT_SECONDS (count null without a database)"""

    after_seconds: int


class Health(Answer):
    status: Literal["ok", "error"]
    database: Check
    broker: Check
    stuck_lanes: StuckLanes
    overdue_trades: OverdueTrades


ERROR_CODES = [
    "invalid", "invalid_json", "unsupported_media_type", "too_large", "bad_request", "unauthorized", "forbidden",
    "not_found", "method_not_allowed", "busy", "account_disabled", "account_locked", "conflict", "throttled", "engine_error",
    "database_busy", "database_unavailable", "internal_error",
]


class ErrorDetail(Schema):
    model_config = ConfigDict(extra="forbid")

    code: _enum(ERROR_CODES)
    message: str
    fields: Optional[dict[str, str]] = Field(None, description="each field at fault and what is wrong with it")
    retry_after: Optional[int] = Field(
        None,
        ge=1,
        description="seconds; with codes busy, account_locked, throttled, database_busy, database_unavailable and "
        "engine_error (also the Retry-After header)",
    )
    locked_until: Optional[Time] = Field(None, description="with code account_locked: when the lock ends")
    lock_id: Optional[str] = Field(None, description="with code account_locked: the lock that refused the request")
    reason: Optional[_enum(LockReason.values)] = Field(None, description="with code account_locked: why the account is locked")


class Error(Schema):
    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


LIST_LIMIT = queried(LANE_LIST_LIMIT, int)
DAYS = queried(STATS_DAYS, int, "the window in days of 24 hours")
