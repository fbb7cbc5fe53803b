"""Replay a stream of signals through the engine (SPEC §12) and measure what happened.

``Simulation`` keeps one account's state in memory exactly as ``lanes.loading`` reads it from the
database before every change (its active lanes, its live trades, its unended locks, the lanes
created and the profit made today, the lanes exhausted within the window) and calls the engine
operations the services call: ``engine.request_trade`` for a row's request (``max_wait_seconds``
0) and ``engine.settle_trade`` for its result. What a change finished (settled trades, completed
lanes, ended locks) is dropped afterwards, as the loader would not read it again, so memory stays
flat however long the stream. Every rule is the engine's; this module only keeps the clock, the
state between changes and the tallies.

At the same instant results come before requests, each in file order. A request the engine
refuses (busy, account locked, account disabled) is ``skipped``.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Iterable, Optional

from lanes import engine
from lanes.loading import today_end
from lanes.serializers import money

from .configs import Setting
from .streams import Signal, StreamError

ZERO = engine.ZERO
TICK = 8192  # rows between two progress reports


@dataclass
class Level:
    trades: int = 0
    wins: int = 0
    losses: int = 0
    draws: int = 0
    net_profit: Decimal = ZERO
    lanes_recovered: int = 0
    lanes_exhausted: int = 0


class Curve:
    """The equity curve and its drawdown below the running peak, thinned to at most ``2 × limit``
    points however long the stream (every other point is dropped when it fills), for plots."""

    def __init__(self, limit: int = 2000):
        self.limit, self.stride, self.count = limit, 1, 0
        self.points: list[tuple[float, float, float]] = []

    def add(self, at: datetime, value: Decimal, drawdown: Decimal) -> None:
        if self.count % self.stride == 0:
            self.points.append((at.timestamp(), float(value), float(drawdown)))
            if len(self.points) >= 2 * self.limit:
                self.points = self.points[::2]
                self.stride *= 2
        self.count += 1


@dataclass
class Result:
    setting: Setting
    trades: int = 0
    wins: int = 0
    losses: int = 0
    draws: int = 0
    skipped: int = 0
    skipped_by: dict[str, int] = field(default_factory=dict)
    net_profit: Decimal = ZERO
    max_drawdown: Decimal = ZERO
    longest_under_water_seconds: int = 0
    lanes_created: int = 0
    lanes_recovered: int = 0
    lanes_recovered_at_loss: int = 0
    lanes_exhausted: int = 0
    lanes_not_created: int = 0
    locks: int = 0
    longest_losing_run: int = 0
    peak_at_risk: Decimal = ZERO
    bankroll_needed: Decimal = ZERO
    by_level: dict[int, Level] = field(default_factory=dict)
    ruined: bool = False
    rows: int = 0
    curve: Optional[Curve] = None
    monte_carlo: Optional[dict[str, Any]] = None

    @property
    def profit_per_drawdown(self) -> Optional[Decimal]:
        """net_profit / max_drawdown (None without a drawdown)."""
        if not self.max_drawdown:
            return None
        return (self.net_profit / self.max_drawdown).quantize(Decimal("0.0001"))

    def as_json(self) -> dict[str, Any]:
        answer = {
            "setting": self.setting.as_json(),
            "trades": self.trades,
            "wins": self.wins,
            "losses": self.losses,
            "draws": self.draws,
            "skipped": self.skipped,
            "skipped_by": dict(sorted(self.skipped_by.items())),
            "net_profit": money(self.net_profit),
            "max_drawdown": money(self.max_drawdown),
            "profit_per_drawdown": None if self.profit_per_drawdown is None else str(self.profit_per_drawdown),
            "longest_under_water_seconds": self.longest_under_water_seconds,
            "lanes_created": self.lanes_created,
            "lanes_recovered": self.lanes_recovered,
            "lanes_recovered_at_loss": self.lanes_recovered_at_loss,
            "lanes_exhausted": self.lanes_exhausted,
            "lanes_not_created": self.lanes_not_created,
            "locks": self.locks,
            "longest_losing_run": self.longest_losing_run,
            "peak_at_risk": money(self.peak_at_risk),
            "bankroll_needed": money(self.bankroll_needed),
            "by_level": [
                {
                    "level": level,
                    "trades": row.trades,
                    "wins": row.wins,
                    "losses": row.losses,
                    "draws": row.draws,
                    "net_profit": money(row.net_profit),
                    "lanes_recovered": row.lanes_recovered,
                    "lanes_exhausted": row.lanes_exhausted,
                }
                for level, row in sorted(self.by_level.items())
            ],
        }
        if self.monte_carlo is not None:
            answer.update(self.monte_carlo)
        return answer


class Simulation:
    """One account on one setting, fed signals in time order (``feed``), then ``finish``ed."""

    def __init__(self, setting: Setting, *, bankroll: Optional[Decimal] = None, curve: bool = False, record: bool = False):
        self.state = engine.AccountState(account=replace(setting.account), settings=setting.settings, lanes={}, trades={})
        self.result = Result(setting, curve=Curve() if curve else None)
        self.pending: list[tuple[datetime, int, engine.Trade, Signal]] = []  # results to come, by time then row
        self.bankroll = bankroll
        self.balance = ZERO if bankroll is None else bankroll
        self.lowest = self.balance
        self.start_balance = self.balance
        self.ids = 0
        self.spans: dict[int, timedelta] = {}  # expiry seconds → timedelta, made once each
        self.day_end: Optional[datetime] = None
        self.day_over: Optional[datetime] = None
        self.exhausted_at: deque[datetime] = deque()
        self.window = timedelta(hours=setting.settings.exhausted_window_hours)
        # Cumulative profit and its drawdown, the losing runs (the engine's), and since when the
        # profit has been below its peak.
        self.equity = engine.Equity()
        self.losing = engine.LosingRun()
        self.peak_at: Optional[datetime] = None
        self.under = False
        self.last_at: Optional[datetime] = None
        self.previous: Optional[datetime] = None
        # With ``record``, every lane, settled trade, lock and event is kept (tests compare them
        # with the live service's).
        self.record = record
        self.lanes_seen: list[engine.Lane] = []
        self.trades_settled: list[engine.Trade] = []
        self.locks_seen: list[engine.Lock] = []
        self.events_seen: list[engine.Event] = []

    # --- The clock and the state between changes (what lanes.loading reads) ---------------------

    def _new_id(self) -> str:
        self.ids += 1
        return f"sim{self.ids:010d}"

    def _load(self, now: datetime) -> engine.AccountState:
        state = self.state
        if self.day_over is None or now >= self.day_over:
            self.day_end = state.day_end = today_end(now)
            # The same instant in the stream's time zone: comparing datetimes of one tzinfo object
            # is ten times faster than of two (asked twice per row).
            self.day_over = self.day_end.astimezone(now.tzinfo)
            state.lanes_created_today = 0
            state.profit_today = ZERO
        if state.locks:
            state.locks = [lock for lock in state.locks if lock.active(now)]
        exhausted = self.exhausted_at
        if exhausted:
            since = now - self.window
            while exhausted and exhausted[0] < since:
                exhausted.popleft()
        state.exhausted_in_window = len(exhausted)
        return state

    def _saved(self, now: datetime, *, opened: Optional[engine.Trade] = None) -> None:
        """What the service would write: tally the events, give new lanes their row id, and drop
        what the loader would not read again. ``opened``: the trade the change opened."""
        state, result = self.state, self.result
        # Exposure (SPEC §11) rises only when a base or legacy trade opens or a lane is created: a
        # lane trade's stake is already in its lane's remaining risk, a result takes a stake out,
        # and a lane's remaining risk only falls as it advances.
        rises = opened is not None and opened.kind != engine.LANE
        events = state.events
        if events:
            rises = self._tally_events(now, events) or rises
        if state.dirty_lanes:
            for lane_id in state.dirty_lanes:
                lane = state.lanes[lane_id]
                if lane.pk is None:
                    self.ids += 1
                    lane.pk = self.ids
                    if self.record:
                        self.lanes_seen.append(lane)
                if lane.status != engine.ACTIVE:
                    del state.lanes[lane_id]
            state.dirty_lanes.clear()
        if state.notes:
            state.notes.clear()
        state.dirty_trades.clear()
        if state.dirty_locks:
            state.dirty_locks.clear()
        if state.late_lane_profits:
            state.late_lane_profits.clear()
        state.account_dirty = False
        if rises:
            at_risk = state.exposure()
            if at_risk > result.peak_at_risk:
                result.peak_at_risk = at_risk

    def _tally_events(self, now: datetime, events: list[engine.Event]) -> bool:
        """Count a change's events (and clear them); True when a lane was created."""
        state, result = self.state, self.result
        created = False
        if self.record:
            self.events_seen += events
        for event in events:
            kind = event.kind
            if kind == "created":
                result.lanes_created += 1
                created = True
            elif kind == "not_created":
                result.lanes_not_created += 1
            elif kind in ("recovered", "exhausted"):
                lane = state.lanes[event.lane_id]
                row = self._level(event.data["level"])
                if kind == "recovered":
                    result.lanes_recovered += 1
                    row.lanes_recovered += 1
                    if lane.net_profit < 0:
                        result.lanes_recovered_at_loss += 1
                else:
                    result.lanes_exhausted += 1
                    row.lanes_exhausted += 1
                    self.exhausted_at.append(now)
            elif kind == "locked":
                result.locks += 1
                if self.record:
                    self.locks_seen += [lock for lock in state.locks if lock.lock_id == event.data["lock_id"]]
        events.clear()
        return created

    def _level(self, level: int) -> Level:
        row = self.result.by_level.get(level)
        if row is None:
            row = self.result.by_level[level] = Level()
        return row

    # --- Rows -----------------------------------------------------------------------------------

    def feed(self, signal: Signal) -> None:
        at = signal.at
        if self.previous is not None and at < self.previous:
            raise StreamError(f"row {signal.line}: timestamp {at.isoformat()} is before the previous row's; rows must be in time order")
        self.previous = at
        if self.peak_at is None:
            self.peak_at = at
        pending = self.pending
        while pending and pending[0][0] <= at:
            self._settle(*heapq.heappop(pending))
        if not self.result.ruined:
            self._request(signal)

    def finish(self) -> Result:
        pending = self.pending
        while pending:
            self._settle(*heapq.heappop(pending))
        result = self.result
        if self.under:
            result.longest_under_water_seconds = max(
                result.longest_under_water_seconds, int((self.last_at - self.peak_at).total_seconds())
            )
        result.bankroll_needed = self.start_balance - self.lowest
        return result

    def _request(self, signal: Signal) -> None:
        result = self.result
        result.rows += 1
        now = signal.at
        state = self._load(now)
        trade_id = f"r{signal.line}"
        try:
            trade = engine.request_trade(state, engine.Request(trade_id=trade_id, symbol=signal.symbol, max_wait_seconds=0), now)
        except engine.Refused as refused:
            result.skipped += 1
            result.skipped_by[refused.code] = result.skipped_by.get(refused.code, 0) + 1
            return
        amount = trade.amount
        if self.bankroll is not None and self.balance < amount:
            result.ruined = True
        self.balance -= amount
        if self.balance < self.lowest:
            self.lowest = self.balance
        result.trades += 1
        self._level(trade.level).trades += 1
        self.ids += 1
        trade.pk = self.ids
        self._saved(now, opened=trade)
        expiry = signal.expiry_seconds
        if expiry:
            span = self.spans.get(expiry)
            if span is None:
                span = self.spans[expiry] = timedelta(seconds=expiry)
            settle_at = now + span
        else:
            settle_at = now
        heapq.heappush(self.pending, (settle_at, signal.line, trade, signal))

    def _settle(self, now: datetime, line: int, trade: engine.Trade, signal: Signal) -> None:
        state = self._load(now)
        payout = signal.payout
        if signal.payout_per_stake is not None:
            payout = engine.round2(trade.amount * signal.payout_per_stake)
            try:
                engine.settled_payout(signal.result, payout, trade)
            except ValueError:
                payout = None  # a share of a stake this small rounds out of bounds: the §5 default
        try:
            engine.settle_trade(state, trade.trade_id, signal.result, payout, now, self._new_id)
        except ValueError as exc:
            raise StreamError(f"row {line}: {exc}") from None
        del state.trades[trade.trade_id]
        self._saved(now)
        self._tally(trade, now)
        if self.record:
            self.trades_settled.append(trade)

    def _tally(self, trade: engine.Trade, now: datetime) -> None:
        result = self.result
        profit = trade.profit
        self.balance += trade.payout
        row = self._level(trade.level)
        row.net_profit += profit
        status = trade.status
        if status == engine.WON:
            result.wins += 1
            row.wins += 1
        elif status == engine.LOST:
            result.losses += 1
            row.losses += 1
        else:
            result.draws += 1
            row.draws += 1
        self.losing.add(status)
        result.longest_losing_run = self.losing.longest
        equity = self.equity
        if equity.add(profit):
            if self.under:
                under = int((now - self.peak_at).total_seconds())
                if under > result.longest_under_water_seconds:
                    result.longest_under_water_seconds = under
                self.under = False
            self.peak_at = now
        else:
            self.under = True
        total = result.net_profit = equity.total
        result.max_drawdown = equity.max_drawdown
        self.last_at = now
        if result.curve is not None:
            result.curve.add(now, total, equity.peak - total)


def simulate(
    setting: Setting,
    signals: Iterable[Signal],
    *,
    bankroll: Optional[Decimal] = None,
    curve: bool = False,
    stop_at_ruin: bool = False,
    progress: Optional[Callable[[int], None]] = None,
) -> Result:
    """Run one setting over a stream; ``progress(n)`` is told every few thousand rows."""
    simulation = Simulation(setting, bankroll=bankroll, curve=curve)
    feed = simulation.feed
    count = 0
    for signal in signals:
        feed(signal)
        count += 1
        if count == TICK:
            if progress is not None:
                progress(count)
            count = 0
            if stop_at_ruin and simulation.result.ruined:
                break
    if progress is not None and count:
        progress(count)
    return simulation.finish()


def wilson_interval(hits: int, runs: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of a share ``hits / runs``."""
    if runs == 0:
        return (0.0, 1.0)
    share = hits / runs
    denominator = 1 + z * z / runs
    centre = (share + z * z / (2 * runs)) / denominator
    half = z * math.sqrt(share * (1 - share) / runs + z * z / (4 * runs * runs)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))
