"""Long random runs of one account through the pure engine (SPEC §3–7), driven as the services
drive it: every call is one transaction on the state a service loads (the live trades, the active
lanes, the trade the call names), only what the engine marked as changed is written back, and a
refused call writes nothing. A person changes the account and its trading settings mid-run, the
bot sends extreme amounts and payouts at their bounds, and a model of the queue and of the
assignment of trades, plus the invariants, are checked after every step."""
import copy
import dataclasses
import itertools
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Optional

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lanes import engine
from lanes.engine import (
    ACTIVE,
    BASE,
    DRAW,
    EXPIRED,
    LANE,
    LEGACY,
    LOSS,
    OPEN,
    QUEUED,
    SETTLED,
    WIN,
    Account,
    AccountState,
    Request,
    Settings,
    Trade,
)
from lanes.ranges import MONEY_MAX, InvalidInput

START = datetime(2025, 3, 3, 23, 50, tzinfo=timezone.utc)
SYMBOLS = ("EURUSD", "GBPUSD", "BTC/USD")
FINAL = ("won", "lost", "draw", "cancelled", "expired")
ZERO, CENT = Decimal("0.00"), Decimal("0.01")
MAX_CENTS = int(MONEY_MAX * 100)
REFUSED = "refused"
LARGEST = "largest"
FEWER = "fewer than active"
LOWER = "below the legacy losses"
ROOM, OVER_ROOM = "room", "over room"
TRADE_MONEY = ("amount", "requested_payout", "expected_payout", "payout", "profit")
LANE_MONEY = ("base_amount", "current_amount", "total_invested", "total_potential_payout")
PAYOUT_CHOICES = ("default", "zero", "below_stake", "stake", "above_stake", "expected", "max", "any")


def cents(low: int, high: int):
    return st.integers(low, high).map(lambda n: Decimal(n).scaleb(-2))


def to_cents(value: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 250
        return value.quantize(CENT, ROUND_HALF_UP)


def exact_stake(base: Decimal, multiplier: Decimal, level: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 250
        return to_cents(base * multiplier**level)


def default_payout(stake: Decimal, payout_rate: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 250
        return to_cents(stake * (1 + payout_rate))


def fits(amount: Optional[Decimal]) -> bool:
    return amount is None or -MONEY_MAX <= amount <= MONEY_MAX


def number(item_id: str) -> int:
    return int(item_id[1:])


def largest_base(multiplier: Decimal, max_level: int, payout_rate: Decimal) -> Optional[Decimal]:
    """The largest base amount whose ladder the configuration check accepts, or None."""

    def accepted(n: int) -> bool:
        return engine.ladder_problem(Decimal(n).scaleb(-2), multiplier, max_level, payout_rate) is None

    if not accepted(1):
        return None
    low, high = 1, MAX_CENTS
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if accepted(middle) else (low, middle - 1)
    return Decimal(low).scaleb(-2)


def payout_allowed(result: str, payout: Optional[Decimal], stake: Decimal) -> bool:
    """SPEC §5: a win returns more than the stake, a loss 0 up to less than it, a draw the stake."""
    if payout is None:
        return True
    if result == WIN:
        return payout > stake
    if result == LOSS:
        return ZERO <= payout < stake
    return payout == stake


base_amounts = st.one_of(
    st.sampled_from([CENT, Decimal("0.10"), Decimal("2.50")]),
    cents(1, 100_000),
    cents(1, MAX_CENTS),
    st.just(LARGEST),
)
multipliers = st.one_of(
    st.sampled_from([Decimal("1.01"), Decimal("2.00"), Decimal("999.99")]), cents(101, 300), cents(101, 99_999)
)
max_levels = st.integers(1, 3) | st.integers(1, 20)
payout_rates = st.sampled_from([Decimal("0.0100"), Decimal("0.8500"), Decimal("10.0000")]) | st.integers(
    100, 100_000
).map(lambda n: Decimal(n).scaleb(-4))
strategies = st.sampled_from([engine.FIFO, engine.ROUND_ROBIN, engine.SYMBOL_PRIORITY])
cool_downs = st.one_of(st.just(0), st.just(0), st.integers(1, 30), st.integers(31, 3_600))

accounts = st.builds(
    Account,
    name=st.just("acct"),
    base_amount=base_amounts,
    multiplier=multipliers,
    max_level=max_levels,
    payout_rate=payout_rates,
    martingale_enabled=st.sampled_from([True, True, True, True, False]),
    enhanced=st.sampled_from([True, True, True, True, False]),
)

trading_settings = st.builds(
    Settings,
    concurrent_trading_enabled=st.booleans(),
    max_concurrent_lanes=st.sampled_from([1, 2, 3]) | st.integers(1, 10),
    lane_assignment_strategy=strategies,
    auto_create_lanes=st.sampled_from([True, True, True, False]),
    cool_down_seconds=st.sampled_from([0, 0, 0, 1, 5, 30]),
    max_daily_lanes=st.integers(1, 50),
)

clock_moves = st.one_of(st.integers(0, 5), st.integers(0, 30), st.integers(30, 120), st.integers(3_600, 30 * 3_600))
expected_payouts = st.one_of(
    st.none(),
    st.none(),
    st.none(),
    st.sampled_from([CENT, Decimal("1.00"), MONEY_MAX - CENT, MONEY_MAX]),
    cents(1, 500_000),
    cents(1, MAX_CENTS),
)
any_payouts = cents(0, 500_000) | cents(0, MAX_CENTS)
max_waits = st.sampled_from([0, 1, 60]) | st.integers(0, 120)


def maybe(strategy):
    return st.none() | strategy


@dataclass
class LaneView:
    """An idle active lane as a trade about to open sees it."""

    lane_id: str
    symbol: str
    created_at: datetime
    last_assigned_at: Optional[datetime]
    amount: Decimal
    level: int
    invested: Decimal
    potential: Decimal
    count: int

    @classmethod
    def of(cls, lane) -> "LaneView":
        return cls(
            lane.lane_id, lane.symbol, lane.created_at, lane.last_assigned_at, lane.current_amount,
            lane.current_level, lane.total_invested, lane.total_potential_payout, len(lane.trade_ids),
        )

    def can_take(self, amount: Decimal, expected: Decimal) -> bool:
        return (
            self.count < engine.MAX_LANE_TRADES
            and fits(self.invested + amount)
            and fits(self.potential + expected)
        )


def by_strategy(views, strategy: str, symbol: str) -> list[LaneView]:
    """SPEC §4: fifo oldest first; round_robin least recently given a trade; symbol_priority same symbol first."""
    oldest = sorted(views, key=lambda v: (v.created_at, number(v.lane_id)))
    if strategy == engine.ROUND_ROBIN:
        return sorted(views, key=lambda v: (v.last_assigned_at or v.created_at, number(v.lane_id)))
    if strategy == engine.SYMBOL_PRIORITY:
        return [v for v in oldest if v.symbol == symbol] + [v for v in oldest if v.symbol != symbol]
    return oldest


def queue_order(trade: Trade):
    return (trade.requested_at, number(trade.trade_id))


class EngineMachine(RuleBasedStateMachine):
    """One account: ``trades``, ``lanes`` and ``account`` are what the database holds."""

    @initialize(account=accounts, trading=trading_settings)
    def start(self, account, trading):
        if account.base_amount == LARGEST or engine.ladder_problem(
            account.base_amount, account.multiplier, account.max_level, account.payout_rate
        ):
            while (base := largest_base(account.multiplier, account.max_level, account.payout_rate)) is None:
                account.max_level -= 1
            account.base_amount = base
        self.account = account
        self.settings = trading
        self.now = START
        self.trades: dict[str, Trade] = {}
        self.lanes: dict[str, engine.Lane] = {}
        self.ids = {status: set() for status in (QUEUED, OPEN, *FINAL)}
        self.active: set[str] = set()
        self.last_open: Optional[datetime] = None
        self.created_per_day = Counter()
        self.copied: dict[str, tuple[Decimal, int]] = {}
        self.final: dict[str, Trade] = {}
        self.legacy_k = 0
        self.last_opened_number = 0
        self.events: list[engine.Event] = []
        self.touched_trades: set[str] = set()
        self.touched_lanes: set[str] = set()
        self.trade_numbers = itertools.count(1)
        self.lane_numbers = itertools.count(1)
        self.configuration_changed()

    # --- the service's transaction -----------------------------------------------------------

    def load(self, named=()) -> AccountState:
        """The state a service loads for one call: live trades, active lanes, the named trades."""
        ids = sorted(self.ids[QUEUED] | self.ids[OPEN] | set(named))
        return AccountState(
            account=copy.copy(self.account),
            settings=self.settings,
            lanes={i: dataclasses.replace(self.lanes[i], trade_ids=list(self.lanes[i].trade_ids)) for i in sorted(self.active)},
            trades={i: copy.copy(self.trades[i]) for i in ids},
            last_open=self.last_open,
            lanes_created_today=self.created_per_day[self.now.date()],
        )

    def call(self, operation, *named, legacy_k=None):
        """One service call: load, run, write back what changed, check the queue and the openings.
        A refusal propagates and writes nothing."""
        before, state = self.load(named), self.load(named)
        last_open = self.last_open
        answer = operation(state)
        self.check_only_marked_changes(before, state)
        self.commit(state)
        if legacy_k is not None:
            self.legacy_k = legacy_k
        self.check_created_lanes(state)
        self.check_openings(before, state, last_open)
        return answer

    def refused(self, operation, *named, error=engine.Refused):
        """A call the engine must refuse without changing anything."""
        before, state = self.load(named), self.load(named)
        with pytest.raises(error) as refusal:
            operation(state)
        assert state == before
        return refusal.value

    def commit(self, state: AccountState):
        """Write back what the engine marked, as services._save does."""
        for lane_id in state.dirty_lanes:
            lane = state.lanes[lane_id]
            lane.pk = number(lane_id)
            self.lanes[lane_id] = lane
            if lane.status == ACTIVE:
                self.active.add(lane_id)
            else:
                self.active.discard(lane_id)
            self.touched_lanes.add(lane_id)
        for trade_id in state.dirty_trades:
            trade = state.trades[trade_id]
            trade.pk = number(trade_id)
            if trade_id in self.trades:
                self.ids[self.trades[trade_id].status].discard(trade_id)
            self.ids[trade.status].add(trade_id)
            self.trades[trade_id] = trade
            self.touched_trades.add(trade_id)
            if trade.opened_at is not None and (self.last_open is None or trade.opened_at > self.last_open):
                self.last_open = trade.opened_at
        if state.account_dirty:
            self.account.legacy_losses = state.account.legacy_losses
        self.events = state.events

    def new_lane_id(self) -> str:
        return f"L{next(self.lane_numbers):06d}"

    def configuration_changed(self):
        """Limits lowered later bind only new openings and new lanes: what exists may stay above them."""
        self.open_cap = max(self.slots(), len(self.ids[OPEN]))
        self.active_cap = max(self.settings.max_concurrent_lanes, len(self.active))

    # --- the model ---------------------------------------------------------------------------

    def slots(self) -> int:
        if not self.account.enhanced or not self.settings.concurrent_trading_enabled:
            return 1
        return self.settings.max_concurrent_lanes

    def cooling(self, last_open: Optional[datetime]) -> bool:
        cool_down = timedelta(seconds=self.settings.cool_down_seconds)
        return last_open is not None and bool(cool_down) and self.now < last_open + cool_down

    def assignment(self, views: dict[str, LaneView], trade: Trade, k: int):
        """SPEC §4 and §6: (kind, lane_id, level, stake) of a trade opening now, or REFUSED; and k after.

        Lanes full by their trade list or invested total are passed over; the first other lane
        whose potential payout cannot take a requested expected payout refuses the trade, while a
        default expected payout that does not fit passes that lane over too."""
        account = self.account
        if not account.enhanced:
            level = k if account.martingale_enabled and k <= account.max_level else 0
            stake = exact_stake(account.base_amount, account.multiplier, level)
            return (LEGACY, None, level, stake), (level if account.martingale_enabled else k)
        base = (BASE, None, 0, account.base_amount)
        if not account.martingale_enabled:
            return base, k
        for view in by_strategy(views.values(), self.settings.lane_assignment_strategy, trade.symbol):
            stake = view.amount
            if view.count >= engine.MAX_LANE_TRADES or not fits(view.invested + stake):
                continue  # full whatever the payout: passed over
            expected = trade.requested_payout
            if view.can_take(stake, default_payout(stake, account.payout_rate) if expected is None else expected):
                return (LANE, view.lane_id, view.level, stake), k
            if expected is not None:
                return REFUSED, k
        return base, k

    def walk(self, views: dict[str, LaneView], queue: list[Trade], open_count: int, last_open, k: int):
        """SPEC §3: the oldest requests open while a slot is free and the cool-down has passed; one
        that cannot be recorded is refused. Returns each attempted trade's outcome and k after."""
        outcomes = {}
        if not self.account.enabled:
            return outcomes, k
        for trade in queue:
            if open_count >= self.slots() or self.cooling(last_open):
                break
            outcome, k = self.assignment(views, trade, k)
            outcomes[trade.trade_id] = outcome
            if outcome != REFUSED:
                open_count, last_open = open_count + 1, self.now
                views.pop(outcome[1], None)
        return outcomes, k

    def idle_views(self, state: AccountState) -> dict[str, LaneView]:
        busy = {t.lane_id for t in state.open_trades()}
        return {l.lane_id: LaneView.of(l) for l in state.active_lanes() if l.lane_id not in busy}

    def views_before_openings(self, before, state, opened) -> dict[str, LaneView]:
        """The idle lanes as the first opening of the call saw them: after its other changes,
        without the trades it opened."""
        joined = {t.lane_id: t for t in opened if t.kind == LANE}
        busy = {t.lane_id for t in state.open_trades()}
        views = {}
        for lane in state.active_lanes():
            trade = joined.get(lane.lane_id)
            if trade is None and lane.lane_id in busy:
                continue
            view = LaneView.of(lane)
            if trade is not None:
                prior = before.lanes.get(lane.lane_id)
                view.last_assigned_at = prior.last_assigned_at if prior else None
                view.invested -= trade.amount
                view.potential -= trade.expected_payout
                view.count -= 1
            views[lane.lane_id] = view
        return views

    # --- checks of one call --------------------------------------------------------------------

    def check_only_marked_changes(self, before: AccountState, state: AccountState):
        """The service writes only what the engine marked: everything it changed must be marked."""
        for trade_id, trade in state.trades.items():
            assert trade_id in state.dirty_trades or before.trades.get(trade_id) == trade
        for lane_id, lane in state.lanes.items():
            assert lane_id in state.dirty_lanes or before.lanes.get(lane_id) == lane
        assert dataclasses.replace(state.account, legacy_losses=before.account.legacy_losses) == before.account
        assert state.account_dirty or state.account == before.account

    def check_created_lanes(self, state: AccountState):
        """SPEC §5: a lane is created in lanes mode only, within the limits in force at the time,
        copying the account's multiplier and max level."""
        for event in state.events:
            if event.kind != "created":
                continue
            lane = self.lanes[event.lane_id]
            assert self.account.enhanced and self.account.martingale_enabled
            assert (lane.multiplier, lane.max_level) == (self.account.multiplier, self.account.max_level)
            assert lane.created_at == self.now
            self.copied[lane.lane_id] = (lane.multiplier, lane.max_level)
            self.created_per_day[self.now.date()] += 1
            assert self.created_per_day[self.now.date()] <= self.settings.max_daily_lanes
            assert len(self.active) <= self.settings.max_concurrent_lanes

    def check_openings(self, before: AccountState, state: AccountState, last_open):
        """The queue was served as the model serves it, and every opening got the model's stake."""
        now, account = self.now, self.account
        was = {trade_id: trade.status for trade_id, trade in before.trades.items()}
        opened = [t for t in state.trades.values() if t.status == OPEN and was.get(t.trade_id) != OPEN]
        unopened = [
            t for t in state.trades.values()
            if t.status == EXPIRED and was.get(t.trade_id) != EXPIRED and now < t.expires_at
        ]
        queued = [t for t in state.trades.values() if t.status == QUEUED]
        assert all(now < t.expires_at for t in queued)
        if queued and account.enabled:
            assert len(state.open_trades()) >= self.slots() or self.cooling(self.last_open)
        for trade in sorted(opened, key=queue_order):
            assert trade.opened_at == now
            expected = trade.requested_payout
            if expected is None:
                expected = default_payout(trade.amount, account.payout_rate)
            assert trade.expected_payout == expected
            assert number(trade.trade_id) > self.last_opened_number
            self.last_opened_number = number(trade.trade_id)
            if trade.kind == LANE:
                lane_events = [e for e in state.events if e.trade_id == trade.trade_id]
                assert [(e.kind, e.lane_id) for e in lane_events] == [("trade_assigned", trade.lane_id)]
                assert self.lanes[trade.lane_id].trade_ids[-1] == trade.trade_id
        if opened:
            assert len(state.open_trades()) <= self.slots()
            assert last_open is None or now - last_open >= timedelta(seconds=self.settings.cool_down_seconds)
            assert len(opened) == 1 or not self.settings.cool_down_seconds
        views = self.views_before_openings(before, state, opened)
        order = sorted(opened + unopened + queued, key=queue_order)
        open_count = len(state.open_trades()) - len(opened)
        outcomes, self.legacy_k = self.walk(views, order, open_count, last_open, self.legacy_k)
        for trade in order:
            outcome = outcomes.get(trade.trade_id)
            if outcome is None:
                assert trade.status == QUEUED
            elif outcome == REFUSED:
                assert trade.status == EXPIRED and trade.settled_at == now
                assert any(trade.trade_id in note for note in state.notes)
            else:
                assert trade.status == OPEN
                assert (trade.kind, trade.lane_id, trade.level, trade.amount) == outcome
        assert account.legacy_losses == self.legacy_k

    # --- helpers -------------------------------------------------------------------------------

    def pick(self, data, statuses) -> Trade:
        ids = sorted(set().union(*(self.ids[s] for s in statuses)))
        return self.trades[data.draw(st.sampled_from(ids))]

    def has(self, *statuses) -> bool:
        return any(self.ids[s] for s in statuses)

    def request_trade(self, symbol, max_wait, expected_payout) -> Optional[Trade]:
        """A bot's request; the stored trade, or None when it was refused (and nothing stored)."""
        trade_id = f"t{next(self.trade_numbers):06d}"
        request = Request(trade_id=trade_id, symbol=symbol, expected_payout=expected_payout, max_wait_seconds=max_wait)
        try:
            self.call(lambda state: engine.request_trade(state, request, self.now))
        except engine.AccountDisabled:
            assert not self.account.enabled
        except engine.Busy as busy:
            self.check_busy(request, busy)
        except InvalidInput as refusal:
            assert set(refusal.errors) == {"expected_payout"}
            self.check_refused_payout(request)
        else:
            trade = self.trades[trade_id]
            assert (trade.requested_at, trade.expires_at) == (self.now, self.now + timedelta(seconds=max_wait))
            assert trade.status == OPEN or (trade.status == QUEUED and max_wait > 0)
            return trade
        assert trade_id not in self.trades
        return None

    def check_busy(self, request: Request, busy: engine.Busy):
        """SPEC §3: max_wait_seconds 0 is refused when the request cannot open at once."""
        state = self.load()
        waiting = [t for t in state.queue() if self.now < t.expires_at]
        cooling = state.cool_down_left(self.now)
        assert request.max_wait_seconds == 0
        assert waiting or len(state.open_trades()) >= self.slots() or self.cooling(self.last_open)
        assert busy.retry_after >= max(1, math.ceil(cooling))

    def check_refused_payout(self, request: Request):
        """The request's own expected payout did not fit the lane the strategy chose (SPEC §5)."""
        state = self.load()
        own = Trade(
            trade_id=request.trade_id, symbol=request.symbol, requested_at=self.now,
            requested_payout=request.expected_payout,
        )
        waiting = [t for t in state.queue() if self.now < t.expires_at]
        outcomes, _ = self.walk(self.idle_views(state), [*waiting, own], len(state.open_trades()), self.last_open, self.legacy_k)
        assert outcomes.get(request.trade_id) == REFUSED

    def payout_for(self, choice: str, trade: Trade, any_payout: Decimal) -> Optional[Decimal]:
        stake = trade.amount
        return {
            "default": None,
            "zero": ZERO,
            "below_stake": stake - CENT,
            "stake": stake,
            "above_stake": min(stake + CENT, MONEY_MAX),
            "expected": trade.expected_payout,
            "max": MONEY_MAX,
            "any": any_payout,
        }[choice]

    def settle(self, trade_id: str, result: str, payout: Optional[Decimal], by_hand: bool):
        """A result for an open trade (SPEC §5), checked against the model."""
        trade_before = self.trades[trade_id]
        stake = trade_before.amount

        def report(state):
            return engine.settle_trade(state, trade_id, result, payout, self.now, self.new_lane_id, by_hand=by_hand)

        if not payout_allowed(result, payout, stake):
            assert set(self.refused(report, trade_id, error=InvalidInput).errors) == {"payout"}
            return
        lane_before = self.lanes.get(trade_before.lane_id) if trade_before.lane_id else None
        lane_was_active = trade_before.lane_id in self.active
        active_before = len(self.active)
        created_today = self.created_per_day[self.now.date()]
        account = self.account
        k = self.legacy_k
        if trade_before.kind == LEGACY and account.martingale_enabled and result != DRAW:
            k = 0 if result == WIN or k + 1 > account.max_level else k + 1

        assert self.call(report, trade_id, legacy_k=k) is True

        trade = self.trades[trade_id]
        assert (trade.status, trade.settled_at) == (engine.RESULT_STATUS[result], self.now)
        if payout is None:
            payout = {WIN: trade_before.expected_payout, LOSS: ZERO, DRAW: stake}[result]
        assert (trade.payout, trade.profit) == (payout, payout - stake)
        own = [e for e in self.events if e.trade_id == trade_id]
        by_hand_events = [e for e in own if e.kind == "settled_by_hand"]
        kinds = [e.kind for e in own if e.kind != "settled_by_hand"]
        assert len(by_hand_events) == by_hand
        if by_hand:
            assert by_hand_events[0].lane_id == (trade.lane_id if lane_was_active else None)
            assert by_hand_events[0].data["result"] == result
        lane = self.lanes.get(trade.lane_id) if trade.lane_id else None

        if trade.kind == LEGACY:
            assert kinds == []
        elif trade.kind == BASE:
            self.check_lane_creation(trade, result, kinds, own, active_before, created_today)
        elif not lane_was_active:
            assert lane is lane_before
            assert kinds == []
        elif result == WIN:
            assert (lane.status, lane.outcome, lane.completed_at) == ("completed", "recovered", self.now)
            assert kinds == ["recovered"]
        elif result == DRAW:
            assert (lane.status, lane.current_level, lane.current_amount) == (
                ACTIVE, lane_before.current_level, lane_before.current_amount,
            )
            assert lane.trade_ids[: len(lane_before.trade_ids)] == lane_before.trade_ids
            assert kinds == ["draw"]
        elif trade.level >= lane.max_level:
            assert (lane.status, lane.outcome, lane.completed_at) == ("completed", "exhausted", self.now)
            assert kinds == ["exhausted"]
        else:
            assert (lane.status, lane.current_level) == (ACTIVE, trade.level + 1)
            assert kinds == ["advanced"]

    def check_lane_creation(self, trade, result, kinds, own, active_before, created_today):
        """SPEC §5: a lost base trade opens a lane unless a limit or the column says no (in lanes mode)."""
        account, trading = self.account, self.settings
        if result != LOSS or not account.martingale_enabled or not account.enhanced:
            assert kinds == []
            return
        reasons = {
            "auto_create_lanes": not trading.auto_create_lanes,
            "max_concurrent_lanes": active_before >= trading.max_concurrent_lanes,
            "max_daily_lanes": created_today >= trading.max_daily_lanes,
            "stake at level": exact_stake(trade.amount, account.multiplier, account.max_level) > MONEY_MAX,
        }
        if any(reasons.values()):
            assert kinds == ["not_created"]
            reason = own[-1].data["reason"]
            assert any(name in reason for name, holds in reasons.items() if holds), reason
            return
        assert kinds == ["created"]
        created = self.lanes[own[-1].lane_id]
        assert (created.symbol, created.base_amount, created.current_level) == (trade.symbol, trade.amount, 1)
        assert created.current_amount == exact_stake(trade.amount, account.multiplier, 1)
        assert created.trade_ids[0] == trade.trade_id

    # --- the bot's rules -----------------------------------------------------------------------

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        max_wait=max_waits,
        expected_payout=expected_payouts | st.sampled_from([ROOM, OVER_ROOM]),
    )
    def request(self, symbol, max_wait, expected_payout):
        """A bot's request; ROOM and OVER_ROOM ask for exactly what the oldest active lane's total
        potential payout can still take, or a cent more."""
        if expected_payout in (ROOM, OVER_ROOM):
            if not self.active:
                return
            oldest = min((self.lanes[i] for i in self.active), key=lambda lane: (lane.created_at, number(lane.lane_id)))
            room = MONEY_MAX - oldest.total_potential_payout + (CENT if expected_payout == OVER_ROOM else ZERO)
            expected_payout = min(max(room, CENT), MONEY_MAX)
        self.request_trade(symbol, max_wait, expected_payout)

    @precondition(lambda self: self.has(OPEN))
    @rule(
        data=st.data(),
        result=st.sampled_from([WIN, LOSS, LOSS, DRAW]),
        choice=st.just("default") | st.sampled_from(PAYOUT_CHOICES),
        any_payout=any_payouts,
        by_hand=st.sampled_from([False, False, False, True]),
    )
    def trade_settles(self, data, result, choice, any_payout, by_hand):
        trade = self.pick(data, (OPEN,))
        self.settle(trade.trade_id, result, self.payout_for(choice, trade, any_payout), by_hand)

    @rule(
        symbols=st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=8),
        results=st.lists(st.sampled_from([WIN, LOSS, LOSS, DRAW]), min_size=8, max_size=8),
        together=st.booleans(),
        long=st.integers(0, 9),
    )
    def bot_trades_and_reports(self, symbols, results, together, long):
        """A session of trades with default payouts, each reported before the next or all opened
        first (several lanes at once); a long run of draws keeps a lane at its level while its
        trade list and totals grow to their limits (600 ids, DECIMAL(10,2))."""
        if long == 0 and self.active:
            for _ in range(engine.MAX_LANE_TRADES + 1):
                trade = self.trade_and_report(symbols[0], DRAW)
                if trade is None or trade.kind != LANE:
                    return
        elif together:
            opened = [trade for symbol in symbols if (trade := self.request_trade(symbol, 60, None))]
            for trade, result in zip(opened, results):
                if trade.trade_id in self.ids[OPEN]:
                    self.settle(trade.trade_id, result, None, False)
        else:
            for symbol, result in zip(symbols, results):
                if self.trade_and_report(symbol, result) is None:
                    return

    def trade_and_report(self, symbol, result) -> Optional[Trade]:
        """One trade requested once the cool-down has passed and reported at once; None when it did not open."""
        self.now += timedelta(seconds=self.settings.cool_down_seconds)
        trade = self.request_trade(symbol, 60, None)
        if trade is None or trade.status != OPEN:
            return None
        self.settle(trade.trade_id, result, None, False)
        return trade

    @precondition(lambda self: self.has(QUEUED, *FINAL))
    @rule(data=st.data(), result=st.sampled_from(engine.RESULTS), same_payout=st.booleans())
    def bot_repeats_itself_or_errs(self, data, result, same_payout):
        """SPEC §5: a repeated result or cancel is harmless; a result or cancel that contradicts the
        trade's state is refused and changes nothing."""
        self.call(lambda state: engine.serve_queue(state, self.now))
        if not self.has(QUEUED, *FINAL):
            return
        trade = self.pick(data, (QUEUED, *FINAL))
        trade_id = trade.trade_id

        def report(payout):
            return lambda state: engine.settle_trade(state, trade_id, result, payout, self.now, self.new_lane_id)

        def cancel(state):
            return engine.cancel_trade(state, trade_id, self.now)

        if trade.status not in SETTLED:
            self.refused(report(None), trade_id, error=engine.Conflict)
            if trade.status == "cancelled":
                assert self.call(cancel, trade_id) is False
                assert self.trades[trade_id] is trade
            elif trade.status == EXPIRED:
                self.refused(cancel, trade_id, error=engine.Conflict)
            return
        if engine.RESULT_STATUS[result] == trade.status:
            assert self.call(report(trade.payout if same_payout else None), trade_id) is False
            assert self.events == [] and self.trades[trade_id] is trade
        else:
            self.refused(report(None), trade_id, error=engine.Conflict)
        different = trade.payout + CENT if trade.payout < MONEY_MAX else trade.payout - CENT
        self.refused(report(different), trade_id, error=engine.Conflict)
        self.refused(cancel, trade_id, error=engine.Conflict)

    @precondition(lambda self: self.has(QUEUED, OPEN))
    @rule(data=st.data())
    def cancel(self, data):
        trade_before = self.pick(data, (QUEUED, OPEN))
        trade_id, was_open = trade_before.trade_id, trade_before.status == OPEN
        lane_id = trade_before.lane_id
        lane_before = self.lanes.get(lane_id) if lane_id else None
        lane_was_active = lane_id in self.active

        assert self.call(lambda state: engine.cancel_trade(state, trade_id, self.now), trade_id)

        trade = self.trades[trade_id]
        assert (trade.status, trade.settled_at) == ("cancelled", self.now)
        assert trade.profit == (ZERO if was_open else None)
        if lane_was_active:
            lane = self.lanes[lane_id]
            assert trade_id not in lane.trade_ids
            assert (lane.status, lane.current_level) == (ACTIVE, lane_before.current_level)
            assert [e.kind for e in self.events if e.trade_id == trade_id] == ["trade_cancelled"]
        elif lane_before is not None:
            assert self.lanes[lane_id] is lane_before and trade_id in lane_before.trade_ids

    @rule(seconds=clock_moves, periodic_task=st.booleans())
    def clock_moves_on(self, seconds, periodic_task):
        self.now += timedelta(seconds=seconds)
        if periodic_task:
            self.call(lambda state: engine.serve_queue(state, self.now))

    # --- a person's rules ----------------------------------------------------------------------

    @precondition(lambda self: self.active)
    @rule(data=st.data(), status=st.sampled_from(engine.LANE_END_STATUSES), roll=st.integers(1, 6))
    def person_completes_lane(self, data, status, roll):
        if roll > 1:  # a person ends a lane far less often than the bot reports results
            return
        lane_id = data.draw(st.sampled_from(sorted(self.active)))
        self.call(lambda state: engine.complete_lane(state, lane_id, status, self.now))
        lane = self.lanes[lane_id]
        outcome = "force_completed" if status == "completed" else "cancelled"
        assert (lane.status, lane.outcome, lane.completed_at) == (status, outcome, self.now)
        self.refused(lambda state: engine.complete_lane(state, lane_id, "completed", self.now))

    @precondition(lambda self: self.active)
    @rule(status=st.sampled_from(engine.LANE_END_STATUSES), roll=st.integers(1, 10))
    def person_resets_account(self, status, roll):
        if roll > 1:
            return
        ended = sorted(self.active)
        self.call(lambda state: engine.complete_all_lanes(state, status, self.now))
        assert not self.active
        assert all((self.lanes[i].status, self.lanes[i].completed_at) == (status, self.now) for i in ended)

    @rule(
        base=maybe(base_amounts),
        multiplier=maybe(multipliers),
        max_level=maybe(st.integers(1, 20) | st.just(LOWER)),
        payout_rate=maybe(payout_rates),
        martingale=maybe(st.sampled_from([True, True, True, True, False])),
        enhanced=maybe(st.sampled_from([True, True, True, True, False])),
        enabled=maybe(st.sampled_from([True, True, False])),
        roll=st.integers(1, 3),
    )
    def person_changes_account(self, base, multiplier, max_level, payout_rate, martingale, enhanced, enabled, roll):
        """Only a configuration whose ladder fits DECIMAL(10,2) is accepted (SPEC §2); the queue is
        not served by the change."""
        if roll > 1:
            return
        if max_level == LOWER:
            max_level = max(1, min(self.account.max_level, self.account.legacy_losses) - 1)
        values = {
            "base_amount": base, "multiplier": multiplier, "max_level": max_level, "payout_rate": payout_rate,
            "martingale_enabled": martingale, "enhanced": enhanced, "enabled": enabled,
        }
        changed = dataclasses.replace(self.account, **{k: v for k, v in values.items() if v is not None})
        if base == LARGEST:
            changed.base_amount = largest_base(changed.multiplier, changed.max_level, changed.payout_rate)
            if changed.base_amount is None:
                return
        if engine.ladder_problem(changed.base_amount, changed.multiplier, changed.max_level, changed.payout_rate):
            return
        self.account = changed
        self.configuration_changed()

    @rule(
        concurrent=maybe(st.booleans()),
        max_lanes=maybe(st.integers(1, 10) | st.just(FEWER)),
        strategy=maybe(strategies),
        auto_create=maybe(st.sampled_from([True, True, True, False])),
        cool_down=maybe(cool_downs),
        max_daily=maybe(st.integers(1, 50)),
        roll=st.integers(1, 3),
    )
    def person_changes_trading_settings(self, concurrent, max_lanes, strategy, auto_create, cool_down, max_daily, roll):
        if roll > 1:
            return
        if max_lanes == FEWER:
            max_lanes = max(1, len(self.active) - 1)
        values = {
            "concurrent_trading_enabled": concurrent, "max_concurrent_lanes": max_lanes,
            "lane_assignment_strategy": strategy, "auto_create_lanes": auto_create,
            "cool_down_seconds": cool_down, "max_daily_lanes": max_daily,
        }
        self.settings = dataclasses.replace(self.settings, **{k: v for k, v in values.items() if v is not None})
        self.configuration_changed()

    # --- invariants ------------------------------------------------------------------------------

    def check_trade(self, trade: Trade):
        assert all(fits(getattr(trade, name)) for name in TRADE_MONEY), trade
        assert trade.level is None or trade.level >= 0
        assert trade.status in (QUEUED, OPEN, *FINAL)
        if trade.status == QUEUED:
            assert (trade.amount, trade.kind, trade.lane_id, trade.level, trade.opened_at) == (None,) * 5
        if trade.status in SETTLED:
            assert trade.profit == trade.payout - trade.amount
        if trade.status in FINAL:
            assert self.final.setdefault(trade.trade_id, copy.copy(trade)) == trade

    def check_lane(self, lane: engine.Lane):
        assert all(fits(getattr(lane, name)) for name in LANE_MONEY), lane
        assert len(lane.trade_ids) <= engine.MAX_LANE_TRADES
        assert len(set(lane.trade_ids)) == len(lane.trade_ids)
        trades = [self.trades[t] for t in lane.trade_ids]
        assert lane.total_invested == sum((t.amount for t in trades), ZERO)
        assert lane.total_potential_payout == sum((t.expected_payout for t in trades), ZERO)
        first, *rest = trades
        assert (first.kind, first.status, first.amount) == (BASE, "lost", lane.base_amount)
        assert all(t.kind == LANE and t.lane_id == lane.lane_id for t in rest)
        assert (lane.multiplier, lane.max_level) == self.copied[lane.lane_id]
        assert 1 <= lane.current_level <= lane.max_level
        assert lane.current_amount == exact_stake(lane.base_amount, lane.multiplier, lane.current_level)
        assert (lane.status == ACTIVE) == (lane.completed_at is None) == (lane.outcome is None)
        if lane.status == ACTIVE:
            for trade_id in self.ids[OPEN]:
                trade = self.trades[trade_id]
                if trade.lane_id == lane.lane_id:
                    assert (trade.level, trade.amount) == (lane.current_level, lane.current_amount)

    @invariant()
    def what_the_last_step_wrote_fits_and_adds_up(self):
        """Every trade and lane the step wrote (nothing else can have changed): values within their
        columns, lane totals the sums over its trades, lane stakes on the lane's own ladder,
        finished trades unchanged."""
        for trade_id in sorted(self.touched_trades):
            self.check_trade(self.trades[trade_id])
        for lane_id in sorted(self.touched_lanes):
            self.check_lane(self.lanes[lane_id])
        self.touched_trades.clear()
        self.touched_lanes.clear()

    @invariant()
    def a_lane_never_has_two_open_trades(self):
        busy = Counter(self.trades[t].lane_id for t in self.ids[OPEN] if self.trades[t].lane_id is not None)
        assert all(count == 1 for count in busy.values())

    @invariant()
    def open_trades_and_active_lanes_stay_within_the_limits_in_force_when_they_began(self):
        assert len(self.ids[OPEN]) <= self.open_cap
        assert len(self.active) <= self.active_cap

    @invariant()
    def lanes_created_per_day_are_counted(self):
        per_day = Counter(lane.created_at.date() for lane in self.lanes.values())
        assert per_day == +self.created_per_day


def test_invariants_hold_over_long_random_sequences():
    run_state_machine_as_test(
        EngineMachine,
        settings=settings(
            max_examples=150,
            stateful_step_count=150,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
