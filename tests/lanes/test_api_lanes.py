"""GET /api/v1/lanes, GET /api/v1/lanes/{id} and POST /api/v1/lanes/{id}/complete (SPEC §7, §9)."""

import pytest

from lanes import services
from lanes.models import Lane, LaneEvent, Trade

pytestmark = pytest.mark.django_db

LANE_KEYS = {
    "id", "lane_id", "account_name", "symbol", "status", "current_level", "base_amount", "current_amount",
    "multiplier", "max_level", "total_invested", "total_potential_payout", "trade_ids", "created_at",
    "updated_at", "completed_at", "outcome", "open_trade_id",
}


@pytest.fixture
def accounts():
    values = {"base_amount": "1.00", "martingale_multiplier": "1.50"}
    return [services.account_create(name=name, values=values) for name in ("acc", "other")]


@pytest.fixture
def api(bearer_api, accounts):
    return bearer_api(services.token_create(name="bot")[1])


@pytest.fixture
def scoped(bearer_api, accounts):
    return bearer_api(services.token_create(name="acc-bot", account_names=["acc"])[1])


def lose_base_trade(api, trade_id, account="acc", symbol="EURUSD"):
    """A base trade lost: answers the lane it created."""
    api("POST", "/trades", {"account": account, "symbol": symbol, "trade_id": trade_id})
    return api("POST", f"/trades/{trade_id}/result", {"result": "loss"})[1]["lane"]


def test_list_answers_every_lane_column_with_its_open_trade(api):
    lane = lose_base_trade(api, "t1")
    status, listed = api("GET", "/lanes")
    assert status == 200
    assert [item["lane_id"] for item in listed["lanes"]] == [lane["lane_id"]]
    assert LANE_KEYS <= set(listed["lanes"][0])
    assert listed["lanes"][0]["open_trade_id"] is None
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t2"})
    _, listed = api("GET", "/lanes?status=active")
    assert listed["lanes"][0]["open_trade_id"] == "t2"


def test_list_filters_by_account_and_status(api):
    first = lose_base_trade(api, "t1")
    second = lose_base_trade(api, "o1", account="other")
    api("POST", f"/lanes/{first['lane_id']}/complete")
    _, active = api("GET", "/lanes?status=active")
    _, completed = api("GET", "/lanes?status=completed")
    _, of_other = api("GET", "/lanes?account=other")
    _, cancelled = api("GET", "/lanes?status=cancelled&account=acc")
    assert [lane["lane_id"] for lane in active["lanes"]] == [second["lane_id"]]
    assert [lane["lane_id"] for lane in completed["lanes"]] == [first["lane_id"]]
    assert [lane["lane_id"] for lane in of_other["lanes"]] == [second["lane_id"]]
    assert cancelled["lanes"] == []


def test_a_scoped_token_lists_only_its_accounts_lanes(api, scoped):
    mine = lose_base_trade(api, "t1")
    lose_base_trade(api, "o1", account="other")
    status, listed = scoped("GET", "/lanes")
    assert (status, [lane["lane_id"] for lane in listed["lanes"]]) == (200, [mine["lane_id"]])


def test_a_scoped_token_asking_for_another_accounts_lanes_is_403(api, scoped):
    lose_base_trade(api, "o1", account="other")
    status, body = scoped("GET", "/lanes?account=other")
    assert (status, body["error"]["code"]) == (403, "forbidden")


def test_detail_answers_the_lane_with_its_events_and_trades(api):
    lane = lose_base_trade(api, "t1")
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t2"})
    status, detail = api("GET", f"/lanes/{lane['lane_id']}")
    assert status == 200
    assert LANE_KEYS <= set(detail)
    assert detail["open_trade_id"] == "t2"
    assert [event["kind"] for event in detail["events"]] == ["created", "trade_assigned"]
    assert {event["actor"] for event in detail["events"]} == {"token:bot"}
    assert [(trade["trade_id"], trade["level"]) for trade in detail["trades"]] == [("t2", 1)]


def test_detail_of_an_unknown_lane_is_404(api):
    status, body = api("GET", "/lanes/nope")
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_detail_of_another_accounts_lane_is_404_as_an_unknown_one(api, scoped):
    lane = lose_base_trade(api, "o1", account="other")
    status, body = scoped("GET", f"/lanes/{lane['lane_id']}")
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_complete_defaults_to_completed_and_logs_the_token(api):
    lane = lose_base_trade(api, "t1")
    status, done = api("POST", f"/lanes/{lane['lane_id']}/complete")
    assert (status, done["status"], done["outcome"]) == (200, "completed", "force_completed")
    assert done["completed_at"] is not None
    event = LaneEvent.objects.get(kind="force_completed")
    assert (event.actor, event.data["status"]) == ("token:bot", "completed")


def test_complete_with_status_cancelled_cancels_the_lane(api):
    lane = lose_base_trade(api, "t1")
    status, done = api("POST", f"/lanes/{lane['lane_id']}/complete", {"status": "cancelled"})
    assert (status, done["status"], done["outcome"]) == (200, "cancelled", "cancelled")
    assert Lane.objects.get().status == "cancelled"


def test_completing_a_finished_lane_is_409_conflict(api):
    lane = lose_base_trade(api, "t1")
    api("POST", f"/lanes/{lane['lane_id']}/complete")
    status, body = api("POST", f"/lanes/{lane['lane_id']}/complete", {"status": "cancelled"})
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert Lane.objects.get().outcome == "force_completed"


def test_completing_an_unknown_lane_is_404(api):
    status, body = api("POST", "/lanes/nope/complete")
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_completing_another_accounts_lane_is_404_and_changes_nothing(api, scoped):
    lane = lose_base_trade(api, "o1", account="other")
    status, body = scoped("POST", f"/lanes/{lane['lane_id']}/complete")
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert Lane.objects.get().status == "active"


def test_a_lane_completed_with_an_open_trade_shows_it_and_keeps_its_state_on_the_late_result(api):
    lane = lose_base_trade(api, "t1")
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t2"})
    _, done = api("POST", f"/lanes/{lane['lane_id']}/complete")
    assert done["open_trade_id"] == "t2"
    status, late = api("POST", "/trades/t2/result", {"result": "win"})
    assert (status, late["status"], late["lane"]["outcome"]) == (200, "won", "force_completed")
    assert Trade.objects.get(trade_id="t2").status == "won"
    assert Lane.objects.get().outcome == "force_completed"
