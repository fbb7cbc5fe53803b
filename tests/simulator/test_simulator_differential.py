"""The simulator against the live service (issue 11): the same stream replayed through the services
(the database, a controlled clock) and through the simulator gives the same lane histories, trade
by trade: kinds, levels, stakes, outcomes, totals, and the same requests refused."""
import heapq
import random
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest

from lanes import engine, services
from lanes.models import Lane, LaneEvent, Trade
from lanes.simulator import configs, runner, streams

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 3, 2, 22, 30, tzinfo=dt_timezone.utc)  # the stream crosses midnights


def signal_stream(seed, count=240):
    """Requests a few seconds to minutes apart, on three symbols, with results due after 0 to 4
    minutes, so trades overlap, some requests find no free slot and some results share an instant."""
    rng = random.Random(seed)
    at = T0
    rows = []
    for line in range(1, count + 1):
        at += timedelta(seconds=rng.choice([0, 5, 30, 60, 60, 120, 900]))
        result = rng.choices(["win", "loss", "draw"], [45, 50, 5])[0]
        rows.append(streams.Signal(at, rng.choice(["EURUSD", "GBPUSD", "BTCUSD"]), result, None, rng.choice([0, 30, 60, 120, 240]), line))
    return rows


def replay_live(account, signals):
    """The stream through the services, in the order of SPEC §12: results due by a request's time
    first (by time, then row), then the request with max_wait_seconds 0."""
    pending, skipped = [], []

    def settle_due(until):
        while pending and (until is None or pending[0][0] <= until):
            at, _, trade_id, signal = heapq.heappop(pending)
            services.trade_settle(trade_id=trade_id, result=signal.result, payout=signal.payout, actor="diff", now=at)

    for signal in signals:
        settle_due(signal.at)
        request = engine.Request(trade_id=f"r{signal.line}", symbol=signal.symbol, max_wait_seconds=0)
        try:
            services.trade_open(account_name=account, request=request, actor="diff", now=signal.at)
        except engine.Refused as refused:
            skipped.append((f"r{signal.line}", refused.code))
            continue
        heapq.heappush(pending, (signal.at + timedelta(seconds=signal.expiry_seconds), signal.line, f"r{signal.line}", signal))
    settle_due(None)
    return skipped


LANE_FIELDS = (
    "symbol", "status", "outcome", "current_level", "base_amount", "current_amount", "multiplier", "max_level",
    "total_invested", "total_potential_payout", "trade_ids", "created_at", "completed_at", "ladder_mode", "payout_rate",
    "net_profit",
)
TRADE_FIELDS = ("trade_id", "symbol", "kind", "level", "amount", "expected_payout", "status", "payout", "profit", "opened_at", "settled_at")


@pytest.mark.parametrize(
    "account_values, settings_values",
    [
        ({}, {}),
        ({"martingale_multiplier": "2.20", "martingale_max_level": 4}, {"concurrent_trading_enabled": True, "max_concurrent_lanes": 3}),
        ({"martingale_multiplier": "1.50"}, {"concurrent_trading_enabled": True, "max_concurrent_lanes": 5, "lane_assignment_strategy": "round_robin", "max_daily_lanes": 6}),
        ({"martingale_max_level": 3, "payout_rate": "0.9200"}, {"concurrent_trading_enabled": True, "max_concurrent_lanes": 2, "lane_assignment_strategy": "symbol_priority", "cool_down_seconds": 20}),
        ({"enhanced_martingale_enabled": False, "martingale_max_level": 4}, {}),
        ({"martingale_enabled": False}, {"concurrent_trading_enabled": True}),
        ({}, {"concurrent_trading_enabled": True, "max_concurrent_lanes": 4, "ladder_mode": "recover", "max_stake": "40.00"}),
        ({}, {"concurrent_trading_enabled": True, "max_concurrent_lanes": 4, "max_exposure": "300.00"}),
    ],
    ids=["defaults", "concurrent-fifo", "round-robin-daily-limit", "symbol-priority-cool-down", "legacy", "martingale-off",
         "recover-max-stake", "max-exposure"],
)
def test_the_simulator_and_the_live_service_write_the_same_lane_histories(account_values, settings_values):
    services.account_create(name="diff", values={"base_amount": "1.00", "balance": "1000.00", **account_values})
    if settings_values:
        services.settings_update(account_name="diff", values=settings_values, actor="test")
    signals = signal_stream(seed=len(str(settings_values)) + len(str(account_values)))

    skipped_live = replay_live("diff", signals)

    setting = configs.build(configs.start_from("diff"), {})
    simulation = runner.Simulation(setting, record=True)
    for signal in signals:
        simulation.feed(signal)
    result = simulation.finish()

    live_lanes = [
        tuple(getattr(lane, name) for name in LANE_FIELDS) for lane in Lane.objects.filter(account_name="diff").order_by("created_at", "pk")
    ]
    sim_lanes = [tuple(getattr(lane, name) for name in LANE_FIELDS) for lane in simulation.lanes_seen]
    assert sim_lanes == live_lanes

    live_trades = {t.trade_id: (tuple(getattr(t, name) for name in TRADE_FIELDS), t.lane_id) for t in Trade.objects.filter(account__worker_name="diff")}
    lane_number = {lane.lane_id: i for i, lane in enumerate(Lane.objects.filter(account_name="diff").order_by("created_at", "pk"))}
    sim_number = {lane.lane_id: i for i, lane in enumerate(simulation.lanes_seen)}
    assert {t.trade_id: tuple(getattr(t, name) for name in TRADE_FIELDS) for t in simulation.trades_settled} == {
        trade_id: fields for trade_id, (fields, _) in live_trades.items()
    }
    assert {t.trade_id: sim_number.get(t.lane_id) for t in simulation.trades_settled} == {
        trade_id: lane_number.get(lane_id) for trade_id, (_, lane_id) in live_trades.items()
    }

    live_events = [(e.kind, lane_number.get(e.lane_id), e.trade_id) for e in LaneEvent.objects.filter(account_name="diff").order_by("pk")]
    assert [(e.kind, sim_number.get(e.lane_id), e.trade_id) for e in simulation.events_seen] == live_events

    assert result.skipped == len(skipped_live)
    codes = {}
    for _, code in skipped_live:
        codes[code] = codes.get(code, 0) + 1
    assert result.skipped_by == codes
    assert result.trades == len(live_trades)
    assert result.net_profit == sum((t.profit for t in Trade.objects.filter(account__worker_name="diff")), Decimal("0.00"))
    events = LaneEvent.objects.filter(account_name="diff")
    assert result.lanes_created == events.filter(kind="created").count()
    assert result.lanes_not_created == events.filter(kind="not_created").count()
    assert (result.lanes_recovered, result.lanes_exhausted) == (
        events.filter(kind="recovered").count(), events.filter(kind="exhausted").count()
    )


@pytest.mark.parametrize(
    "settings_values",
    [
        {"daily_stop_loss": "6.00"},
        {"daily_take_profit": "3.00", "concurrent_trading_enabled": True},
        {"max_exhausted_lanes": 1, "exhausted_window_hours": 2, "lock_minutes": 45, "concurrent_trading_enabled": True},
    ],
    ids=["daily-stop-loss", "daily-take-profit", "exhausted-lanes"],
)
def test_the_circuit_breakers_lock_the_same_account_at_the_same_times(settings_values):
    from lanes.models import AccountLock

    services.account_create(name="diff", values={"base_amount": "1.00", "martingale_max_level": 2})
    services.settings_update(account_name="diff", values=settings_values, actor="test")
    signals = signal_stream(seed=7, count=300)

    skipped_live = replay_live("diff", signals)

    simulation = runner.Simulation(configs.build(configs.start_from("diff"), {}), record=True)
    for signal in signals:
        simulation.feed(signal)
    result = simulation.finish()

    live_locks = [
        (lock.reason, lock.created_at, lock.locked_until)
        for lock in AccountLock.objects.filter(account__worker_name="diff").order_by("created_at", "pk")
    ]
    assert live_locks, "the stream should trip the breaker"
    assert [(lock.reason, lock.created_at, lock.locked_until) for lock in simulation.locks_seen] == live_locks
    assert result.locks == len(live_locks)
    assert result.skipped_by.get("account_locked", 0) == sum(1 for _, code in skipped_live if code == "account_locked") > 0
    live_trades = {t.trade_id: tuple(getattr(t, name) for name in TRADE_FIELDS) for t in Trade.objects.filter(account__worker_name="diff")}
    assert {t.trade_id: tuple(getattr(t, name) for name in TRADE_FIELDS) for t in simulation.trades_settled} == live_trades
    live_lanes = [tuple(getattr(lane, name) for name in LANE_FIELDS) for lane in Lane.objects.filter(account_name="diff").order_by("created_at", "pk")]
    assert [tuple(getattr(lane, name) for name in LANE_FIELDS) for lane in simulation.lanes_seen] == live_lanes
    live_events = [(e.kind, e.trade_id, e.data.get("reason")) for e in LaneEvent.objects.filter(account_name="diff").order_by("pk")]
    assert [(e.kind, e.trade_id, e.data.get("reason")) for e in simulation.events_seen] == live_events


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_every_rule_at_once_on_several_streams(seed):
    from lanes.models import AccountLock

    services.account_create(name="diff", values={"base_amount": "1.00", "martingale_multiplier": "1.80", "martingale_max_level": 5})
    services.settings_update(account_name="diff", actor="test", values={
        "concurrent_trading_enabled": True, "max_concurrent_lanes": 4, "lane_assignment_strategy": "symbol_priority",
        "cool_down_seconds": 10, "max_daily_lanes": 12, "ladder_mode": "recover", "max_stake": "25.00",
        "max_exposure": "60.00", "daily_stop_loss": "40.00", "max_exhausted_lanes": 2, "exhausted_window_hours": 3,
        "lock_minutes": 30,
    })
    signals = signal_stream(seed=seed, count=300)
    skipped_live = replay_live("diff", signals)
    simulation = runner.Simulation(configs.build(configs.start_from("diff"), {}), record=True)
    for signal in signals:
        simulation.feed(signal)
    result = simulation.finish()

    lanes = Lane.objects.filter(account_name="diff").order_by("created_at", "pk")
    assert [tuple(getattr(lane, name) for name in LANE_FIELDS) for lane in simulation.lanes_seen] == [
        tuple(getattr(lane, name) for name in LANE_FIELDS) for lane in lanes
    ]
    assert {t.trade_id: tuple(getattr(t, name) for name in TRADE_FIELDS) for t in simulation.trades_settled} == {
        t.trade_id: tuple(getattr(t, name) for name in TRADE_FIELDS) for t in Trade.objects.filter(account__worker_name="diff")
    }
    assert [(e.kind, e.trade_id, e.data.get("reason")) for e in simulation.events_seen] == [
        (e.kind, e.trade_id, e.data.get("reason")) for e in LaneEvent.objects.filter(account_name="diff").order_by("pk")
    ]
    assert [(lock.reason, lock.created_at, lock.locked_until) for lock in simulation.locks_seen] == [
        (lock.reason, lock.created_at, lock.locked_until)
        for lock in AccountLock.objects.filter(account__worker_name="diff").order_by("created_at", "pk")
    ]
    assert result.skipped == len(skipped_live)
