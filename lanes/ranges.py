"""Every value a person or a bot can set, with its default and allowed range (SPEC §1–3, §9).

The one home of those numbers: the engine's defaults, the validation of the API, the command
line, the dashboard form and the admin, the model defaults, the OpenAPI document and every help
text read them from here. Pure Python: no Django.

Each field knows how to ``clean`` a value (typed, as JSON gives it, or as text, as the command
line and the forms give it) and raises ``ValueError`` with the message every interface shows.
``InvalidInput`` gathers those messages by field name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

MONEY_MAX = Decimal("99999999.99")  # DECIMAL(10,2), every stored amount and total
TRADE_IDS_MAX_CHARS = 65_535  # martingale_lanes.trade_ids is TEXT: 65,535 bytes on MySQL


class InvalidInput(ValueError):
    """Input refused before anything is written; ``errors`` maps each bad field to its message."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


# A decimal written plainly: ASCII digits, no sign, exponent, separators, spaces or leading zeros.
PLAIN_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")


@dataclass(frozen=True)
class Flag:
    default: bool
    help: str = ""

    def describe(self) -> str:
        return "true or false"

    def clean(self, value: Any, *, from_text: bool = False) -> bool:
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError("must be true or false")


@dataclass(frozen=True)
class Whole:
    low: int
    high: int
    default: int | None
    help: str = ""

    def describe(self) -> str:
        return f"{self.low}–{self.high}"

    def clean(self, value: Any, *, from_text: bool = False) -> int:
        message = f"must be a whole number from {self.low} to {self.high}"
        if from_text and isinstance(value, str):
            if not value.isascii() or not value.lstrip("-").isdigit() or len(value) > 12:
                raise ValueError(message)
            value = int(value)
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            value = int(value)  # JSON's 6.0 is the integer 6 (JSON Schema agrees)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(message)
        if not self.low <= value <= self.high:
            raise ValueError(f"must be from {self.low} to {self.high}")
        return value


@dataclass(frozen=True)
class Amount:
    """A decimal with at most ``places`` places in [low, high]; floats are refused (not exact)."""

    places: int
    low: Decimal
    high: Decimal
    default: Decimal | None
    help: str = ""

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.places)

    def describe(self) -> str:
        return f"{self.low:,}–{self.high:,}"

    def clean(self, value: Any, *, from_text: bool = True) -> Decimal:
        span = f"from {self.low} to {self.high}"
        if isinstance(value, (bool, float)):
            raise ValueError(f'must be a decimal number {span}, as a string such as "{self.low}"')
        if isinstance(value, str):
            if len(value) > 32 or not PLAIN_DECIMAL.fullmatch(value):
                raise ValueError(f"must be a decimal number {span}")
            value = Decimal(value)
        elif isinstance(value, int):
            value = Decimal(value)
        elif not isinstance(value, Decimal):
            raise ValueError(f"must be a decimal number {span}")
        if not value.is_finite():
            raise ValueError(f"must be a finite decimal number {span}")
        value = abs(value) if value == 0 else value  # -0 is 0
        if not self.low <= value <= self.high:
            raise ValueError(f"must be {span}")
        if value != value.quantize(self.quantum):
            raise ValueError(f"must have at most {self.places} decimal places")
        return value.quantize(self.quantum)


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]
    default: str | None
    help: str = ""

    def describe(self) -> str:
        return ", ".join(self.choices)

    def clean(self, value: Any, *, from_text: bool = False) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise ValueError("must be one of " + ", ".join(self.choices))
        return value


@dataclass(frozen=True)
class Off:
    """A setting that may be off (SPEC §11): None, JSON's null, or the text "off" (or nothing, as
    an empty form box gives it); otherwise ``inner``'s value and rules."""

    inner: Whole | Amount
    help: str = ""
    default: None = None

    def describe(self) -> str:
        return f"{self.inner.describe()} or off"

    def clean(self, value: Any, *, from_text: bool = False) -> Any:
        if value is None or (from_text and isinstance(value, str) and value.strip().lower() in ("", "off")):
            return None
        try:
            return self.inner.clean(value, from_text=from_text)
        except ValueError as exc:
            raise ValueError(f"{exc}, or off (null)") from None


Field = Flag | Whole | Amount | Choice | Off


def money(low: str, default: str | None, help: str = "") -> Amount:
    return Amount(2, Decimal(low), MONEY_MAX, None if default is None else Decimal(default), help)


FIFO, ROUND_ROBIN, SYMBOL_PRIORITY = "fifo", "round_robin", "symbol_priority"
STRATEGIES = (FIFO, ROUND_ROBIN, SYMBOL_PRIORITY)

# The six trading settings of SPEC §2 (trading_settings).
SETTINGS: dict[str, Field] = {
    "concurrent_trading_enabled": Flag(False, "Several lanes trade at once, one open trade each."),
    "max_concurrent_lanes": Whole(1, 10, 3, "Active lanes at a time (and open trades with concurrent trading)."),
    "lane_assignment_strategy": Choice(STRATEGIES, FIFO, "Which idle lane a new trade joins."),
    "auto_create_lanes": Flag(True, "A lost base trade opens a lane; off = emergency stop."),
    "cool_down_seconds": Whole(0, 3600, 0, "Seconds between two trade openings."),
    "max_daily_lanes": Whole(1, 50, 10, "New lanes a day (the TIME_ZONE day)."),
}
SETTINGS_DEFAULTS: dict[str, Any] = {name: field.default for name, field in SETTINGS.items()}

# The risk guard of SPEC §11 (trading_settings' appended columns), edited beside the six.
MULTIPLIER_MODE, RECOVER_MODE = "multiplier", "recover"
LADDER_MODES = (MULTIPLIER_MODE, RECOVER_MODE)
LOCK_MINUTES = Whole(1, 10080, 60, "Minutes an account stays locked (a breaker's or a pause by hand).")
RISK_SETTINGS: dict[str, Field] = {
    "ladder_mode": Choice(
        LADDER_MODES, MULTIPLIER_MODE,
        "multiplier: stake × multiplier per level; recover: the smallest stake whose win at the payout rate "
        "returns the lane's losses plus the base trade's profit.",
    ),
    "max_stake": Off(money("0.01", None), "No stake above this: a lane whose next stake would pass it is exhausted."),
    "max_exposure": Off(
        money("0.01", None), "A lane is created only if the account's exposure stays within this."
    ),
    "daily_stop_loss": Off(money("0.01", None), "Lock the account until midnight once today's loss reaches this."),
    "daily_take_profit": Off(money("0.01", None), "Lock the account until midnight once today's profit reaches this."),
    "max_exhausted_lanes": Off(
        Whole(1, 50, None), "Lock the account for lock_minutes once this many lanes were exhausted within the window."
    ),
    "exhausted_window_hours": Whole(1, 168, 24, "The window of max_exhausted_lanes, in hours."),
    "lock_minutes": LOCK_MINUTES,
}
RISK_DEFAULTS: dict[str, Any] = {name: field.default for name, field in RISK_SETTINGS.items()}
# Every setting of trading_settings: the six of SPEC §2 and the risk guard's.
ALL_SETTINGS: dict[str, Field] = {**SETTINGS, **RISK_SETTINGS}
ALL_SETTINGS_DEFAULTS: dict[str, Any] = {**SETTINGS_DEFAULTS, **RISK_DEFAULTS}

# The account's configuration (SPEC §1: the accounts table and the project's columns).
ACCOUNT: dict[str, Field] = {
    "base_amount": money("0.01", "1.00", "Stake of a base trade."),
    "martingale_multiplier": Amount(2, Decimal("1.01"), Decimal("999.99"), Decimal("2.00"), "A lane's stake × this after each loss."),
    "martingale_max_level": Whole(1, 20, 7, "A loss at this level exhausts the lane."),
    "payout_rate": Amount(4, Decimal("0.0100"), Decimal("10.0000"), Decimal("0.8500"), "Profit per unit of stake on a win."),
    "balance": money("0.00", "0.00", "What the account holds, to compare the worst case with."),
    "is_demo": Flag(True, "A demo account at the broker."),
    "enabled": Flag(True, "Off: trade requests are refused and queued ones wait and expire."),
    "martingale_enabled": Flag(True, "Off: every trade stakes the base amount; lanes take no trades."),
    "enhanced_martingale_enabled": Flag(True, "Lanes (enhanced mode); off = the legacy single progression."),
}
ACCOUNT_DEFAULTS: dict[str, Any] = {name: field.default for name, field in ACCOUNT.items()}
# The fields that decide a ladder's stakes.
LADDER_FIELDS = ("base_amount", "martingale_multiplier", "martingale_max_level", "payout_rate")

# A trade request and a result (SPEC §3, §5).
SYMBOL_CHARS = "A-Z a-z 0-9 _ . / : -"
ID_CHARS = "A-Z a-z 0-9 _ . : -"
SYMBOL_MAX, ID_MAX = 50, 100
DIRECTIONS = ("call", "put")
RESULTS = ("win", "loss", "draw")
MAX_WAIT_SECONDS = Whole(0, 3600, 60, "Seconds a request may wait in the queue; 0 = open now or refuse.")
EXPECTED_PAYOUT = money("0.01", None, "What a win would return, stake included; default stake × (1 + payout_rate).")
PAYOUT = money("0.00", None, "What the broker returned: a win's default is the expected payout, a loss's 0, a draw's the stake.")

# A pause by hand (SPEC §11).
LOCK_NOTE_MAX = 200

# Reads (SPEC §9).
STATS_DAYS = Whole(1, 365, 7, "The last N × 24 hours.")
LANE_LIST_LIMIT = Whole(1, 1000, 100, "Lanes per page.")


def clean_fields(spec: Mapping[str, Field], raw: Mapping[str, Any], *, from_text: bool = False, what: str) -> dict[str, Any]:
    """Validate any subset of ``spec``'s fields; every bad or unknown field is reported at once."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for name, value in raw.items():
        field = spec.get(name)
        if field is None:
            errors[name] = f"is not {what} (allowed: {', '.join(spec)})"
            continue
        try:
            cleaned[name] = field.clean(value, from_text=from_text)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise InvalidInput(errors)
    return cleaned
