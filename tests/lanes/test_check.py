"""`manage.py martingale check` (issue 8): a database written through the services passes every
invariant; each invariant, broken by hand, is named with its lane or trade; the window, the
account filter, the statement count, and the exit codes from the shell."""
import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F
from django.utils import timezone

from lanes import checks, engine, services
from lanes.models import Lane, LaneEvent, Trade
from settings_app.models import TradingSettings

pytestmark = pytest.mark.django_db


# --- Helpers ------------------------------------------------------------------------------------------


def make_account(name, **values):
    defaults = {"base_amount": "1.00", "martingale_multiplier": "2.00", "balance": "1000.00"}
    return services.account_create(name=name, values={**defaults, **values})


def ask(trade_id, account, *, at=None, **request):
    request = engine.Request(trade_id=trade_id, symbol=request.pop("symbol", "EURUSD"), **request)
    return services.trade_open(account_name=account, request=request, actor="bot", now=at)


def settle(trade_id, result, *, at=None):
    return services.trade_settle(trade_id=trade_id, result=result, actor="bot", now=at)


def lane_of(trade_id):
    """The lane a lost base trade created."""
    return LaneEvent.objects.get(kind="created", trade_id=trade_id).lane_id


def run(*args):
    """A check that must pass: its one output line."""
    out = StringIO()
    call_command("martingale", "check", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def fails(*args):
    """A check that must fail: (its output, the one-line summary of the CommandError)."""
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("martingale", "check", *args, stdout=out, stderr=StringIO())
    summary = str(caught.value)
    assert summary and "\n" not in summary
    return out.getvalue(), summary


def violations(*args):
    """The violations of a failing check, as the JSON lists them."""
    output, _ = fails("--json", *args)
    data = json.loads(output)
    assert data["ok"] is False
    return data["violations"]


def named(found, check, **where):
    """The violations of ``check`` at ``where`` (lane_id=…, trade_id=…, account=…)."""
    return [v for v in found if v["check"] == check and all(v[key] == value for key, value in where.items())]


def drop_one_open_trade_per_lane_index():
    """SQLite enforces one open trade per lane with a partial unique index; dropping it (inside
    the test's transaction) lets a test break that invariant as MySQL, which has no such index, could."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX trade_one_open_per_lane")


def delete_events(**where):
    """LaneEvent refuses deletes (append-only): remove rows with raw SQL, as a careless person could."""
    ids = list(LaneEvent.objects.filter(**where).values_list("pk", flat=True))
    assert ids
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {LaneEvent._meta.db_table} WHERE id IN ({', '.join('%s' for _ in ids)})", ids
        )


def realistic_flow():
    """Four accounts through the services: base losses creating lanes, lane trades lost, won and
    drawn, cancels (queued, open in an active lane, open in a finished lane), a late result on a
    force-completed lane, an exhausted lane, a reset, concurrency, legacy mode and martingale off.
    Returns the lanes by name."""
    make_account("alpha")
    services.settings_update(
        account_name="alpha", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 3}, actor="test"
    )
    for trade_id in ("a1", "a2", "a3"):
        ask(trade_id, "alpha")
    settle("a1", "loss")
    settle("a2", "loss")
    settle("a3", "win")
    la, lb = lane_of("a1"), lane_of("a2")
    ask("a4", "alpha")  # joins la
    ask("a5", "alpha")  # joins lb
    ask("a6", "alpha")  # base
    settle("a4", "loss")  # la at level 2
    settle("a5", "win")  # lb recovered
    settle("a6", "loss")
    lc = lane_of("a6")
    ask("a7", "alpha")  # la, level 2
    ask("a8", "alpha")  # lc
    ask("a9", "alpha")  # base
    services.trade_cancel(trade_id="a8", actor="bot")  # taken out of lc
    settle("a9", "draw")
    ask("a10", "alpha")  # lc
    settle("a10", "draw")
    ask("a11", "alpha")  # lc again
    services.lane_force_complete(lane_id=lc, status="completed", actor="person")
    services.trade_cancel(trade_id="a11", actor="bot")  # lc had finished: a11 stays listed
    ask("a12", "alpha")  # base
    settle("a7", "loss")  # la at level 3
    services.account_reset(account_name="alpha", status="cancelled", actor="person")
    settle("a12", "loss")
    ld = lane_of("a12")

    make_account("beta", martingale_multiplier="1.50", martingale_max_level=2)
    ask("b1", "beta")
    settle("b1", "loss")
    ba = lane_of("b1")
    for trade_id in ("b2", "b3"):
        ask(trade_id, "beta")
        settle(trade_id, "loss")  # b3 at the last level exhausts ba
    ask("b4", "beta")
    settle("b4", "loss")
    bb = lane_of("b4")
    ask("b5", "beta")
    services.lane_force_complete(lane_id=bb, status="completed", actor="person")
    settle("b5", "loss")  # a late result: the trade only
    ask("b6", "beta")
    settle("b6", "loss")
    bc = lane_of("b6")
    ask("b7", "beta")  # bc, stays open
    ask("b8", "beta", max_wait_seconds=600)  # queued behind it
    ask("b9", "beta", max_wait_seconds=600)
    services.trade_cancel(trade_id="b9", actor="bot")  # a queued cancel

    make_account("gamma", enhanced_martingale_enabled=False)
    ask("g1", "gamma")
    settle("g1", "loss")
    ask("g2", "gamma")
    settle("g2", "win")

    make_account("delta", martingale_enabled=False)
    ask("d1", "delta")
    settle("d1", "loss")
    return {"la": la, "lb": lb, "lc": lc, "ld": ld, "ba": ba, "bb": bb, "bc": bc}


@pytest.fixture
def flow():
    return realistic_flow()


# --- A clean database -------------------------------------------------------------------------------


def test_the_flow_is_what_it_says(flow):
    lanes = {lane.lane_id: lane for lane in Lane.objects.all()}
    assert [(lanes[flow[n]].status, lanes[flow[n]].outcome) for n in ("la", "lb", "lc", "ld", "ba", "bb", "bc")] == [
        ("cancelled", "cancelled"), ("completed", "recovered"), ("completed", "force_completed"), ("active", None),
        ("completed", "exhausted"), ("completed", "force_completed"), ("active", None),
    ]
    assert lanes[flow["lc"]].trade_ids == ["a6", "a10", "a11"]  # a8 taken out, a11 kept
    assert Trade.objects.get(trade_id="a11").status == "cancelled"
    assert (lanes[flow["la"]].current_level, lanes[flow["ba"]].current_level) == (3, 2)
    assert dict(Trade.objects.filter(trade_id__in=["b7", "b8", "b9", "g1"]).values_list("trade_id", "status")) == {
        "b7": "open", "b8": "queued", "b9": "cancelled", "g1": "lost",
    }


def test_a_clean_database_passes_every_check(flow):
    output = run()
    assert output.count("\n") == 1
    assert output.startswith("all 10 checks passed on 4 accounts, 7 lanes, 24 trades, ")
    data = json.loads(run("--json"))
    assert data["ok"] is True and data["violations"] == []
    checked = data["checked"]
    assert (checked["checks"], checked["accounts"], checked["lanes"], checked["trades"], checked["days"]) == (10, 4, 7, 24, 30)
    assert checked["unverifiable_lanes"] == 0
    assert checked["skipped"] == {
        "open_trades_within_slots": 0, "active_lanes_within_limit": 0, "lanes_per_day_within_limit": 0,
    }


def test_the_ten_checks_in_order():
    assert list(checks.CHECKS) == [
        "lane_totals", "trade_ids_match", "one_open_trade_per_lane", "no_trade_in_two_lanes",
        "open_trades_within_slots", "active_lanes_within_limit", "lanes_per_day_within_limit",
        "lane_changes_have_events", "ladder", "trades_consistent",
    ]


# --- Each invariant, broken ------------------------------------------------------------------------------


def test_lane_totals_names_the_lane(flow):
    Lane.objects.filter(lane_id=flow["lb"]).update(total_invested=F("total_invested") + 1)
    Lane.objects.filter(lane_id=flow["lc"]).update(total_potential_payout=Decimal("0.01"))
    output, summary = fails()
    assert f"lane_totals account=alpha lane={flow['lb']}: total_invested is 4.00, but the 2 trades in trade_ids sum to 3.00" in output
    assert f"lane_totals account=alpha lane={flow['lc']}: total_potential_payout is 0.01" in output
    assert summary.startswith("2 violations of 1 of 10 checks (lane_totals) on 4 accounts")


def test_trade_ids_match_names_a_missing_and_a_wrongly_listed_trade(flow):
    Lane.objects.filter(lane_id=flow["la"]).update(trade_ids=["a1", "a4"])  # a7 left out
    Lane.objects.filter(lane_id=flow["lc"]).update(trade_ids=["a6", "a8", "a10", "a11"])  # a8 was taken out
    Lane.objects.filter(lane_id=flow["ba"]).update(trade_ids=["b2", "b1", "b3"])  # the base trade is not first
    found = violations()
    assert named(found, "trade_ids_match", lane_id=flow["la"], trade_id="a7")
    assert named(found, "trade_ids_match", lane_id=flow["lc"], trade_id="a8")
    assert named(found, "trade_ids_match", lane_id=flow["ba"], trade_id="b2")
    assert named(found, "trade_ids_match", lane_id=flow["ba"], trade_id="b1")  # now a base trade among lane trades


def test_trade_ids_match_names_an_unreadable_list(flow):
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Lane._meta.db_table} SET trade_ids = %s WHERE lane_id = %s", ["not json", flow["ld"]])
    found = violations()
    assert named(found, "trade_ids_match", lane_id=flow["ld"])[0]["message"].startswith("trade_ids is not a JSON list")


def test_one_open_trade_per_lane_names_the_lane_and_its_trades(flow):
    drop_one_open_trade_per_lane_index()
    Trade.objects.filter(trade_id="b2").update(status="open", lane=flow["bc"], payout=None, profit=None, settled_at=None)
    found = violations()
    [violation] = named(found, "one_open_trade_per_lane", lane_id=flow["bc"])
    assert violation["message"] == "2 open trades: b2, b7"
    assert violation["account"] == "beta"


def test_no_trade_in_two_lanes_names_the_trade_and_both_lanes(flow):
    lane = Lane.objects.get(lane_id=flow["ld"])
    Lane.objects.filter(pk=lane.pk).update(trade_ids=lane.trade_ids + ["a5"])  # a5 belongs to lb
    found = violations()
    [violation] = named(found, "no_trade_in_two_lanes", trade_id="a5")
    assert flow["lb"] in violation["message"] and flow["ld"] in violation["message"]
    assert named(found, "trade_ids_match", lane_id=flow["ld"], trade_id="a5")


def test_open_trades_within_slots_names_the_trade_opened_past_the_limit(flow):
    # beta has one slot (no concurrency) and b7 open; b8, queued, is made open beside it.
    Trade.objects.filter(trade_id="b8").update(
        status="open", kind="base", level=0, amount=Decimal("1.00"), expected_payout=Decimal("1.85"), opened_at=timezone.now()
    )
    output, _ = fails()
    assert "open_trades_within_slots account=beta trade=b8: 2 open trades, 1 slot(s)" in output


def test_active_lanes_within_limit_names_the_lane_created_past_the_limit(flow):
    Lane.objects.filter(lane_id=flow["bb"]).update(status="active", outcome=None, completed_at=None)
    TradingSettings.objects.create(account_name="beta", max_concurrent_lanes=1)
    TradingSettings.objects.filter(account_name="beta").update(updated_at=timezone.now() - timedelta(days=1))
    found = violations()
    [violation] = named(found, "active_lanes_within_limit", account="beta")
    assert violation["lane_id"] == flow["bc"]  # the second oldest active lane, bb being the first
    assert violation["message"].startswith("2 active lanes, max_concurrent_lanes 1")


def test_lanes_per_day_within_limit_names_the_lane_over_the_limit(flow):
    TradingSettings.objects.filter(account_name="alpha").update(max_daily_lanes=2, updated_at=timezone.now() - timedelta(days=2))
    found = violations()
    [violation] = named(found, "lanes_per_day_within_limit", account="alpha")
    assert violation["lane_id"] == flow["lc"]  # the third lane of the day
    assert violation["message"].startswith(f"4 lanes created on {timezone.localdate().isoformat()}, max_daily_lanes 2")


def test_lane_changes_have_events_names_each_missing_event(flow):
    delete_events(lane_id=flow["lb"], kind="created")
    delete_events(lane_id=flow["la"], kind="trade_assigned", trade_id="a7")
    delete_events(lane_id=flow["ba"], kind="exhausted")
    delete_events(lane_id=flow["la"], kind="advanced")
    found = violations()
    assert named(found, "lane_changes_have_events", lane_id=flow["lb"])[0]["message"] == "0 created events, expected 1"
    assert named(found, "lane_changes_have_events", lane_id=flow["la"], trade_id="a7")
    assert named(found, "lane_changes_have_events", lane_id=flow["ba"])[0]["message"] == (
        "the lane is completed (outcome exhausted) but its ending events are none"
    )
    assert [v["message"] for v in named(found, "lane_changes_have_events", lane_id=flow["la"], trade_id=None)] == [
        "0 advanced events at level 3, expected 2"
    ]
    assert {v["check"] for v in found} == {"lane_changes_have_events"}


def test_ladder_names_wrong_stakes_levels_and_states(flow):
    Lane.objects.filter(lane_id=flow["ld"]).update(current_amount=Decimal("2.01"))
    Trade.objects.filter(trade_id="a7").update(amount=Decimal("3.00"))
    Lane.objects.filter(lane_id=flow["bc"]).update(outcome="recovered")
    Lane.objects.filter(lane_id=flow["lb"]).update(current_level=9)
    found = violations()
    assert named(found, "ladder", lane_id=flow["ld"])[0]["message"] == (
        "current_amount is 2.01, the ladder's stake at level 1 is 2.00"
    )
    assert named(found, "ladder", lane_id=flow["la"], trade_id="a7")[0]["message"] == (
        "lane trade a7 staked 3.00 at level 2, the ladder says 4.00"
    )
    assert named(found, "ladder", lane_id=flow["bc"])[0]["message"].startswith("the lane is active but has completed_at None and outcome recovered")
    assert named(found, "ladder", lane_id=flow["lb"])[0]["message"] == "current_level 9 is outside 1–7"


@pytest.mark.sqlite_only
def test_ladder_names_amounts_that_do_not_fit_their_column_and_too_many_trades(flow):
    # SQLite stores whatever it is given (MySQL refuses it), and the ORM cannot read it back.
    Trade.objects.filter(trade_id="g2").update(payout=Decimal("123456789.00"), profit=Decimal("123456788.00"))
    lane = Lane.objects.get(lane_id=flow["ld"])
    Lane.objects.filter(pk=lane.pk).update(trade_ids=lane.trade_ids + [f"x{i}" for i in range(engine.MAX_LANE_TRADES)])
    found = violations()
    assert named(found, "ladder", trade_id="g2", account="gamma")[0]["message"] == "payout 123456789.00 does not fit DECIMAL(10,2)"
    assert named(found, "ladder", lane_id=flow["ld"], trade_id=None)[0]["message"] == "trade_ids lists 601 trades, more than 600"


def test_trades_consistent_names_the_trade(flow):
    Trade.objects.filter(trade_id="a3").update(profit=Decimal("5.00"))
    Trade.objects.filter(trade_id="b8").update(amount=Decimal("1.00"), kind="base")
    Trade.objects.filter(trade_id="g1").update(payout=None)
    found = violations()
    assert named(found, "trades_consistent", trade_id="a3")[0]["message"] == "profit 5.00 is not payout 1.85 − amount 1.00"
    assert named(found, "trades_consistent", trade_id="b8")[0]["message"] == "queued with amount, kind set"
    assert named(found, "trades_consistent", trade_id="g1", account="gamma")[0]["message"] == "settled as lost without payout"


# --- What is not a violation ------------------------------------------------------------------------------


def test_limits_lowered_while_trades_and_lanes_are_open_are_skipped_not_reported():
    make_account("busy")
    services.settings_update(
        account_name="busy", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 3}, actor="test"
    )
    for trade_id in ("c1", "c2", "c3"):
        ask(trade_id, "busy")
    for trade_id in ("c1", "c2", "c3"):
        settle(trade_id, "loss")  # three lanes
    for trade_id in ("c4", "c5", "c6"):
        ask(trade_id, "busy")  # one open trade in each of the three lanes
    services.settings_update(
        account_name="busy", values={"concurrent_trading_enabled": False, "max_concurrent_lanes": 1, "max_daily_lanes": 1},
        actor="test",
    )
    data = json.loads(run("--json"))
    assert data["ok"] is True
    assert data["checked"]["skipped"] == {
        "open_trades_within_slots": 1, "active_lanes_within_limit": 1, "lanes_per_day_within_limit": 1,
    }
    assert "over a limit lowered since: 1 slot, 1 active-lane, 1 daily" in run()


def test_lanes_adopted_from_the_old_bot_are_not_verifiable_and_not_violations():
    make_account("old")
    created = timezone.now() - timedelta(days=1)
    Lane.objects.create(
        lane_id="old-active", account_name="old", symbol="EURUSD", current_level=2, base_amount=Decimal("1.00"),
        current_amount=Decimal("4.00"), multiplier=Decimal("2.00"), max_level=7, total_invested=Decimal("3.00"),
        total_potential_payout=Decimal("5.55"), trade_ids=["x1", "x2"], created_at=created, updated_at=created,
    )
    Lane.objects.create(
        lane_id="old-done", account_name="old", symbol="EURUSD", status="completed", current_level=1,
        base_amount=Decimal("1.00"), current_amount=Decimal("2.00"), multiplier=Decimal("2.00"), max_level=7,
        total_invested=Decimal("3.00"), total_potential_payout=Decimal("5.55"), trade_ids=["y1", "y2"],
        created_at=created, updated_at=created, completed_at=created,
    )
    assert ask("o1", "old").trade.lane_id == "old-active"  # the project trades the adopted lane
    settle("o1", "loss")
    data = json.loads(run("--json"))
    assert data["ok"] is True
    assert data["checked"]["unverifiable_lanes"] == 2
    # Lane trades appended after the old bot's history are still checked.
    Lane.objects.filter(lane_id="old-active").update(trade_ids=["x1", "o1", "x2"])
    found = violations()
    assert named(found, "trade_ids_match", lane_id="old-active", trade_id="x2")


# --- Scope: --account and --days ---------------------------------------------------------------------------


def test_account_limits_the_check_to_one_account(flow):
    Lane.objects.filter(lane_id=flow["ba"]).update(total_invested=Decimal("1.00"))
    data = json.loads(run("--account", "alpha", "--json"))
    assert (data["ok"], data["checked"]["accounts"], data["checked"]["lanes"]) == (True, 1, 4)
    assert data["checked"]["trades"] == 12
    found = violations("--account", "beta")
    assert {(v["check"], v["account"], v["lane_id"]) for v in found} == {("lane_totals", "beta", flow["ba"])}
    _, summary = fails("--account", "ghost")
    assert summary == "account ghost not found"


def test_days_excludes_old_finished_history_but_keeps_active_lanes():
    make_account("aged")
    long_ago = timezone.now() - timedelta(days=60)
    ask("h1", "aged", at=long_ago)
    settle("h1", "loss", at=long_ago)
    ask("h2", "aged", at=long_ago + timedelta(minutes=1))
    settle("h2", "win", at=long_ago + timedelta(minutes=1))  # a recovered lane, 60 days old
    ask("h3", "aged", at=long_ago + timedelta(minutes=2))
    settle("h3", "loss", at=long_ago + timedelta(minutes=2))  # an active lane, 60 days old
    finished, active = lane_of("h1"), lane_of("h3")
    data = json.loads(run("--json"))
    assert (data["checked"]["lanes"], data["checked"]["trades"], data["checked"]["unverifiable_lanes"]) == (1, 1, 0)
    Lane.objects.filter(lane_id=finished).update(total_invested=Decimal("9.00"))
    run()
    assert named(violations("--days", "90"), "lane_totals", lane_id=finished)
    Lane.objects.filter(lane_id=active).update(current_amount=Decimal("9.00"))
    assert [v["lane_id"] for v in violations()] == [active]


def test_bad_days_are_refused_with_one_line():
    assert fails("--days", "0")[1] == "days: must be from 1 to 3650"
    assert fails("--days", "x")[1] == "days: must be a whole number from 1 to 3650"


# --- Cost -------------------------------------------------------------------------------------------------


def _history(accounts: int, rounds: int):
    """Per account: ``rounds`` lanes, each lost twice, then recovered."""
    for a in range(accounts):
        name = f"load{a}"
        make_account(name)
        services.settings_update(account_name=name, values={"max_daily_lanes": 50}, actor="test")
        for r in range(rounds):
            for step, result in enumerate(("loss", "loss", "loss", "win")):
                trade_id = f"{name}-{r}-{step}"
                ask(trade_id, name)
                settle(trade_id, result)


@pytest.mark.parametrize("accounts,rounds", [(1, 1), (4, 10)])
def test_the_statement_count_does_not_grow_with_the_data(accounts, rounds, django_assert_num_queries):
    _history(accounts, rounds)
    # BEGIN (a savepoint inside the test's transaction), accounts, lanes, trades, events, RELEASE.
    with django_assert_num_queries(6):
        report = checks.run_checks()
    assert report.ok, report.violations
    assert (report.checked["lanes"], report.checked["trades"]) == (accounts * rounds, accounts * rounds * 4)


# --- From the shell ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shell_db(tmp_path_factory):
    """Environment of a subprocess with its own migrated SQLite database."""
    folder = tmp_path_factory.mktemp("check")
    env = {
        **os.environ,
        "SECRET_KEY": "x",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_FOLDER": str(folder / "broker"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=settings.BASE_DIR, env=env, check=True)
    return env, folder / "db.sqlite3"


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
    )


def test_shell_exit_code_is_0_when_clean_and_1_with_a_violation(shell_db):
    env, path = shell_db
    assert manage(env, "martingale", "account", "add", "sh").returncode == 0
    made = manage(
        env, "shell", "-c",
        "from lanes import engine, services\n"
        "services.trade_open(account_name='sh', request=engine.Request(trade_id='s1', symbol='EURUSD'), actor='bot')\n"
        "services.trade_settle(trade_id='s1', result='loss', actor='bot')\n",
    )
    assert made.returncode == 0, made.stderr
    clean = manage(env, "martingale", "check")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.startswith("all 10 checks passed on 1 accounts, 1 lanes, 1 trades, 1 events")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE martingale_lanes SET total_invested = '7.00'")
    broken = manage(env, "martingale", "check")
    assert broken.returncode == 1
    [line] = broken.stdout.splitlines()
    assert line.startswith("lane_totals account=sh lane=") and "total_invested is 7.00" in line
    assert broken.stderr.strip().splitlines()[-1].startswith("CommandError: 1 violations of 1 of 10 checks (lane_totals)")
    as_json = manage(env, "martingale", "check", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["violations"][0]["check"] == "lane_totals"
