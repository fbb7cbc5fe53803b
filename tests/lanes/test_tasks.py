"""The Celery beat tasks (SPEC §9 "Status log"; issue 4), called directly on a known database: the
status log's lines field by field, the stuck-lane and overdue-trade warnings, the queue upkeep,
and the alarms in /api/v1/health and `martingale status`."""
import json
import logging
import shlex
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from io import StringIO
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone

from lanes import engine, services, status_log, tasks
from lanes.models import Trade
from martingale_project.celery import app

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=dt_timezone.utc)
pytestmark = pytest.mark.django_db


@contextmanager
def clock(moment):
    """Services take ``now``, but ``updated_at`` (auto_now) reads the clock: stop it at ``moment``."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def make_account(name, **values):
    defaults = {"base_amount": "1.00", "martingale_multiplier": "1.50", "balance": "1000.00"}
    with clock(T0):
        return services.account_create(name=name, values={**defaults, **values})


def configure(name, **values):
    services.settings_update(account_name=name, values=values, actor="test")


def ask(trade_id, *, account, at, symbol="EURUSD", **kwargs):
    request = engine.Request(trade_id=trade_id, symbol=symbol, **kwargs)
    with clock(at):
        return services.trade_open(account_name=account, request=request, actor="test", now=at)


def settle(trade_id, result, *, at):
    with clock(at):
        return services.trade_settle(trade_id=trade_id, result=result, actor="test", now=at)


def fields(line):
    """The key=value pairs of a status line, after its two-word prefix."""
    words = shlex.split(line)
    return dict(word.split("=", 1) for word in words[2:])


def status_lines(caplog, kind, level=logging.INFO):
    prefix = f"martingale.status {kind} "
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "lanes.status" and record.levelno == level and record.getMessage().startswith(prefix)
    ]


def run_status_log(caplog, now):
    caplog.clear()
    with caplog.at_level(logging.INFO):
        tasks.log_status.run(now=now)
    return caplog


@pytest.fixture(autouse=True)
def filesystem_broker(settings, tmp_path):
    """The broker check of the health line needs a broker: kombu's filesystem transport in tmp_path."""
    folder = str(tmp_path / "broker")
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": folder, "data_folder_out": folder}


@pytest.fixture
def book():
    """pelly: two slots, one lane at level 1 with an open trade, an open base trade and a queued
    request; quiet: an enabled account with the defaults and nothing going on; off: disabled.
    Returns the lane's lane_id."""
    make_account("pelly")
    configure("pelly", concurrent_trading_enabled=True, max_concurrent_lanes=2, lane_assignment_strategy="round_robin", max_daily_lanes=5)
    make_account("quiet", base_amount="2.00", martingale_multiplier="2.00", balance="0.00")
    make_account("off", enabled=False)
    ask("t1", account="pelly", at=T0)
    lane = settle("t1", "loss", at=T0 + timedelta(seconds=10)).lane  # lane at level 1, stake 1.50
    assert ask("t2", account="pelly", at=T0 + timedelta(seconds=20)).trade.kind == "lane"
    assert ask("t3", account="pelly", at=T0 + timedelta(seconds=30)).trade.kind == "base"
    assert ask("t4", account="pelly", at=T0 + timedelta(seconds=40), max_wait_seconds=3600).trade.status == "queued"
    return lane.lane_id


# --- The status log ------------------------------------------------------------------------------


def test_status_log_writes_one_line_per_enabled_account_with_every_field(book, caplog):
    run_status_log(caplog, T0 + timedelta(minutes=10))
    assert status_lines(caplog, "account") == [
        "martingale.status account account=pelly mode=enhanced martingale=true active_lanes=1 max_lanes=2 "
        "open_trades=2 queued_trades=1 slots=2 free_slots=0 concurrent=true strategy=round_robin auto_create=true "
        "cool_down_seconds=0 lanes_today=1 max_daily_lanes=5 net_profit_today=-1.00 balance=1000.00 "
        "base_amount=1.00 multiplier=1.50 max_level=7 worst_case_exposure=98.52 ladder_mode=multiplier "
        # the lane's 1.50 + 2.25 + … + 17.09 = 48.26 still at risk, and the open base trade's 1.00
        "exposure=49.26 max_exposure=- headroom=- locked_until=- lock_reason=-",
        "martingale.status account account=quiet mode=enhanced martingale=true active_lanes=0 max_lanes=3 "
        "open_trades=0 queued_trades=0 slots=1 free_slots=1 concurrent=false strategy=fifo auto_create=true "
        "cool_down_seconds=0 lanes_today=0 max_daily_lanes=10 net_profit_today=0.00 balance=0.00 "
        "base_amount=2.00 multiplier=2.00 max_level=7 worst_case_exposure=1530.00 ladder_mode=multiplier "
        "exposure=0.00 max_exposure=- headroom=- locked_until=- lock_reason=-",
    ]


def test_status_log_writes_one_line_per_active_lane(book, caplog):
    run_status_log(caplog, T0 + timedelta(minutes=10))
    # Created by the loss at T0+10s; last changed when t2 joined at T0+20s. Invested 1.00 + 1.50;
    # potential payout round2(1.00 × 1.85) + round2(1.50 × 1.85) = 1.85 + 2.78.
    assert status_lines(caplog, "lane") == [
        f"martingale.status lane lane={book} account=pelly symbol=EURUSD level=1 max_level=7 stake=1.50 "
        "invested=2.50 potential_payout=4.63 trades=2 open_trade=t2 age_seconds=590 unchanged_seconds=580 "
        "ladder_mode=multiplier net_profit=-1.00 remaining_risk=48.26"
    ]


def test_status_log_ends_with_the_health_line(book, caplog):
    run_status_log(caplog, T0 + timedelta(minutes=10))
    last = caplog.records[-1].getMessage()
    assert status_lines(caplog, "health") == [last]
    health = fields(last)
    assert set(health) == {
        "database", "database_latency_ms", "broker", "broker_latency_ms", "stuck_lanes", "overdue_trades",
        "accounts", "active_lanes", "stuck_after_hours", "overdue_after_seconds",
    }
    assert (health["database"], health["broker"]) == ("ok", "ok")
    assert float(health["database_latency_ms"]) >= 0 and float(health["broker_latency_ms"]) >= 0
    assert (health["stuck_lanes"], health["overdue_trades"]) == ("0", "0")
    assert (health["accounts"], health["active_lanes"]) == ("2", "1")
    assert (float(health["stuck_after_hours"]), int(health["overdue_after_seconds"])) == (24, 900)
    assert not status_lines(caplog, "stuck_lane", logging.WARNING) + status_lines(caplog, "overdue_trade", logging.WARNING)


def test_a_lane_unchanged_for_the_stuck_hours_is_a_warning_and_counted(book, caplog):
    changed = T0 + timedelta(seconds=20)
    run_status_log(caplog, changed + timedelta(hours=24))
    assert status_lines(caplog, "stuck_lane", logging.WARNING) == []
    assert fields(status_lines(caplog, "health")[0])["stuck_lanes"] == "0"

    run_status_log(caplog, changed + timedelta(hours=24, seconds=1))
    assert status_lines(caplog, "stuck_lane", logging.WARNING) == [
        f"martingale.status stuck_lane lane={book} account=pelly symbol=EURUSD level=1 stake=1.50 "
        "open_trade=t2 unchanged_seconds=86401 after_hours=24"
    ]
    assert fields(status_lines(caplog, "health")[0])["stuck_lanes"] == "1"


def test_the_stuck_hours_come_from_the_setting(book, caplog, settings):
    settings.MARTINGALE_STUCK_LANE_HOURS = 0.5
    run_status_log(caplog, T0 + timedelta(minutes=31))
    assert len(status_lines(caplog, "stuck_lane", logging.WARNING)) == 1
    assert fields(status_lines(caplog, "health")[0])["stuck_after_hours"] == "0.5"


def test_a_trade_open_past_the_timeout_is_a_warning_and_counted(book, caplog):
    # t2 opened at T0+20s, t3 at T0+30s; the timeout is 900 s.
    run_status_log(caplog, T0 + timedelta(seconds=20 + 901))
    assert status_lines(caplog, "overdue_trade", logging.WARNING) == [
        f"martingale.status overdue_trade trade=t2 account=pelly symbol=EURUSD kind=lane lane={book} level=1 "
        "stake=1.50 open_seconds=901 after_seconds=900"
    ]
    assert fields(status_lines(caplog, "health")[0])["overdue_trades"] == "1"

    run_status_log(caplog, T0 + timedelta(seconds=30 + 901))
    lines = status_lines(caplog, "overdue_trade", logging.WARNING)
    assert [fields(line)["trade"] for line in lines] == ["t2", "t3"]
    assert fields(lines[1]) == {
        "trade": "t3", "account": "pelly", "symbol": "EURUSD", "kind": "base", "lane": "-", "level": "0",
        "stake": "1.00", "open_seconds": "901", "after_seconds": "900",
    }
    assert fields(status_lines(caplog, "health")[0])["overdue_trades"] == "2"


def test_the_trade_timeout_comes_from_the_setting(book, caplog, settings):
    settings.MARTINGALE_TRADE_TIMEOUT_SECONDS = 60
    run_status_log(caplog, T0 + timedelta(seconds=100))
    assert len(status_lines(caplog, "overdue_trade", logging.WARNING)) == 2
    assert fields(status_lines(caplog, "health")[0])["overdue_after_seconds"] == "60"


def test_a_settled_trade_and_a_finished_lane_raise_no_alarm(book, caplog):
    settle("t2", "win", at=T0 + timedelta(seconds=50))  # the lane recovers; t4 opens on the free slot
    settle("t3", "draw", at=T0 + timedelta(seconds=60))
    settle("t4", "win", at=T0 + timedelta(seconds=70))
    run_status_log(caplog, T0 + timedelta(days=3))
    assert not status_lines(caplog, "stuck_lane", logging.WARNING) + status_lines(caplog, "overdue_trade", logging.WARNING)
    assert status_lines(caplog, "lane") == []
    health = fields(status_lines(caplog, "health")[0])
    assert (health["stuck_lanes"], health["overdue_trades"], health["active_lanes"]) == ("0", "0", "0")


def test_a_database_failure_is_logged_with_its_traceback_and_the_health_line_still_comes(book, caplog):
    with mock.patch("lanes.selectors.status_all", side_effect=OperationalError("database is gone")):
        run_status_log(caplog, T0 + timedelta(minutes=10))
    failure = next(record for record in caplog.records if record.name == "lanes.tasks")
    assert failure.levelno == logging.ERROR and failure.exc_info[0] is OperationalError
    assert status_lines(caplog, "account") == []
    health = fields(status_lines(caplog, "health")[0])
    assert (health["accounts"], health["active_lanes"]) == ("-", "-")


def test_an_unreachable_database_is_reported_on_the_health_line(book, caplog):
    with mock.patch("lanes.health.connection") as connection:
        connection.cursor.side_effect = OperationalError("no database")
        run_status_log(caplog, T0 + timedelta(minutes=10))
    health = fields(status_lines(caplog, "health")[0])
    assert (health["database"], health["database_error"]) == ("error", "OperationalError")
    assert (health["stuck_lanes"], health["overdue_trades"]) == ("-", "-")


def test_an_unreachable_broker_is_reported_on_the_health_line(book, caplog, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    run_status_log(caplog, T0 + timedelta(minutes=10))
    health = fields(status_lines(caplog, "health")[0])
    assert (health["database"], health["broker"]) == ("ok", "unreachable")
    assert health["broker_error"]
    assert len(status_lines(caplog, "account")) == 2


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "-"), (True, "true"), (False, "false"), (7, "7"), (Decimal("-1.00"), "-1.00"), (0.5, "0.5"),
        ("EUR/USD", "EUR/USD"), ("two words", '"two words"'), ("", '""'), ("-", '"-"'),
        ('say "hi"', '"say \\"hi\\""'), ("a=b", '"a=b"'), ("tab\there", '"tab\\there"'),
    ],
)
def test_status_values_are_written_so_key_value_splits_on_spaces(value, text):
    assert status_log.value_text(value) == text


def test_a_quoted_value_reads_back_whole():
    line = status_log.line("account", [("account", "two words"), ("open_trade", None)])
    assert line == 'martingale.status account account="two words" open_trade=-'
    assert fields(line) == {"account": "two words", "open_trade": "-"}


# --- The queue upkeep ----------------------------------------------------------------------------


def test_upkeep_opens_a_queued_trade_once_the_cool_down_has_passed(caplog):
    make_account("acc")
    configure("acc", cool_down_seconds=60)
    ask("t1", account="acc", at=T0)
    settle("t1", "win", at=T0 + timedelta(seconds=5))
    assert ask("t2", account="acc", at=T0 + timedelta(seconds=10), max_wait_seconds=120).trade.status == "queued"

    assert tasks.serve_queues.run(now=T0 + timedelta(seconds=59)) == {"acc": 0}
    assert Trade.objects.get(trade_id="t2").status == "queued"

    with caplog.at_level(logging.INFO, logger="lanes.tasks"):
        assert tasks.serve_queues.run(now=T0 + timedelta(seconds=60)) == {"acc": 1}
    trade = Trade.objects.get(trade_id="t2")
    assert (trade.status, trade.kind, trade.amount, trade.opened_at) == ("open", "base", Decimal("1.00"), T0 + timedelta(seconds=60))
    assert trade.requested_by == "test"
    assert "martingale.upkeep account=acc changed_trades=1" in caplog.messages


def test_upkeep_opens_the_queued_trade_on_the_lane_a_loss_left_idle():
    make_account("acc")
    configure("acc", cool_down_seconds=30)
    ask("t1", account="acc", at=T0)
    settle("t1", "loss", at=T0 + timedelta(seconds=10))
    ask("t2", account="acc", at=T0 + timedelta(seconds=15))
    tasks.serve_queues.run(now=T0 + timedelta(seconds=30))
    trade = Trade.objects.select_related("lane").get(trade_id="t2")
    assert (trade.status, trade.kind, trade.level, trade.amount) == ("open", "lane", 1, Decimal("1.50"))


def test_upkeep_expires_requests_that_waited_too_long_also_on_a_disabled_account():
    make_account("acc")
    ask("t1", account="acc", at=T0)
    ask("t2", account="acc", at=T0 + timedelta(seconds=1), max_wait_seconds=30)
    make_account("paused")
    ask("p1", account="paused", at=T0)
    ask("p2", account="paused", at=T0 + timedelta(seconds=1), max_wait_seconds=30)
    services.account_update(name="paused", values={"enabled": False})

    assert tasks.serve_queues.run(now=T0 + timedelta(seconds=31)) == {"acc": 1, "paused": 1}
    assert dict(Trade.objects.values_list("trade_id", "status")) == {"t1": "open", "t2": "expired", "p1": "open", "p2": "expired"}


def test_upkeep_finds_the_accounts_to_serve_in_one_query(django_assert_num_queries):
    make_account("acc")
    ask("t1", account="acc", at=T0)
    with django_assert_num_queries(1):
        assert tasks.serve_queues.run(now=T0 + timedelta(seconds=5)) == {}


def test_one_failing_account_is_logged_with_its_traceback_and_the_others_are_served(caplog):
    for name in ("a", "b", "c"):
        make_account(name)
        configure(name, cool_down_seconds=60)
        ask(f"{name}1", account=name, at=T0)
        settle(f"{name}1", "win", at=T0 + timedelta(seconds=1))
        ask(f"{name}2", account=name, at=T0 + timedelta(seconds=2))
    real = services.queue_serve

    def serve(*, account_name, **kwargs):
        if account_name == "b":
            raise RuntimeError("boom")
        return real(account_name=account_name, **kwargs)

    with mock.patch("lanes.services.queue_serve", side_effect=serve):
        assert tasks.serve_queues.run(now=T0 + timedelta(seconds=61)) == {"a": 1, "c": 1}
    failure = next(record for record in caplog.records if record.levelno == logging.ERROR)
    assert (failure.name, failure.getMessage()) == ("lanes.tasks", "martingale.upkeep account=b failed")
    assert failure.exc_info[0] is RuntimeError
    assert dict(Trade.objects.filter(trade_id__endswith="2").values_list("trade_id", "status")) == {
        "a2": "open", "b2": "queued", "c2": "open"
    }


# --- The schedule --------------------------------------------------------------------------------


def test_beat_runs_the_status_log_and_the_upkeep_at_their_intervals():
    schedule = settings.CELERY_BEAT_SCHEDULE
    status, upkeep = schedule["martingale-status-log"], schedule["martingale-queue-upkeep"]
    assert (status["task"], status["schedule"]) == ("lanes.tasks.log_status", settings.MARTINGALE_STATUS_INTERVAL_SECONDS)
    assert (upkeep["task"], upkeep["schedule"]) == ("lanes.tasks.serve_queues", settings.MARTINGALE_QUEUE_UPKEEP_SECONDS)
    assert {status["task"], upkeep["task"]} <= set(app.tasks)


# --- The alarms in /api/v1/health and `martingale status` ------------------------------------------


@pytest.fixture
def alarms():
    """Real-clock state: a lane last changed two days ago, a trade open for an hour."""
    now = timezone.now()
    make_account("slow")
    ask("s1", account="slow", at=now - timedelta(days=2))
    settle("s1", "loss", at=now - timedelta(days=2))
    make_account("busy")
    ask("b1", account="busy", at=now - timedelta(hours=1))
    return now


def test_health_returns_the_stuck_lanes_and_overdue_trades(client, alarms):
    body = client.get("/api/v1/health").json()
    assert (body["status"], body["database"]["status"], body["broker"]["status"]) == ("ok", "ok", "ok")
    assert body["stuck_lanes"] == {"count": 1, "after_hours": 24}
    assert body["overdue_trades"] == {"count": 1, "after_seconds": 900}


def test_health_without_a_database_has_no_counts(client, alarms):
    with mock.patch("lanes.health.connection") as connection:
        connection.cursor.side_effect = OperationalError("no database")
        response = client.get("/api/v1/health")
    body = response.json()
    assert response.status_code == 503
    assert (body["stuck_lanes"]["count"], body["overdue_trades"]["count"]) == (None, None)


def test_martingale_status_shows_the_alarms(alarms):
    out = StringIO()
    call_command("martingale", "status", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[1] == "Alarms: 1 stuck lanes (no change for 24 h), 1 overdue trades (open over 900 s)"
    assert any(line.split()[:3] == ["LANE", "ID", "ACCOUNT"] and "LAST CHANGE" in line for line in lines)
    assert any(line.split()[:2] == ["b1", "busy"] for line in lines)

    out = StringIO()
    call_command("martingale", "status", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert (data["stuck_lanes"]["count"], [lane["account_name"] for lane in data["stuck_lanes"]["lanes"]]) == (1, ["slow"])
    assert (data["overdue_trades"]["count"], [t["trade_id"] for t in data["overdue_trades"]["trades"]]) == (1, ["b1"])
