"""Long random sequences of requests, results, cancels, lane completions and clock moves through the
pure engine, with the invariants of SPEC §3–6 checked after every step."""
import copy
import itertools
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, localcontext

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
from lanes.engine import Account, Book, Request, Settings

START = datetime(2025, 3, 3, 23, 50, tzinfo=timezone.utc)
SYMBOLS = ("EURUSD", "GBPUSD", "BTC/USD")
FINAL = ("won", "lost", "draw", "cancelled", "expired")


def cents(low: int, high: int):
    return st.integers(low, high).map(lambda n: Decimal(n).scaleb(-2))


def exact_stake(base: Decimal, multiplier: Decimal, level: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 100
        return (base * multiplier**level).quantize(Decimal("0.01"), ROUND_HALF_UP)


accounts = st.builds(
    Account,
    name=st.just("acct"),
    base_amount=st.sampled_from([Decimal("0.10"), Decimal("0.50"), Decimal("2.50")]) | cents(1, 100_000),
    multiplier=st.sampled_from([Decimal("1.01"), Decimal("1.05"), Decimal("1.50")]) | cents(101, 300),
    max_level=st.integers(1, 3) | st.integers(1, 10),
    payout_rate=st.integers(100, 100_000).map(lambda n: Decimal(n).scaleb(-4)),
    martingale_enabled=st.sampled_from([True, True, True, False]),
    enhanced=st.sampled_from([True, True, True, False]),
)

trading_settings = st.builds(
    Settings,
    concurrent_trading_enabled=st.booleans(),
    max_concurrent_lanes=st.integers(1, 10),
    lane_assignment_strategy=st.sampled_from([engine.FIFO, engine.ROUND_ROBIN, engine.SYMBOL_PRIORITY]),
    auto_create_lanes=st.sampled_from([True, True, True, False]),
    cool_down_seconds=st.just(0) | st.integers(1, 30),
    max_daily_lanes=st.integers(1, 50),
)

clock_moves = st.one_of(st.integers(0, 5), st.integers(0, 30), st.integers(30, 120), st.integers(3_600, 30 * 3_600))
payouts = st.none() | cents(0, 500_000)


class EngineMachine(RuleBasedStateMachine):
    """One account, driven as the service drives it: every call is one transaction on a book that
    holds everything the account ever had, with a refused call rolled back."""

    @initialize(account=accounts, trading=trading_settings)
    def start(self, account, trading):
        self.book = Book(account=account, settings=trading, lanes={}, trades={})
        self.now = START
        self.trade_numbers = itertools.count(1)
        self.lane_numbers = itertools.count(1)
        self.request_order = []
        self.created_per_day = Counter()
        self.final = {}
        self.legacy_losses = 0

    # --- running one call the way a service does ---------------------------------------------

    def touch(self, operation):
        book = self.book
        book.events.clear()
        book.lanes_created_today = self.created_per_day[self.now.date()]
        was_open = {t.trade_id for t in book.open_trades()}
        answer = operation()
        for event in book.events:
            if event.kind == "created":
                self.created_per_day[self.now.date()] += 1
        for lane in book.lanes.values():
            if lane.pk is None:
                lane.pk = int(lane.lane_id[1:])
        for trade in book.trades.values():
            if trade.pk is None:
                trade.pk = int(trade.trade_id[1:])
        self.check_queue_served()
        self.check_opened_now({t.trade_id for t in book.open_trades()} - was_open)
        return answer

    def check_queue_served(self):
        book = self.book
        queue = book.queue()
        assert all(self.now < t.expires_at for t in queue)
        if queue and book.account.enabled:
            assert len(book.open_trades()) >= book.slots() or book.cool_down_left(self.now) > 0

    def check_opened_now(self, trade_ids):
        book, account = self.book, self.book.account
        for trade_id in trade_ids:
            trade = book.trades[trade_id]
            assert trade.opened_at == self.now
            if book.legacy():
                level = self.legacy_losses if account.martingale_enabled else 0
                assert (trade.kind, trade.level) == ("legacy", level)
                assert trade.amount == exact_stake(account.base_amount, account.multiplier, level)
            elif trade.kind == "base":
                assert (trade.level, trade.amount, trade.lane_id) == (0, account.base_amount, None)
                assert all(book.open_trade_of(lane.lane_id) for lane in book.active_lanes())
            else:
                assert account.martingale_enabled
                lane = book.lanes[trade.lane_id]
                assert (trade.level, trade.amount) == (lane.current_level, lane.current_amount)
                assert lane.trade_ids[-1] == trade_id
            expected = trade.requested_payout
            if expected is None:
                expected = (trade.amount * (1 + account.payout_rate)).quantize(Decimal("0.01"), ROUND_HALF_UP)
            assert trade.expected_payout == expected

    def pick(self, data, statuses):
        ids = sorted(t.trade_id for t in self.book.trades.values() if t.status in statuses)
        return self.book.trades[data.draw(st.sampled_from(ids))]

    def has(self, *statuses):
        return any(t.status in statuses for t in self.book.trades.values())

    # --- rules -------------------------------------------------------------------------------

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        max_wait=st.integers(0, 120),
        expected_payout=st.none() | cents(1, 500_000),
    )
    def request(self, symbol, max_wait, expected_payout):
        trade_id = f"t{next(self.trade_numbers):06d}"
        request = Request(
            trade_id=trade_id, symbol=symbol, expected_payout=expected_payout, max_wait_seconds=max_wait
        )
        before = copy.deepcopy(self.book) if max_wait == 0 else None
        try:
            trade = self.touch(lambda: engine.request_trade(self.book, request, self.now))
        except engine.Busy as busy:
            self.book = before
            assert trade_id not in self.book.trades
            assert max_wait == 0 and busy.retry_after >= max(1, self.book.cool_down_left(self.now))
            served = copy.deepcopy(before)
            engine.expire_queue(served, self.now)
            assert served.queue() or len(served.open_trades()) >= served.slots() or served.cool_down_left(self.now)
            return
        self.request_order.append(trade_id)
        assert trade.requested_at == self.now
        assert trade.expires_at == self.now + timedelta(seconds=max_wait)
        if max_wait == 0:
            assert trade.status == "open"

    @precondition(lambda self: self.has("open"))
    @rule(data=st.data(), payout=payouts)
    def trade_loses(self, data, payout):
        self.settle(data, "loss", payout)

    @precondition(lambda self: self.has("open"))
    @rule(data=st.data(), payout=payouts)
    def trade_wins(self, data, payout):
        self.settle(data, "win", payout)

    @precondition(lambda self: self.has("open"))
    @rule(data=st.data(), payout=payouts)
    def trade_draws(self, data, payout):
        self.settle(data, "draw", payout)

    def settle(self, data, result, payout):
        book = self.book
        trade = self.pick(data, ("open",))
        lane = book.lanes.get(trade.lane_id) if trade.lane_id else None
        lane_was_active = lane is not None and lane.status == "active"
        lane_before = copy.deepcopy(lane)
        active_before = len(book.active_lanes())
        created_today = self.created_per_day[self.now.date()]
        if trade.kind == "legacy" and book.account.martingale_enabled and result != "draw":
            losses = self.legacy_losses + 1 if result == "loss" else 0
            self.legacy_losses = losses if losses <= book.account.max_level else 0

        assert self.touch(lambda: engine.settle_trade(book, trade.trade_id, result, payout, self.now, self.new_lane_id))

        assert trade.status == engine.RESULT_STATUS[result]
        assert trade.settled_at == self.now
        expected_profit = {"win": trade.payout - trade.amount, "loss": -trade.amount, "draw": Decimal("0.00")}
        assert trade.profit == expected_profit[result]
        if result == "win" and payout is None:
            assert trade.payout == trade.expected_payout
        own_events = [e for e in book.events if e.trade_id == trade.trade_id]

        if trade.kind == "legacy":
            assert book.account.legacy_losses == self.legacy_losses
            assert own_events == []
        elif trade.kind == "base":
            kinds = [e.kind for e in own_events]
            if result != "loss" or not book.account.martingale_enabled:
                assert kinds == []
            elif (
                book.settings.auto_create_lanes
                and active_before < book.settings.max_concurrent_lanes
                and created_today < book.settings.max_daily_lanes
            ):
                assert kinds == ["created"]
                created = book.lanes[own_events[0].lane_id]
                assert (created.symbol, created.base_amount, created.current_level) == (trade.symbol, trade.amount, 1)
                assert created.trade_ids[0] == trade.trade_id
                assert created.created_at == self.now
            else:
                assert kinds == ["not_created"] and own_events[0].data["reason"]
        elif not lane_was_active:
            assert lane == lane_before
            assert own_events == []
        elif result == "win":
            assert (lane.status, lane.outcome, lane.completed_at) == ("completed", "recovered", self.now)
            assert [e.kind for e in own_events] == ["recovered"]
        elif result == "draw":
            assert (lane.status, lane.current_level, lane.current_amount) == (
                "active",
                lane_before.current_level,
                lane_before.current_amount,
            )
            assert lane.trade_ids[: len(lane_before.trade_ids)] == lane_before.trade_ids
            assert [e.kind for e in own_events] == ["draw"]
        elif trade.level == lane.max_level:
            assert (lane.status, lane.outcome, lane.completed_at) == ("completed", "exhausted", self.now)
            assert [e.kind for e in own_events] == ["exhausted"]
        else:
            assert (lane.status, lane.current_level) == ("active", trade.level + 1)
            assert [e.kind for e in own_events] == ["advanced"]

    @precondition(lambda self: self.has(*engine.SETTLED))
    @rule(data=st.data(), result=st.sampled_from(engine.RESULTS))
    def report_settled_trade_again(self, data, result):
        trade = self.pick(data, engine.SETTLED)
        self.touch(lambda: engine.serve_queue(self.book, self.now))  # so that only the repeat could change anything
        lanes_before = copy.deepcopy(self.book.lanes)
        trade_before = copy.deepcopy(trade)

        def report():
            return engine.settle_trade(self.book, trade.trade_id, result, None, self.now, self.new_lane_id)

        if engine.RESULT_STATUS[result] == trade.status:
            assert self.touch(report) is False
        else:
            with pytest.raises(engine.Conflict):
                report()
        assert trade == trade_before
        assert {k: l for k, l in self.book.lanes.items() if k in lanes_before} == lanes_before

    @precondition(lambda self: self.has("queued", "expired", "cancelled"))
    @rule(data=st.data(), result=st.sampled_from(engine.RESULTS))
    def report_unopened_trade(self, data, result):
        trade = self.pick(data, ("queued", "expired", "cancelled"))
        trade_before = copy.deepcopy(trade)
        with pytest.raises(engine.Conflict):
            engine.settle_trade(self.book, trade.trade_id, result, None, self.now, self.new_lane_id)
        assert trade == trade_before

    @precondition(lambda self: self.has("queued", "open"))
    @rule(data=st.data())
    def cancel(self, data):
        book = self.book
        trade = self.pick(data, ("queued", "open"))
        was_open = trade.status == "open"
        lane = book.lanes.get(trade.lane_id) if trade.lane_id else None
        lane_was_active = lane is not None and lane.status == "active"
        level_before = lane.current_level if lane else None

        assert self.touch(lambda: engine.cancel_trade(book, trade.trade_id, self.now))

        assert (trade.status, trade.settled_at) == ("cancelled", self.now)
        assert trade.profit == (Decimal("0.00") if was_open else None)
        if lane_was_active:
            assert trade.trade_id not in lane.trade_ids
            assert (lane.status, lane.current_level) == ("active", level_before)
            assert [e.kind for e in book.events if e.trade_id == trade.trade_id] == ["trade_cancelled"]
        elif lane is not None:
            assert trade.trade_id in lane.trade_ids

    @precondition(lambda self: self.has("cancelled"))
    @rule(data=st.data())
    def cancel_again(self, data):
        trade = self.pick(data, ("cancelled",))
        trade_before = copy.deepcopy(trade)
        assert self.touch(lambda: engine.cancel_trade(self.book, trade.trade_id, self.now)) is False
        assert trade == trade_before

    @precondition(lambda self: self.book.active_lanes())
    @rule(data=st.data(), status=st.sampled_from(["completed", "cancelled"]), roll=st.integers(1, 6))
    def person_completes_lane(self, data, status, roll):
        if roll > 1:  # a person ends a lane far less often than the bot reports results
            return
        lane = data.draw(st.sampled_from(self.book.active_lanes()))
        self.touch(lambda: engine.complete_lane(self.book, lane.lane_id, status, self.now))
        expected_outcome = "force_completed" if status == "completed" else "cancelled"
        assert (lane.status, lane.outcome, lane.completed_at) == (status, expected_outcome, self.now)
        with pytest.raises(engine.Conflict):
            engine.complete_lane(self.book, lane.lane_id, "completed", self.now)

    @rule(seconds=clock_moves)
    def clock_moves_on(self, seconds):
        self.now += timedelta(seconds=seconds)

    @rule()
    def periodic_task(self):
        self.touch(lambda: engine.serve_queue(self.book, self.now))

    def new_lane_id(self) -> str:
        return f"L{next(self.lane_numbers):06d}"

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def a_lane_never_has_two_open_trades(self):
        busy = Counter(t.lane_id for t in self.book.open_trades() if t.lane_id is not None)
        assert all(count == 1 for count in busy.values())

    @invariant()
    def open_trades_never_exceed_slots(self):
        book = self.book
        concurrent = book.settings.concurrent_trading_enabled and not book.legacy()
        slots = book.settings.max_concurrent_lanes if concurrent else 1
        assert book.slots() == slots
        assert len(book.open_trades()) <= slots

    @invariant()
    def active_lanes_never_exceed_max_concurrent_lanes(self):
        assert len(self.book.active_lanes()) <= self.book.settings.max_concurrent_lanes

    @invariant()
    def lanes_created_per_day_never_exceed_max_daily_lanes(self):
        assert all(count <= self.book.settings.max_daily_lanes for count in self.created_per_day.values())
        per_day = Counter(lane.created_at.date() for lane in self.book.lanes.values())
        assert per_day == +self.created_per_day

    @invariant()
    def lane_totals_are_the_sums_over_its_trades(self):
        trades = self.book.trades
        for lane in self.book.lanes.values():
            assert len(set(lane.trade_ids)) == len(lane.trade_ids)
            assert lane.total_invested == sum((trades[t].amount for t in lane.trade_ids), Decimal("0.00"))
            assert lane.total_potential_payout == sum(
                (trades[t].expected_payout for t in lane.trade_ids), Decimal("0.00")
            )
            first, *rest = (trades[t] for t in lane.trade_ids)
            assert (first.kind, first.status, first.amount) == ("base", "lost", lane.base_amount)
            assert all(t.kind == "lane" and t.lane_id == lane.lane_id for t in rest)

    @invariant()
    def lane_level_and_stake_follow_the_ladder(self):
        for lane in self.book.lanes.values():
            assert 1 <= lane.current_level <= lane.max_level
            assert lane.current_amount == exact_stake(lane.base_amount, lane.multiplier, lane.current_level)
            assert (lane.status == "active") == (lane.completed_at is None) == (lane.outcome is None)
            open_trade = self.book.open_trade_of(lane.lane_id)
            if open_trade is not None and lane.status == "active":
                assert (open_trade.level, open_trade.amount) == (lane.current_level, lane.current_amount)

    @invariant()
    def queued_trades_have_no_stake_kind_lane_or_level(self):
        for trade in self.book.queue():
            assert (trade.amount, trade.kind, trade.lane_id, trade.level, trade.opened_at) == (None,) * 5

    @invariant()
    def settled_trades_are_final(self):
        for trade in self.book.trades.values():
            assert trade.status in ("queued", "open", *FINAL)
            if trade.status in FINAL:
                snapshot = copy.copy(trade)
                assert self.final.setdefault(trade.trade_id, snapshot) == trade

    @invariant()
    def cool_down_separates_consecutive_opens(self):
        opened = sorted(t.opened_at for t in self.book.trades.values() if t.opened_at is not None)
        gap = timedelta(seconds=self.book.settings.cool_down_seconds)
        assert all(later - earlier >= gap for earlier, later in zip(opened, opened[1:]))

    @invariant()
    def trades_open_in_request_order(self):
        opened = [self.book.trades[t].opened_at for t in self.request_order if self.book.trades[t].opened_at]
        assert opened == sorted(opened)

    @invariant()
    def legacy_accounts_have_no_lanes_and_one_open_trade_at_most(self):
        book = self.book
        if book.legacy():
            assert book.lanes == {}
            assert len(book.open_trades()) <= 1
            assert all(t.kind in (None, "legacy") for t in book.trades.values())
            assert 0 <= book.account.legacy_losses <= book.account.max_level

    @invariant()
    def martingale_off_gives_only_base_trades(self):
        book = self.book
        if not book.account.martingale_enabled and not book.legacy():
            assert book.lanes == {}
            assert all(t.kind in (None, "base") for t in book.trades.values())


def test_invariants_hold_over_long_random_sequences():
    run_state_machine_as_test(
        EngineMachine,
        settings=settings(
            max_examples=250,
            stateful_step_count=250,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
