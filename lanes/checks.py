"""The contract's invariants, verified on a live database (`manage.py martingale check`).

``run_checks`` reads one consistent snapshot of the database in a fixed number of statements,
whatever the history holds, then runs each named check on it; a check is a plain function of the
snapshot that returns the violations it found (and how many cases it could not judge). The
rules come from ``lanes.engine`` (the ladder, the slots, the last level, the column sizes), so a
check and the engine cannot disagree about what the rule is.

The window: the lanes created and the trades requested in the last ``days`` days, plus every
active lane and every queued or open trade whatever its age, plus every trade that a loaded lane
refers to (its lane trades and the ids in its ``trade_ids``), so each loaded lane is judged with
all of its trades.

Statements, in one transaction: the accounts with their settings (1), the lanes (1), the trades
(1, a UNION whose branches can each follow an index), the events of the loaded lanes (1), and the
ids that loaded lanes list but none of those found, looked up in batches of ``MISSING_BATCH``
(none usually; a lane's base trade requested before the window, and the old bot's ids of adopted
lanes, which are not in the ledger). So 4 statements, whatever the number of lanes, trades and
events, plus one per ``MISSING_BATCH`` such ids. Rows are streamed (``iterator``), as tuples.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable, Iterable, Iterator, NamedTuple, Optional

from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from . import engine, summary
from .adapters import SETTINGS_FIELDS, engine_account
from .loading import ACCOUNT_FIELDS, NotFound, today_start
from .models import Account, Lane, LaneEvent, Trade
from .ranges import Whole
from .validation import clean

CHECK_DAYS = Whole(1, 3650, 30, "Read the lanes created and the trades requested in the last N days (plus every active lane and live trade).")
MISSING_BATCH = 500

LANE_TOTALS = "lane_totals"
TRADE_IDS_MATCH = "trade_ids_match"
ONE_OPEN_TRADE_PER_LANE = "one_open_trade_per_lane"
NO_TRADE_IN_TWO_LANES = "no_trade_in_two_lanes"
OPEN_TRADES_WITHIN_SLOTS = "open_trades_within_slots"
ACTIVE_LANES_WITHIN_LIMIT = "active_lanes_within_limit"
LANES_PER_DAY_WITHIN_LIMIT = "lanes_per_day_within_limit"
LANE_CHANGES_HAVE_EVENTS = "lane_changes_have_events"
LADDER = "ladder"
TRADES_CONSISTENT = "trades_consistent"

ENDING_EVENTS = (engine.RECOVERED, engine.EXHAUSTED, engine.FORCE_COMPLETED, engine.CANCELLED)
EVENT_KINDS = ("created", "trade_assigned", "advanced", *ENDING_EVENTS)
OUTCOMES_OF_STATUS = {
    engine.COMPLETED: (engine.RECOVERED, engine.EXHAUSTED, engine.FORCE_COMPLETED),
    engine.CANCELLED: (engine.CANCELLED,),
}


# --- Records --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One broken invariant: the check's name, where, and what is wrong."""

    check: str
    account: Optional[str]
    message: str
    lane_id: Optional[str] = None
    trade_id: Optional[str] = None

    def as_json(self) -> dict:
        return {"check": self.check, "account": self.account, "lane_id": self.lane_id, "trade_id": self.trade_id, "message": self.message}


class Result(NamedTuple):
    """What one check found; ``skipped`` counts the cases it could not judge (see each check)."""

    violations: list[Violation]
    skipped: int = 0


@dataclass
class Report:
    """Every check's violations, in the order of ``CHECKS``, and what was read (``checked``)."""

    violations: list[Violation]
    checked: dict

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_json(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "violations": [v.as_json() for v in self.violations]}


# --- The snapshot ---------------------------------------------------------------------------------


class AccountRow(NamedTuple):
    pk: int
    name: str
    engine: engine.Account
    settings: engine.Settings
    last_updated: Optional[datetime]
    settings_updated_at: Optional[datetime]  # None: no settings row, the defaults always applied


class LaneRow(NamedTuple):
    lane_id: str
    account: str
    status: str
    current_level: int
    base_amount: Decimal
    current_amount: Decimal
    multiplier: Decimal
    max_level: int
    total_invested: Decimal
    total_potential_payout: Decimal
    raw_trade_ids: Optional[str]
    created_at: datetime
    completed_at: Optional[datetime]
    outcome: Optional[str]
    ladder_mode: str
    payout_rate: Optional[Decimal]


LANE_MONEY = ("base_amount", "current_amount", "total_invested", "total_potential_payout")


class TradeRow(NamedTuple):
    trade_id: str
    account_id: int
    status: str
    kind: Optional[str]
    lane_id: Optional[str]
    level: Optional[int]
    amount: Optional[Decimal]
    expected_payout: Optional[Decimal]
    payout: Optional[Decimal]
    profit: Optional[Decimal]
    opened_at: Optional[datetime]
    settled_at: Optional[datetime]


TRADE_MONEY = ("amount", "expected_payout", "payout", "profit")


def _as_text(column: str) -> Cast:
    """A decimal column read as text: the ORM's converter refuses a value wider than the column
    (SQLite stores one), and the checks must be able to name it."""
    return Cast(column, output_field=TextField())


def _sources(fields: tuple[str, ...], decimals: Iterable[str], renamed: dict[str, object]) -> list:
    """What values_list reads for a row tuple's fields: decimals as text, some columns renamed."""
    decimals = set(decimals)
    return [renamed.get(name) or (_as_text(name) if name in decimals else name) for name in fields]


def _row(kind: type, row: tuple, decimals: Iterable[str]) -> NamedTuple:
    values = kind._make(row)
    return values._replace(**{name: _decimal(getattr(values, name)) for name in decimals})


def _decimal(text: Optional[str]) -> Optional[Decimal]:
    """A decimal read as text (SQLite writes 7.00 as 7), with the column's two places unless
    that would change its value."""
    if text is None:
        return None
    value = Decimal(str(text))
    cents = engine.round2(value)
    return cents if cents == value else value


LANE_DECIMALS = (*LANE_MONEY, "multiplier", "payout_rate")
LANE_SOURCES = _sources(LaneRow._fields, LANE_DECIMALS, {"account": "account_name", "raw_trade_ids": _as_text("trade_ids")})
TRADE_SOURCES = _sources(TradeRow._fields, TRADE_MONEY, {})


@dataclass
class Snapshot:
    """What the checks read: the window's accounts, lanes (oldest first), trades and lane events."""

    now: datetime
    since: datetime
    days: int
    accounts: dict[str, AccountRow]
    lanes: list[LaneRow]
    trades: dict[str, TradeRow]
    events: Counter  # (lane_id, kind) -> how many events of that kind the lane has
    assigned: set[tuple[str, str]]  # (lane_id, trade_id) of every trade_assigned event
    event_rows: int
    trade_ids: dict[str, Optional[list[str]]] = field(default_factory=dict)  # lane_id -> its ids (None: unreadable)
    lane_trades: dict[str, list[TradeRow]] = field(default_factory=dict)  # lane_id -> trades whose lane_id it is
    account_names: dict[int, str] = field(default_factory=dict)

    def __post_init__(self):
        self.account_names = {row.pk: row.name for row in self.accounts.values()}
        self.trade_ids = {lane.lane_id: parse_trade_ids(lane.raw_trade_ids) for lane in self.lanes}
        by_lane = defaultdict(list)
        for trade in self.trades.values():
            if trade.lane_id in self.trade_ids:
                by_lane[trade.lane_id].append(trade)
        self.lane_trades = dict(by_lane)

    def account_of(self, trade: TradeRow) -> Optional[str]:
        return self.account_names.get(trade.account_id)

    def unverifiable(self, lane: LaneRow) -> bool:
        """A lane whose trade_ids are not all in the trade ledger (adopted from the old bot, whose
        trades the ledger never held) or cannot be read: its totals and history cannot be rebuilt."""
        ids = self.trade_ids[lane.lane_id]
        return ids is None or any(trade_id not in self.trades for trade_id in ids)


def parse_trade_ids(raw: Optional[str]) -> Optional[list[str]]:
    """A lane's trade_ids as stored (JSON text), or None when it is not a JSON list of strings."""
    try:
        ids = json.loads(raw or "[]")
    except (TypeError, ValueError):
        return None
    if not isinstance(ids, list) or not all(isinstance(trade_id, str) for trade_id in ids):
        return None
    return ids


def _lane_scope(account: Optional[str], since: datetime) -> QuerySet:
    lanes = Lane.objects.filter(Q(status=engine.ACTIVE) | Q(created_at__gte=since)).order_by()
    return lanes if account is None else lanes.filter(account_name=account)


def _trade_scope(account_id: Optional[int], since: datetime, lanes: QuerySet) -> QuerySet:
    """The window's trades as one UNION: requested in the window (opened, or never opened), live,
    or a trade of a loaded lane; each branch can follow an index of the ledger."""
    base = Trade.objects.order_by()
    if account_id is not None:
        base = base.filter(account_id=account_id)
    branches = [
        base.filter(opened_at__gte=since, requested_at__gte=since),
        base.filter(opened_at__isnull=True, requested_at__gte=since),
        base.filter(status__in=engine.LIVE),
        base.filter(lane_id__in=lanes.values("lane_id")),
    ]
    first, *rest = (branch.values_list(*TRADE_SOURCES) for branch in branches)
    return first.union(*rest)


def _read_accounts(account: Optional[str]) -> dict[str, AccountRow]:
    rows = Account.objects.order_by("worker_name")
    if account is not None:
        rows = rows.filter(worker_name=account)
    settings_columns = [f"trading_settings__{name}" for name in SETTINGS_FIELDS]
    accounts = {}
    for row in rows.values(*ACCOUNT_FIELDS, "trading_settings__id", "trading_settings__updated_at", *settings_columns).iterator():
        model = Account(**{name: row[name] for name in ACCOUNT_FIELDS})
        has_settings = row["trading_settings__id"] is not None
        settings = engine.Settings(**{name: row[f"trading_settings__{name}"] for name in SETTINGS_FIELDS}) if has_settings else engine.Settings()
        accounts[model.worker_name] = AccountRow(
            model.pk, model.worker_name, engine_account(model), settings, model.last_updated,
            row["trading_settings__updated_at"] if has_settings else None,
        )
    if account is not None and not accounts:
        raise NotFound(f"account {account} not found")
    return accounts


def read_snapshot(*, account: Optional[str] = None, days: int = CHECK_DAYS.default, now: Optional[datetime] = None) -> Snapshot:
    """Read the window (see the module's docstring) in one consistent snapshot."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    # One snapshot: a change committed between two reads cannot pass for a violation.
    with summary.snapshot(connection):
        accounts = _read_accounts(account)
        lane_scope = _lane_scope(account, since)
        lanes = [
            _row(LaneRow, row, LANE_DECIMALS)
            for row in lane_scope.order_by("created_at", "id").values_list(*LANE_SOURCES).iterator()
        ]
        account_id = accounts[account].pk if account is not None else None
        trades = {row[0]: _row(TradeRow, row, TRADE_MONEY) for row in _trade_scope(account_id, since, lane_scope).iterator()}
        listed = {trade_id for lane in lanes for trade_id in parse_trade_ids(lane.raw_trade_ids) or ()}
        missing = sorted(listed - trades.keys())
        for start in range(0, len(missing), MISSING_BATCH):
            found = Trade.objects.filter(trade_id__in=missing[start : start + MISSING_BATCH]).order_by()
            trades.update((row[0], _row(TradeRow, row, TRADE_MONEY)) for row in found.values_list(*TRADE_SOURCES).iterator())
        events, assigned, event_rows = Counter(), set(), 0
        lane_events = LaneEvent.objects.filter(lane_id__in=lane_scope.values("lane_id"), kind__in=EVENT_KINDS).order_by()
        for lane_id, kind, trade_id in lane_events.values_list("lane_id", "kind", "trade_id").iterator():
            events[lane_id, kind] += 1
            event_rows += 1
            if kind == "trade_assigned":
                assigned.add((lane_id, trade_id))
    return Snapshot(now, since, days, accounts, lanes, trades, events, assigned, event_rows)


# --- The checks -----------------------------------------------------------------------------------


def lane_totals(s: Snapshot) -> Result:
    """Each lane's total_invested is the sum of the amounts, and its total_potential_payout the sum
    of the expected payouts, of the trades its trade_ids lists (a cancelled trade that is still
    listed counts: it was cancelled after the lane had finished, and nothing was taken back out).
    Skipped, and counted, for unverifiable lanes (``Snapshot.unverifiable``)."""
    found, skipped = [], 0
    for lane in s.lanes:
        if s.unverifiable(lane):
            skipped += 1
            continue
        listed = [s.trades[trade_id] for trade_id in s.trade_ids[lane.lane_id]]
        for column, values in (
            ("total_invested", [t.amount for t in listed]),
            ("total_potential_payout", [t.expected_payout for t in listed]),
        ):
            total = sum((value or engine.ZERO for value in values), engine.ZERO)
            if getattr(lane, column) != total:
                found.append(Violation(
                    LANE_TOTALS, lane.account,
                    f"{column} is {getattr(lane, column)}, but the {len(listed)} trades in trade_ids sum to {total}",
                    lane_id=lane.lane_id,
                ))
    return Result(found, skipped)


def _taken_out(trade: TradeRow, lane: LaneRow) -> Optional[bool]:
    """Whether cancelling this lane trade took it back out of the lane's trade_ids: it did when the
    trade was open and the lane active at the cancel, not when the lane had finished before
    (SPEC §5). None: it cannot be told (cancelled at the very instant the lane finished)."""
    if trade.status != engine.CANCELLED:
        return False
    if lane.completed_at is None:
        return True
    if trade.settled_at is None or trade.settled_at == lane.completed_at:
        return None
    return trade.settled_at < lane.completed_at


Problem = tuple[str, Optional[str]]  # (what is wrong, the trade it names or None)


def _per_lane(s: Snapshot, check: str, problems: Callable[[Snapshot, LaneRow], Iterator[Problem]]) -> list[Violation]:
    return [
        Violation(check, lane.account, message, lane_id=lane.lane_id, trade_id=trade_id)
        for lane in s.lanes
        for message, trade_id in problems(s, lane)
    ]


def trade_ids_match(s: Snapshot) -> Result:
    """A lane's trade_ids is a JSON list of trade ids without repeats, in three parts:

    1. ids not in the trade ledger (the old bot's history of an adopted lane), all before any id
       that is in the ledger;
    2. when there are none, the first id is the base trade whose loss created the lane: a ledger
       trade of the lane's account with no lane_id, kind ``base`` and status ``lost``;
    3. the rest are exactly the lane's trades (ledger trades whose lane_id is the lane), except
       those a cancel took back out (``_taken_out``: cancelled while the lane was active; at the
       very instant the lane finished, either way is accepted).
    """
    return Result(_per_lane(s, TRADE_IDS_MATCH, _trade_ids_problems))


def _trade_ids_problems(s: Snapshot, lane: LaneRow) -> Iterator[Problem]:
    ids = s.trade_ids[lane.lane_id]
    if ids is None:
        yield f"trade_ids is not a JSON list of trade ids: {(lane.raw_trade_ids or '')[:80]!r}", None
        return
    if not ids:
        yield "trade_ids is empty: a lane lists at least the base trade that created it", None
        return
    for trade_id, times in Counter(ids).items():
        if times > 1:
            yield f"trade_ids lists trade {trade_id} {times} times", trade_id
    adopted = 0
    while adopted < len(ids) and ids[adopted] not in s.trades:
        adopted += 1
    if adopted == 0:
        base = s.trades[ids[0]]
        if (base.lane_id, base.kind, base.status, s.account_of(base)) != (None, engine.BASE, engine.LOST, lane.account):
            yield (
                f"the first trade {base.trade_id} is not a lost base trade of {lane.account} "
                f"(kind {base.kind}, status {base.status}, lane {base.lane_id}, account {s.account_of(base)})"
            ), base.trade_id
    rest = ids[max(adopted, 1):]
    for trade_id in rest:
        if trade_id not in s.trades:
            yield f"trade_ids lists {trade_id}, which is not in the trade ledger, after trades that are", trade_id
        elif s.trades[trade_id].lane_id != lane.lane_id:
            other = s.trades[trade_id]
            yield f"trade_ids lists trade {trade_id}, whose lane is {other.lane_id} (kind {other.kind})", trade_id
    listed = set(rest)
    for trade in s.lane_trades.get(lane.lane_id, []):
        taken_out = _taken_out(trade, lane)
        if taken_out is False and trade.trade_id not in listed:
            yield f"lane trade {trade.trade_id} ({trade.status}) is missing from trade_ids", trade.trade_id
        elif taken_out is True and trade.trade_id in listed:
            yield f"trade_ids still lists trade {trade.trade_id}, cancelled while the lane was active (it is taken out)", trade.trade_id


def one_open_trade_per_lane(s: Snapshot) -> Result:
    """No lane has two open trades (every open trade is in the snapshot)."""
    open_by_lane = defaultdict(list)
    for trade in s.trades.values():
        if trade.status == engine.OPEN and trade.lane_id is not None:
            open_by_lane[trade.lane_id].append(trade)
    lanes = {lane.lane_id: lane for lane in s.lanes}
    found = []
    for lane_id, trades in sorted(open_by_lane.items()):
        if len(trades) > 1:
            names = sorted(trade.trade_id for trade in trades)
            account = lanes[lane_id].account if lane_id in lanes else s.account_of(trades[0])
            found.append(Violation(
                ONE_OPEN_TRADE_PER_LANE, account, f"{len(trades)} open trades: {', '.join(names)}",
                lane_id=lane_id, trade_id=names[1],
            ))
    return Result(found)


def no_trade_in_two_lanes(s: Snapshot) -> Result:
    """No trade id is listed in the trade_ids of two lanes."""
    holders = defaultdict(list)
    for lane in s.lanes:
        for trade_id in dict.fromkeys(s.trade_ids[lane.lane_id] or ()):
            holders[trade_id].append(lane)
    found = []
    for trade_id, lanes in holders.items():
        if len(lanes) > 1:
            found.append(Violation(
                NO_TRADE_IN_TWO_LANES, lanes[1].account,
                f"trade {trade_id} is listed by {len(lanes)} lanes: {', '.join(lane.lane_id for lane in lanes)}",
                lane_id=lanes[1].lane_id, trade_id=trade_id,
            ))
    return Result(found)


def _in_force_at(changes: Iterable[Optional[datetime]], moment: Optional[datetime]) -> bool:
    """Whether the current values were already in force at ``moment``: each row holding them
    was last changed before it (None: never written, the defaults)."""
    return moment is not None and all(changed is None or changed < moment for changed in changes)


def open_trades_within_slots(s: Snapshot) -> Result:
    """An account has at most ``engine.slots`` open trades, for its current account row and
    settings. Settings can be lowered while trades are open, so an excess is a violation only
    when both the account row (last_updated) and its settings row (updated_at) were last changed
    before the (slots + 1)-th oldest open trade opened: then that limit was in force when it
    opened. Other excesses are skipped, and counted."""
    open_trades = defaultdict(list)
    for trade in s.trades.values():
        if trade.status == engine.OPEN:
            open_trades[trade.account_id].append(trade)
    found, skipped = [], 0
    for account in s.accounts.values():
        trades = sorted(open_trades.get(account.pk, []), key=lambda t: (t.opened_at is None, t.opened_at or s.now, t.trade_id))
        limit = engine.slots(account.engine, account.settings)
        if len(trades) <= limit:
            continue
        extra = trades[limit]
        if _in_force_at((account.last_updated, account.settings_updated_at), extra.opened_at):
            found.append(Violation(
                OPEN_TRADES_WITHIN_SLOTS, account.name,
                f"{len(trades)} open trades, {limit} slot(s); trade {extra.trade_id} opened at "
                f"{extra.opened_at.isoformat()} with every slot taken",
                trade_id=extra.trade_id,
            ))
        else:
            skipped += 1
    return Result(found, skipped)


def active_lanes_within_limit(s: Snapshot) -> Result:
    """An account has at most max_concurrent_lanes active lanes. As with the slots, an excess is
    a violation only when the settings row was last changed before the (limit + 1)-th oldest
    active lane was created (every active lane is in the snapshot); other excesses are skipped,
    and counted."""
    active = defaultdict(list)
    for lane in s.lanes:
        if lane.status == engine.ACTIVE:
            active[lane.account].append(lane)  # oldest first
    found, skipped = [], 0
    for account in s.accounts.values():
        lanes, limit = active.get(account.name, []), account.settings.max_concurrent_lanes
        if not engine.lane_limit_reached(account.settings, len(lanes) - 1):
            continue
        extra = lanes[limit]
        if _in_force_at((account.settings_updated_at,), extra.created_at):
            found.append(Violation(
                ACTIVE_LANES_WITHIN_LIMIT, account.name,
                f"{len(lanes)} active lanes, max_concurrent_lanes {limit}; lane {extra.lane_id} was created at "
                f"{extra.created_at.isoformat()} with {limit} already active",
                lane_id=extra.lane_id,
            ))
        else:
            skipped += 1
    return Result(found, skipped)


def lanes_per_day_within_limit(s: Snapshot) -> Result:
    """An account creates at most max_daily_lanes lanes per TIME_ZONE day (``loading.today_start``),
    judged only for days that began after its settings row was last changed. The lanes of the
    window's first day before the window's start are not read, so that day's count is a lower
    bound (an excess is still an excess). Days over the current limit that began before the
    settings changed are skipped, and counted."""
    per_day = defaultdict(list)
    for lane in s.lanes:
        per_day[lane.account, today_start(lane.created_at)].append(lane)  # oldest first
    found, skipped = [], 0
    for (name, day), lanes in sorted(per_day.items()):
        account = s.accounts.get(name)
        if account is None or not engine.daily_limit_reached(account.settings, len(lanes) - 1):
            continue
        limit = account.settings.max_daily_lanes
        if _in_force_at((account.settings_updated_at,), day):
            found.append(Violation(
                LANES_PER_DAY_WITHIN_LIMIT, name,
                f"{len(lanes)} lanes created on {day.date().isoformat()}, max_daily_lanes {limit}; "
                f"lane {lanes[limit].lane_id} was number {limit + 1}",
                lane_id=lanes[limit].lane_id,
            ))
        else:
            skipped += 1
    return Result(found, skipped)


def lane_changes_have_events(s: Snapshot) -> Result:
    """The audit trail holds each lane's changes:

    - exactly one ``created`` event (not checked for unverifiable lanes: the old bot wrote none);
    - a ``trade_assigned`` event for each of its lane trades, cancelled ones included;
    - an active lane has no ending event; a finished one exactly one, whose kind is its outcome
      (an unverifiable lane the old bot finished may have none);
    - ``advanced`` events: current_level − 1 of them (not checked for unverifiable lanes).
    """
    return Result(_per_lane(s, LANE_CHANGES_HAVE_EVENTS, _event_problems))


def _event_problems(s: Snapshot, lane: LaneRow) -> Iterator[Problem]:
    def count(kind: str) -> int:
        return s.events[lane.lane_id, kind]

    adopted = s.unverifiable(lane)
    if not adopted and count("created") != 1:
        yield f"{count('created')} created events, expected 1", None
    for trade in s.lane_trades.get(lane.lane_id, []):
        if (lane.lane_id, trade.trade_id) not in s.assigned:
            yield f"no trade_assigned event for lane trade {trade.trade_id}", trade.trade_id
    endings = {kind: count(kind) for kind in ENDING_EVENTS if count(kind)}
    if lane.status == engine.ACTIVE:
        if endings:
            yield f"the lane is active but has ending events {endings}", None
    elif endings != {lane.outcome: 1} and not (adopted and not endings):
        yield f"the lane is {lane.status} (outcome {lane.outcome}) but its ending events are {endings or 'none'}", None
    if not adopted and count("advanced") != lane.current_level - 1:
        yield f"{count('advanced')} advanced events at level {lane.current_level}, expected {lane.current_level - 1}", None


def ladder(s: Snapshot) -> Result:
    """The lane's ladder and state (SPEC §5, ``engine.stake_at``):

    - 1 ≤ current_level ≤ max_level, and current_amount is the stake of the lane's ladder (its
      ladder mode, ``engine.mode_ladder``) at current_level;
    - each lane trade has 1 ≤ level ≤ current_level and amount = the ladder's stake at its level;
      the base trade (first id, when in the ledger) has amount = base_amount;
    - an exhausted lane is at its last level (``engine.at_last_level``), or its account has a
      max_stake (SPEC §11: a lane whose next stake would pass it is exhausted; the limit may have
      changed since, so the level is not judged);
    - an active lane has neither completed_at nor outcome; a finished one has completed_at and an
      outcome that fits its status (completed: recovered, exhausted or force_completed;
      cancelled: cancelled) — the outcome may be missing on an unverifiable lane the old bot
      finished, which had no such column;
    - every stored amount of a lane or a trade fits DECIMAL(10,2) (``engine.fits``), and
      trade_ids has at most ``engine.MAX_LANE_TRADES`` ids.
    """
    found = _per_lane(s, LADDER, _ladder_problems)
    for trade in s.trades.values():
        for column in TRADE_MONEY:
            value = getattr(trade, column)
            if value is not None and not engine.fits(value):
                found.append(Violation(
                    LADDER, s.account_of(trade), f"{column} {value} does not fit DECIMAL(10,2)",
                    lane_id=trade.lane_id, trade_id=trade.trade_id,
                ))
    return Result(found)


def _stakes(lane: LaneRow) -> list[Decimal]:
    return engine.mode_ladder(lane.ladder_mode, lane.base_amount, lane.multiplier, lane.payout_rate, lane.max_level)


def _ladder_problems(s: Snapshot, lane: LaneRow) -> Iterator[Problem]:
    if not 1 <= lane.current_level <= lane.max_level:
        yield f"current_level {lane.current_level} is outside 1–{lane.max_level}", None
    else:
        stake = _stakes(lane)[lane.current_level]
        if lane.current_amount != stake:
            yield f"current_amount is {lane.current_amount}, the ladder's stake at level {lane.current_level} is {stake}", None
    for trade in s.lane_trades.get(lane.lane_id, []):
        if trade.level is None or not 1 <= trade.level <= min(lane.current_level, lane.max_level):
            yield f"lane trade {trade.trade_id} is at level {trade.level}, outside 1–{lane.current_level}", trade.trade_id
        elif trade.amount is not None:
            stake = _stakes(lane)[trade.level]
            if trade.amount != stake:
                yield f"lane trade {trade.trade_id} staked {trade.amount} at level {trade.level}, the ladder says {stake}", trade.trade_id
    ids = s.trade_ids[lane.lane_id] or []
    base = s.trades.get(ids[0]) if ids else None
    if base is not None and base.kind == engine.BASE and base.amount != lane.base_amount:
        yield f"base_amount is {lane.base_amount}, its base trade {base.trade_id} staked {base.amount}", base.trade_id
    account = s.accounts.get(lane.account)
    by_max_stake = account is not None and account.settings.max_stake is not None
    if lane.outcome == engine.EXHAUSTED and not engine.at_last_level(lane.current_level, lane.max_level) and not by_max_stake:
        yield f"exhausted at level {lane.current_level}, below its last level {lane.max_level}", None
    if lane.status == engine.ACTIVE:
        if lane.completed_at is not None or lane.outcome is not None:
            yield f"the lane is active but has completed_at {lane.completed_at} and outcome {lane.outcome}", None
    elif lane.status not in OUTCOMES_OF_STATUS:
        yield f"unknown status {lane.status!r}", None
    else:
        if lane.completed_at is None:
            yield f"the lane is {lane.status} but has no completed_at", None
        allowed = OUTCOMES_OF_STATUS[lane.status]
        if lane.outcome not in allowed and not (lane.outcome is None and s.unverifiable(lane)):
            yield f"the lane is {lane.status} with outcome {lane.outcome}, expected one of {', '.join(allowed)}", None
    for column in LANE_MONEY:
        if not engine.fits(getattr(lane, column)):
            yield f"{column} {getattr(lane, column)} does not fit DECIMAL(10,2)", None
    if len(ids) > engine.MAX_LANE_TRADES:
        yield f"trade_ids lists {len(ids)} trades, more than {engine.MAX_LANE_TRADES}", None


SETTLED_NEEDS = ("opened_at", "settled_at", "amount", "payout", "profit")
QUEUED_HAS_NONE = ("amount", "kind", "level", "lane_id", "opened_at")
OPEN_NEEDS = ("opened_at", "amount", "kind", "level")
TRADE_STATUSES = (*engine.LIVE, *engine.SETTLED, engine.CANCELLED, engine.EXPIRED)


def trades_consistent(s: Snapshot) -> Result:
    """Each trade's columns fit its status (SPEC §3, §5, §9):

    - a settled trade (won, lost, draw) has opened_at, settled_at, amount, payout and profit,
      with profit = payout − amount;
    - a queued trade has no amount, kind, level, lane_id or opened_at;
    - an open trade has opened_at, amount, kind and level;
    - a trade of kind ``lane`` has a lane_id, and one of kind ``base`` or ``legacy`` has none.
    """
    return Result([
        Violation(TRADES_CONSISTENT, s.account_of(trade), message, lane_id=trade.lane_id, trade_id=trade.trade_id)
        for trade in s.trades.values()
        for message in _trade_problems(trade)
    ])


def _trade_problems(trade: TradeRow) -> Iterator[str]:
    if trade.status in engine.SETTLED:
        missing = [name for name in SETTLED_NEEDS if getattr(trade, name) is None]
        if missing:
            yield f"settled as {trade.status} without {', '.join(missing)}"
        elif trade.profit != trade.payout - trade.amount:
            yield f"profit {trade.profit} is not payout {trade.payout} − amount {trade.amount}"
    elif trade.status == engine.QUEUED:
        present = [name for name in QUEUED_HAS_NONE if getattr(trade, name) is not None]
        if present:
            yield f"queued with {', '.join(present)} set"
    elif trade.status == engine.OPEN:
        missing = [name for name in OPEN_NEEDS if getattr(trade, name) is None]
        if missing:
            yield f"open without {', '.join(missing)}"
    elif trade.status not in TRADE_STATUSES:
        yield f"unknown status {trade.status!r}"
    if trade.kind == engine.LANE and trade.lane_id is None:
        yield "a lane trade without a lane_id"
    elif trade.kind in (engine.BASE, engine.LEGACY) and trade.lane_id is not None:
        yield f"a {trade.kind} trade with lane_id {trade.lane_id}"


CHECKS: dict[str, Callable[[Snapshot], Result]] = {
    LANE_TOTALS: lane_totals,
    TRADE_IDS_MATCH: trade_ids_match,
    ONE_OPEN_TRADE_PER_LANE: one_open_trade_per_lane,
    NO_TRADE_IN_TWO_LANES: no_trade_in_two_lanes,
    OPEN_TRADES_WITHIN_SLOTS: open_trades_within_slots,
    ACTIVE_LANES_WITHIN_LIMIT: active_lanes_within_limit,
    LANES_PER_DAY_WITHIN_LIMIT: lanes_per_day_within_limit,
    LANE_CHANGES_HAVE_EVENTS: lane_changes_have_events,
    LADDER: ladder,
    TRADES_CONSISTENT: trades_consistent,
}
LIMIT_CHECKS = (OPEN_TRADES_WITHIN_SLOTS, ACTIVE_LANES_WITHIN_LIMIT, LANES_PER_DAY_WITHIN_LIMIT)


def run_checks(*, account: Optional[str] = None, days=CHECK_DAYS.default, now: Optional[datetime] = None) -> Report:
    """Every check on one snapshot of the window. ``days`` may be text (the command line's)."""
    days = clean(CHECK_DAYS, days, "days", from_text=True)
    snapshot = read_snapshot(account=account, days=days, now=now)
    violations, skipped = [], {}
    for name, check in CHECKS.items():
        result = check(snapshot)
        violations.extend(result.violations)
        skipped[name] = result.skipped
    checked = {
        "checks": len(CHECKS),
        "accounts": len(snapshot.accounts),
        "lanes": len(snapshot.lanes),
        "trades": len(snapshot.trades),
        "events": snapshot.event_rows,
        "days": days,
        "since": snapshot.since.isoformat(),
        "unverifiable_lanes": skipped[LANE_TOTALS],
        "skipped": {name: skipped[name] for name in LIMIT_CHECKS},
    }
    return Report(violations, checked)
