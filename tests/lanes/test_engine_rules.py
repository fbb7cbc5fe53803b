"""The rules of SPEC §3–6 as the pure engine applies them, one test per rule, without a database."""
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from lanes import engine, ranges
from lanes.engine import Account, AccountState, Lane, Request, Settings

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
D = Decimal


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_book(
    *,
    base="1.00",
    multiplier="2.00",
    max_level=7,
    payout_rate="0.85",
    enabled=True,
    martingale=True,
    enhanced=True,
    **settings,
) -> AccountState:
    account = Account(
        name="demo",
        base_amount=D(base),
        multiplier=D(multiplier),
        max_level=max_level,
        payout_rate=D(payout_rate),
        enabled=enabled,
        martingale_enabled=martingale,
        enhanced=enhanced,
    )
    return AccountState(account=account, settings=Settings(**settings), lanes={}, trades={})


def add_lane(book, lane_id, *, symbol="EURUSD", created_at=T0, pk=None, level=1) -> Lane:
    account = book.account
    lane = Lane(
        lane_id=lane_id,
        symbol=symbol,
        base_amount=account.base_amount,
        current_amount=engine.stake_at(account.base_amount, account.multiplier, level),
        multiplier=account.multiplier,
        max_level=account.max_level,
        created_at=created_at,
        current_level=level,
        pk=pk,
    )
    book.lanes[lane_id] = lane
    return lane


def request(book, trade_id, *, now=T0, symbol="EURUSD", **fields):
    return engine.request_trade(book, Request(trade_id=trade_id, symbol=symbol, **fields), now)


def settle(book, trade_id, result, *, now=T0, payout=None):
    return engine.settle_trade(book, trade_id, result, payout, now, lambda: f"lane-{len(book.lanes) + 1}")


def lane_from_lost_base_trade(book, trade_id, *, now=T0, symbol="EURUSD") -> Lane:
    request(book, trade_id, now=now, symbol=symbol)
    settle(book, trade_id, "loss", now=now)
    (lane,) = [lane for lane in book.lanes.values() if trade_id in lane.trade_ids]
    return lane


def events(book):
    return [(event.kind, event.lane_id, event.trade_id, event.data) for event in book.events]


def event_kinds(book):
    return [event.kind for event in book.events]


def trade_summary(trade):
    return trade.status, trade.kind, trade.lane_id, trade.level, trade.amount


# --- §3 Trades and slots ---------------------------------------------------------------------


def test_request_opens_at_once_when_queue_empty_slot_free_and_cool_down_passed():
    book = make_book()

    trade = request(book, "t1", now=at(5), direction="call")

    assert trade_summary(trade) == ("open", "base", None, 0, D("1.00"))
    assert trade.opened_at == at(5)
    assert trade.requested_at == at(5)
    assert trade.direction == "call"
    assert book.last_open == at(5)
    assert book.queue_position("t1") is None


def test_request_without_free_slot_is_queued_with_expiry():
    book = make_book()
    request(book, "t1")

    trade = request(book, "t2", now=at(3), max_wait_seconds=45)

    assert trade_summary(trade) == ("queued", None, None, None, None)
    assert trade.opened_at is None
    assert trade.expires_at == at(48)
    assert book.queue_position("t2") == 1


def test_slots_is_one_without_concurrency():
    book = make_book(concurrent_trading_enabled=False, max_concurrent_lanes=5)

    first, second = request(book, "t1"), request(book, "t2")

    assert book.slots() == 1
    assert (first.status, second.status) == ("open", "queued")


def test_slots_is_max_concurrent_lanes_with_concurrency():
    book = make_book(concurrent_trading_enabled=True, max_concurrent_lanes=3)

    trades = [request(book, f"t{n}") for n in range(1, 5)]

    assert book.slots() == 3
    assert [trade.status for trade in trades] == ["open", "open", "open", "queued"]


def test_queue_opens_oldest_request_first_when_slot_frees():
    book = make_book()
    request(book, "t1")
    request(book, "t2", now=at(1))
    request(book, "t3", now=at(2))

    settle(book, "t1", "win", now=at(10))

    assert book.trades["t2"].status == "open"
    assert book.trades["t2"].opened_at == at(10)
    assert book.trades["t3"].status == "queued"
    assert book.queue_position("t3") == 1


def test_new_request_waits_behind_older_queued_requests():
    book = make_book(cool_down_seconds=10)
    request(book, "t1")
    request(book, "t2", now=at(1))
    settle(book, "t1", "win", now=at(2))

    late = request(book, "t3", now=at(10))

    assert book.trades["t2"].status == "open"
    assert late.status == "queued"


def test_cool_down_blocks_opening_until_elapsed():
    book = make_book(cool_down_seconds=30)
    request(book, "t1")
    settle(book, "t1", "win", now=at(5))

    waiting = request(book, "t2", now=at(10))
    engine.serve_queue(book, at(29))
    assert waiting.status == "queued"

    engine.serve_queue(book, at(30))
    assert waiting.status == "open"
    assert waiting.opened_at == at(30)


def test_cool_down_counts_from_latest_open_of_any_trade():
    book = make_book(cool_down_seconds=20)
    book.last_open = at(-5)

    assert request(book, "t1", now=at(10)).status == "queued"
    engine.serve_queue(book, at(15))
    assert book.trades["t1"].status == "open"


def test_cool_down_opens_one_queued_request_at_a_time():
    book = make_book(concurrent_trading_enabled=True, max_concurrent_lanes=3, cool_down_seconds=10)
    request(book, "t1")
    request(book, "t2", now=at(1))
    request(book, "t3", now=at(2))

    engine.serve_queue(book, at(10))
    assert [book.trades[t].status for t in ("t1", "t2", "t3")] == ["open", "open", "queued"]

    engine.serve_queue(book, at(20))
    assert book.trades["t3"].status == "open"


def test_max_wait_zero_refused_busy_with_retry_after():
    book = make_book()
    request(book, "t1")

    with pytest.raises(engine.Busy) as refusal:
        request(book, "t2", now=at(1), max_wait_seconds=0)

    assert refusal.value.code == "busy"
    assert refusal.value.retry_after >= 1
    assert set(book.trades) == {"t1"}
    assert book.queue() == []


def test_max_wait_zero_retry_after_is_cool_down_left():
    book = make_book(cool_down_seconds=30)
    request(book, "t1")
    settle(book, "t1", "draw", now=at(2))

    with pytest.raises(engine.Busy) as refusal:
        request(book, "t2", now=at(9.5), max_wait_seconds=0)

    assert refusal.value.retry_after == 21
    assert set(book.trades) == {"t1"}


def test_max_wait_zero_opens_at_once_when_slot_free():
    book = make_book()

    trade = request(book, "t1", now=at(1), max_wait_seconds=0)

    assert trade_summary(trade) == ("open", "base", None, 0, D("1.00"))


def test_expired_requests_become_expired():
    book = make_book()
    request(book, "t1")
    short = request(book, "t2", now=at(1), max_wait_seconds=10)
    long = request(book, "t3", now=at(2), max_wait_seconds=60)

    engine.serve_queue(book, at(11))

    assert short.status == "expired"
    assert short.settled_at == at(11)
    assert trade_summary(short)[1:] == (None, None, None, None)
    assert long.status == "queued"
    assert book.queue_position("t3") == 1


def test_expiry_comes_before_opening_when_queue_is_served():
    book = make_book()
    request(book, "t1")
    request(book, "t2", now=at(1), max_wait_seconds=10)
    request(book, "t3", now=at(2), max_wait_seconds=60)

    settle(book, "t1", "win", now=at(20))

    assert book.trades["t2"].status == "expired"
    assert book.trades["t3"].status == "open"


def test_queued_request_joins_lane_created_by_the_loss_that_frees_the_slot():
    book = make_book()
    request(book, "t1")
    waiting = request(book, "t2", now=at(1))
    assert trade_summary(waiting) == ("queued", None, None, None, None)

    settle(book, "t1", "loss", now=at(60))

    (lane,) = book.lanes.values()
    assert trade_summary(waiting) == ("open", "lane", lane.lane_id, 1, D("2.00"))
    assert lane.trade_ids == ["t1", "t2"]
    assert lane.total_invested == D("3.00")
    assert lane.total_potential_payout == D("1.85") + D("3.70")
    assert event_kinds(book) == ["created", "trade_assigned"]


def test_disabled_account_refused():
    book = make_book(enabled=False)

    with pytest.raises(engine.AccountDisabled) as refusal:
        request(book, "t1")

    assert refusal.value.code == "account_disabled"
    assert book.trades == {}


def test_cancel_of_queued_trade_removes_it_from_queue():
    book = make_book()
    request(book, "t1")
    queued = request(book, "t2", now=at(1))

    assert engine.cancel_trade(book, "t2", at(2)) is True

    assert queued.status == "cancelled"
    assert queued.settled_at == at(2)
    assert queued.profit is None
    assert book.queue() == []
    assert book.events == []


def test_cancel_of_open_trade_frees_its_slot_for_the_queue():
    book = make_book()
    opened = request(book, "t1")
    queued = request(book, "t2", now=at(1))

    engine.cancel_trade(book, "t1", at(5))

    assert (opened.status, opened.profit) == ("cancelled", D("0.00"))
    assert queued.status == "open"


def test_repeat_cancel_is_harmless():
    book = make_book()
    request(book, "t1")
    engine.cancel_trade(book, "t1", at(1))

    assert engine.cancel_trade(book, "t1", at(2)) is False
    assert book.trades["t1"].settled_at == at(1)


@pytest.mark.parametrize("result", ["win", "loss", "draw"])
def test_cancel_of_settled_trade_refused(result):
    book = make_book()
    request(book, "t1")
    settle(book, "t1", result, now=at(1))

    with pytest.raises(engine.Conflict):
        engine.cancel_trade(book, "t1", at(2))


def test_cancel_of_expired_trade_refused():
    book = make_book()
    request(book, "t1")
    request(book, "t2", now=at(1), max_wait_seconds=5)
    engine.serve_queue(book, at(10))

    with pytest.raises(engine.Conflict):
        engine.cancel_trade(book, "t2", at(11))


# --- §4 Assignment ---------------------------------------------------------------------------


def test_martingale_off_gives_base_trades():
    book = make_book(martingale=False)
    add_lane(book, "idle-lane")

    trade = request(book, "t1")
    settle(book, "t1", "loss", now=at(1))
    follow_up = request(book, "t2", now=at(2))

    assert trade_summary(trade) == ("lost", "base", None, 0, D("1.00"))
    assert trade_summary(follow_up) == ("open", "base", None, 0, D("1.00"))
    assert set(book.lanes) == {"idle-lane"}
    assert book.events == []


def test_trade_joins_idle_lane_at_its_level_and_stake():
    book = make_book(base="2.00", multiplier="3.00")
    lane = add_lane(book, "L1", level=2)

    trade = request(book, "t1", now=at(1))

    assert trade_summary(trade) == ("open", "lane", "L1", 2, D("18.00"))
    assert events(book) == [("trade_assigned", "L1", "t1", {"level": 2, "amount": "18.00"})]
    assert lane.last_assigned_at == at(1)


def test_base_trade_when_every_lane_is_busy():
    book = make_book(concurrent_trading_enabled=True, max_concurrent_lanes=3)
    add_lane(book, "L1")

    in_lane, base = request(book, "t1"), request(book, "t2")

    assert trade_summary(in_lane) == ("open", "lane", "L1", 1, D("2.00"))
    assert trade_summary(base) == ("open", "base", None, 0, D("1.00"))


def test_opening_in_lane_adds_trade_to_trade_ids_and_both_totals():
    book = make_book()
    lane = lane_from_lost_base_trade(book, "t1")

    request(book, "t2", now=at(1), expected_payout=D("3.60"))

    assert lane.trade_ids == ["t1", "t2"]
    assert lane.total_invested == D("1.00") + D("2.00")
    assert lane.total_potential_payout == D("1.85") + D("3.60")


def test_expected_payout_defaults_to_stake_times_one_plus_payout_rate():
    book = make_book(payout_rate="0.845")

    default = request(book, "t1")
    settle(book, "t1", "draw", now=at(1))
    given = request(book, "t2", now=at(2), expected_payout=D("1.70"))

    assert default.expected_payout == D("1.85")
    assert given.expected_payout == D("1.70")


def test_fifo_picks_oldest_lane():
    book = make_book(lane_assignment_strategy="fifo")
    add_lane(book, "newer", created_at=at(10), pk=1)
    add_lane(book, "older", created_at=at(0), pk=2)

    assert request(book, "t1", now=at(20)).lane_id == "older"


def test_fifo_breaks_ties_by_id():
    book = make_book(lane_assignment_strategy="fifo")
    add_lane(book, "a", pk=2)
    add_lane(book, "b", pk=1)

    assert request(book, "t1", now=at(20)).lane_id == "b"


def test_round_robin_picks_least_recently_given_lane():
    book = make_book(lane_assignment_strategy="round_robin")
    add_lane(book, "A", created_at=at(0), pk=1)
    add_lane(book, "B", created_at=at(10), pk=2)
    add_lane(book, "C", created_at=at(20), pk=3)

    given = []
    for n, second in enumerate((30, 40, 50, 60)):
        trade = request(book, f"t{n}", now=at(second))
        given.append(trade.lane_id)
        settle(book, trade.trade_id, "draw", now=at(second + 1))

    assert given == ["A", "B", "C", "A"]


def test_round_robin_breaks_ties_by_id():
    book = make_book(lane_assignment_strategy="round_robin")
    add_lane(book, "a", pk=2)
    add_lane(book, "b", pk=1)

    assert request(book, "t1", now=at(20)).lane_id == "b"


def test_cancelled_trade_still_counts_as_given_for_round_robin():
    book = make_book(lane_assignment_strategy="round_robin")
    add_lane(book, "A", created_at=at(0), pk=1)
    add_lane(book, "B", created_at=at(10), pk=2)
    assert request(book, "t1", now=at(20)).lane_id == "A"
    engine.cancel_trade(book, "t1", at(21))

    assert request(book, "t2", now=at(30)).lane_id == "B"


def test_symbol_priority_picks_oldest_idle_lane_of_the_same_symbol():
    book = make_book(
        lane_assignment_strategy="symbol_priority", concurrent_trading_enabled=True, max_concurrent_lanes=3
    )
    add_lane(book, "eur", symbol="EURUSD", created_at=at(0), pk=1)
    add_lane(book, "gbp-old", symbol="GBPUSD", created_at=at(10), pk=2)
    add_lane(book, "gbp-new", symbol="GBPUSD", created_at=at(20), pk=3)

    first = request(book, "t1", now=at(30), symbol="GBPUSD")
    second = request(book, "t2", now=at(31), symbol="GBPUSD")

    assert (first.lane_id, second.lane_id) == ("gbp-old", "gbp-new")


def test_symbol_priority_falls_back_to_fifo():
    book = make_book(
        lane_assignment_strategy="symbol_priority", concurrent_trading_enabled=True, max_concurrent_lanes=3
    )
    add_lane(book, "gbp", symbol="GBPUSD", created_at=at(10), pk=1)
    add_lane(book, "eur", symbol="EURUSD", created_at=at(0), pk=2)
    add_lane(book, "jpy", symbol="USDJPY", created_at=at(20), pk=3)

    no_match = request(book, "t1", now=at(30), symbol="BTC/USD")
    match_busy = request(book, "t2", now=at(31), symbol="EURUSD")

    assert no_match.lane_id == "eur"
    assert match_busy.lane_id == "gbp"


def test_stake_and_lane_are_decided_when_trade_opens_not_when_queued():
    book = make_book(cool_down_seconds=30)
    request(book, "t1")
    settle(book, "t1", "draw", now=at(1))
    waiting = request(book, "t2", now=at(2))
    add_lane(book, "L1", created_at=at(3), level=3)

    engine.serve_queue(book, at(30))

    assert trade_summary(waiting) == ("open", "lane", "L1", 3, D("8.00"))


# --- §5 Results ------------------------------------------------------------------------------


def test_base_trade_loss_creates_lane():
    book = make_book(base="1.00", multiplier="1.50", max_level=4, payout_rate="0.90")
    request(book, "t1", now=at(0), symbol="GBPUSD", expected_payout=D("1.95"))

    assert settle(book, "t1", "loss", now=at(60)) is True

    (lane,) = book.lanes.values()
    assert lane.lane_id == "lane-1"
    assert (lane.symbol, lane.status, lane.outcome) == ("GBPUSD", "active", None)
    assert (lane.base_amount, lane.multiplier, lane.max_level) == (D("1.00"), D("1.50"), 4)
    assert (lane.current_level, lane.current_amount) == (1, D("1.50"))
    assert lane.trade_ids == ["t1"]
    assert (lane.total_invested, lane.total_potential_payout) == (D("1.00"), D("1.95"))
    assert lane.created_at == at(60)
    assert book.lanes_created_today == 1
    assert events(book) == [
        (
            "created", "lane-1", "t1",
            # exposure: the lane's remaining risk, 1.50 + 2.25 + 3.38 + 5.06 (SPEC §11)
            {"level": 1, "amount": "1.50", "base_amount": "1.00", "ladder_mode": "multiplier", "exposure": "12.19"},
        ),
    ]
    assert (lane.ladder_mode, lane.payout_rate, lane.net_profit) == ("multiplier", D("0.90"), D("-1.00"))


def test_lane_copies_multiplier_and_max_level_from_account_at_creation():
    book = make_book(multiplier="2.00", max_level=2)
    lane = lane_from_lost_base_trade(book, "t1")
    book.account.multiplier, book.account.max_level, book.account.base_amount = D("3.00"), 9, D("5.00")

    request(book, "t2", now=at(1))
    settle(book, "t2", "loss", now=at(2))

    assert book.trades["t2"].amount == D("2.00")
    assert (lane.current_level, lane.current_amount) == (2, D("4.00"))
    request(book, "t3", now=at(3))
    settle(book, "t3", "loss", now=at(4))
    assert (lane.status, lane.outcome) == ("completed", "exhausted")


@pytest.mark.parametrize("result", ["win", "draw"])
def test_base_trade_won_or_drawn_changes_no_lane(result):
    book = make_book()
    request(book, "t1")

    settle(book, "t1", result, now=at(1))

    assert book.lanes == {}
    assert book.events == []


def test_auto_create_off():
    book = make_book(auto_create_lanes=False)
    request(book, "t1", symbol="EURUSD")

    settle(book, "t1", "loss", now=at(1))

    assert book.lanes == {}
    assert events(book) == [
        ("not_created", None, "t1", {"reason": "auto_create_lanes is off", "symbol": "EURUSD"}),
    ]


def test_max_concurrent_lanes_refuses_creation():
    book = make_book(concurrent_trading_enabled=True, max_concurrent_lanes=2)
    request(book, "t1")
    request(book, "t2")
    settle(book, "t1", "loss", now=at(1))
    book.settings = replace(book.settings, max_concurrent_lanes=1)
    book.events.clear()

    settle(book, "t2", "loss", now=at(2))

    assert len(book.active_lanes()) == 1
    ((kind, lane_id, trade_id, data),) = events(book)
    assert (kind, lane_id, trade_id) == ("not_created", None, "t2")
    assert "max_concurrent_lanes" in data["reason"]


def test_daily_lane_limit_refuses_with_reason_event():
    book = make_book(concurrent_trading_enabled=True, max_concurrent_lanes=3, max_daily_lanes=1)
    request(book, "t1")
    request(book, "t2")
    settle(book, "t1", "loss", now=at(1))
    book.events.clear()

    settle(book, "t2", "loss", now=at(2))

    assert len(book.lanes) == 1
    ((kind, lane_id, trade_id, data),) = events(book)
    assert (kind, lane_id, trade_id) == ("not_created", None, "t2")
    assert "max_daily_lanes" in data["reason"]


def test_daily_lane_limit_counts_lanes_created_earlier_today():
    book = make_book(max_daily_lanes=10)
    book.lanes_created_today = 10
    request(book, "t1")

    settle(book, "t1", "loss", now=at(1))

    assert book.lanes == {}
    assert event_kinds(book) == ["not_created"]


def test_lane_trade_win_recovers_lane():
    book = make_book()
    lane = lane_from_lost_base_trade(book, "t1")
    request(book, "t2", now=at(1))
    book.events.clear()

    settle(book, "t2", "win", now=at(2))

    trade = book.trades["t2"]
    assert (trade.status, trade.payout, trade.profit) == ("won", D("3.70"), D("1.70"))
    assert (lane.status, lane.outcome, lane.completed_at) == ("completed", "recovered", at(2))
    assert (lane.current_level, lane.current_amount) == (1, D("2.00"))
    assert events(book) == [("recovered", lane.lane_id, "t2", {"level": 1, "profit": "1.70"})]


def test_lane_trade_loss_below_max_level_advances_lane():
    book = make_book(max_level=3)
    lane = lane_from_lost_base_trade(book, "t1")
    request(book, "t2", now=at(1))
    book.events.clear()

    settle(book, "t2", "loss", now=at(2))

    assert (lane.status, lane.current_level, lane.current_amount) == ("active", 2, D("4.00"))
    assert book.open_trade_of(lane.lane_id) is None
    assert (book.trades["t2"].profit, book.trades["t2"].payout) == (D("-2.00"), D("0.00"))
    assert events(book) == [("advanced", lane.lane_id, "t2", {"level": 2, "amount": "4.00"})]


def test_ladder_with_multiplier_one_and_a_half():
    book = make_book(multiplier="1.50", max_level=5)
    lane = lane_from_lost_base_trade(book, "t1")

    stakes = []
    for n in range(2, 5):
        stakes.append(request(book, f"t{n}", now=at(n)).amount)
        settle(book, f"t{n}", "loss", now=at(n))

    assert [book.trades["t1"].amount, *stakes] == [D("1.00"), D("1.50"), D("2.25"), D("3.38")]
    assert (lane.current_level, lane.current_amount) == (4, D("5.06"))


def test_loss_at_max_level_exhausts_lane():
    book = make_book(max_level=2)
    lane = lane_from_lost_base_trade(book, "t1")
    for n, level in ((2, 1), (3, 2)):
        assert request(book, f"t{n}", now=at(n)).level == level
        book.events.clear()
        settle(book, f"t{n}", "loss", now=at(n))

    assert (lane.status, lane.outcome, lane.completed_at) == ("completed", "exhausted", at(3))
    assert (lane.current_level, lane.current_amount) == (2, D("4.00"))
    assert lane.total_invested == D("7.00")
    assert events(book) == [("exhausted", lane.lane_id, "t3", {"level": 2, "total_invested": "7.00"})]
    assert request(book, "t4", now=at(4)).kind == "base"


def test_draw_leaves_lane_idle_and_unchanged():
    book = make_book()
    lane = lane_from_lost_base_trade(book, "t1")
    request(book, "t2", now=at(1))
    before = replace(lane, trade_ids=list(lane.trade_ids))
    book.events.clear()

    settle(book, "t2", "draw", now=at(2))

    assert lane == before
    assert book.open_trade_of(lane.lane_id) is None
    trade = book.trades["t2"]
    assert (trade.status, trade.payout, trade.profit) == ("draw", D("2.00"), D("0.00"))
    assert events(book) == [("draw", lane.lane_id, "t2", {"level": 1})]
    assert request(book, "t3", now=at(3)).lane_id == lane.lane_id


def test_cancel_of_open_lane_trade_takes_it_out_of_lane():
    book = make_book()
    lane = lane_from_lost_base_trade(book, "t1")
    settle(book, request(book, "t2", now=at(1)).trade_id, "loss", now=at(2))
    request(book, "t3", now=at(3))
    assert (lane.trade_ids, lane.total_invested) == (["t1", "t2", "t3"], D("7.00"))
    book.events.clear()

    engine.cancel_trade(book, "t3", at(4))

    assert lane.trade_ids == ["t1", "t2"]
    assert lane.total_invested == D("3.00")
    assert lane.total_potential_payout == D("1.85") + D("3.70")
    assert (lane.status, lane.current_level, lane.current_amount) == ("active", 2, D("4.00"))
    assert events(book) == [("trade_cancelled", lane.lane_id, "t3", {"level": 2, "amount": "4.00"})]


@pytest.mark.parametrize("result", ["win", "loss", "draw"])
def test_force_completed_lane_keeps_state_on_late_result(result):
    book = make_book()
    lane = lane_from_lost_base_trade(book, "t1")
    request(book, "t2", now=at(1))
    engine.complete_lane(book, lane.lane_id, "completed", at(2))
    before = replace(lane, trade_ids=list(lane.trade_ids))
    book.events.clear()

    settle(book, "t2", result, now=at(3))

    assert lane == before
    assert (lane.status, lane.outcome, lane.completed_at) == ("completed", "force_completed", at(2))
    assert book.trades["t2"].status == engine.RESULT_STATUS[result]
    assert book.events == []


def test_force_completed_lane_keeps_state_when_its_open_trade_is_cancelled():
    book = make_book()
    lane = lane_from_lost_base_trade(book, "t1")
    request(book, "t2", now=at(1))
    engine.complete_lane(book, lane.lane_id, "cancelled", at(2))
    before = replace(lane, trade_ids=list(lane.trade_ids))

    engine.cancel_trade(book, "t2", at(3))

    assert lane == before
    assert lane.outcome == "cancelled"


def test_repeat_result_is_harmless_and_different_result_conflicts():
    book = make_book()
    lane = lane_from_lost_base_trade(book, "t1")
    request(book, "t2", now=at(1))
    settle(book, "t2", "loss", now=at(2), payout=D("0.00"))
    after_first = (replace(lane, trade_ids=list(lane.trade_ids)), replace(book.trades["t2"]))
    book.events.clear()

    assert settle(book, "t2", "loss", now=at(3)) is False
    assert settle(book, "t2", "loss", now=at(4), payout=D("0.00")) is False
    assert (lane, book.trades["t2"]) == after_first
    assert book.events == []
    for different in ("win", "draw"):
        with pytest.raises(engine.Conflict) as refusal:
            settle(book, "t2", different, now=at(5))
        assert refusal.value.code == "conflict"
    assert (lane, book.trades["t2"]) == after_first


def test_result_for_queued_trade_refused():
    book = make_book()
    request(book, "t1")
    request(book, "t2", now=at(1))

    with pytest.raises(engine.Conflict):
        settle(book, "t2", "win", now=at(2))

    assert trade_summary(book.trades["t2"]) == ("queued", None, None, None, None)


def test_result_for_expired_trade_refused():
    book = make_book()
    request(book, "t1")
    request(book, "t2", now=at(1), max_wait_seconds=5)
    engine.serve_queue(book, at(6))

    with pytest.raises(engine.Conflict):
        settle(book, "t2", "loss", now=at(7))

    assert book.trades["t2"].status == "expired"


@pytest.mark.parametrize("was_open", [True, False])
def test_result_for_cancelled_trade_refused(was_open):
    book = make_book()
    request(book, "t1")
    request(book, "t2", now=at(1))
    engine.cancel_trade(book, "t1" if was_open else "t2", at(2))

    with pytest.raises(engine.Conflict):
        settle(book, "t1" if was_open else "t2", "win", now=at(3))


@pytest.mark.parametrize(
    "result, payout, expected_payout, expected_profit",
    [
        ("win", None, "1.85", "0.85"),
        ("win", "1.80", "1.80", "0.80"),
        ("loss", None, "0.00", "-1.00"),
        ("draw", None, "1.00", "0.00"),
    ],
)
def test_profit_is_payout_less_stake_on_win_minus_stake_on_loss_zero_on_draw(
    result, payout, expected_payout, expected_profit
):
    book = make_book()
    request(book, "t1")

    settle(book, "t1", result, now=at(1), payout=None if payout is None else D(payout))

    trade = book.trades["t1"]
    assert (trade.payout, trade.profit, trade.settled_at) == (D(expected_payout), D(expected_profit), at(1))


def test_stakes_round_half_up_to_cents():
    book = make_book(base="1.00", multiplier="1.15", max_level=7)
    lane = lane_from_lost_base_trade(book, "t0")

    stakes = []
    for level in range(1, 8):
        stakes.append(request(book, f"t{level}", now=at(level)).amount)
        settle(book, f"t{level}", "loss", now=at(level))

    by_hand = [(D("1.00") * D("1.15") ** k).quantize(D("0.01"), ROUND_HALF_UP) for k in range(1, 8)]
    assert stakes == by_hand == [D(s) for s in ("1.15", "1.32", "1.52", "1.75", "2.01", "2.31", "2.66")]
    assert lane.outcome == "exhausted"


@pytest.mark.parametrize(
    "base, multiplier, stake",
    [("0.10", "1.05", "0.11"), ("2.50", "1.01", "2.53"), ("0.50", "1.01", "0.51")],
)
def test_exact_half_cent_stake_rounds_up(base, multiplier, stake):
    book = make_book(base=base, multiplier=multiplier)
    lane = lane_from_lost_base_trade(book, "t1")

    assert lane.current_amount == D(stake)
    assert request(book, "t2", now=at(1)).amount == D(stake)


def test_complete_lane_sets_outcome_by_status():
    book = make_book(concurrent_trading_enabled=True, max_concurrent_lanes=3)
    completed = add_lane(book, "L1", pk=1)
    cancelled = add_lane(book, "L2", pk=2)
    request(book, "t1", now=at(1))

    engine.complete_lane(book, "L1", "completed", at(2))
    engine.complete_lane(book, "L2", "cancelled", at(3))

    assert (completed.status, completed.outcome, completed.completed_at) == ("completed", "force_completed", at(2))
    assert (cancelled.status, cancelled.outcome, cancelled.completed_at) == ("cancelled", "cancelled", at(3))
    assert events(book)[-2:] == [
        ("force_completed", "L1", "t1", {"level": 1, "status": "completed"}),
        ("cancelled", "L2", None, {"level": 1, "status": "cancelled"}),
    ]
    assert book.active_lanes() == []


def test_completing_a_finished_lane_refused():
    book = make_book()
    add_lane(book, "L1")
    engine.complete_lane(book, "L1", "completed", at(1))

    with pytest.raises(engine.Conflict):
        engine.complete_lane(book, "L1", "cancelled", at(2))

    assert book.lanes["L1"].outcome == "force_completed"


# --- §6 Legacy mode --------------------------------------------------------------------------


def play_legacy(book, results):
    """Open and settle one legacy trade per result; the (level, stake) each trade got."""
    seen = []
    for n, result in enumerate(results):
        trade = request(book, f"t{n}", now=at(n))
        assert trade.kind == "legacy"
        seen.append((trade.level, trade.amount))
        settle(book, trade.trade_id, result, now=at(n))
    return seen


def test_legacy_stake_grows_with_consecutive_losses():
    book = make_book(enhanced=False, base="1.00", multiplier="2.00", max_level=7)

    seen = play_legacy(book, ["loss", "loss", "loss", "loss"])

    assert seen == [(0, D("1.00")), (1, D("2.00")), (2, D("4.00")), (3, D("8.00"))]
    assert book.account.legacy_losses == 4
    assert book.account_dirty


def test_legacy_win_resets_progression():
    book = make_book(enhanced=False)

    seen = play_legacy(book, ["loss", "loss", "win", "loss"])

    assert [level for level, _ in seen] == [0, 1, 2, 0]
    assert book.account.legacy_losses == 1


def test_legacy_progression_resets_past_max_level():
    book = make_book(enhanced=False, base="1.00", multiplier="2.00", max_level=2)

    seen = play_legacy(book, ["loss", "loss", "loss", "loss"])

    assert seen == [(0, D("1.00")), (1, D("2.00")), (2, D("4.00")), (0, D("1.00"))]
    assert book.account.legacy_losses == 1


def test_legacy_draw_and_cancel_leave_progression():
    book = make_book(enhanced=False)
    play_legacy(book, ["loss", "loss", "draw"])
    request(book, "cancelled", now=at(10))
    engine.cancel_trade(book, "cancelled", at(11))

    assert book.account.legacy_losses == 2
    assert request(book, "next", now=at(12)).amount == D("4.00")


def test_legacy_mode_has_one_slot_and_no_lanes():
    book = make_book(enhanced=False, concurrent_trading_enabled=True, max_concurrent_lanes=5)

    first, second = request(book, "t1"), request(book, "t2")
    settle(book, "t1", "loss", now=at(1))

    assert book.slots() == 1
    assert (first.status, second.status) == ("lost", "open")
    assert book.lanes == {}
    assert book.events == []


def test_legacy_with_martingale_off_stakes_base_always():
    book = make_book(enhanced=False, martingale=False, base="2.50")

    seen = play_legacy(book, ["loss", "loss", "win"])

    assert seen == [(0, D("2.50"))] * 3
    assert book.account.legacy_losses == 0


def test_legacy_stakes_round_half_up_to_cents():
    book = make_book(enhanced=False, base="0.10", multiplier="1.05")

    seen = play_legacy(book, ["loss", "loss"])

    assert seen == [(0, D("0.10")), (1, D("0.11"))]


def test_legacy_fallback_serves_request_by_legacy_rules():
    book = make_book()
    add_lane(book, "L1")
    book.legacy_only = True

    trade = request(book, "t1")
    settle(book, "t1", "loss", now=at(1))

    assert trade_summary(trade) == ("lost", "legacy", None, 0, D("1.00"))
    assert set(book.lanes) == {"L1"}
    assert book.account.legacy_losses == 1


def test_a_legacy_k_above_a_lowered_max_level_counts_as_past_it():
    book = make_book(enhanced=False, base="1.00", multiplier="2.00", max_level=7)
    play_legacy(book, ["loss"] * 6)
    book.account.max_level = 2  # lowered by a person since

    trade = request(book, "after", now=at(20))

    assert (trade.level, trade.amount) == (0, D("1.00"))
    assert book.account.legacy_losses == 0 and book.account_dirty
    settle(book, "after", "loss", now=at(21))
    assert request(book, "next", now=at(22)).amount == D("2.00")


def test_legacy_level_is_k_within_the_max_level_and_zero_otherwise():
    account = make_book(enhanced=False, max_level=3).account
    for losses, level in ((0, 0), (3, 3), (4, 0), (9, 0)):
        account.legacy_losses = losses
        assert engine.legacy_level(account) == level
    account.martingale_enabled, account.legacy_losses = False, 2
    assert engine.legacy_level(account) == 0


# --- Payout bounds and profit (SPEC §5) ------------------------------------------------------------


@pytest.mark.parametrize(
    "result, payout, profit",
    [("win", "1.01", "0.01"), ("win", "99999999.99", "99999998.99"), ("loss", "0.00", "-1.00"), ("loss", "0.40", "-0.60"),
     ("loss", "0.99", "-0.01"), ("draw", "1.00", "0.00")],
)
def test_profit_is_payout_less_stake_for_every_result(result, payout, profit):
    book = make_book()
    request(book, "t1")
    settle(book, "t1", result, now=at(1), payout=D(payout))
    assert book.trades["t1"].profit == D(profit)


@pytest.mark.parametrize(
    "result, payout",
    [("win", "0.00"), ("win", "0.50"), ("win", "1.00"), ("loss", "1.00"), ("loss", "1.01"), ("draw", "0.99"), ("draw", "1.01")],
)
def test_a_payout_outside_the_result_s_bounds_is_refused_before_anything_changes(result, payout):
    book = make_book()
    lane = lane_from_lost_base_trade(book, "t0")
    request(book, "t1", now=at(1))  # a lane trade at 2.00
    payout = D(payout) * 2
    lane_before = (lane.status, lane.current_level, list(lane.trade_ids))
    events_before = list(book.events)

    with pytest.raises(engine.InvalidInput) as refused:
        settle(book, "t1", result, now=at(2), payout=payout)

    assert set(refused.value.errors) == {"payout"}
    assert book.trades["t1"].status == "open" and book.trades["t1"].payout is None
    assert (lane.status, lane.current_level, list(lane.trade_ids)) == lane_before
    assert book.events == events_before


def test_a_loss_with_a_partial_refund_still_advances_the_lane():
    book = make_book()
    lane = lane_from_lost_base_trade(book, "t0")
    request(book, "t1", now=at(1))
    settle(book, "t1", "loss", now=at(2), payout=D("0.50"))
    assert (lane.current_level, book.trades["t1"].profit) == (2, D("-1.50"))


# --- Every stored amount fits its column (SPEC §5) ---------------------------------------------------


def test_a_requested_payout_that_would_overflow_the_lane_it_joins_is_refused():
    book = make_book()
    request(book, "t0", expected_payout=D("99999999.99"))
    settle(book, "t0", "loss", now=at(1))
    (lane,) = book.lanes.values()

    with pytest.raises(engine.InvalidInput) as refused:
        request(book, "t1", now=at(2), expected_payout=D("99999999.99"))

    assert set(refused.value.errors) == {"expected_payout"}
    assert "t1" not in book.trades and lane.trade_ids == ["t0"]


def test_a_full_lane_is_passed_over_by_a_trade_without_a_requested_payout():
    book = make_book(concurrent_trading_enabled=True, max_concurrent_lanes=3)
    full = add_lane(book, "L1", created_at=at(-10))
    full.total_potential_payout = D("99999999.99")
    spare = add_lane(book, "L2", created_at=at(-5))

    trade = request(book, "t1")
    assert (trade.kind, trade.lane_id) == ("lane", "L2")
    assert engine.lane_is_full(full, book.account.payout_rate) and not engine.lane_is_full(spare, book.account.payout_rate)
    assert request(book, "t2", now=at(1)).kind == "base"


@pytest.mark.parametrize("trades", [engine.MAX_LANE_TRADES - 1, engine.MAX_LANE_TRADES])
def test_a_lane_records_at_most_max_lane_trades(trades):
    book = make_book()
    lane = add_lane(book, "L1")
    lane.trade_ids = [f"x{n}" for n in range(trades)]
    trade = request(book, "t1")
    assert trade.kind == ("lane" if trades < engine.MAX_LANE_TRADES else "base")
    engine.cancel_trade(book, "t1", at(1))
    with_payout = request(book, "t2", now=at(2), expected_payout=D("3.00"))  # a full list is passed over, not refused
    assert with_payout.kind == ("lane" if trades < engine.MAX_LANE_TRADES else "base")
    # Trade ids of the longest allowed length still fit the TEXT column.
    assert len(json.dumps(["x" * 100] * engine.MAX_LANE_TRADES)) <= ranges.TRADE_IDS_MAX_CHARS


def test_a_queued_trade_whose_payout_cannot_be_recorded_expires_when_served():
    book = make_book(cool_down_seconds=60)
    request(book, "t0", expected_payout=D("99999999.99"))
    settle(book, "t0", "loss", now=at(1))
    queued = request(book, "t1", now=at(2), expected_payout=D("99999999.99"), max_wait_seconds=300)
    assert queued.status == "queued"

    engine.serve_queue(book, at(61))

    assert queued.status == "expired" and queued.settled_at == at(61)
    assert any("t1" in note and "expected_payout" in note for note in book.notes)


def test_no_lane_is_created_whose_top_stake_would_not_fit():
    book = make_book(base="40000000.00", multiplier="1.01", max_level=1)
    request(book, "big")
    book.account.multiplier, book.account.max_level = D("999.99"), 2  # the settings changed since
    settle(book, "big", "loss", now=at(1))
    assert book.lanes == {}
    assert [e.kind for e in book.events] == ["not_created"]
    assert "the stake at level 2 would be" in book.events[0].data["reason"]


def test_ladder_problem_names_the_field_for_stakes_totals_and_payouts():
    assert engine.ladder_problem(D("1.00"), D("2.00"), 7, D("0.85")) is None
    assert engine.ladder_problem(D("1000000.00"), D("3.00"), 20, D("0.85"))[0] == "martingale_multiplier"
    assert "invested" in engine.ladder_problem(D("40000000.00"), D("1.50"), 1, D("0.01"))[1]
    assert engine.ladder_problem(D("30000000.00"), D("1.01"), 1, D("0.85"))[0] == "payout_rate"


# --- Results entered by hand --------------------------------------------------------------------------


def test_a_result_entered_by_hand_is_an_event_of_the_audit_trail():
    book = make_book()
    lane = lane_from_lost_base_trade(book, "t0")
    request(book, "t1", now=at(1))
    book.events.clear()

    engine.settle_trade(book, "t1", "win", None, at(2), lambda: "new", by_hand=True)

    assert [(e.kind, e.lane_id, e.trade_id) for e in book.events] == [
        ("settled_by_hand", lane.lane_id, "t1"), ("recovered", lane.lane_id, "t1")
    ]
    assert book.events[0].data == {"result": "win", "payout": "3.70", "profit": "1.70"}


# --- Mutations the suite must kill ---------------------------------------------------------------------


def test_a_request_with_max_wait_zero_opens_behind_only_expired_requests():
    book = make_book(cool_down_seconds=60)
    request(book, "t0")
    settle(book, "t0", "win", now=at(1))
    expired = request(book, "t1", now=at(2), max_wait_seconds=5)  # waits for the cool-down, expires at 7 s
    assert expired.status == "queued"

    trade = request(book, "t2", now=at(61), max_wait_seconds=0)

    assert (expired.status, trade.status) == ("expired", "open")


def test_completing_a_lane_serves_the_queue():
    book = make_book(cool_down_seconds=60)
    lane = lane_from_lost_base_trade(book, "t0")
    waiting = request(book, "t1", now=at(1), max_wait_seconds=300)
    assert waiting.status == "queued"

    engine.complete_lane(book, lane.lane_id, "completed", at(70))

    assert (waiting.status, waiting.kind, waiting.opened_at) == ("open", "base", at(70))


def test_a_reset_serves_the_queue_once_every_lane_is_ended():
    book = make_book(concurrent_trading_enabled=True, max_concurrent_lanes=3, cool_down_seconds=30)
    request(book, "b1")
    settle(book, "b1", "loss", now=at(1))
    waiting = request(book, "q1", now=at(2), max_wait_seconds=300)
    assert waiting.status == "queued"

    engine.complete_all_lanes(book, "completed", at(40))

    assert (waiting.status, waiting.kind, waiting.lane_id) == ("open", "base", None)
    assert all(lane.status == "completed" and lane.trade_ids == ["b1"] for lane in book.lanes.values())
