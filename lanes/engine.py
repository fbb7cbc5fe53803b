"""The pure rules of the contract (SPEC §3–7, §11): slots, queue and expiry, cool-down, assignment,
base and lane trades, results and their payouts, limits, legacy mode, the risk guard (ladder modes,
max stake, exposure, circuit breakers and locks), and the numbers derived from them (the ladder,
a lane's remaining risk, the account's exposure, the worst case, "at the last level", "daily limit
reached").

No Django, no I/O, no clock: every operation takes an ``AccountState`` (what one operation on one
account may read and change), the time ``now`` and its input; it changes the state in place and
records what it changed (``dirty_*``), the audit events it implies and the log lines to write
once the change is committed, for the service to write. The service runs it inside a
transaction that holds the account's row lock, so the state is the truth for the duration of
the call. Every interface that shows a rule's result asks the function here.

Money is ``Decimal`` throughout, rounded half up to cents.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Callable, Iterable, NamedTuple, Optional

from .ranges import ALL_SETTINGS_DEFAULTS, MONEY_MAX, MULTIPLIER_MODE, RECOVER_MODE, InvalidInput

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# Exact arithmetic for ladders far past the columns (shown as too large, never stored).
WIDE = Context(prec=200, rounding=ROUND_HALF_UP)

FIFO, ROUND_ROBIN, SYMBOL_PRIORITY = "fifo", "round_robin", "symbol_priority"
WIN, LOSS, DRAW = "win", "loss", "draw"
RESULTS = (WIN, LOSS, DRAW)

# Trade states.
QUEUED, OPEN, WON, LOST, DRAWN, CANCELLED, EXPIRED = "queued", "open", "won", "lost", "draw", "cancelled", "expired"
LIVE = (QUEUED, OPEN)
SETTLED = (WON, LOST, DRAWN)
RESULT_STATUS = {WIN: WON, LOSS: LOST, DRAW: DRAWN}
# Trade kinds.
BASE, LANE, LEGACY = "base", "lane", "legacy"
# Lane states and outcomes.
ACTIVE, COMPLETED = "active", "completed"
RECOVERED, EXHAUSTED, FORCE_COMPLETED = "recovered", "exhausted", "force_completed"
LANE_END_STATUSES = (COMPLETED, CANCELLED)
# Ladder modes (SPEC §11).
MULTIPLIER, RECOVER = MULTIPLIER_MODE, RECOVER_MODE
# Why an account is locked (SPEC §11).
DAILY_STOP_LOSS, DAILY_TAKE_PROFIT, EXHAUSTED_LANES, MANUAL = "daily_stop_loss", "daily_take_profit", "exhausted_lanes", "manual"
LOCK_REASONS = (DAILY_STOP_LOSS, DAILY_TAKE_PROFIT, EXHAUSTED_LANES, MANUAL)

# A lane's trade_ids is TEXT (65,535 bytes on MySQL): 600 ids of the longest allowed length
# (100 characters, 104 with quotes and separator) fit with room to spare.
MAX_LANE_TRADES = 600


def round2(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP, context=WIDE)


def fits(amount: Decimal) -> bool:
    """Whether an amount fits DECIMAL(10,2), the type of every stored amount and total."""
    return -MONEY_MAX <= amount <= MONEY_MAX


# --- The ladder -----------------------------------------------------------------------------


def stake_at(base_amount: Decimal, multiplier: Decimal, level: int) -> Decimal:
    """round2(base × multiplier^level), with the power computed exactly."""
    return round2(WIDE.multiply(base_amount, WIDE.power(multiplier, level)))


def ladder(base_amount: Decimal, multiplier: Decimal, max_level: int) -> list[Decimal]:
    """The stakes s_0 … s_max_level: level 0 is the base trade whose loss opens a lane, level
    ``max_level`` the last trade before the lane is exhausted."""
    return [stake_at(base_amount, multiplier, level) for level in range(max_level + 1)]


def ceil_cents(numerator: int, denominator: int) -> Decimal:
    """numerator / denominator cents, rounded up to the cent, exactly."""
    return Decimal(-(-numerator // denominator)).scaleb(-2)


@functools.lru_cache(maxsize=4096)
def _mode_ladder(mode: str, base_amount: Decimal, multiplier: Decimal, payout_rate: Optional[Decimal], max_level: int) -> tuple:
    if mode != RECOVER:
        return tuple(ladder(base_amount, multiplier, max_level))
    # s_L = ceil_cents((s_0 + … + s_(L−1) + t) / r), t = round2(b × r), in integer cents.
    rate_num, rate_den = payout_rate.as_integer_ratio()
    base_amount = round2(base_amount)
    target = recover_target(base_amount, payout_rate)
    stakes, lost = [base_amount], base_amount
    for _ in range(max_level):
        needed = int((lost + target).scaleb(2))
        stake = ceil_cents(needed * rate_den, rate_num)
        stakes.append(stake)
        lost += stake
    return tuple(stakes)


def mode_ladder(
    mode: str, base_amount: Decimal, multiplier: Decimal, payout_rate: Optional[Decimal], max_level: int
) -> list[Decimal]:
    """The stakes s_0 … s_max_level of a ladder in ``mode`` (SPEC §11): ``multiplier``,
    round2(b × multiplier^L); ``recover``, the smallest stake whose win at ``payout_rate`` returns
    what the ladder lost before it plus the base trade's profit round2(b × r)."""
    return list(_mode_ladder(mode, base_amount, multiplier, payout_rate, max_level))


def recover_target(base_amount: Decimal, payout_rate: Decimal) -> Decimal:
    """t = round2(b × r): what a recover lane that wins nets at least (SPEC §11)."""
    return round2(WIDE.multiply(base_amount, payout_rate))


def last_level(stakes: list[Decimal], max_stake: Optional[Decimal]) -> int:
    """The last level a ladder trades: its max level, or the last level whose stake is within
    ``max_stake`` (0 when even s_1 passes it: no lane). Ladders only grow."""
    if max_stake is None:
        return len(stakes) - 1
    level = 0
    while level + 1 < len(stakes) and stakes[level + 1] <= max_stake:
        level += 1
    return level


@functools.lru_cache(maxsize=4096)
def default_expected_payout(stake: Decimal, payout_rate: Decimal) -> Decimal:
    """What a win returns, stake included, when the bot did not say (SPEC §4). Cached: asked on
    every opened trade, of the few stakes of the ladders (equal Decimals give equal cents)."""
    return round2(WIDE.multiply(stake, WIDE.add(1, payout_rate)))


def ladder_problem(
    base_amount: Decimal,
    multiplier: Decimal,
    max_level: int,
    payout_rate: Decimal,
    *,
    mode: str = MULTIPLIER,
    max_stake: Optional[Decimal] = None,
) -> Optional[tuple[str, str]]:
    """Why a configuration cannot be traded, as (field, message), or None (SPEC §2, §11): a lane
    that runs to its last level must keep its stake and its totals (invested, and potential
    payouts at ``payout_rate``) within DECIMAL(10,2); the base amount must be within
    ``max_stake``."""
    if max_stake is not None and base_amount > max_stake:
        return "base_amount", f"{base_amount:,.2f} is more than max_stake ({max_stake:,.2f}): lower it or raise max_stake"
    stakes = mode_ladder(mode, base_amount, multiplier, payout_rate, max_level)
    max_level = last_level(stakes, max_stake)
    stakes = stakes[: max_level + 1]
    advice = "lower the base amount, the multiplier or the max level" + (
        ", or set max_stake" if mode == RECOVER and max_stake is None else ""
    )
    if stakes[-1] > MONEY_MAX:
        return "martingale_multiplier", (
            f"the stake at level {max_level} would be {stakes[-1]:,.2f}, more than {MONEY_MAX:,.2f}: {advice}"
        )
    invested = sum(stakes, ZERO)
    if invested > MONEY_MAX:
        return "martingale_multiplier", (
            f"a lane that reaches level {max_level} would have invested {invested:,.2f}, more than "
            f"{MONEY_MAX:,.2f}: {advice}"
        )
    payouts = sum((default_expected_payout(stake, payout_rate) for stake in stakes), ZERO)
    if payouts > MONEY_MAX:
        return "payout_rate", (
            f"the potential payouts of a lane that reaches level {max_level} would total "
            f"{payouts:,.2f}, more than {MONEY_MAX:,.2f}: {advice}, or the payout rate"
        )
    return None


@dataclass(slots=True)
class Equity:
    """The cumulative profit (from 0) of trades in settlement order, its highest value so far and
    the largest fall below it (SPEC §11, §12), kept one trade at a time."""

    total: Decimal = ZERO
    peak: Decimal = ZERO
    max_drawdown: Decimal = ZERO

    def add(self, profit) -> bool:
        """Count one settled trade's profit; True when the total is at a new high (or level)."""
        self.total += profit
        if self.total >= self.peak:
            self.peak = self.total
            return True
        if self.peak - self.total > self.max_drawdown:
            self.max_drawdown = self.peak - self.total
        return False


@dataclass(slots=True)
class LosingRun:
    """The current and the longest run of losses in settlement order; a draw neither ends nor
    extends a run (SPEC §11, §12)."""

    run: int = 0
    longest: int = 0

    def add(self, result: str) -> None:
        if result in (LOSS, LOST):
            self.run += 1
            if self.run > self.longest:
                self.longest = self.run
        elif result in (WIN, WON):
            self.run = 0


def max_drawdown(profits) -> Decimal:
    """The largest fall of the cumulative profit (from 0) below its highest value so far, the
    profits taken in settlement order (SPEC §11, §12)."""
    equity = Equity()
    for profit in profits:
        equity.add(profit)
    return equity.max_drawdown


def longest_losing_run(results) -> int:
    """The most consecutive losses in settlement order; a draw neither ends nor extends a run."""
    runs = LosingRun()
    for result in results:
        runs.add(result)
    return runs.longest


@dataclass(frozen=True, slots=True)
class Stretch:
    """A stretch of settled trades in settlement order, summed up so that two stretches side by
    side sum up to the stretch of both (``then``): its trades, their total profit, the highest
    and the lowest running total (the empty start, 0, included), the largest fall below the
    running peak inside it (the peak starting at 0: ``Equity``), the losses before its first win
    and after its last, its longest losing run (``LosingRun``: a draw neither ends nor extends a
    run) and whether it has a win. Profits in any one unit (the statistics add whole cents).

    So the drawdown and the losing run of a long window come from stored stretches of its parts
    (``lanes.risk_blocks``) without reading its trades."""

    n: int = 0
    total: int = 0
    high: int = 0
    low: int = 0
    drawdown: int = 0
    lead: int = 0
    tail: int = 0
    longest: int = 0
    won: bool = False

    @classmethod
    def one(cls, result: str, profit) -> "Stretch":
        """One settled trade (``result`` a result or a settled status)."""
        lost = result in (LOSS, LOST)
        return cls(
            n=1, total=profit, high=max(profit, 0), low=min(profit, 0), drawdown=max(-profit, 0),
            lead=int(lost), tail=int(lost), longest=int(lost), won=result in (WIN, WON),
        )

    @classmethod
    def of(cls, trades) -> "Stretch":
        """The stretch of (result, profit) pairs in settlement order."""
        stretch = cls()
        for result, profit in trades:
            stretch = stretch.then(cls.one(result, profit))
        return stretch

    def then(self, after: "Stretch") -> "Stretch":
        """This stretch followed by ``after``."""
        if not self.n:
            return after
        if not after.n:
            return self
        return Stretch(
            n=self.n + after.n,
            total=self.total + after.total,
            high=max(self.high, self.total + after.high),
            low=min(self.low, self.total + after.low),
            # Inside ``after`` the peak is this stretch's highest, or one of after's own.
            drawdown=max(self.drawdown, after.drawdown, self.high - (self.total + after.low)),
            lead=self.lead if self.won else self.lead + after.lead,
            tail=after.tail if after.won else self.tail + after.tail,
            longest=max(self.longest, after.longest, self.tail + after.lead),
            won=self.won or after.won,
        )


# --- Refusals the interfaces turn into answers ----------------------------------------------


class Refused(Exception):
    """A refusal the contract defines (not a bug); ``code`` is the API's error code (HTTP 409)."""

    code = "conflict"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Conflict(Refused):
    code = "conflict"


class AccountDisabled(Refused):
    code = "account_disabled"


class Busy(Refused):
    code = "busy"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class AccountLocked(Refused):
    """A trade request while the account has an active lock (SPEC §11)."""

    code = "account_locked"

    def __init__(self, message: str, lock: "Lock", retry_after: int):
        super().__init__(message)
        self.lock = lock
        self.locked_until = lock.locked_until
        self.retry_after = retry_after


# --- State ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    concurrent_trading_enabled: bool = ALL_SETTINGS_DEFAULTS["concurrent_trading_enabled"]
    max_concurrent_lanes: int = ALL_SETTINGS_DEFAULTS["max_concurrent_lanes"]
    lane_assignment_strategy: str = ALL_SETTINGS_DEFAULTS["lane_assignment_strategy"]
    auto_create_lanes: bool = ALL_SETTINGS_DEFAULTS["auto_create_lanes"]
    cool_down_seconds: int = ALL_SETTINGS_DEFAULTS["cool_down_seconds"]
    max_daily_lanes: int = ALL_SETTINGS_DEFAULTS["max_daily_lanes"]
    # The risk guard (SPEC §11); None = off.
    ladder_mode: str = ALL_SETTINGS_DEFAULTS["ladder_mode"]
    max_stake: Optional[Decimal] = None
    max_exposure: Optional[Decimal] = None
    daily_stop_loss: Optional[Decimal] = None
    daily_take_profit: Optional[Decimal] = None
    max_exhausted_lanes: Optional[int] = None
    exhausted_window_hours: int = ALL_SETTINGS_DEFAULTS["exhausted_window_hours"]
    lock_minutes: int = ALL_SETTINGS_DEFAULTS["lock_minutes"]

    @property
    def breakers_on(self) -> bool:
        """Whether a result may lock the account (the loader then reads what they need)."""
        return self.daily_stop_loss is not None or self.daily_take_profit is not None or self.max_exhausted_lanes is not None


@dataclass(slots=True)
class Account:
    name: str
    base_amount: Decimal
    multiplier: Decimal
    max_level: int = 7
    payout_rate: Decimal = Decimal("0.85")
    enabled: bool = True
    martingale_enabled: bool = True
    enhanced: bool = True
    legacy_losses: int = 0


@dataclass(slots=True)
class Lane:
    lane_id: str
    symbol: str
    base_amount: Decimal
    current_amount: Decimal
    multiplier: Decimal
    max_level: int
    created_at: datetime
    current_level: int = 1
    status: str = ACTIVE
    total_invested: Decimal = ZERO
    total_potential_payout: Decimal = ZERO
    trade_ids: list[str] = field(default_factory=list)
    completed_at: Optional[datetime] = None
    outcome: Optional[str] = None
    last_assigned_at: Optional[datetime] = None
    pk: Optional[int] = None  # the database id; None until the service inserts the lane
    ladder_mode: str = MULTIPLIER
    payout_rate: Optional[Decimal] = None  # copied at creation (None: a lane from before §11)
    net_profit: Decimal = ZERO  # its settled trades' profit, the base trade that opened it included

    def stakes(self) -> list[Decimal]:
        return mode_ladder(self.ladder_mode, self.base_amount, self.multiplier, self.payout_rate, self.max_level)


@dataclass(slots=True)
class Lock:
    """A pause of an account's new trades (SPEC §11)."""

    lock_id: str
    reason: str
    created_at: datetime
    locked_until: datetime
    released_at: Optional[datetime] = None
    released_by: str = ""
    note: str = ""
    pk: Optional[int] = None

    def active(self, now: datetime) -> bool:
        return self.released_at is None and now < self.locked_until


@dataclass(slots=True)
class Trade:
    trade_id: str
    symbol: str
    requested_at: datetime
    status: str = QUEUED
    direction: Optional[str] = None
    requested_payout: Optional[Decimal] = None
    max_wait_seconds: int = 60
    expires_at: Optional[datetime] = None
    kind: Optional[str] = None
    lane_id: Optional[str] = None
    level: Optional[int] = None
    amount: Optional[Decimal] = None
    expected_payout: Optional[Decimal] = None
    payout: Optional[Decimal] = None
    profit: Optional[Decimal] = None
    opened_at: Optional[datetime] = None
    settled_at: Optional[datetime] = None
    pk: Optional[int] = None


class Request(NamedTuple):
    """A trade request as the bot sent it (immutable; a tuple, made on every request)."""

    trade_id: str
    symbol: str
    direction: Optional[str] = None
    expected_payout: Optional[Decimal] = None
    max_wait_seconds: int = 60


@dataclass(slots=True)
class Event:
    kind: str
    lane_id: Optional[str]
    trade_id: Optional[str]
    data: dict


@dataclass(slots=True)
class AccountState:
    """What one operation on one account may read and change.

    ``lanes`` holds the account's active lanes (a finished lane is not needed: nothing changes it
    again); ``trades`` its queued and open trades plus any trade the operation names.
    """

    account: Account
    settings: Settings
    lanes: dict[str, Lane]
    trades: dict[str, Trade]
    last_open: Optional[datetime] = None
    lanes_created_today: int = 0
    legacy_only: bool = False  # the legacy fallback (SPEC §6) serves this operation
    # The risk guard (SPEC §11): the account's unreleased locks that had not ended when loaded,
    # the profit of its trades settled today, when today ends (the next local midnight), and how
    # many of its lanes were exhausted within exhausted_window_hours (the last two read only
    # while a breaker is on).
    locks: list[Lock] = field(default_factory=list)
    profit_today: Decimal = ZERO
    day_end: Optional[datetime] = None
    exhausted_in_window: int = 0
    dirty_locks: set[str] = field(default_factory=set)
    late_lane_profits: list[tuple[str, Decimal]] = field(default_factory=list)  # (lane_id, profit) of finished lanes
    events: list[Event] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # log lines, written once the change is committed
    dirty_lanes: set[str] = field(default_factory=set)
    dirty_trades: set[str] = field(default_factory=set)
    account_dirty: bool = False

    # Derived views.
    def legacy(self) -> bool:
        return self.legacy_only or is_legacy(self.account)

    def slots(self) -> int:
        return slots(self.account, self.settings, legacy_only=self.legacy_only)

    def open_trades(self) -> list[Trade]:
        return [t for t in self.trades.values() if t.status == OPEN]

    def queue(self) -> list[Trade]:
        queued = [t for t in self.trades.values() if t.status == QUEUED]
        if len(queued) > 1:  # asked several times per call, and mostly empty
            queued.sort(key=queue_key)
        return queued

    def queue_position(self, trade_id: str) -> Optional[int]:
        for position, trade in enumerate(self.queue(), start=1):
            if trade.trade_id == trade_id:
                return position
        return None

    def active_lanes(self) -> list[Lane]:
        lanes = [l for l in self.lanes.values() if l.status == ACTIVE]
        if len(lanes) > 1:
            lanes.sort(key=lane_age_key)
        return lanes

    def open_trade_of(self, lane_id: str) -> Optional[Trade]:
        for trade in self.trades.values():
            if trade.status == OPEN and trade.lane_id == lane_id:
                return trade
        return None

    def cool_down_left(self, now: datetime) -> float:
        return cool_down_left(self.last_open, self.settings, now)

    def active_lock(self, now: datetime) -> Optional[Lock]:
        """The active lock that ends last, or None."""
        return active_lock(self.locks, now)

    def exposure(self) -> Decimal:
        # The lanes and trades as they are: exposure() counts only active lanes and open trades.
        return exposure(self.lanes.values(), self.trades.values(), self.settings.max_stake)

    # Recording changes.
    def _event(self, kind: str, lane: Optional[Lane], trade_id: Optional[str], **data) -> None:
        self.events.append(Event(kind, lane.lane_id if lane else None, trade_id, data))
        if lane is not None:
            self.dirty_lanes.add(lane.lane_id)


# --- Derived numbers: each has this one function, which every interface asks ----------------


def is_legacy(account: Account) -> bool:
    return not account.enhanced


def slots(account: Account, settings: Settings, *, legacy_only: bool = False) -> int:
    """How many trades may be open at once (SPEC §3): one without concurrency or in legacy mode."""
    if legacy_only or is_legacy(account) or not settings.concurrent_trading_enabled:
        return 1
    return settings.max_concurrent_lanes


def lanes_take_trades(account: Account) -> bool:
    """Whether the account's active lanes are given trades (martingale on, lanes mode)."""
    return account.martingale_enabled and not is_legacy(account)


def legacy_level(account: Account) -> int:
    """k of the legacy progression (SPEC §6); a k above the max level (lowered since) counts as past it."""
    if not account.martingale_enabled or account.legacy_losses > account.max_level:
        return 0
    return account.legacy_losses


def at_last_level(current_level: int, max_level: int) -> bool:
    """A loss at this level exhausts the lane."""
    return current_level >= max_level


def daily_limit_reached(settings: Settings, lanes_created_today: int) -> bool:
    return lanes_created_today >= settings.max_daily_lanes


def lane_limit_reached(settings: Settings, active_lanes: int) -> bool:
    return active_lanes >= settings.max_concurrent_lanes


@functools.lru_cache(maxsize=256)
def _seconds(seconds: int) -> timedelta:
    """timedelta(seconds=…) of the few spans the settings and requests use, made once each."""
    return timedelta(seconds=seconds)


def cool_down_left(last_open: Optional[datetime], settings: Settings, now: datetime) -> float:
    if last_open is None or not settings.cool_down_seconds:
        return 0.0
    ready = last_open + _seconds(settings.cool_down_seconds)
    return max(0.0, (ready - now).total_seconds())


def queue_key(trade: Trade):
    """The queue's order (SPEC §3, FIFO per account): by request time, then as recorded."""
    return (trade.requested_at, _order(trade.pk), trade.trade_id)


def lane_age_key(lane: Lane):
    """Oldest lane first: by creation, then id (the FIFO order of SPEC §4)."""
    return (lane.created_at, _order(lane.pk), lane.lane_id)


def _order(pk: Optional[int]) -> float:
    return pk if pk is not None else math.inf


def lane_last_level(lane: Lane, max_stake: Optional[Decimal]) -> int:
    """The last level the lane trades: its max level, or below it where the next stake would
    pass ``max_stake``."""
    return last_level(lane.stakes(), max_stake)


def lane_at_last_level(lane: Lane, max_stake: Optional[Decimal]) -> bool:
    """A loss at the lane's current level exhausts it (its max level, or max_stake)."""
    return lane.current_level >= lane_last_level(lane, max_stake)


def remaining_risk(lane: Lane, max_stake: Optional[Decimal]) -> Decimal:
    """What an active lane can still lose: its current stake and every stake after it up to its
    last level (SPEC §11); 0 for a finished lane."""
    if lane.status != ACTIVE:
        return ZERO
    return ladder_remaining_risk(
        lane.ladder_mode, lane.base_amount, lane.multiplier, lane.payout_rate, lane.max_level, lane.current_level,
        lane.current_amount, max_stake,
    )


def ladder_remaining_risk(
    mode: str, base_amount: Decimal, multiplier: Decimal, payout_rate: Optional[Decimal], max_level: int,
    current_level: int, current_amount: Decimal, max_stake: Optional[Decimal],
) -> Decimal:
    """``remaining_risk`` of an active lane given by its ladder's columns (for a reader that sums
    many lanes without making each one)."""
    after = _stakes_after(mode, base_amount, multiplier, payout_rate, max_level, max_stake)
    return current_amount + (after[current_level] if 0 <= current_level < len(after) else ZERO)


@functools.lru_cache(maxsize=4096)
def _stakes_after(
    mode: str, base_amount: Decimal, multiplier: Decimal, payout_rate: Optional[Decimal], max_level: int,
    max_stake: Optional[Decimal],
) -> tuple:
    """For each level L of a ladder, the sum of its stakes after L up to its last level within
    ``max_stake`` (what remaining_risk adds to the current stake), made once per ladder."""
    stakes = _mode_ladder(mode, base_amount, multiplier, payout_rate, max_level)
    last = last_level(stakes, max_stake)
    return tuple(sum(stakes[level + 1 : last + 1], ZERO) for level in range(len(stakes)))


def exposure(lanes: Iterable[Lane], trades: Iterable[Trade], max_stake: Optional[Decimal]) -> Decimal:
    """An account's exposure (SPEC §11): its active lanes' remaining risk plus the stake of every
    open base or legacy trade (an open lane trade's stake is in its lane's remaining risk). Other
    lanes and trades in the lists count 0."""
    total = ZERO
    for lane in lanes:
        if lane.status == ACTIVE:
            total += remaining_risk(lane, max_stake)
    for trade in trades:
        if trade.status == OPEN and trade.kind in (BASE, LEGACY):
            total += trade.amount
    return total


def headroom(settings: Settings, account_exposure: Decimal) -> Optional[Decimal]:
    """What exposure is left before max_exposure (None when it is off; never below 0)."""
    if settings.max_exposure is None:
        return None
    return max(ZERO, settings.max_exposure - account_exposure)


def active_lock(locks: list[Lock], now: datetime) -> Optional[Lock]:
    if not locks:  # asked on every request and result; most accounts have none
        return None
    active = [lock for lock in locks if lock.active(now)]
    return max(active, key=lambda lock: lock.locked_until) if active else None


def lock_reason_text(lock: Lock) -> str:
    if lock.reason == DAILY_STOP_LOSS:
        return "today's loss reached daily_stop_loss"
    if lock.reason == DAILY_TAKE_PROFIT:
        return "today's profit reached daily_take_profit"
    if lock.reason == EXHAUSTED_LANES:
        return "max_exhausted_lanes lanes were exhausted within the window"
    return "paused by hand" + (f" ({lock.note})" if lock.note else "")


def lock_retry_after(lock: Lock, now: datetime) -> int:
    return max(1, math.ceil((lock.locked_until - now).total_seconds()))


def lane_can_take(lane: Lane, amount: Decimal, expected_payout: Decimal) -> bool:
    """Whether the lane can record one more trade with its totals and trade list in their columns."""
    return (
        len(lane.trade_ids) < MAX_LANE_TRADES
        and fits(lane.total_invested + amount)
        and fits(lane.total_potential_payout + expected_payout)
    )


def lane_is_full(lane: Lane, payout_rate: Decimal) -> bool:
    """A full lane cannot record a trade at its stake even with the default expected payout: it
    is passed over by new trades and waits for a person to complete it."""
    stake = lane.current_amount
    return not lane_can_take(lane, stake, default_expected_payout(stake, payout_rate))


def lane_risk(
    base_amount: Decimal,
    multiplier: Decimal,
    max_level: int,
    *,
    mode: str = MULTIPLIER,
    payout_rate: Optional[Decimal] = None,
    max_stake: Optional[Decimal] = None,
) -> Decimal:
    """What one lane loses when every trade of its ladder loses, the base trade included (in
    ``mode``, up to the last level within ``max_stake``)."""
    stakes = mode_ladder(mode, base_amount, multiplier, payout_rate, max_level)
    return sum(stakes[: last_level(stakes, max_stake) + 1], ZERO)


def worst_case(account: Account, settings: Settings) -> Decimal:
    """What the account loses if every progression it may run loses to the end (SPEC §9):
    ``max_concurrent_lanes`` ladders with lanes (in the account's ladder mode, within max_stake),
    one ladder in legacy mode, and without martingale one base stake per slot."""
    if not account.martingale_enabled:
        return slots(account, settings) * account.base_amount
    if is_legacy(account):
        return lane_risk(account.base_amount, account.multiplier, account.max_level)
    one = lane_risk(
        account.base_amount, account.multiplier, account.max_level,
        mode=settings.ladder_mode, payout_rate=account.payout_rate, max_stake=settings.max_stake,
    )
    return settings.max_concurrent_lanes * one


def settled_payout(result: str, payout: Optional[Decimal], trade: Trade) -> Decimal:
    """The payout recorded for a result, within the bounds of SPEC §5: a win returns more than the
    stake (default: the expected payout), a loss at least 0 and less than the stake (default 0),
    a draw the stake."""
    stake = trade.amount
    if result == WIN:
        if payout is None:
            return trade.expected_payout
        if payout <= stake:
            raise InvalidInput({"payout": f"a win must return more than the stake ({stake}), not {payout}"})
    elif result == LOSS:
        if payout is None:
            return ZERO
        if not ZERO <= payout < stake:
            raise InvalidInput(
                {"payout": f"a loss returns at least 0.00 and less than the stake ({stake}), not {payout}"}
            )
    else:
        if payout is None:
            return stake
        if payout != stake:
            raise InvalidInput({"payout": f"a draw returns the stake ({stake}), not {payout}"})
    return payout


# --- Queue and opening ----------------------------------------------------------------------


def expire_queue(state: AccountState, now: datetime) -> list[Trade]:
    """Expire the queued requests that waited too long; the rest of the queue, in its order."""
    waiting = state.queue()
    if not waiting:  # asked on every request and result; the queue is mostly empty
        return waiting
    due = [trade for trade in waiting if trade.expires_at is not None and now >= trade.expires_at]
    for trade in due:
        _expire(state, trade, now)
    return [trade for trade in waiting if trade.status == QUEUED] if due else waiting


def _expire(state: AccountState, trade: Trade, now: datetime) -> None:
    trade.status = EXPIRED
    trade.settled_at = now
    state.dirty_trades.add(trade.trade_id)


def serve_queue(state: AccountState, now: datetime, *, own_trade_id: Optional[str] = None) -> None:
    """Expire what waited too long, then open the oldest requests while slots and cool-down allow.

    A disabled or locked account opens nothing: its queued requests wait and expire. A queued trade that
    cannot be recorded (its expected payout would overflow the lane it joins) expires at once,
    except ``own_trade_id``, the request being made: that one is refused.
    """
    waiting = expire_queue(state, now)
    if not waiting or not state.account.enabled or state.active_lock(now) is not None:
        return
    for trade in waiting:
        if len(state.open_trades()) >= state.slots() or state.cool_down_left(now) > 0:
            break
        try:
            _open(state, trade, now)
        except InvalidInput as refused:
            if trade.trade_id == own_trade_id:
                raise
            _expire(state, trade, now)
            state.notes.append(f"trade expired unopened account={state.account.name} trade={trade.trade_id} reason={refused}")


def _by_strategy(state: AccountState, symbol: str) -> list[Lane]:
    busy = {t.lane_id for t in state.trades.values() if t.status == OPEN and t.lane_id is not None}
    idle = [l for l in state.active_lanes() if l.lane_id not in busy]
    strategy = state.settings.lane_assignment_strategy
    if strategy == ROUND_ROBIN:
        return sorted(idle, key=lambda l: (l.last_assigned_at or l.created_at, _order(l.pk), l.lane_id))
    if strategy == SYMBOL_PRIORITY:
        same = [l for l in idle if l.symbol == symbol]
        return same + [l for l in idle if l.symbol != symbol]  # both already oldest first
    return idle


def choose_lane(state: AccountState, trade: Trade) -> Optional[Lane]:
    """The idle active lane a new trade joins (SPEC §4): the strategy's first that can record it.

    A requested expected payout that would take that lane's total potential payout past its
    column is refused (the bot learns at once); lanes that cannot record the trade otherwise (full)
    are passed over, so they never block the account.
    """
    rate = state.account.payout_rate
    for lane in _by_strategy(state, trade.symbol):
        stake = lane.current_amount
        if len(lane.trade_ids) >= MAX_LANE_TRADES or not fits(lane.total_invested + stake):
            continue
        payout = trade.requested_payout if trade.requested_payout is not None else default_expected_payout(stake, rate)
        if fits(lane.total_potential_payout + payout):
            return lane
        if trade.requested_payout is not None:
            room = MONEY_MAX - lane.total_potential_payout
            raise InvalidInput(
                {
                    "expected_payout": (
                        f"the trade would join lane {lane.lane_id}, whose total potential payout "
                        f"({lane.total_potential_payout:,.2f}) cannot take {payout:,.2f} more within "
                        f"{MONEY_MAX:,.2f}" + (f": at most {room:,.2f}" if room > ZERO else "")
                    )
                }
            )
    return None


def _open(state: AccountState, trade: Trade, now: datetime) -> None:
    account = state.account
    lane = None
    if state.legacy():
        kind = LEGACY
        level = legacy_level(account)
        if account.martingale_enabled and account.legacy_losses != level:
            account.legacy_losses = level  # a k past the max level restarts the progression
            state.account_dirty = True
        amount = stake_at(account.base_amount, account.multiplier, level)
    elif account.martingale_enabled and (lane := choose_lane(state, trade)) is not None:
        kind, level, amount = LANE, lane.current_level, lane.current_amount
    else:
        kind, level, amount = BASE, 0, account.base_amount
    trade.status = OPEN
    trade.opened_at = now
    trade.kind, trade.level, trade.amount = kind, level, amount
    trade.expected_payout = (
        trade.requested_payout
        if trade.requested_payout is not None
        else default_expected_payout(amount, account.payout_rate)
    )
    state.last_open = now
    state.dirty_trades.add(trade.trade_id)
    if lane is not None:
        trade.lane_id = lane.lane_id
        lane.trade_ids.append(trade.trade_id)
        lane.total_invested += amount
        lane.total_potential_payout += trade.expected_payout
        lane.last_assigned_at = now
        state._event("trade_assigned", lane, trade.trade_id, level=level, amount=str(amount))


# --- Operations -----------------------------------------------------------------------------


def same_request(trade: Trade, request: Request) -> bool:
    """Whether a repeated request (same trade_id) asks for the same trade (SPEC §9: 200 vs 409)."""
    return (
        trade.symbol == request.symbol
        and trade.direction == request.direction
        and trade.requested_payout == request.expected_payout
        and trade.max_wait_seconds == request.max_wait_seconds
    )


def request_trade(state: AccountState, request: Request, now: datetime) -> Trade:
    """A new trade request: open it now, queue it, or refuse it (SPEC §3)."""
    if not state.account.enabled:
        raise AccountDisabled(f"account {state.account.name} is disabled")
    lock = state.active_lock(now)
    if lock is not None:
        raise AccountLocked(
            f"account {state.account.name} is locked until {lock.locked_until.isoformat()}: "
            f"{lock_reason_text(lock)}",
            lock,
            lock_retry_after(lock, now),
        )
    waiting = expire_queue(state, now)
    trade = Trade(
        trade_id=request.trade_id,
        symbol=request.symbol,
        direction=request.direction,
        requested_payout=request.expected_payout,
        max_wait_seconds=request.max_wait_seconds,
        requested_at=now,
        expires_at=now + _seconds(request.max_wait_seconds),
    )
    can_open = not waiting and len(state.open_trades()) < state.slots() and state.cool_down_left(now) == 0
    if not can_open and request.max_wait_seconds == 0:
        retry_after = max(1, math.ceil(state.cool_down_left(now)))
        raise Busy("no slot is free now and max_wait_seconds is 0", retry_after)
    if can_open:
        _open(state, trade, now)  # the queue was empty: nothing else to serve
    state.trades[trade.trade_id] = trade
    state.dirty_trades.add(trade.trade_id)
    if not can_open:
        serve_queue(state, now, own_trade_id=trade.trade_id)
    return trade


def settle_trade(
    state: AccountState,
    trade_id: str,
    result: str,
    payout: Optional[Decimal],
    now: datetime,
    new_lane_id: Callable[[], str],
    *,
    by_hand: bool = False,
) -> bool:
    """Record a win, loss or draw and move the lanes on (SPEC §5). False when it was a repeat.

    ``by_hand``: a person entered the result (a lost result settled from the dashboard or the
    command line); the audit trail records it with its own event. ``new_lane_id`` makes the ids
    of new lanes and locks. After the result, the circuit breakers of SPEC §11 may lock the
    account; the queue is then served no further than expiring.
    """
    trade = state.trades[trade_id]
    if trade.status in SETTLED:
        if RESULT_STATUS[result] == trade.status and (payout is None or payout == trade.payout):
            serve_queue(state, now)
            return False
        raise Conflict(f"trade {trade_id} is already settled as {trade.status}")
    if trade.status != OPEN:
        raise Conflict(f"trade {trade_id} is {trade.status}: only an open trade takes a result")
    trade.payout = settled_payout(result, payout, trade)
    trade.profit = trade.payout - trade.amount
    trade.status = RESULT_STATUS[result]
    trade.settled_at = now
    state.dirty_trades.add(trade_id)
    state.profit_today += trade.profit
    exhausted_before = state.exhausted_in_window

    lane = state.lanes.get(trade.lane_id) if trade.lane_id else None
    if by_hand:
        state._event(
            "settled_by_hand", lane if lane is not None and lane.status == ACTIVE else None, trade_id,
            result=result, payout=str(trade.payout), profit=str(trade.profit),
        )
    if trade.kind == LEGACY:
        _settle_legacy(state, result)
    elif trade.kind == BASE:
        if result == LOSS and state.account.martingale_enabled and not state.legacy():
            _maybe_create_lane(state, trade, now, new_lane_id)
    elif lane is not None and lane.status == ACTIVE:
        _settle_lane(state, lane, trade, result, now)
    elif trade.lane_id:  # force-completed meanwhile: its state stays; its profit counts (SPEC §9)
        state.late_lane_profits.append((trade.lane_id, trade.profit))
    if state.settings.breakers_on:
        check_breakers(state, now, new_lane_id, exhausted=state.exhausted_in_window > exhausted_before, trade_id=trade_id)
    serve_queue(state, now)
    return True


# --- The risk guard's locks (SPEC §11) ---------------------------------------------------------


def _day_end(state: AccountState, now: datetime) -> datetime:
    if state.day_end is not None:
        return state.day_end
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def check_breakers(
    state: AccountState, now: datetime, new_id: Callable[[], str], *, exhausted: bool, trade_id: Optional[str] = None
) -> Optional[Lock]:
    """After a result: the first circuit breaker that trips, in SPEC §11's order, locks the
    account, unless it is locked already. None of them trips when ``settings.breakers_on`` is
    false (the caller may skip the call then)."""
    if state.active_lock(now) is not None:
        return None
    settings = state.settings
    if settings.daily_stop_loss is not None and state.profit_today <= -settings.daily_stop_loss:
        reason, until = DAILY_STOP_LOSS, _day_end(state, now)
        detail = f"today's net profit {state.profit_today:,.2f} reached -{settings.daily_stop_loss:,.2f}"
    elif settings.daily_take_profit is not None and state.profit_today >= settings.daily_take_profit:
        reason, until = DAILY_TAKE_PROFIT, _day_end(state, now)
        detail = f"today's net profit {state.profit_today:,.2f} reached {settings.daily_take_profit:,.2f}"
    elif (
        exhausted
        and settings.max_exhausted_lanes is not None
        and state.exhausted_in_window >= settings.max_exhausted_lanes
    ):
        reason, until = EXHAUSTED_LANES, now + timedelta(minutes=settings.lock_minutes)
        detail = f"{state.exhausted_in_window} lanes exhausted within {settings.exhausted_window_hours} h"
    else:
        return None
    return _add_lock(state, Lock(new_id(), reason, now, until, note=detail), trade_id=trade_id)


def _add_lock(state: AccountState, lock: Lock, *, trade_id: Optional[str] = None) -> Lock:
    state.locks.append(lock)
    state.dirty_locks.add(lock.lock_id)
    state._event(
        "locked", None, trade_id, lock_id=lock.lock_id, reason=lock.reason, locked_until=lock.locked_until.isoformat(),
        note=lock.note,
    )
    state.notes.append(
        f"account locked account={state.account.name} lock={lock.lock_id} reason={lock.reason} "
        f"until={lock.locked_until.isoformat()} {lock.note}"
    )
    return lock


def lock_account(state: AccountState, minutes: int, note: str, now: datetime, lock_id: str) -> Lock:
    """A pause by hand: no new trade opens for ``minutes`` (SPEC §11)."""
    return _add_lock(state, Lock(lock_id, MANUAL, now, now + timedelta(minutes=minutes), note=note))


def release_locks(state: AccountState, now: datetime, by: str, *, lock_id: Optional[str] = None) -> list[Lock]:
    """End the account's active locks (or the one named) at once, then serve the queue. A lock
    that is not active (released or ended) is left as it is."""
    released = []
    for lock in state.locks:
        if (lock_id is None or lock.lock_id == lock_id) and lock.active(now):
            lock.released_at, lock.released_by = now, by
            state.dirty_locks.add(lock.lock_id)
            state._event("unlocked", None, None, lock_id=lock.lock_id, reason=lock.reason)
            state.notes.append(f"account unlocked account={state.account.name} lock={lock.lock_id} by={by}")
            released.append(lock)
    serve_queue(state, now)
    return released


def _settle_legacy(state: AccountState, result: str) -> None:
    account = state.account
    if not account.martingale_enabled or result == DRAW:
        return
    before = account.legacy_losses
    if result == WIN:
        account.legacy_losses = 0
    else:
        account.legacy_losses = before + 1 if before + 1 <= account.max_level else 0
    state.account_dirty = state.account_dirty or account.legacy_losses != before


def _maybe_create_lane(state: AccountState, trade: Trade, now: datetime, new_lane_id: Callable[[], str]) -> None:
    settings, account = state.settings, state.account
    active = len([lane for lane in state.lanes.values() if lane.status == ACTIVE])
    mode = settings.ladder_mode
    code, detail = None, {}
    if not settings.auto_create_lanes:
        reason = "auto_create_lanes is off"
    elif lane_limit_reached(settings, active):
        reason = f"max_concurrent_lanes reached ({active} of {settings.max_concurrent_lanes} active)"
    elif daily_limit_reached(settings, state.lanes_created_today):
        reason = f"max_daily_lanes reached ({state.lanes_created_today} of {settings.max_daily_lanes} today)"
    else:
        stakes = mode_ladder(mode, trade.amount, account.multiplier, account.payout_rate, account.max_level)
        last = last_level(stakes, settings.max_stake)
        top = stakes[last]
        if last == 0:
            code = reason = "max_stake"
            detail = {"message": f"the first stake {stakes[1]:,.2f} would pass max_stake ({settings.max_stake:,.2f})"}
        elif top > MONEY_MAX:  # the settings changed since this trade opened
            reason = f"the stake at level {last} would be {top:,.2f}, more than {MONEY_MAX:,.2f}"
        else:
            reason = None
            after = state.exposure() + sum(stakes[1 : last + 1], ZERO)  # the new lane's remaining risk added
            if settings.max_exposure is not None and after > settings.max_exposure:
                code = reason = "max_exposure"
                detail = {
                    "message": f"the exposure would be {after:,.2f} with this lane, more than max_exposure "
                    f"({settings.max_exposure:,.2f})",
                    "exposure": str(after),
                }
    if reason is not None:
        state._event("not_created", None, trade.trade_id, reason=reason, symbol=trade.symbol, **detail)
        note = detail.get("message", reason)
        state.notes.append(f"lane not created account={account.name} trade={trade.trade_id} reason={code or note} {note if code else ''}".rstrip())
        return
    lane = Lane(
        lane_id=new_lane_id(),
        symbol=trade.symbol,
        base_amount=trade.amount,
        current_level=1,
        current_amount=stakes[1],
        multiplier=account.multiplier,
        max_level=account.max_level,
        total_invested=trade.amount,
        total_potential_payout=trade.expected_payout,
        trade_ids=[trade.trade_id],
        created_at=now,
        ladder_mode=mode,
        payout_rate=account.payout_rate,
        net_profit=trade.profit,
    )
    state.lanes[lane.lane_id] = lane
    state.lanes_created_today += 1
    state._event(
        "created", lane, trade.trade_id, level=1, amount=str(lane.current_amount), base_amount=str(trade.amount),
        ladder_mode=mode, exposure=str(after),
    )


def _settle_lane(state: AccountState, lane: Lane, trade: Trade, result: str, now: datetime) -> None:
    level = trade.level
    lane.net_profit += trade.profit
    stakes = lane.stakes()
    past_max_stake = (
        state.settings.max_stake is not None and level + 1 < len(stakes) and stakes[level + 1] > state.settings.max_stake
    )
    if result == WIN:
        lane.status, lane.outcome, lane.completed_at = COMPLETED, RECOVERED, now
        state._event("recovered", lane, trade.trade_id, level=level, profit=str(trade.profit))
    elif result == DRAW:
        state._event("draw", lane, trade.trade_id, level=level)
    elif at_last_level(level, lane.max_level) or past_max_stake:
        lane.status, lane.outcome, lane.completed_at = COMPLETED, EXHAUSTED, now
        state.exhausted_in_window += 1
        why = {"reason": "max_stake", "next_amount": str(stakes[level + 1])} if past_max_stake else {}
        state._event("exhausted", lane, trade.trade_id, level=level, total_invested=str(lane.total_invested), **why)
    else:
        lane.current_level = level + 1
        lane.current_amount = stakes[lane.current_level]
        state._event("advanced", lane, trade.trade_id, level=lane.current_level, amount=str(lane.current_amount))


def cancel_trade(state: AccountState, trade_id: str, now: datetime) -> bool:
    """Cancel a queued or open trade (SPEC §5). False when it was already cancelled."""
    trade = state.trades[trade_id]
    if trade.status == CANCELLED:
        serve_queue(state, now)
        return False
    if trade.status not in LIVE:
        raise Conflict(f"trade {trade_id} is {trade.status}: only a queued or open trade can be cancelled")
    was_open = trade.status == OPEN
    trade.status = CANCELLED
    trade.settled_at = now
    trade.profit = ZERO if was_open else None
    state.dirty_trades.add(trade_id)
    lane = state.lanes.get(trade.lane_id) if was_open and trade.kind == LANE else None
    if lane is not None and lane.status == ACTIVE:
        lane.trade_ids.remove(trade_id)
        lane.total_invested -= trade.amount
        lane.total_potential_payout -= trade.expected_payout
        state._event("trade_cancelled", lane, trade_id, level=trade.level, amount=str(trade.amount))
    serve_queue(state, now)
    return True


def complete_lane(state: AccountState, lane_id: str, status: str, now: datetime) -> Lane:
    """End an active lane by hand: status ``completed`` or ``cancelled`` (SPEC §7)."""
    lane = _end_lane(state, lane_id, status, now)
    serve_queue(state, now)
    return lane


def complete_all_lanes(state: AccountState, status: str, now: datetime) -> list[Lane]:
    """Reset: end every active lane of the account in one change, then serve the queue (SPEC §7)."""
    ended = [_end_lane(state, lane.lane_id, status, now) for lane in state.active_lanes()]
    serve_queue(state, now)
    return ended


def _end_lane(state: AccountState, lane_id: str, status: str, now: datetime) -> Lane:
    if status not in LANE_END_STATUSES:
        raise InvalidInput({"status": "must be completed or cancelled"})
    lane = state.lanes.get(lane_id)
    if lane is None or lane.status != ACTIVE:
        raise Conflict(f"lane {lane_id} is already finished")
    lane.status = status
    lane.outcome = FORCE_COMPLETED if status == COMPLETED else CANCELLED
    lane.completed_at = now
    open_trade = state.open_trade_of(lane_id)
    state._event(
        lane.outcome, lane, open_trade.trade_id if open_trade else None, level=lane.current_level, status=status
    )
    return lane
