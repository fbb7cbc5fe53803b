"""The reads: lane lists, account status, the status of every account and the statistics
(SPEC §9), on histories built through the services with explicit times."""
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from lanes import engine, selectors, services
from lanes.models import Lane
from lanes.ranges import InvalidInput

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=dt_timezone.utc)
pytestmark = pytest.mark.django_db

STATS_KEYS = {
    "lanes_created", "lanes_active", "lanes_recovered", "lanes_exhausted", "lanes_cancelled",
    "recovery_rate", "avg_level", "max_level", "total_invested", "total_potential_payout",
    "trades", "wins", "losses", "draws", "win_rate", "net_profit", "by_level", "by_symbol", "daily",
}


def make_account(name="acc", **values):
    defaults = {"base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": 3, "balance": "100.00"}
    return services.account_create(name=name, values={**defaults, **values})


def ask(trade_id, at, *, account="acc", symbol="EURUSD", **kwargs):
    request = engine.Request(trade_id=trade_id, symbol=symbol, **kwargs)
    return services.trade_open(account_name=account, request=request, actor="test", now=at)


def settle(trade_id, result, at):
    return services.trade_settle(trade_id=trade_id, result=result, actor="test", now=at)


def play(trade_id, result, at, **kwargs):
    """Open a trade and settle it a minute later; returns the settled outcome."""
    ask(trade_id, at, **kwargs)
    return settle(trade_id, result, at + timedelta(minutes=1))


def build_history():
    """One account, max level 3, one trade at a time; returns the lanes by name.

    T0-8d   b0 lost -> L0, cancelled by hand                        (outside a 7-day window)
    T0-2d   b1 lost -> L1; l1 won at level 1 -> L1 recovered
    T0-1d   b2 lost (GBPUSD) -> L2; x1, x2, x3 lost -> L2 exhausted at level 3
    T0      b3 won, b4 drawn, b5 lost -> L3; y1 opens on L3 and stays open
    """
    make_account()
    lanes = {}
    lanes["L0"] = play("b0", "loss", T0 - timedelta(days=8)).lane
    services.lane_force_complete(lane_id=lanes["L0"].lane_id, status="cancelled", actor="test", now=T0 - timedelta(days=8, minutes=-5))
    day = T0 - timedelta(days=2)
    lanes["L1"] = play("b1", "loss", day).lane
    play("l1", "win", day + timedelta(minutes=5))
    day = T0 - timedelta(days=1)
    lanes["L2"] = play("b2", "loss", day, symbol="GBPUSD").lane
    for n, trade_id in enumerate(("x1", "x2", "x3"), start=1):
        play(trade_id, "loss", day + timedelta(minutes=5 * n), symbol="GBPUSD")
    play("b3", "win", T0)
    play("b4", "draw", T0 + timedelta(minutes=5))
    lanes["L3"] = play("b5", "loss", T0 + timedelta(minutes=10)).lane
    ask("y1", T0 + timedelta(minutes=15))
    return lanes


# --- Statistics --------------------------------------------------------------------------------


def test_stats_count_lanes_and_trades_of_the_window():
    build_history()
    stats = selectors.stats_get(days=7, now=T0 + timedelta(hours=1))
    assert STATS_KEYS <= set(stats)
    assert (stats["account"], stats["days"]) == (None, 7)
    assert stats["since"] == (T0 + timedelta(hours=1) - timedelta(days=7)).isoformat()
    assert {k: stats[k] for k in ("lanes_created", "lanes_active", "lanes_recovered", "lanes_exhausted", "lanes_cancelled", "lanes_force_completed")} == {
        "lanes_created": 3, "lanes_active": 1, "lanes_recovered": 1, "lanes_exhausted": 1, "lanes_cancelled": 0, "lanes_force_completed": 0,
    }
    assert stats["recovery_rate"] == 0.5
    assert stats["avg_level"] == 1.67  # levels 1, 3 and 1
    assert stats["max_level"] == 3
    assert stats["total_invested"] == "21.00"  # 1+2, 1+2+4+8, 1+2
    assert stats["total_potential_payout"] == "38.85"
    assert (stats["trades"], stats["wins"], stats["losses"], stats["draws"]) == (10, 2, 6, 1)
    assert stats["trades_open"] == 1
    assert stats["win_rate"] == 0.25
    assert stats["net_profit"] == "-14.45"


def test_stats_by_level_splits_trades_and_outcomes_by_level():
    build_history()
    by_level = selectors.stats_get(days=7, now=T0 + timedelta(hours=1))["by_level"]
    assert by_level == [
        {"level": 0, "trades": 5, "wins": 1, "losses": 3, "draws": 1, "net_profit": "-2.15", "lanes_recovered": 0, "lanes_exhausted": 0},
        {"level": 1, "trades": 3, "wins": 1, "losses": 1, "draws": 0, "net_profit": "-0.30", "lanes_recovered": 1, "lanes_exhausted": 0},
        {"level": 2, "trades": 1, "wins": 0, "losses": 1, "draws": 0, "net_profit": "-4.00", "lanes_recovered": 0, "lanes_exhausted": 0},
        {"level": 3, "trades": 1, "wins": 0, "losses": 1, "draws": 0, "net_profit": "-8.00", "lanes_recovered": 0, "lanes_exhausted": 1},
    ]


def test_stats_by_symbol_has_win_rate_and_lanes_per_symbol():
    build_history()
    by_symbol = selectors.stats_get(days=7, now=T0 + timedelta(hours=1))["by_symbol"]
    assert [row["symbol"] for row in by_symbol] == ["EURUSD", "GBPUSD"]
    eur, gbp = by_symbol
    assert (eur["trades"], eur["wins"], eur["losses"], eur["draws"], eur["win_rate"], eur["net_profit"], eur["lanes_created"]) == (
        6, 2, 2, 1, 0.5, "0.55", 2,
    )
    assert (gbp["trades"], gbp["wins"], gbp["losses"], gbp["win_rate"], gbp["net_profit"], gbp["lanes_created"], gbp["lanes_exhausted"]) == (
        4, 0, 4, 0.0, "-15.00", 1, 1,
    )


def test_stats_daily_has_every_date_of_the_window_zero_filled():
    build_history()
    daily = selectors.stats_get(days=7, now=T0 + timedelta(hours=1))["daily"]
    assert [row["date"] for row in daily] == [f"2026-10-{d}" for d in range(26, 32)] + ["2026-11-01", "2026-11-02"]
    by_date = {row["date"]: row for row in daily}
    assert by_date["2026-10-31"] == {
        "date": "2026-10-31", "trades": 2, "wins": 1, "losses": 1, "draws": 0, "net_profit": "0.70",
        "lanes_created": 1, "lanes_recovered": 1, "lanes_exhausted": 0,
    }
    assert (by_date["2026-11-01"]["trades"], by_date["2026-11-01"]["net_profit"], by_date["2026-11-01"]["lanes_exhausted"]) == (4, "-15.00", 1)
    assert (by_date["2026-11-02"]["trades"], by_date["2026-11-02"]["draws"], by_date["2026-11-02"]["lanes_created"]) == (4, 1, 1)
    assert by_date["2026-10-27"] == {
        "date": "2026-10-27", "trades": 0, "wins": 0, "losses": 0, "draws": 0, "net_profit": "0.00",
        "lanes_created": 0, "lanes_recovered": 0, "lanes_exhausted": 0,
    }
    assert sum(row["trades"] for row in daily) == 10
    assert sum(Decimal(row["net_profit"]) for row in daily) == Decimal("-14.45")


def test_stats_over_a_longer_window_include_older_lanes():
    build_history()
    stats = selectors.stats_get(days=30, now=T0 + timedelta(hours=1))
    assert (stats["lanes_created"], stats["lanes_cancelled"], stats["trades"]) == (4, 1, 11)
    assert stats["net_profit"] == "-15.45"
    assert len(stats["daily"]) == 31


@override_settings(TIME_ZONE="America/New_York")
def test_stats_daily_dates_are_days_of_the_time_zone():
    make_account()
    play("late", "loss", datetime(2026, 11, 2, 3, 0, tzinfo=dt_timezone.utc))  # 22:00 on Nov 1 in New York
    daily = selectors.stats_get(days=1, now=datetime(2026, 11, 2, 12, 0, tzinfo=dt_timezone.utc))["daily"]
    assert [(row["date"], row["trades"], row["lanes_created"]) for row in daily] == [("2026-11-01", 1, 1), ("2026-11-02", 0, 0)]


def test_stats_window_includes_its_start_and_excludes_older_and_later():
    now = T0
    since = now - timedelta(days=1)
    for name in ("early", "edge", "later"):
        make_account(name)
    ask("t-early", since - timedelta(seconds=1), account="early")
    settle("t-early", "loss", since - timedelta(seconds=1))
    ask("t-edge", since, account="edge")
    settle("t-edge", "loss", since)
    ask("t-later", now + timedelta(seconds=1), account="later")
    stats = selectors.stats_get(days=1, now=now)
    assert (stats["trades"], stats["lanes_created"], stats["net_profit"]) == (1, 1, "-1.00")
    assert stats["by_symbol"][0]["lanes_created"] == 1


def test_stats_of_nothing_are_zero_not_errors():
    make_account()
    stats = selectors.stats_get(days=3, now=T0)
    assert (stats["recovery_rate"], stats["win_rate"], stats["avg_level"], stats["max_level"]) == (0.0, 0.0, 0.0, 0)
    assert (stats["net_profit"], stats["total_invested"], stats["total_potential_payout"]) == ("0.00", "0.00", "0.00")
    assert (stats["by_level"], stats["by_symbol"]) == ([], [])
    assert len(stats["daily"]) == 4
    assert all(row["trades"] == 0 and row["net_profit"] == "0.00" for row in stats["daily"])


def test_stats_of_one_account_leave_the_others_out():
    build_history()
    make_account("other")
    play("o1", "loss", T0, account="other")
    mine = selectors.stats_get(account="acc", days=7, now=T0 + timedelta(hours=1))
    theirs = selectors.stats_get(account="other", days=7, now=T0 + timedelta(hours=1))
    everyone = selectors.stats_get(days=7, now=T0 + timedelta(hours=1))
    assert (mine["account"], mine["trades"], mine["lanes_created"], mine["net_profit"]) == ("acc", 10, 3, "-14.45")
    assert (theirs["trades"], theirs["lanes_created"], theirs["net_profit"]) == (1, 1, "-1.00")
    assert (everyone["trades"], everyone["lanes_created"]) == (11, 4)


def test_stats_within_a_token_scope_count_only_its_accounts():
    build_history()
    make_account("other")
    play("o1", "loss", T0, account="other")
    scoped = selectors.stats_get(days=7, account_names=["other"], now=T0 + timedelta(hours=1))
    assert (scoped["trades"], scoped["lanes_created"]) == (1, 1)
    with pytest.raises(services.Forbidden):
        selectors.stats_get(account="acc", account_names=["other"], now=T0)


def test_stats_of_an_unknown_account_is_not_found():
    with pytest.raises(services.NotFound, match="account ghost not found"):
        selectors.stats_get(account="ghost")


@pytest.mark.parametrize(
    "days, message",
    [
        (0, "must be from 1 to 365"),
        (366, "must be from 1 to 365"),
        (-1, "must be from 1 to 365"),
        ("abc", "must be a whole number from 1 to 365"),
        ("7.5", "must be a whole number from 1 to 365"),
        (True, "must be a whole number from 1 to 365"),
        (None, "must be a whole number from 1 to 365"),
        (7.0, "must be a whole number from 1 to 365"),
    ],
)
def test_stats_refuse_days_outside_1_to_365(days, message):
    with pytest.raises(InvalidInput) as caught:
        selectors.stats_get(days=days)
    assert caught.value.errors == {"days": message}


def test_stats_take_days_as_text():
    assert selectors.stats_get(days="30", now=T0)["days"] == 30


# --- Lanes -----------------------------------------------------------------------------------


def lane_ids(lanes):
    return [lane.lane_id for lane in lanes]


def test_lane_page_lists_lanes_oldest_first_whatever_their_status():
    lanes = build_history()
    make_account("two", martingale_max_level=5)
    newer = play("n1", "loss", T0 + timedelta(hours=2), account="two").lane
    active, cursor = selectors.lane_page(status="active")
    assert (lane_ids(active), cursor) == ([lanes["L3"].lane_id, newer.lane_id], None)
    everything, _ = selectors.lane_page()
    assert lane_ids(everything) == [
        lanes["L0"].lane_id, lanes["L1"].lane_id, lanes["L2"].lane_id, lanes["L3"].lane_id, newer.lane_id,
    ]
    assert lane_ids(selectors.lane_page(status="completed")[0]) == [lanes["L1"].lane_id, lanes["L2"].lane_id]
    assert lane_ids(selectors.lane_page(status="cancelled")[0]) == [lanes["L0"].lane_id]


def test_lane_page_annotates_the_open_trade():
    lanes = build_history()
    by_id = {lane.lane_id: lane for lane in selectors.lane_page()[0]}
    assert by_id[lanes["L3"].lane_id].open_trade_id == "y1"
    assert by_id[lanes["L1"].lane_id].open_trade_id is None


def test_lane_page_filters_by_account_and_scope():
    build_history()
    make_account("two")
    other = play("n1", "loss", T0 + timedelta(hours=2), account="two").lane
    assert lane_ids(selectors.lane_page(account="two")[0]) == [other.lane_id]
    assert lane_ids(selectors.lane_page(account_names=["two"])[0]) == [other.lane_id]
    assert selectors.lane_page(account_names=[]) == ([], None)
    with pytest.raises(services.Forbidden):
        selectors.lane_page(account="acc", account_names=["two"])


def test_pages_follow_each_other_without_gap_or_repeat_and_the_last_says_so():
    lanes = build_history()
    make_account("two")
    other = play("n1", "loss", T0 + timedelta(hours=2), account="two").lane
    pages, cursor = [], None
    while True:
        page, cursor = selectors.lane_page(limit=2, cursor=cursor)
        pages.append(lane_ids(page))
        if cursor is None:
            break
    assert pages == [
        [lanes["L0"].lane_id, lanes["L1"].lane_id], [lanes["L2"].lane_id, lanes["L3"].lane_id], [other.lane_id]
    ]
    assert lane_ids(selectors.lane_iter()) == sum(pages, [])


def test_lanes_created_in_the_same_instant_are_paged_by_id():
    make_account("same", martingale_max_level=5)
    services.settings_update(account_name="same", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 5}, actor="t")
    for k in range(5):
        ask(f"s{k}", T0, account="same")
    for k in range(5):
        settle(f"s{k}", "loss", T0 + timedelta(minutes=1))  # five lanes created at one instant
    first, cursor = selectors.lane_page(account="same", limit=3)
    second, last = selectors.lane_page(account="same", limit=3, cursor=cursor)
    assert len(first) == 3 and len(second) == 2 and last is None
    assert set(lane_ids(first)).isdisjoint(lane_ids(second))
    assert [lane.pk for lane in first + second] == sorted(lane.pk for lane in first + second)


@pytest.mark.parametrize("limit", [0, 1001, "x", "2.5", True])
def test_lane_page_refuses_a_limit_outside_1_to_1000(limit):
    with pytest.raises(InvalidInput) as caught:
        selectors.lane_page(limit=limit)
    assert set(caught.value.errors) == {"limit"}


@pytest.mark.parametrize("cursor", ["", "x", "bm90IGEgY3Vyc29y", "MjAyNS0wMS0wMVQwMDowMDowMHwx"])
def test_lane_page_refuses_a_cursor_it_did_not_give(cursor):
    with pytest.raises(InvalidInput) as caught:
        selectors.lane_page(cursor=cursor)
    assert set(caught.value.errors) == {"cursor"}


def test_lane_page_refuses_an_unknown_status():
    with pytest.raises(InvalidInput) as caught:
        selectors.lane_page(status="finished")
    assert caught.value.errors == {"status": "must be one of active, completed, cancelled"}


def test_lane_get_reads_one_lane_with_its_open_trade():
    lanes = build_history()
    lane = selectors.lane_get(lane_id=lanes["L3"].lane_id)
    assert (lane.account_name, lane.symbol, lane.current_level, lane.open_trade_id) == ("acc", "EURUSD", 1, "y1")
    with pytest.raises(services.NotFound, match="lane nope not found"):
        selectors.lane_get(lane_id="nope")


def test_lane_events_and_trades_come_in_order():
    lanes = build_history()
    lane = Lane.objects.get(lane_id=lanes["L2"].lane_id)
    events = selectors.lane_events(lane=lane)
    assert [(e.kind, e.trade_id) for e in events] == [
        ("created", "b2"), ("trade_assigned", "x1"), ("advanced", "x1"), ("trade_assigned", "x2"),
        ("advanced", "x2"), ("trade_assigned", "x3"), ("exhausted", "x3"),
    ]
    trades = selectors.lane_trades(lane=lane)
    assert [(t.trade_id, t.level, t.amount, t.lane_id) for t in trades] == [
        ("x1", 1, Decimal("2.00"), lane.lane_id), ("x2", 2, Decimal("4.00"), lane.lane_id), ("x3", 3, Decimal("8.00"), lane.lane_id),
    ]


# --- Accounts and settings ------------------------------------------------------------------------


def test_settings_get_answers_the_defaults_before_the_first_write():
    make_account()
    assert selectors.settings_get(account_name="acc") == {
        "account": "acc", "concurrent_trading_enabled": False, "max_concurrent_lanes": 3,
        "lane_assignment_strategy": "fifo", "auto_create_lanes": True, "cool_down_seconds": 0, "max_daily_lanes": 10,
        "ladder_mode": "multiplier", "max_stake": None, "max_exposure": None, "daily_stop_loss": None,
        "daily_take_profit": None, "max_exhausted_lanes": None, "exhausted_window_hours": 24, "lock_minutes": 60,
    }
    services.settings_update(account_name="acc", values={"max_concurrent_lanes": 5, "cool_down_seconds": 30}, actor="test")
    settings = selectors.settings_get(account_name="acc")
    assert (settings["max_concurrent_lanes"], settings["cool_down_seconds"]) == (5, 30)
    with pytest.raises(services.NotFound, match="account ghost not found"):
        selectors.settings_get(account_name="ghost")


def test_account_get_reads_the_account_with_its_settings():
    make_account()
    services.settings_update(account_name="acc", values={"max_daily_lanes": 4}, actor="test")
    account = selectors.account_get(account_name="acc")
    assert (account.worker_name, account.trading_settings.max_daily_lanes) == ("acc", 4)
    with pytest.raises(services.NotFound):
        selectors.account_get(account_name="ghost")


def test_account_status_shows_lanes_trades_queue_and_today():
    make_account()
    play("y", "loss", T0 - timedelta(days=1))  # yesterday: a lane and a loss, not today's
    services.lane_force_complete(lane_id=Lane.objects.get().lane_id, actor="test", now=T0 - timedelta(hours=20))
    play("b1", "win", T0)
    lane = play("b2", "loss", T0 + timedelta(minutes=5)).lane
    ask("l1", T0 + timedelta(minutes=10))
    ask("q1", T0 + timedelta(minutes=11), max_wait_seconds=600)
    ask("q2", T0 + timedelta(minutes=12), max_wait_seconds=600)
    status = selectors.account_status_get(account_name="acc", now=T0 + timedelta(minutes=12))
    assert status["account"]["worker_name"] == "acc"
    assert status["account"]["balance"] == "100.00"
    assert status["settings"]["max_concurrent_lanes"] == 3
    assert (status["mode"], status["slots"], status["free_slots"]) == ("enhanced", 1, 0)
    assert [(l["lane_id"], l["open_trade_id"], l["current_amount"]) for l in status["active_lanes"]] == [(lane.lane_id, "l1", "2.00")]
    assert [(t["trade_id"], t["kind"], t["lane_id"], t["amount"]) for t in status["open_trades"]] == [("l1", "lane", lane.lane_id, "2.00")]
    assert [(t["trade_id"], t["queue_position"], t["amount"]) for t in status["queued_trades"]] == [("q1", 1, None), ("q2", 2, None)]
    assert status["lanes_created_today"] == 1
    assert status["net_profit_today"] == "-0.15"  # +0.85 - 1.00; yesterday's loss is not today's
    assert (status["lane_worst_case"], status["worst_case_exposure"]) == ("15.00", "45.00")  # 3 × (1+2+4+8)


def test_account_status_slots_follow_concurrency_and_legacy_mode():
    make_account()
    make_account("old", enhanced_martingale_enabled=False)
    make_account("flat", martingale_enabled=False)
    for name in ("acc", "old", "flat"):
        services.settings_update(account_name=name, values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 4}, actor="test")
    statuses = {s["account"]["worker_name"]: s for s in selectors.status_all(now=T0)["accounts"]}
    assert (statuses["acc"]["slots"], statuses["acc"]["worst_case_exposure"]) == (4, "60.00")
    assert (statuses["old"]["mode"], statuses["old"]["slots"], statuses["old"]["worst_case_exposure"]) == ("legacy", 1, "15.00")
    assert (statuses["flat"]["slots"], statuses["flat"]["worst_case_exposure"]) == (4, "4.00")


def test_account_status_of_an_unknown_account_is_not_found():
    with pytest.raises(services.NotFound, match="account ghost not found"):
        selectors.account_status_get(account_name="ghost")


def test_status_all_lists_only_enabled_accounts_within_the_scope():
    make_account("a")
    make_account("b")
    make_account("off", enabled=False)
    status = selectors.status_all(now=T0)
    assert status["generated_at"] == T0.isoformat()
    assert [s["account"]["worker_name"] for s in status["accounts"]] == ["a", "b"]
    scoped = selectors.status_all(account_names=["b", "off"], now=T0)
    assert [s["account"]["worker_name"] for s in scoped["accounts"]] == ["b"]


# --- Query counts -----------------------------------------------------------------------------------


def build_accounts(first, last, lanes_each):
    """Accounts ``acc<first>``… each with ``lanes_each`` lanes (one recovered), open and queued trades."""
    for n in range(first, last):
        name = f"acc{n:02d}"
        make_account(name, martingale_max_level=5)
        services.settings_update(
            account_name=name, values={"concurrent_trading_enabled": True, "max_concurrent_lanes": lanes_each + 1}, actor="test"
        )
        for k in range(lanes_each):
            ask(f"{name}-b{k}", T0, account=name, symbol=f"SYM{k}")
        for k in range(lanes_each):
            settle(f"{name}-b{k}", "loss", T0 + timedelta(minutes=1))
        play(f"{name}-w", "win", T0 + timedelta(minutes=2), account=name)
        for k in range(lanes_each + 1):
            ask(f"{name}-o{k}", T0 + timedelta(minutes=5), account=name)
        ask(f"{name}-q", T0 + timedelta(minutes=6), account=name)


READS = {
    "status_all": lambda: selectors.status_all(now=T0 + timedelta(minutes=10)),
    "account_status_get": lambda: selectors.account_status_get(account_name="acc00", now=T0 + timedelta(minutes=10)),
    "stats_get": lambda: selectors.stats_get(days=7, now=T0 + timedelta(minutes=10)),
    "stats_get of one account": lambda: selectors.stats_get(account="acc00", days=30, now=T0 + timedelta(minutes=10)),
    "lane_page": lambda: selectors.lane_page(limit=1000),
}
# The status reads 6: the accounts, live trades, lanes, today's lanes and profit, the active locks (SPEC §11).
QUERY_BOUNDS = {"status_all": 6, "account_status_get": 6, "stats_get": 8, "stats_get of one account": 9, "lane_page": 1}


@pytest.mark.parametrize("read", list(READS))
def test_reads_take_the_same_number_of_queries_for_1_or_20_accounts(read, django_assert_max_num_queries):
    build_accounts(0, 1, 1)
    with CaptureQueriesContext(connection) as small:
        READS[read]()
    assert len(small) <= QUERY_BOUNDS[read]
    build_accounts(1, 20, 4)
    assert Lane.objects.count() == 1 + 19 * 4
    with django_assert_max_num_queries(len(small)):
        result = READS[read]()
    if read == "status_all":
        assert len(result["accounts"]) == 20
        assert all(len(s["queued_trades"]) == 1 and len(s["open_trades"]) >= 2 for s in result["accounts"])
        assert sum(len(s["active_lanes"]) for s in result["accounts"]) == 0 + 19 * 3
