"""The pure rules of the contract (SPEC §3–6): slots, queue and expiry, cool-down, assignment,
base and lane trades, results, limits, legacy mode.

No Django, no I/O, no clock: every operation takes a ``Book`` (the state of one account that the
operation may touch), the time ``now`` and its input; it changes the book in place and records
what it changed (``dirty_*``) and the audit events it implies, for the service to write. The
service runs it inside a transaction that holds the account's row lock, so the book is the truth
for the duration of the call.

Money is ``Decimal`` throughout, rounded half up to cents.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Callable, Optional

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

FIFO, ROUND_ROBIN, SYMBOL_PRIORITY = "fifo", "round_robin", "symbol_priority"
WIN, LOSS, DRAW = "win", "loss", "draw"
RESULTS = (WIN, LOSS, DRAW)

# Trade states.
QUEUED, OPEN, WON, LOST, DRAWN, CANCELLED, EXPIRED = "queued", "open", "won", "lost", "draw", "cancelled", "expired"
SETTLED = (WON, LOST, DRAWN)
RESULT_STATUS = {WIN: WON, LOSS: LOST, DRAW: DRAWN}
# Trade kinds.
BASE, LANE, LEGACY = "base", "lane", "legacy"
# Lane states and outcomes.
ACTIVE, COMPLETED = "active", "completed"
RECOVERED, EXHAUSTED, FORCE_COMPLETED = "recovered", "exhausted", "force_completed"


def round2(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def stake_at(base_amount: Decimal, multiplier: Decimal, level: int) -> Decimal:
    """round2(base × multiplier^level), with the power computed exactly."""
    with localcontext() as ctx:
        ctx.prec = 200
        return round2(base_amount * multiplier**level)


def default_expected_payout(stake: Decimal, payout_rate: Decimal) -> Decimal:
    return round2(stake * (1 + payout_rate))


# --- Errors the interfaces turn into answers -------------------------------------------------


class EngineError(Exception):
    """A refusal the contract defines (not a bug); ``code`` is the API's error code."""

    code = "conflict"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Conflict(EngineError):
    code = "conflict"


class AccountDisabled(EngineError):
    code = "account_disabled"


class Busy(EngineError):
    code = "busy"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


# --- State ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    concurrent_trading_enabled: bool = False
    max_concurrent_lanes: int = 3
    lane_assignment_strategy: str = FIFO
    auto_create_lanes: bool = True
    cool_down_seconds: int = 0
    max_daily_lanes: int = 10


@dataclass
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


@dataclass
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


@dataclass
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


@dataclass(frozen=True)
class Request:
    trade_id: str
    symbol: str
    direction: Optional[str] = None
    expected_payout: Optional[Decimal] = None
    max_wait_seconds: int = 60


@dataclass
class Event:
    kind: str
    lane_id: Optional[str]
    trade_id: Optional[str]
    data: dict


@dataclass
class Book:
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
    events: list[Event] = field(default_factory=list)
    dirty_lanes: set[str] = field(default_factory=set)
    dirty_trades: set[str] = field(default_factory=set)
    account_dirty: bool = False
    _new_lanes: int = 0

    # Derived views.
    def legacy(self) -> bool:
        return self.legacy_only or not self.account.enhanced

    def slots(self) -> int:
        if self.legacy() or not self.settings.concurrent_trading_enabled:
            return 1
        return self.settings.max_concurrent_lanes

    def open_trades(self) -> list[Trade]:
        return [t for t in self.trades.values() if t.status == OPEN]

    def queue(self) -> list[Trade]:
        queued = [t for t in self.trades.values() if t.status == QUEUED]
        return sorted(queued, key=lambda t: (t.requested_at, _order(t.pk), t.trade_id))

    def queue_position(self, trade_id: str) -> Optional[int]:
        for position, trade in enumerate(self.queue(), start=1):
            if trade.trade_id == trade_id:
                return position
        return None

    def active_lanes(self) -> list[Lane]:
        return sorted((l for l in self.lanes.values() if l.status == ACTIVE), key=_fifo_key)

    def open_trade_of(self, lane_id: str) -> Optional[Trade]:
        for trade in self.trades.values():
            if trade.status == OPEN and trade.lane_id == lane_id:
                return trade
        return None

    def cool_down_left(self, now: datetime) -> float:
        if self.last_open is None or not self.settings.cool_down_seconds:
            return 0.0
        ready = self.last_open + timedelta(seconds=self.settings.cool_down_seconds)
        return max(0.0, (ready - now).total_seconds())

    # Recording changes.
    def _event(self, kind: str, lane: Optional[Lane], trade_id: Optional[str], **data) -> None:
        self.events.append(Event(kind, lane.lane_id if lane else None, trade_id, data))
        if lane is not None:
            self.dirty_lanes.add(lane.lane_id)


def _order(pk: Optional[int]) -> float:
    return pk if pk is not None else math.inf


def _fifo_key(lane: Lane):
    return (lane.created_at, _order(lane.pk), lane.lane_id)


# --- Queue and opening ----------------------------------------------------------------------


def expire_queue(book: Book, now: datetime) -> None:
    for trade in book.queue():
        if trade.expires_at is not None and now >= trade.expires_at:
            trade.status = EXPIRED
            trade.settled_at = now
            book.dirty_trades.add(trade.trade_id)


def serve_queue(book: Book, now: datetime) -> None:
    """Expire what waited too long, then open the oldest requests while slots and cool-down allow.

    A disabled account opens nothing: its queued requests wait and expire.
    """
    expire_queue(book, now)
    if not book.account.enabled:
        return
    for trade in book.queue():
        if len(book.open_trades()) >= book.slots() or book.cool_down_left(now) > 0:
            break
        _open(book, trade, now)


def choose_lane(book: Book, symbol: str) -> Optional[Lane]:
    """The idle active lane a new trade joins, by the account's strategy (SPEC §4)."""
    idle = [l for l in book.active_lanes() if book.open_trade_of(l.lane_id) is None]
    if not idle:
        return None
    strategy = book.settings.lane_assignment_strategy
    if strategy == ROUND_ROBIN:
        return min(idle, key=lambda l: (l.last_assigned_at or l.created_at, _order(l.pk), l.lane_id))
    if strategy == SYMBOL_PRIORITY:
        same_symbol = [l for l in idle if l.symbol == symbol]
        return min(same_symbol or idle, key=_fifo_key)
    return min(idle, key=_fifo_key)


def _open(book: Book, trade: Trade, now: datetime) -> None:
    account = book.account
    lane = None
    if book.legacy():
        kind = LEGACY
        level = account.legacy_losses if account.martingale_enabled else 0
        amount = stake_at(account.base_amount, account.multiplier, level)
    elif account.martingale_enabled and (lane := choose_lane(book, trade.symbol)) is not None:
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
    book.last_open = now
    book.dirty_trades.add(trade.trade_id)
    if lane is not None:
        trade.lane_id = lane.lane_id
        lane.trade_ids.append(trade.trade_id)
        lane.total_invested += amount
        lane.total_potential_payout += trade.expected_payout
        lane.last_assigned_at = now
        book._event("trade_assigned", lane, trade.trade_id, level=level, amount=str(amount))


# --- Operations -----------------------------------------------------------------------------


def same_request(trade: Trade, request: Request) -> bool:
    """Whether a repeated request (same trade_id) asks for the same trade (SPEC §9: 200 vs 409)."""
    return (
        trade.symbol == request.symbol
        and trade.direction == request.direction
        and trade.requested_payout == request.expected_payout
        and trade.max_wait_seconds == request.max_wait_seconds
    )


def request_trade(book: Book, request: Request, now: datetime) -> Trade:
    """A new trade request: open it now, queue it, or refuse it (SPEC §3)."""
    if not book.account.enabled:
        raise AccountDisabled(f"account {book.account.name} is disabled")
    expire_queue(book, now)
    trade = Trade(
        trade_id=request.trade_id,
        symbol=request.symbol,
        direction=request.direction,
        requested_payout=request.expected_payout,
        max_wait_seconds=request.max_wait_seconds,
        requested_at=now,
        expires_at=now + timedelta(seconds=request.max_wait_seconds),
    )
    can_open = not book.queue() and len(book.open_trades()) < book.slots() and book.cool_down_left(now) == 0
    if not can_open and request.max_wait_seconds == 0:
        retry_after = max(1, math.ceil(book.cool_down_left(now)))
        raise Busy("no slot is free now and max_wait_seconds is 0", retry_after)
    book.trades[trade.trade_id] = trade
    book.dirty_trades.add(trade.trade_id)
    if can_open:
        _open(book, trade, now)
    serve_queue(book, now)
    return trade


def settle_trade(
    book: Book, trade_id: str, result: str, payout: Optional[Decimal], now: datetime, new_lane_id: Callable[[], str]
) -> bool:
    """Record a win, loss or draw and move the lanes on (SPEC §5). False when it was a repeat."""
    trade = book.trades[trade_id]
    if trade.status in SETTLED:
        if RESULT_STATUS[result] == trade.status and (payout is None or payout == trade.payout):
            serve_queue(book, now)
            return False
        raise Conflict(f"trade {trade_id} is already settled as {trade.status}")
    if trade.status != OPEN:
        raise Conflict(f"trade {trade_id} is {trade.status}: only an open trade takes a result")
    stake = trade.amount
    if result == WIN:
        trade.payout = payout if payout is not None else trade.expected_payout
        trade.profit = trade.payout - stake
    elif result == LOSS:
        trade.payout = payout if payout is not None else ZERO
        trade.profit = -stake
    else:
        trade.payout = payout if payout is not None else stake
        trade.profit = ZERO
    trade.status = RESULT_STATUS[result]
    trade.settled_at = now
    book.dirty_trades.add(trade_id)

    if trade.kind == LEGACY or book.legacy_only:
        _settle_legacy(book, result)
    elif trade.kind == BASE:
        if result == LOSS and book.account.martingale_enabled:
            _maybe_create_lane(book, trade, now, new_lane_id)
    else:
        lane = book.lanes.get(trade.lane_id)
        if lane is not None and lane.status == ACTIVE:  # else force-completed meanwhile: trade only
            _settle_lane(book, lane, trade, result, now)
    serve_queue(book, now)
    return True


def _settle_legacy(book: Book, result: str) -> None:
    account = book.account
    if not account.martingale_enabled or result == DRAW:
        return
    before = account.legacy_losses
    if result == WIN:
        account.legacy_losses = 0
    else:
        account.legacy_losses = before + 1 if before + 1 <= account.max_level else 0
    book.account_dirty = book.account_dirty or account.legacy_losses != before


def _maybe_create_lane(book: Book, trade: Trade, now: datetime, new_lane_id: Callable[[], str]) -> None:
    settings, account = book.settings, book.account
    active = len(book.active_lanes())
    if not settings.auto_create_lanes:
        reason = "auto_create_lanes is off"
    elif active >= settings.max_concurrent_lanes:
        reason = f"max_concurrent_lanes reached ({active} of {settings.max_concurrent_lanes} active)"
    elif book.lanes_created_today >= settings.max_daily_lanes:
        reason = f"max_daily_lanes reached ({book.lanes_created_today} of {settings.max_daily_lanes} today)"
    else:
        reason = None
    if reason is not None:
        book._event("not_created", None, trade.trade_id, reason=reason, symbol=trade.symbol)
        return
    book._new_lanes += 1
    lane = Lane(
        lane_id=new_lane_id(),
        symbol=trade.symbol,
        base_amount=trade.amount,
        current_level=1,
        current_amount=stake_at(trade.amount, account.multiplier, 1),
        multiplier=account.multiplier,
        max_level=account.max_level,
        total_invested=trade.amount,
        total_potential_payout=trade.expected_payout,
        trade_ids=[trade.trade_id],
        created_at=now,
    )
    book.lanes[lane.lane_id] = lane
    book.lanes_created_today += 1
    book._event("created", lane, trade.trade_id, level=1, amount=str(lane.current_amount), base_amount=str(trade.amount))


def _settle_lane(book: Book, lane: Lane, trade: Trade, result: str, now: datetime) -> None:
    level = trade.level
    if result == WIN:
        lane.status, lane.outcome, lane.completed_at = COMPLETED, RECOVERED, now
        book._event("recovered", lane, trade.trade_id, level=level, profit=str(trade.profit))
    elif result == DRAW:
        book._event("draw", lane, trade.trade_id, level=level)
    elif level >= lane.max_level:
        lane.status, lane.outcome, lane.completed_at = COMPLETED, EXHAUSTED, now
        book._event("exhausted", lane, trade.trade_id, level=level, total_invested=str(lane.total_invested))
    else:
        lane.current_level = level + 1
        lane.current_amount = stake_at(lane.base_amount, lane.multiplier, lane.current_level)
        book._event("advanced", lane, trade.trade_id, level=lane.current_level, amount=str(lane.current_amount))


def cancel_trade(book: Book, trade_id: str, now: datetime) -> bool:
    """Cancel a queued or open trade (SPEC §5). False when it was already cancelled."""
    trade = book.trades[trade_id]
    if trade.status == CANCELLED:
        serve_queue(book, now)
        return False
    if trade.status not in (QUEUED, OPEN):
        raise Conflict(f"trade {trade_id} is {trade.status}: only a queued or open trade can be cancelled")
    was_open = trade.status == OPEN
    trade.status = CANCELLED
    trade.settled_at = now
    trade.profit = ZERO if was_open else None
    book.dirty_trades.add(trade_id)
    lane = book.lanes.get(trade.lane_id) if was_open and trade.kind == LANE else None
    if lane is not None and lane.status == ACTIVE:
        lane.trade_ids.remove(trade_id)
        lane.total_invested -= trade.amount
        lane.total_potential_payout -= trade.expected_payout
        book._event("trade_cancelled", lane, trade_id, level=trade.level, amount=str(trade.amount))
    serve_queue(book, now)
    return True


def complete_lane(book: Book, lane_id: str, status: str, now: datetime) -> Lane:
    """End an active lane by hand: status ``completed`` or ``cancelled`` (SPEC §7)."""
    lane = book.lanes.get(lane_id)
    if lane is None or lane.status != ACTIVE:
        raise Conflict(f"lane {lane_id} is already finished")
    if status not in (COMPLETED, CANCELLED):
        raise ValueError(f"status must be completed or cancelled, not {status!r}")
    lane.status = status
    lane.outcome = FORCE_COMPLETED if status == COMPLETED else CANCELLED
    lane.completed_at = now
    open_trade = book.open_trade_of(lane_id)
    book._event(
        lane.outcome, lane, open_trade.trade_id if open_trade else None, level=lane.current_level, status=status
    )
    serve_queue(book, now)
    return lane
