"""Settings, status, stats and health endpoints of the bot API (SPEC §2, §9)."""
import json
from unittest import mock

import pytest
from django.db.utils import OperationalError
from django.test import override_settings

from lanes import services
from settings_app.models import TradingSettings

pytestmark = pytest.mark.django_db

DEFAULTS = {
    "concurrent_trading_enabled": False,
    "max_concurrent_lanes": 3,
    "lane_assignment_strategy": "fifo",
    "auto_create_lanes": True,
    "cool_down_seconds": 0,
    "max_daily_lanes": 10,
    # The risk guard (SPEC §11): off, or as stated.
    "ladder_mode": "multiplier",
    "max_stake": None,
    "max_exposure": None,
    "daily_stop_loss": None,
    "daily_take_profit": None,
    "max_exhausted_lanes": None,
    "exhausted_window_hours": 24,
    "lock_minutes": 60,
}


@pytest.fixture
def accounts():
    values = {"base_amount": "1.00", "martingale_multiplier": "1.50", "balance": "500.00"}
    return [services.account_create(name=name, values=values) for name in ("acc", "other", "off")]


@pytest.fixture
def api(bearer_api, accounts):
    return bearer_api(services.token_create(name="bot")[1])


@pytest.fixture
def scoped(bearer_api, accounts):
    return bearer_api(services.token_create(name="acc-bot", account_names=["acc", "off"])[1])


# --- Settings -----------------------------------------------------------------------------------


def test_settings_of_an_account_without_a_row_are_the_defaults(api):
    status, body = api("GET", "/accounts/acc/settings")
    assert (status, body) == (200, {"account": "acc", **DEFAULTS})
    assert not TradingSettings.objects.exists()


def test_patch_changes_the_named_settings_and_answers_all_six(api):
    status, body = api(
        "PATCH",
        "/accounts/acc/settings",
        {"concurrent_trading_enabled": True, "max_concurrent_lanes": 5, "lane_assignment_strategy": "round_robin"},
    )
    assert status == 200
    assert body == {
        **DEFAULTS, "account": "acc", "concurrent_trading_enabled": True, "max_concurrent_lanes": 5,
        "lane_assignment_strategy": "round_robin",
    }
    row = TradingSettings.objects.get(account_name="acc")
    assert (row.concurrent_trading_enabled, row.max_concurrent_lanes, row.cool_down_seconds) == (True, 5, 0)
    assert api("GET", "/accounts/acc/settings")[1] == body


def test_patch_with_one_bad_value_changes_nothing_and_names_the_field(api):
    api("PATCH", "/accounts/acc/settings", {"cool_down_seconds": 10})
    status, body = api("PATCH", "/accounts/acc/settings", {"cool_down_seconds": 20, "max_daily_lanes": 51})
    assert (status, body["error"]["code"]) == (400, "invalid")
    assert set(body["error"]["fields"]) == {"max_daily_lanes"}
    assert "1 to 50" in body["error"]["fields"]["max_daily_lanes"]
    assert TradingSettings.objects.get().cool_down_seconds == 10


def test_settings_of_an_unknown_account_are_404(api):
    assert api("GET", "/accounts/nobody/settings")[0] == 404
    status, body = api("PATCH", "/accounts/nobody/settings", {"auto_create_lanes": False})
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert not TradingSettings.objects.exists()


def test_settings_outside_the_tokens_scope_are_403(scoped):
    assert scoped("GET", "/accounts/other/settings")[0] == 403
    status, body = scoped("PATCH", "/accounts/other/settings", {"auto_create_lanes": False})
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert not TradingSettings.objects.exists()


# --- Status -------------------------------------------------------------------------------------


def test_account_status_shows_open_and_queued_trades_and_lanes(api):
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t1"})
    api("POST", "/trades/t1/result", {"result": "loss"})
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t2"})
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t3"})
    status, body = api("GET", "/accounts/acc/status")
    assert status == 200
    assert (body["account"]["worker_name"], body["settings"], body["slots"], body["free_slots"]) == (
        "acc", {"account": "acc", **DEFAULTS}, 1, 0
    )
    assert [trade["trade_id"] for trade in body["open_trades"]] == ["t2"]
    assert [(t["trade_id"], t["queue_position"]) for t in body["queued_trades"]] == [("t3", 1)]
    assert [(lane["current_level"], lane["open_trade_id"]) for lane in body["active_lanes"]] == [(1, "t2")]


def test_account_status_is_404_for_an_unknown_and_403_outside_the_scope(api, scoped):
    assert api("GET", "/accounts/nobody/status")[1]["error"]["code"] == "not_found"
    status, body = scoped("GET", "/accounts/other/status")
    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_status_lists_every_enabled_account(api):
    services.account_update(name="off", values={"enabled": False})
    status, body = api("GET", "/status")
    assert status == 200
    assert [entry["account"]["worker_name"] for entry in body["accounts"]] == ["acc", "other"]


def test_status_of_a_scoped_token_lists_only_its_enabled_accounts(scoped):
    services.account_update(name="off", values={"enabled": False})
    status, body = scoped("GET", "/status")
    assert [entry["account"]["worker_name"] for entry in body["accounts"]] == ["acc"]


# --- Stats --------------------------------------------------------------------------------------


def run_recovered_lane(api):
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t1"})
    api("POST", "/trades/t1/result", {"result": "loss"})
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t2"})
    api("POST", "/trades/t2/result", {"result": "win"})


def test_account_stats_count_the_lanes_and_trades_of_the_window(api):
    run_recovered_lane(api)
    status, stats = api("GET", "/accounts/acc/stats")
    assert status == 200
    assert stats["days"] == 7
    assert (stats["lanes_created"], stats["lanes_recovered"], stats["recovery_rate"]) == (1, 1, 1.0)
    assert (stats["trades"], stats["wins"], stats["losses"], stats["win_rate"]) == (2, 1, 1, 0.5)
    assert stats["net_profit"] == "0.28"  # -1.00 on t1, then 2.78 - 1.50 on t2
    assert {"by_level", "by_symbol", "daily", "total_invested", "total_potential_payout"} <= set(stats)


def test_account_stats_take_days_from_1_to_365(api):
    assert api("GET", "/accounts/acc/stats?days=1")[1]["days"] == 1
    assert api("GET", "/accounts/acc/stats?days=365")[1]["days"] == 365


def test_account_stats_of_an_unknown_account_are_404_and_outside_the_scope_403(api, scoped):
    assert api("GET", "/accounts/nobody/stats")[0] == 404
    assert scoped("GET", "/accounts/other/stats")[0] == 403


def test_stats_cover_only_the_accounts_in_the_tokens_scope(api, scoped):
    run_recovered_lane(api)
    api("POST", "/trades", {"account": "other", "symbol": "EURUSD", "trade_id": "o1"})
    assert api("GET", "/stats?days=3")[1]["trades"] == 3
    status, stats = scoped("GET", "/stats")
    assert (status, stats["trades"], stats["lanes_created"]) == (200, 2, 1)


# --- Health -------------------------------------------------------------------------------------


def test_health_needs_no_token_and_reports_database_and_broker(client, tmp_path):
    folder = str(tmp_path)
    options = {"data_folder_in": folder, "data_folder_out": folder}
    with override_settings(CELERY_BROKER_URL="filesystem://", CELERY_BROKER_TRANSPORT_OPTIONS=options):
        response = client.get("/api/v1/health")
    body = response.json()
    assert (response.status_code, body["status"]) == (200, "ok")
    assert body["database"]["status"] == "ok" and body["database"]["latency_ms"] >= 0
    assert body["broker"]["status"] == "ok"


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={})
def test_health_reports_an_unreachable_broker_without_failing(client):
    response = client.get("/api/v1/health")
    body = response.json()
    assert (response.status_code, body["status"], body["database"]["status"]) == (200, "ok", "ok")
    assert body["broker"]["status"] == "unreachable"
    assert "127.0.0.1" not in json.dumps(body)


def test_health_is_503_with_status_error_when_the_database_does_not_answer(client):
    with mock.patch("lanes.health.connection") as connection:
        connection.cursor.side_effect = OperationalError("no database")
        response = client.get("/api/v1/health")
    body = response.json()
    assert (response.status_code, body["status"], body["database"]["status"]) == (503, "error", "error")


def test_a_whole_number_written_with_a_zero_fraction_is_that_number(api):
    """JSON (and JSON Schema's integer) reads 6.0 as six."""
    status, body = api("PATCH", "/accounts/acc/settings", {"max_daily_lanes": 6.0})
    assert (status, body["max_daily_lanes"]) == (200, 6)


@pytest.mark.parametrize("written", ["1e2", " 1.5", "1_000", "+1", ".5", "1.", "01.50", "-0", "١٩"])
def test_money_must_be_written_as_plain_digits(api, written):
    status, body = api("PATCH", "/accounts/acc", {"balance": written})
    assert (status, set(body["error"]["fields"])) == (400, {"balance"})
