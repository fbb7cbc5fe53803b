"""POST /api/v1/trades, GET /api/v1/trades/{id}, .../result and .../cancel (SPEC §3–5, §9)."""
import json
from decimal import Decimal

import pytest

from lanes import services
from lanes.models import Lane, LaneEvent, Trade
from settings_app.models import TradingSettings

pytestmark = pytest.mark.django_db

TRADE_KEYS = {
    "trade_id", "account", "symbol", "direction", "status", "kind", "lane_id", "level", "amount",
    "expected_payout", "payout", "profit", "requested_at", "opened_at", "settled_at", "expires_at",
    "queue_position",
}


@pytest.fixture
def account():
    return services.account_create(
        name="acc", values={"base_amount": "1.00", "martingale_multiplier": "1.50", "balance": "1000.00"}
    )


@pytest.fixture
def token(account):
    return services.token_create(name="bot")[1]


@pytest.fixture
def api(client, token):
    def call(method, path, body=None):
        data = json.dumps(body) if body is not None else ""
        response = client.generic(
            method, "/api/v1" + path, data, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
        )
        return response.status_code, response.json()

    return call


def open_trade(api, trade_id, symbol="EURUSD", **fields):
    return api("POST", "/trades", {"account": "acc", "symbol": symbol, "trade_id": trade_id, **fields})


def test_new_request_opens_a_base_trade_with_201_and_its_location(client, token, account):
    response = client.post(
        "/api/v1/trades",
        {"account": "acc", "symbol": "EURUSD", "trade_id": "t1", "direction": "call"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201
    assert response["Location"] == "/api/v1/trades/t1"
    trade = response.json()
    assert TRADE_KEYS <= set(trade)
    assert (trade["status"], trade["kind"], trade["level"], trade["amount"]) == ("open", "base", 0, "1.00")
    assert (trade["expected_payout"], trade["direction"], trade["queue_position"]) == ("1.85", "call", None)
    stored = Trade.objects.get(trade_id="t1")
    assert (stored.status, stored.amount, stored.requested_by) == ("open", Decimal("1.00"), "token:bot")


def test_trade_id_is_generated_when_the_request_has_none(api):
    status, trade = api("POST", "/trades", {"account": "acc", "symbol": "EURUSD"})
    assert status == 201
    assert Trade.objects.get().trade_id == trade["trade_id"]
    assert len(trade["trade_id"]) >= 16


def test_bot_flow_loss_loss_win_climbs_the_ladder_and_recovers(api):
    status, base = open_trade(api, "t1")
    assert (status, base["kind"], base["amount"]) == (201, "base", "1.00")

    status, lost = api("POST", "/trades/t1/result", {"result": "loss"})
    assert (status, lost["status"], lost["profit"]) == (200, "lost", "-1.00")
    lane = lost["lane"]
    assert (lane["current_level"], lane["current_amount"], lane["trade_ids"]) == (1, "1.50", ["t1"])
    assert (lane["status"], lane["open_trade_id"], lane["multiplier"]) == ("active", None, "1.50")

    status, second = open_trade(api, "t2", symbol="GBPUSD")
    assert (status, second["kind"], second["lane_id"], second["level"], second["amount"]) == (
        201, "lane", lane["lane_id"], 1, "1.50"
    )
    status, lost_again = api("POST", "/trades/t2/result", {"result": "loss"})
    assert (lost_again["lane"]["current_level"], lost_again["lane"]["current_amount"]) == (2, "2.25")

    status, third = open_trade(api, "t3")
    assert (third["kind"], third["level"], third["amount"]) == ("lane", 2, "2.25")
    status, won = api("POST", "/trades/t3/result", {"result": "win"})
    assert (status, won["status"], won["payout"], won["profit"]) == (200, "won", "4.16", "1.91")
    assert (won["lane"]["status"], won["lane"]["outcome"], won["lane"]["total_invested"]) == (
        "completed", "recovered", "4.75"
    )
    stored = Lane.objects.get()
    assert (stored.status, stored.outcome, stored.trade_ids) == ("completed", "recovered", ["t1", "t2", "t3"])
    assert stored.completed_at is not None
    assert set(LaneEvent.objects.values_list("actor", flat=True)) == {"token:bot"}


def test_repeating_a_request_with_the_same_fields_answers_200_with_the_same_trade(api):
    _, first = open_trade(api, "t1", direction="put", expected_payout="1.90", max_wait_seconds=30)
    status, again = open_trade(api, "t1", direction="put", expected_payout="1.90", max_wait_seconds=30)
    assert status == 200
    assert again == first
    assert Trade.objects.count() == 1


@pytest.mark.parametrize(
    "changed",
    [{"symbol": "GBPUSD"}, {"direction": "call"}, {"expected_payout": "1.95"}, {"max_wait_seconds": 10}],
)
def test_repeating_a_trade_id_with_other_fields_is_409_conflict(api, changed):
    open_trade(api, "t1", direction="put", expected_payout="1.90", max_wait_seconds=30)
    fields = {"symbol": "EURUSD", "direction": "put", "expected_payout": "1.90", "max_wait_seconds": 30, **changed}
    status, body = api("POST", "/trades", {"account": "acc", "trade_id": "t1", **fields})
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert Trade.objects.get().symbol == "EURUSD"


def test_a_trade_id_taken_by_another_account_is_409_conflict(api):
    services.account_create(name="other", values={})
    open_trade(api, "t1")
    status, body = api("POST", "/trades", {"account": "other", "symbol": "EURUSD", "trade_id": "t1"})
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert Trade.objects.get().account.worker_name == "acc"


def test_requests_beyond_the_free_slot_queue_in_order_with_null_stake(api):
    open_trade(api, "t1")
    status, second = open_trade(api, "t2")
    _, third = open_trade(api, "t3")
    assert (status, second["status"], second["queue_position"]) == (201, "queued", 1)
    assert third["queue_position"] == 2
    assert (second["amount"], second["kind"], second["lane_id"], second["level"]) == (None, None, None, None)
    assert second["expires_at"] is not None


def test_a_queued_request_opens_on_the_lane_the_loss_created(api):
    open_trade(api, "t1")
    open_trade(api, "t2")
    open_trade(api, "t3")
    _, lost = api("POST", "/trades/t1/result", {"result": "loss"})
    status, second = api("GET", "/trades/t2")
    assert (status, second["status"], second["kind"], second["amount"]) == (200, "open", "lane", "1.50")
    assert second["lane_id"] == lost["lane"]["lane_id"]
    _, third = api("GET", "/trades/t3")
    assert (third["status"], third["queue_position"]) == ("queued", 1)


def test_no_free_slot_with_max_wait_zero_is_409_busy_with_retry_after(client, token, api):
    open_trade(api, "t1")
    response = client.post(
        "/api/v1/trades",
        {"account": "acc", "symbol": "EURUSD", "trade_id": "t2", "max_wait_seconds": 0},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["retry_after"]) == (409, "busy", 1)
    assert response["Retry-After"] == "1"
    assert not Trade.objects.filter(trade_id="t2").exists()


def test_busy_retry_after_counts_down_the_cool_down(api):
    services.settings_update(account_name="acc", values={"cool_down_seconds": 30}, actor="test")
    open_trade(api, "t1")
    api("POST", "/trades/t1/result", {"result": "win"})
    status, body = open_trade(api, "t2", max_wait_seconds=0)
    assert (status, body["error"]["code"]) == (409, "busy")
    assert 29 <= body["error"]["retry_after"] <= 30


def test_a_disabled_account_is_409_account_disabled(api):
    services.account_update(name="acc", values={"enabled": False})
    status, body = open_trade(api, "t1")
    assert (status, body["error"]["code"]) == (409, "account_disabled")
    assert Trade.objects.count() == 0


def test_an_unknown_account_is_404(api):
    status, body = api("POST", "/trades", {"account": "nobody", "symbol": "EURUSD"})
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert Trade.objects.count() == 0


def test_get_trade_answers_the_trade_and_404_for_an_unknown_one(api):
    _, opened = open_trade(api, "t1")
    status, trade = api("GET", "/trades/t1")
    assert (status, trade) == (200, opened)
    status, body = api("GET", "/trades/nope")
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_a_win_with_a_broker_payout_records_that_payout(api):
    open_trade(api, "t1")
    status, won = api("POST", "/trades/t1/result", {"result": "win", "payout": "1.80"})
    assert (status, won["payout"], won["profit"], won["lane"]) == (200, "1.80", "0.80", None)


def test_a_draw_of_a_base_trade_changes_no_lane(api):
    open_trade(api, "t1")
    status, drawn = api("POST", "/trades/t1/result", {"result": "draw"})
    assert (status, drawn["status"], drawn["profit"], drawn["lane"]) == (200, "draw", "0.00", None)
    assert Lane.objects.count() == 0


def test_reporting_the_same_result_twice_answers_the_same_and_changes_nothing(api):
    open_trade(api, "t1")
    _, first = api("POST", "/trades/t1/result", {"result": "loss"})
    status, second = api("POST", "/trades/t1/result", {"result": "loss"})
    assert status == 200
    assert second["status"] == first["status"] == "lost"
    assert second["settled_at"] == first["settled_at"]
    assert Lane.objects.count() == 1
    assert LaneEvent.objects.count() == 1


def test_a_different_result_for_a_settled_trade_is_409_conflict(api):
    open_trade(api, "t1")
    api("POST", "/trades/t1/result", {"result": "loss"})
    status, body = api("POST", "/trades/t1/result", {"result": "win"})
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert Trade.objects.get().status == "lost"


def test_a_result_for_a_queued_trade_is_409_conflict(api):
    open_trade(api, "t1")
    open_trade(api, "t2")
    status, body = api("POST", "/trades/t2/result", {"result": "win"})
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert Trade.objects.get(trade_id="t2").status == "queued"


def test_a_result_for_an_unknown_trade_is_404(api):
    status, body = api("POST", "/trades/nope/result", {"result": "win"})
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_cancelling_an_open_lane_trade_takes_it_out_of_the_lane(api):
    open_trade(api, "t1")
    api("POST", "/trades/t1/result", {"result": "loss"})
    open_trade(api, "t2")
    status, cancelled = api("POST", "/trades/t2/cancel")
    assert (status, cancelled["status"], cancelled["profit"]) == (200, "cancelled", "0.00")
    lane = Lane.objects.get()
    assert (lane.trade_ids, lane.total_invested, lane.current_level) == (["t1"], Decimal("1.00"), 1)


def test_cancelling_a_queued_trade_and_cancelling_again_answer_the_same(api):
    open_trade(api, "t1")
    open_trade(api, "t2")
    status, first = api("POST", "/trades/t2/cancel", {})
    status_again, again = api("POST", "/trades/t2/cancel")
    assert (status, status_again, first["status"]) == (200, 200, "cancelled")
    assert again == first


def test_cancelling_a_settled_trade_is_409_conflict(api):
    open_trade(api, "t1")
    api("POST", "/trades/t1/result", {"result": "win"})
    status, body = api("POST", "/trades/t1/cancel")
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert Trade.objects.get().status == "won"


def test_cancelling_an_unknown_trade_is_404(api):
    status, body = api("POST", "/trades/nope/cancel")
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_concurrent_accounts_get_one_slot_per_lane_when_enabled(api):
    services.settings_update(
        account_name="acc", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 2}, actor="test"
    )
    open_trade(api, "t1")
    _, second = open_trade(api, "t2")
    _, third = open_trade(api, "t3")
    assert (second["status"], third["status"], third["queue_position"]) == ("open", "queued", 1)
    assert TradingSettings.objects.get().max_concurrent_lanes == 2


@pytest.mark.parametrize("ending", [("result", {"result": "loss"}), ("result", {"result": "draw"}), ("cancel", None)])
def test_a_queued_request_joins_the_lane_its_predecessor_just_left(api, ending):
    action, body = ending
    # Sixteen accounts so that the set order of the two trade ids goes both ways for any hash seed.
    for n in range(16):
        services.account_create(name=f"acc{n}", values={"martingale_multiplier": "1.50"})
        for trade_id in (f"base{n}", f"first{n}", f"next{n}"):
            api("POST", "/trades", {"account": f"acc{n}", "symbol": "EURUSD", "trade_id": trade_id})
            if trade_id.startswith("base"):
                api("POST", f"/trades/base{n}/result", {"result": "loss"})
        status, _ = api("POST", f"/trades/first{n}/{action}", body)
        assert status == 200
        _, joined = api("GET", f"/trades/next{n}")
        assert (joined["status"], joined["kind"]) == ("open", "lane")


def test_repeating_the_loss_that_created_a_lane_answers_that_lane_again(api):
    open_trade(api, "t1")
    _, first = api("POST", "/trades/t1/result", {"result": "loss"})
    status, again = api("POST", "/trades/t1/result", {"result": "loss"})
    assert status == 200
    assert again == first
