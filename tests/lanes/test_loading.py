"""What a change reads under its account's lock (lanes.loading, SPEC §10): the account alone is
locked, the clock is the database's once the lock is granted, and the state comes whole."""
import threading
import time
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from lanes import engine, loading, services
from lanes.models import Lane, Trade

D = Decimal


@pytest.fixture
def account():
    return services.account_create(name="acc", values={"base_amount": "1.00", "martingale_multiplier": "2.00"})


@pytest.mark.django_db
def test_the_state_holds_every_live_trade_even_a_long_queue(account):
    now = timezone.now()
    Trade.objects.bulk_create(
        Trade(
            trade_id=f"queued-{n:05d}-" + "x" * 80, account=account, symbol="EURUSD", status="queued",
            requested_at=now, expires_at=now + timedelta(hours=1), max_wait_seconds=3600,
        )
        for n in range(3000)
    )
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t1", symbol="EURUSD"), actor="bot")
    loaded = loading.lock_and_load(None, account_name="acc")
    assert len(loaded.state.trades) == 3001  # the oldest opened when t1 came; 2999 wait before t1
    assert len(loaded.state.open_trades()) == 1 and loaded.state.queue_position("t1") == 3000


@pytest.mark.django_db
def test_the_state_converts_amounts_times_and_lists_exactly(account):
    services.trade_open(
        account_name="acc", request=engine.Request(trade_id="t1", symbol="EURUSD", expected_payout=D("12345678.91")), actor="b"
    )
    services.trade_settle(trade_id="t1", result="loss", actor="b")
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t2", symbol="EURUSD"), actor="b")
    loaded = loading.lock_and_load(None, trade_id="t2")
    (lane,) = loaded.state.lanes.values()
    stored = Lane.objects.get()
    assert (lane.total_potential_payout, lane.total_invested, lane.trade_ids) == (
        stored.total_potential_payout, stored.total_invested, ["t1", "t2"]
    )
    assert lane.created_at == stored.created_at and lane.created_at.tzinfo is not None
    trade = loaded.state.trades["t2"]
    row = Trade.objects.get(trade_id="t2")
    assert (trade.amount, trade.expected_payout, trade.opened_at, trade.lane_id) == (
        row.amount, row.expected_payout, row.opened_at, row.lane_id
    )
    assert loaded.state.last_open == row.opened_at
    assert loaded.state.lanes_created_today == 1


# --- MariaDB: locks and the database's clock -------------------------------------------------------


def _in_thread(target):
    errors = []

    def run():
        try:
            target()
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.mysql
@pytest.mark.django_db(transaction=True)
def test_a_change_locks_its_account_only(account):
    services.account_create(name="other", values={})
    for name in ("acc", "other"):
        services.trade_open(account_name=name, request=engine.Request(trade_id=f"{name}-t", symbol="EURUSD"), actor="b")
    held = threading.Event()
    release = threading.Event()

    def hold_acc():
        with transaction.atomic():
            loading.lock_and_load(None, trade_id="acc-t")
            held.set()
            release.wait(10)

    thread, errors = _in_thread(hold_acc)
    assert held.wait(10)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
        started = time.monotonic()
        settled = services.trade_settle(trade_id="other-t", result="win", actor="b")  # would wait 1 s and fail if locked
        assert settled.trade.status == "won" and time.monotonic() - started < 1
    finally:
        release.set()
        thread.join(10)
    assert errors == []


@pytest.mark.mysql
@pytest.mark.django_db(transaction=True)
def test_times_come_from_the_database_clock_read_once_the_lock_is_granted(account, monkeypatch):
    """An app server whose clock is an hour ahead cannot reorder anything: a change that waited for
    the lock is stamped after the one that held it."""
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t1", symbol="EURUSD"), actor="b")
    held = threading.Event()

    def hold_then_cancel():
        with transaction.atomic():
            loading.lock_and_load(None, account_name="acc")
            held.set()
            time.sleep(0.5)

    thread, errors = _in_thread(hold_then_cancel)
    assert held.wait(10)
    monkeypatch.setattr(loading.timezone, "now", lambda: datetime.now(tz=dt_timezone.utc) + timedelta(hours=1))
    waited = services.trade_settle(trade_id="t1", result="win", actor="b")
    thread.join(10)
    assert errors == []
    real_now = datetime.now(tz=dt_timezone.utc)
    assert abs((waited.trade.settled_at - real_now).total_seconds()) < 30  # the database's clock, not the skewed one
    with connection.cursor() as cursor:
        cursor.execute("SELECT UTC_TIMESTAMP(6)")
        (db_now,) = cursor.fetchone()
    assert waited.trade.settled_at <= db_now.replace(tzinfo=dt_timezone.utc)
    assert waited.trade.settled_at >= Trade.objects.get(trade_id="t1").opened_at + timedelta(seconds=0.4)
