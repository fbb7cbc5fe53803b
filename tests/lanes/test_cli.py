"""`manage.py martingale` (SPEC §9): every subcommand through call_command, and the shell's exit
codes and last lines through a subprocess on its own database."""
import getpass
import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from lanes import engine, services
from lanes.models import Account, ApiToken, Lane, LaneEvent, Trade
from settings_app.models import TradingSettings

ACTOR = f"cli:{getpass.getuser()}"


def run(*args) -> str:
    out = StringIO()
    call_command("martingale", *args, stdout=out)
    return out.getvalue()


def fails(*args) -> str:
    """Run a command that must be refused; returns its one-line reason."""
    with pytest.raises(CommandError) as caught:
        run(*args)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


def snapshot():
    return (
        list(Account.objects.order_by("pk").values()),
        list(TradingSettings.objects.order_by("pk").values()),
        list(Lane.objects.order_by("pk").values()),
        list(Trade.objects.order_by("pk").values()),
        LaneEvent.objects.count(),
        ApiToken.objects.count(),
    )


def make_account(name="pelly_demo", **values):
    defaults = {"base_amount": "1.00", "martingale_multiplier": "2.00", "balance": "250.00"}
    return services.account_create(name=name, values={**defaults, **values})


def lost_base_trade(trade_id, account="pelly_demo", symbol="EURUSD"):
    """A base trade that loses: the account gets a new lane, returned."""
    request = engine.Request(trade_id=trade_id, symbol=symbol)
    services.trade_open(account_name=account, request=request, actor="bot")
    return services.trade_settle(trade_id=trade_id, result="loss", actor="bot").lane


@pytest.fixture
def pelly(db):
    return make_account()


# --- list -----------------------------------------------------------------------------------------


def test_list_shows_every_account_with_its_settings_then_the_active_lanes(pelly):
    make_account("other", enhanced_martingale_enabled=False)
    services.settings_update(account_name="pelly_demo", values={"max_concurrent_lanes": 5, "lane_assignment_strategy": "round_robin"}, actor="t")
    lane = lost_base_trade("t1")
    done = lost_base_trade("t2", account="other")  # legacy accounts have no lanes
    assert done is None
    output = run("list")
    lines = output.splitlines()
    assert lines[0] == "Accounts (2)"
    account_rows = [line.split() for line in lines if line.startswith(("pelly_demo ", "other "))]
    assert ["other", "on", "yes", "legacy", "on", "1.00", "2.00", "7", "0.8500", "250.00"] in account_rows
    assert ["pelly_demo", "on", "yes", "enhanced", "on", "1.00", "2.00", "7", "0.8500", "250.00"] in account_rows
    assert ["pelly_demo", "off", "5", "round_robin", "on", "0", "10"] in account_rows
    assert ["other", "off", "3", "fifo", "on", "0", "10"] in account_rows
    assert "Active lanes (1)" in output
    lane_line = next(line for line in lines if line.startswith(lane.lane_id))
    assert lane_line.split()[:7] == [lane.lane_id, "pelly_demo", "EURUSD", "1/7", "2.00", "1.00", "1.85"]
    assert output.index("Settings") < output.index("Active lanes")


def test_list_leaves_out_finished_lanes(pelly):
    lane = lost_base_trade("t1")
    services.lane_force_complete(lane_id=lane.lane_id, actor="t")
    output = run("list")
    assert "Active lanes (0)" in output
    assert lane.lane_id not in output


def test_list_json_has_accounts_with_settings_and_active_lanes(pelly):
    lane = lost_base_trade("t1")
    data = json.loads(run("list", "--json"))
    assert [a["worker_name"] for a in data["accounts"]] == ["pelly_demo"]
    assert data["accounts"][0]["balance"] == "250.00"
    assert data["accounts"][0]["settings"]["lane_assignment_strategy"] == "fifo"
    assert [(l["lane_id"], l["current_amount"], l["trade_ids"], l["open_trade_id"]) for l in data["active_lanes"]] == [
        (lane.lane_id, "2.00", ["t1"], None)
    ]


# --- configure ------------------------------------------------------------------------------------


def test_configure_saves_the_settings_and_prints_them(pelly):
    output = run(
        "configure", "pelly_demo", "--concurrent", "true", "--max-lanes", "5", "--strategy", "symbol_priority",
        "--auto-create", "false", "--cool-down", "30", "--max-daily-lanes", "20",
    )
    row = TradingSettings.objects.get(account_name="pelly_demo")
    assert (
        row.concurrent_trading_enabled, row.max_concurrent_lanes, row.lane_assignment_strategy,
        row.auto_create_lanes, row.cool_down_seconds, row.max_daily_lanes,
    ) == (True, 5, "symbol_priority", False, 30, 20)
    assert output.splitlines()[0] == "Settings of pelly_demo saved."
    assert output.splitlines()[-1].split() == ["pelly_demo", "on", "5", "symbol_priority", "off", "30", "20"]


def test_configure_changes_only_the_options_given(pelly):
    run("configure", "pelly_demo", "--max-lanes", "4")
    run("configure", "pelly_demo", "--strategy", "round_robin")
    row = TradingSettings.objects.get(account_name="pelly_demo")
    assert (row.max_concurrent_lanes, row.lane_assignment_strategy, row.concurrent_trading_enabled) == (4, "round_robin", False)


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--max-lanes", "11"], "max_concurrent_lanes (--max-lanes): must be from 1 to 10"),
        (["--max-lanes", "five"], "max_concurrent_lanes (--max-lanes): must be a whole number from 1 to 10"),
        (["--concurrent", "maybe"], "concurrent_trading_enabled (--concurrent): must be true or false"),
        (["--strategy", "lifo"], "lane_assignment_strategy (--strategy): must be one of fifo, round_robin, symbol_priority"),
        (["--cool-down", "3601"], "cool_down_seconds (--cool-down): must be from 0 to 3600"),
        (["--max-daily-lanes", "0"], "max_daily_lanes (--max-daily-lanes): must be from 1 to 50"),
        (["--auto-create", "yes"], "auto_create_lanes (--auto-create): must be true or false"),
    ],
)
def test_configure_refuses_a_bad_value_in_one_line_and_changes_nothing(pelly, args, reason):
    before = snapshot()
    assert fails("configure", "pelly_demo", *args) == reason
    assert snapshot() == before


def test_configure_with_one_bad_value_among_good_ones_changes_nothing(pelly):
    run("configure", "pelly_demo", "--max-lanes", "2")
    before = snapshot()
    reason = fails("configure", "pelly_demo", "--max-lanes", "6", "--cool-down", "-1", "--strategy", "x")
    assert "cool_down_seconds (--cool-down): must be from 0 to 3600" in reason
    assert "lane_assignment_strategy (--strategy)" in reason
    assert snapshot() == before
    assert TradingSettings.objects.get().max_concurrent_lanes == 2


def test_configure_of_an_unknown_account_is_refused(db):
    assert fails("configure", "ghost", "--max-lanes", "2") == "account ghost not found"
    assert not TradingSettings.objects.exists()


def test_configure_without_options_is_refused(pelly):
    assert fails("configure", "pelly_demo").startswith("nothing to change: give at least one of --concurrent")
    assert not TradingSettings.objects.exists()


def test_argument_errors_are_one_line_command_errors(pelly):
    before = snapshot()
    assert fails("configure", "pelly_demo", "--bogus", "1") == "Error: unrecognized arguments: --bogus 1"
    assert fails("configure") == "Error: the following arguments are required: ACCOUNT"
    assert "invalid choice: 'frobnicate'" in fails("frobnicate")
    assert snapshot() == before


# --- stats ----------------------------------------------------------------------------------------


def test_stats_print_totals_and_tables(pelly):
    lane = lost_base_trade("t1")
    services.trade_open(account_name="pelly_demo", request=engine.Request(trade_id="t2", symbol="EURUSD"), actor="bot")
    services.trade_settle(trade_id="t2", result="win", actor="bot")
    assert Lane.objects.get(pk=lane.pk).outcome == "recovered"
    output = run("stats", "--account", "pelly_demo", "--days", "7")
    lines = output.splitlines()
    assert lines[0].startswith("Statistics of account pelly_demo, last 7 days")
    pairs = {line[:24].strip(): line[24:].strip() for line in lines[1:19] if line.strip()}
    assert pairs["lanes created"] == "1"
    assert pairs["recovered"] == "1"
    assert pairs["recovery rate"] == "100.0%"
    assert pairs["trades"] == "2"
    assert pairs["win rate"] == "50.0%"
    assert pairs["net profit"] == "0.70"  # -1.00 + (3.70 - 2.00)
    for title in ("By level", "By symbol", "Daily"):
        assert title in lines
    assert "EURUSD       2     1       1      0     50.0%        0.70      1" in output


def test_stats_json_is_the_selectors_answer(pelly):
    lost_base_trade("t1")
    data = json.loads(run("stats", "--json", "--days", "2"))
    assert (data["account"], data["days"], data["lanes_created"], data["losses"], data["net_profit"]) == (None, 2, 1, 1, "-1.00")
    assert data["by_symbol"][0]["symbol"] == "EURUSD"
    assert len(data["daily"]) in (2, 3)


def test_stats_refuse_bad_days_and_unknown_accounts(pelly):
    assert fails("stats", "--days", "0") == "days: must be from 1 to 365"
    assert fails("stats", "--days", "week") == "days: must be a whole number from 1 to 365"
    assert fails("stats", "--account", "ghost") == "account ghost not found"


# --- complete, reset, emergency stop ---------------------------------------------------------------


def test_complete_force_completes_a_lane_and_logs_the_cli_user(pelly):
    lane = lost_base_trade("t1")
    output = run("complete", lane.lane_id)
    stored = Lane.objects.get(pk=lane.pk)
    assert (stored.status, stored.outcome, stored.completed_at is not None) == ("completed", "force_completed", True)
    assert output.strip() == f"Lane {lane.lane_id} (pelly_demo EURUSD, level 1) is completed: outcome force_completed."
    event = LaneEvent.objects.get(lane=stored, kind="force_completed")
    assert event.actor == ACTOR


def test_complete_with_status_cancelled_cancels_the_lane(pelly):
    lane = lost_base_trade("t1")
    run("complete", lane.lane_id, "--status", "cancelled")
    stored = Lane.objects.get(pk=lane.pk)
    assert (stored.status, stored.outcome) == ("cancelled", "cancelled")


def test_complete_refuses_finished_unknown_lanes_and_bad_status(pelly):
    lane = lost_base_trade("t1")
    before = snapshot()
    assert fails("complete", lane.lane_id, "--status", "done") == "status: must be completed or cancelled"
    assert snapshot() == before
    assert fails("complete", "nope") == "lane nope not found"
    run("complete", lane.lane_id)
    before = snapshot()
    assert fails("complete", lane.lane_id) == f"lane {lane.lane_id} is already finished"
    assert snapshot() == before


def test_reset_completes_every_active_lane_of_the_account(pelly):
    services.settings_update(account_name="pelly_demo", values={"concurrent_trading_enabled": True}, actor="t")
    for trade_id in ("t1", "t2"):
        services.trade_open(account_name="pelly_demo", request=engine.Request(trade_id=trade_id, symbol="EURUSD"), actor="bot")
    first, second = (services.trade_settle(trade_id=t, result="loss", actor="bot").lane for t in ("t1", "t2"))
    make_account("other")
    theirs = lost_base_trade("o1", account="other")
    output = run("reset", "pelly_demo")
    assert output.startswith("2 active lanes of pelly_demo are now completed: ")
    assert set(Lane.objects.filter(pk__in=[first.pk, second.pk]).values_list("outcome", flat=True)) == {"force_completed"}
    assert Lane.objects.get(pk=theirs.pk).status == "active"
    assert run("reset", "pelly_demo").strip() == "pelly_demo has no active lanes."
    assert fails("reset", "ghost") == "account ghost not found"


def test_reset_with_status_cancelled_cancels_and_a_bad_status_changes_nothing(pelly):
    lane = lost_base_trade("t1")
    before = snapshot()
    assert "argument --status: invalid choice: 'done'" in fails("reset", "pelly_demo", "--status", "done")
    assert snapshot() == before
    run("reset", "pelly_demo", "--status", "cancelled")
    assert Lane.objects.get(pk=lane.pk).outcome == "cancelled"


def test_emergency_stop_turns_lane_creation_off(pelly):
    lane = lost_base_trade("t1")
    output = run("emergency-stop", "pelly_demo")
    assert TradingSettings.objects.get(account_name="pelly_demo").auto_create_lanes is False
    assert "auto_create_lanes is off" in output
    assert Lane.objects.get(pk=lane.pk).status == "active"
    assert fails("emergency-stop", "ghost") == "account ghost not found"


# --- status, examples -------------------------------------------------------------------------------


def test_status_shows_each_enabled_account_with_its_lanes_and_trades(pelly):
    make_account("off", enabled=False)
    lane = lost_base_trade("t1")
    services.trade_open(account_name="pelly_demo", request=engine.Request(trade_id="t2", symbol="EURUSD"), actor="bot")
    output = run("status")
    assert "(1 enabled accounts)" in output.splitlines()[0]
    assert "\noff:" not in output
    assert "pelly_demo: enhanced, martingale on, balance 250.00" in output
    assert "slots 1/1 busy, 0 queued; active lanes 1/3" in output
    assert "today: 1/10 lanes created, net profit -1.00; worst-case exposure 765.00 (one ladder 255.00)" in output
    trade_line = next(line for line in output.splitlines() if line.strip().startswith("t2 "))
    assert trade_line.split() == ["t2", "open", "EURUSD", "lane", "1", "2.00", "-", lane.lane_id]


def test_status_json_lists_enabled_accounts(pelly):
    make_account("off", enabled=False)
    lost_base_trade("t1")
    data = json.loads(run("status", "--json"))
    assert [a["account"]["worker_name"] for a in data["accounts"]] == ["pelly_demo"]
    item = data["accounts"][0]
    assert (item["slots"], len(item["active_lanes"]), item["net_profit_today"], item["worst_case_exposure"]) == (1, 1, "-1.00", "765.00")
    assert "generated_at" in data


def test_examples_show_the_descriptions_setups(db):
    output = run("examples")
    assert "python manage.py martingale configure pelly_demo --concurrent true --max-lanes 3 --strategy fifo" in output
    assert "--strategy round_robin --max-daily-lanes 20" in output
    assert "python manage.py martingale complete LANE_ID --status cancelled" in output


# --- account ------------------------------------------------------------------------------------------


def test_account_add_creates_the_account_from_text(db):
    output = run(
        "account", "add", "pelly_demo", "--base-amount", "2.50", "--multiplier", "1.80", "--max-level", "5",
        "--payout-rate", "0.9", "--balance", "1000",
    )
    account = Account.objects.get(worker_name="pelly_demo")
    assert (str(account.base_amount), str(account.martingale_multiplier), account.martingale_max_level) == ("2.50", "1.80", 5)
    assert (str(account.payout_rate), str(account.balance)) == ("0.9000", "1000.00")
    assert account.enhanced_martingale_enabled is True
    assert output.splitlines()[0] == "Account pelly_demo added."
    assert "One lane risks " in output.splitlines()[-1]


def test_account_add_legacy_turns_enhanced_mode_off(db):
    run("account", "add", "old_bot", "--legacy")
    account = Account.objects.get(worker_name="old_bot")
    assert (account.enhanced_martingale_enabled, account.base_amount, account.martingale_multiplier) == (False, 1, 2)


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--multiplier", "1.00"], "martingale_multiplier (--multiplier): must be from 1.01 to 999.99"),
        (["--base-amount", "0"], "base_amount (--base-amount): must be from 0.01 to 99999999.99"),
        (["--max-level", "21"], "martingale_max_level (--max-level): must be from 1 to 20"),
        (["--balance", "-5"], "balance (--balance): must be a decimal number from 0.00 to 99999999.99"),
    ],
)
def test_account_add_refuses_bad_values_and_creates_nothing(db, args, reason):
    assert fails("account", "add", "pelly_demo", *args) == reason
    assert not Account.objects.exists()


def test_account_add_refuses_a_stake_too_large_and_a_duplicate(pelly):
    reason = fails("account", "add", "huge", "--base-amount", "1000", "--multiplier", "10", "--max-level", "20")
    assert reason.startswith("martingale_multiplier (--multiplier): the stake at level 20 would be")
    assert fails("account", "add", "pelly_demo") == "name: account pelly_demo already exists"
    assert fails("account", "add", "bad name!").startswith("name: must be 1–100 characters")
    assert list(Account.objects.values_list("worker_name", flat=True)) == ["pelly_demo"]


def test_account_set_changes_the_given_fields(pelly):
    output = run("account", "set", "pelly_demo", "--balance", "75.5", "--enabled", "false", "--martingale", "false", "--demo", "false")
    account = Account.objects.get(worker_name="pelly_demo")
    assert (str(account.balance), account.enabled, account.martingale_enabled, account.is_demo) == ("75.50", False, False, False)
    assert account.base_amount == 1
    assert output.splitlines()[0] == "Account pelly_demo saved."
    run("account", "set", "pelly_demo", "--legacy")
    assert Account.objects.get(worker_name="pelly_demo").enhanced_martingale_enabled is False
    run("account", "set", "pelly_demo", "--enhanced", "true")
    assert Account.objects.get(worker_name="pelly_demo").enhanced_martingale_enabled is True


def test_account_set_refuses_bad_input_and_changes_nothing(pelly):
    before = snapshot()
    assert fails("account", "set", "pelly_demo", "--enabled", "perhaps") == "enabled (--enabled): must be true or false"
    assert fails("account", "set", "pelly_demo", "--max-level", "20", "--multiplier", "999").startswith(
        "martingale_multiplier (--multiplier): the stake at level 20 would be"
    )
    assert fails("account", "set", "pelly_demo").startswith("nothing to change")
    assert fails("account", "set", "pelly_demo", "--legacy", "--enhanced", "true") == "--legacy and --enhanced true contradict each other"
    assert fails("account", "set", "ghost", "--balance", "1") == "account ghost not found"
    assert fails("account") == "Error: the following arguments are required: add|set"
    assert snapshot() == before


# --- token --------------------------------------------------------------------------------------------


def test_token_create_prints_the_scope_then_the_token_alone_on_the_last_line(pelly):
    output = run("token", "create", "bot-1", "--account", "pelly_demo")
    lines = output.splitlines()
    assert lines[0] == "Token bot-1 created for accounts pelly_demo. It is shown once, on the next line:"
    raw = lines[-1]
    assert raw == raw.strip() and " " not in raw
    token = services.token_for(raw)
    assert (token.name, token.all_accounts, token.account_names) == ("bot-1", False, ["pelly_demo"])
    assert output.count(raw) == 1


def test_token_create_without_accounts_covers_every_account(pelly):
    make_account("other")
    output = run("token", "create", "ops")
    assert output.splitlines()[0].startswith("Token ops created for every account.")
    token = services.token_for(output.splitlines()[-1])
    assert token.all_accounts and token.covers("other")


def test_token_create_with_several_accounts_and_refusals(pelly):
    make_account("other")
    output = run("token", "create", "two", "--account", "other", "--account", "pelly_demo")
    assert "for accounts other, pelly_demo." in output.splitlines()[0]
    assert fails("token", "create", "three", "--account", "ghost") == "no such account: ghost"
    assert fails("token", "create", "two") == "name: a token named two already exists"
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["two"]


# --- From the shell ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shell_db(tmp_path_factory):
    """Environment of a subprocess with its own migrated SQLite database."""
    folder = tmp_path_factory.mktemp("cli")
    env = {
        **os.environ,
        "SECRET_KEY": "x",
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_FOLDER": str(folder / "broker"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=settings.BASE_DIR, env=env, check=True)
    return env


def shell(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", "martingale", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
    )


def test_shell_commands_succeed_with_exit_code_0(shell_db):
    added = shell(shell_db, "account", "add", "shell_acc", "--base-amount", "1.00")
    assert added.returncode == 0, added.stderr
    configured = shell(shell_db, "configure", "shell_acc", "--concurrent", "true", "--max-lanes", "5")
    assert configured.returncode == 0
    listed = json.loads(shell(shell_db, "list", "--json").stdout)
    settings_of = {a["worker_name"]: a["settings"] for a in listed["accounts"]}
    assert (settings_of["shell_acc"]["concurrent_trading_enabled"], settings_of["shell_acc"]["max_concurrent_lanes"]) == (True, 5)
    token = shell(shell_db, "token", "create", "shell-bot", "--account", "shell_acc")
    assert token.returncode == 0
    assert token.stdout.splitlines()[-1].startswith("ml_")


def test_shell_refusals_exit_non_zero_with_the_reason_on_the_last_line(shell_db):
    shell(shell_db, "account", "add", "shell_bad")
    refused = shell(shell_db, "configure", "shell_bad", "--max-lanes", "11")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == "CommandError: max_concurrent_lanes (--max-lanes): must be from 1 to 10"
    unknown = shell(shell_db, "configure", "shell_bad", "--bogus", "1")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines()[-1] == "manage.py martingale: error: unrecognized arguments: --bogus 1"
    listed = json.loads(shell(shell_db, "list", "--json").stdout)
    assert {a["worker_name"]: a["settings"]["max_concurrent_lanes"] for a in listed["accounts"]}["shell_bad"] == 3
