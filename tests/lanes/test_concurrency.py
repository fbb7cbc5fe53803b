"""Many bots at once on one account (SPEC §10): the row lock makes them equal to one at a time.

Runs on MariaDB only: SQLite serialises writers by itself and ignores select_for_update.
"""
import random
import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection

from lanes import engine, services
from lanes.models import Lane, LaneEvent, Trade

pytestmark = [pytest.mark.mysql, pytest.mark.django_db(transaction=True)]

BOTS = 6
CYCLES = 12


def _run_threads(target, count):
    errors = []

    def wrapped(index):
        try:
            target(index)
        except Exception as exc:  # reported by the test, not swallowed
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a bot thread hung"
    return errors


def _bot(index):
    rng = random.Random(index)
    for cycle in range(CYCLES):
        trade_id = f"bot{index}-{cycle}"
        request = engine.Request(trade_id=trade_id, symbol=rng.choice(["EURUSD", "GBPUSD"]), max_wait_seconds=60)
        outcome = services.trade_open(account_name="shared", request=request, actor=f"bot{index}")
        for _ in range(400):
            if outcome.trade.status != "queued":
                break
            outcome = services.trade_refresh(trade_id=trade_id, actor=f"bot{index}")
        if outcome.trade.status == "open":
            result = rng.choice(["win", "loss", "loss", "draw"])
            services.trade_settle(trade_id=trade_id, result=result, actor=f"bot{index}")
        close_old_connections()


def test_many_bots_on_one_account_never_use_a_slot_lane_or_trade_twice():
    services.account_create(name="shared", values={"base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": 4})
    services.settings_update(
        account_name="shared",
        values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 3, "max_daily_lanes": 50},
        actor="test",
    )
    errors = _run_threads(_bot, BOTS)
    assert errors == []

    trades = list(Trade.objects.select_related("lane").order_by("opened_at", "id"))
    assert len(trades) == BOTS * CYCLES
    assert Counter(t.status for t in trades)["open"] == 0

    # Slots: never more than 3 trades open at the same time.
    moments = sorted(
        [(t.opened_at, 1) for t in trades if t.opened_at] + [(t.settled_at, -1) for t in trades if t.opened_at],
        key=lambda m: (m[0], m[1]),
    )
    open_now = peak = 0
    for _, step in moments:
        open_now += step
        peak = max(peak, open_now)
    assert 1 <= peak <= 3

    # Lanes: each lane's trades follow one another, and each trade sits in exactly one lane.
    lanes = list(Lane.objects.all())
    assert lanes, "the random losses created no lane"
    placed = Counter()
    for lane in lanes:
        lane_trades = [t for t in trades if t.lane_id == lane.lane_id]
        for earlier, later in zip(lane_trades, lane_trades[1:]):
            assert later.opened_at >= earlier.settled_at
        seated = [t for t in lane_trades if t.status != "cancelled"]
        assert lane.trade_ids[1:] == [t.trade_id for t in seated]
        placed.update(lane.trade_ids)
        by_id = {t.trade_id: t for t in trades}
        assert lane.total_invested == sum((by_id[i].amount for i in lane.trade_ids), Decimal("0.00"))
        assert lane.total_potential_payout == sum((by_id[i].expected_payout for i in lane.trade_ids), Decimal("0.00"))
        assert 1 <= lane.current_level <= lane.max_level
        assert lane.current_amount == engine.stake_at(lane.base_amount, lane.multiplier, lane.current_level)
    assert max(placed.values()) == 1

    # Active lanes never exceeded the limit: replay creations and completions in order.
    active = peak_lanes = 0
    for event in LaneEvent.objects.order_by("created_at", "id"):
        if event.kind == "created":
            active += 1
        elif event.kind in ("recovered", "exhausted", "force_completed", "cancelled"):
            active -= 1
        peak_lanes = max(peak_lanes, active)
    assert peak_lanes <= 3
    assert Lane.objects.count() <= 50


def test_the_same_request_sent_by_many_workers_makes_one_trade():
    services.account_create(name="shared", values={})
    outcomes = []

    def send(index):
        request = engine.Request(trade_id="dup-1", symbol="EURUSD")
        outcomes.append(services.trade_open(account_name="shared", request=request, actor=f"worker{index}"))

    assert _run_threads(send, 8) == []
    assert Trade.objects.filter(trade_id="dup-1").count() == 1
    assert sum(o.created for o in outcomes) == 1
    assert {o.trade.status for o in outcomes} == {"open"}


def test_the_same_loss_reported_by_many_workers_moves_the_lane_once():
    services.account_create(name="shared", values={"martingale_multiplier": "2.00"})
    services.trade_open(account_name="shared", request=engine.Request(trade_id="t1", symbol="EURUSD"), actor="test")
    changed = []

    def report(index):
        changed.append(services.trade_settle(trade_id="t1", result="loss", actor=f"worker{index}").changed)

    assert _run_threads(report, 8) == []
    assert sorted(changed) == [False] * 7 + [True]
    assert Lane.objects.count() == 1
    assert LaneEvent.objects.filter(kind="created").count() == 1
