"""Malformed requests: each is a 4xx with the error shape, names the field at fault, and leaves
the database exactly as it was (SPEC §9: never a 500 or an HTML page for bad input)."""
import json

import pytest

from lanes import services
from lanes.models import Account, Lane, LaneEvent, Trade
from settings_app.models import TradingSettings

pytestmark = pytest.mark.django_db

JSON = "application/json"


def trade(**fields):
    return {"account": "acc", "symbol": "EURUSD", "trade_id": "new-1", **fields}


def raw(text):
    """A body sent as these exact characters rather than as json.dumps of a value."""
    return text.encode() if isinstance(text, str) else text


# (id, method, path, body, content type, status, error code, the one field named or None)
CASES = [
    # POST /api/v1/trades
    ("missing-symbol", "POST", "/trades", {"account": "acc"}, JSON, 400, "invalid", "symbol"),
    ("missing-account", "POST", "/trades", {"symbol": "EURUSD"}, JSON, 400, "invalid", "account"),
    ("symbol-number", "POST", "/trades", trade(symbol=123), JSON, 400, "invalid", "symbol"),
    ("symbol-null", "POST", "/trades", trade(symbol=None), JSON, 400, "invalid", "symbol"),
    ("symbol-space", "POST", "/trades", trade(symbol="EUR USD"), JSON, 400, "invalid", "symbol"),
    ("symbol-unicode", "POST", "/trades", trade(symbol="EURÜSD"), JSON, 400, "invalid", "symbol"),
    ("symbol-newline", "POST", "/trades", trade(symbol="EURUSD\n"), JSON, 400, "invalid", "symbol"),
    ("symbol-sql", "POST", "/trades", trade(symbol="EUR'; DROP TABLE accounts;--"), JSON, 400, "invalid", "symbol"),
    ("symbol-51-chars", "POST", "/trades", trade(symbol="A" * 51), JSON, 400, "invalid", "symbol"),
    ("symbol-empty", "POST", "/trades", trade(symbol=""), JSON, 400, "invalid", "symbol"),
    ("account-space", "POST", "/trades", trade(account="a cc"), JSON, 400, "invalid", "account"),
    ("account-list", "POST", "/trades", trade(account=["acc"]), JSON, 400, "invalid", "account"),
    ("trade-id-101-chars", "POST", "/trades", trade(trade_id="t" * 101), JSON, 400, "invalid", "trade_id"),
    ("trade-id-slash", "POST", "/trades", trade(trade_id="a/b"), JSON, 400, "invalid", "trade_id"),
    ("trade-id-nul", "POST", "/trades", trade(trade_id="a\u0000b"), JSON, 400, "invalid", "trade_id"),
    ("unknown-field", "POST", "/trades", trade(stake="5.00"), JSON, 400, "invalid", "stake"),
    ("direction-up", "POST", "/trades", trade(direction="up"), JSON, 400, "invalid", "direction"),
    ("direction-upper", "POST", "/trades", trade(direction="CALL"), JSON, 400, "invalid", "direction"),
    ("payout-nan-string", "POST", "/trades", trade(expected_payout="NaN"), JSON, 400, "invalid", "expected_payout"),
    ("payout-inf-string", "POST", "/trades", trade(expected_payout="Infinity"), JSON, 400, "invalid", "expected_payout"),
    ("payout-nan-literal", "POST", "/trades",
     raw('{"account": "acc", "symbol": "EURUSD", "expected_payout": NaN}'), JSON, 400, "invalid_json", None),
    ("payout-infinity-literal", "POST", "/trades",
     raw('{"account": "acc", "symbol": "EURUSD", "expected_payout": -Infinity}'), JSON, 400, "invalid_json", None),
    ("payout-1e400", "POST", "/trades",
     raw('{"account": "acc", "symbol": "EURUSD", "expected_payout": 1e400}'), JSON, 400, "invalid", "expected_payout"),
    ("payout-3-places", "POST", "/trades", trade(expected_payout="1.855"), JSON, 400, "invalid", "expected_payout"),
    ("payout-3-places-number", "POST", "/trades",
     raw('{"account": "acc", "symbol": "EURUSD", "expected_payout": 1.855}'), JSON, 400, "invalid", "expected_payout"),
    ("payout-negative", "POST", "/trades", trade(expected_payout="-1.00"), JSON, 400, "invalid", "expected_payout"),
    ("payout-zero", "POST", "/trades", trade(expected_payout="0"), JSON, 400, "invalid", "expected_payout"),
    ("payout-boolean", "POST", "/trades", trade(expected_payout=True), JSON, 400, "invalid", "expected_payout"),
    ("payout-too-large", "POST", "/trades", trade(expected_payout="100000000.00"), JSON, 400, "invalid",
     "expected_payout"),
    ("max-wait-string", "POST", "/trades", trade(max_wait_seconds="60"), JSON, 400, "invalid", "max_wait_seconds"),
    ("max-wait-3601", "POST", "/trades", trade(max_wait_seconds=3601), JSON, 400, "invalid", "max_wait_seconds"),
    ("max-wait-negative", "POST", "/trades", trade(max_wait_seconds=-1), JSON, 400, "invalid", "max_wait_seconds"),
    ("max-wait-fraction", "POST", "/trades",
     raw('{"account": "acc", "symbol": "EURUSD", "max_wait_seconds": 1.5}'), JSON, 400, "invalid", "max_wait_seconds"),
    ("max-wait-boolean", "POST", "/trades", trade(max_wait_seconds=False), JSON, 400, "invalid", "max_wait_seconds"),
    ("max-wait-huge-integer", "POST", "/trades",
     raw('{"account": "acc", "symbol": "EURUSD", "max_wait_seconds": 1' + "0" * 5000 + "}"), JSON, 400,
     "invalid_json", None),
    ("body-array", "POST", "/trades", [trade()], JSON, 400, "invalid", "body"),
    ("body-string", "POST", "/trades", "acc EURUSD", JSON, 400, "invalid", "body"),
    ("body-null", "POST", "/trades", raw("null"), JSON, 400, "invalid", "body"),
    ("body-empty", "POST", "/trades", raw(""), JSON, 400, "invalid", "body"),
    ("body-not-json", "POST", "/trades", raw("account=acc&symbol=EURUSD"), JSON, 400, "invalid_json", None),
    ("body-truncated", "POST", "/trades", raw('{"account": "acc", "symbol": '), JSON, 400, "invalid_json", None),
    ("body-duplicate-key", "POST", "/trades",
     raw('{"account": "acc", "symbol": "EURUSD", "symbol": "GBPUSD"}'), JSON, 400, "invalid_json", None),
    ("body-bad-utf8", "POST", "/trades", b'{"account": "acc", "symbol": "EUR\xff\xfeUSD"}', JSON, 400,
     "invalid_json", None),
    ("body-deeply-nested", "POST", "/trades", raw("[" * 30000 + "]" * 30000), JSON, 400, "invalid_json", None),
    ("body-over-64-kib", "POST", "/trades", trade(symbol="A" * 70000), JSON, 413, "too_large", None),
    ("content-type-form", "POST", "/trades", raw("account=acc&symbol=EURUSD"),
     "application/x-www-form-urlencoded", 415, "unsupported_media_type", None),
    ("content-type-text", "POST", "/trades", trade(), "text/plain", 415, "unsupported_media_type", None),
    ("content-type-latin1", "POST", "/trades", trade(), "application/json; charset=latin-1", 415,
     "unsupported_media_type", None),
    # POST /api/v1/trades/{trade_id}/result
    ("result-missing", "POST", "/trades/t-open/result", {}, JSON, 400, "invalid", "result"),
    ("result-uppercase", "POST", "/trades/t-open/result", {"result": "WIN"}, JSON, 400, "invalid", "result"),
    ("result-number", "POST", "/trades/t-open/result", {"result": 1}, JSON, 400, "invalid", "result"),
    ("result-payout-negative", "POST", "/trades/t-open/result", {"result": "win", "payout": "-1.00"}, JSON, 400,
     "invalid", "payout"),
    ("result-payout-text", "POST", "/trades/t-open/result", {"result": "win", "payout": "abc"}, JSON, 400,
     "invalid", "payout"),
    ("result-payout-3-places", "POST", "/trades/t-open/result", raw('{"result": "win", "payout": 1.005}'), JSON,
     400, "invalid", "payout"),
    ("result-payout-boolean", "POST", "/trades/t-open/result", {"result": "win", "payout": False}, JSON, 400,
     "invalid", "payout"),
    ("result-payout-nan", "POST", "/trades/t-open/result", raw('{"result": "win", "payout": NaN}'), JSON, 400,
     "invalid_json", None),
    ("result-unknown-field", "POST", "/trades/t-open/result", {"result": "win", "profit": "1.00"}, JSON, 400,
     "invalid", "profit"),
    ("result-array", "POST", "/trades/t-open/result", ["win"], JSON, 400, "invalid", "body"),
    ("result-empty-body", "POST", "/trades/t-open/result", raw(""), JSON, 400, "invalid", "body"),
    ("result-trade-id-space", "POST", "/trades/t%20open/result", {"result": "win"}, JSON, 400, "invalid",
     "trade_id"),
    ("result-trade-id-unicode", "POST", "/trades/t%C3%BCopen/result", {"result": "win"}, JSON, 400, "invalid",
     "trade_id"),
    ("result-trade-id-sql", "POST", "/trades/t'%20OR%20'1'='1/result", {"result": "win"}, JSON, 400, "invalid",
     "trade_id"),
    ("result-trade-id-101-chars", "POST", "/trades/" + "t" * 101 + "/result", {"result": "win"}, JSON, 400,
     "invalid", "trade_id"),
    # GET /api/v1/trades/{trade_id} and cancel
    ("trade-id-newline", "GET", "/trades/t-open%0A", None, JSON, 400, "invalid", "trade_id"),
    ("trade-unknown-query", "GET", "/trades/t-open?verbose=1", None, JSON, 400, "invalid", "verbose"),
    ("cancel-with-fields", "POST", "/trades/t-open/cancel", {"reason": "x"}, JSON, 400, "invalid", "reason"),
    ("cancel-array", "POST", "/trades/t-open/cancel", [], JSON, 400, "invalid", "body"),
    # Lanes
    ("lanes-status-open", "GET", "/lanes?status=open", None, JSON, 400, "invalid", "status"),
    ("lanes-account-space", "GET", "/lanes?account=a%20cc", None, JSON, 400, "invalid", "account"),
    ("lanes-account-empty", "GET", "/lanes?account=", None, JSON, 400, "invalid", "account"),
    ("lanes-unknown-query", "GET", "/lanes?page=2", None, JSON, 400, "invalid", "page"),
    ("lanes-limit-zero", "GET", "/lanes?limit=0", None, JSON, 400, "invalid", "limit"),
    ("lanes-limit-too-big", "GET", "/lanes?limit=1001", None, JSON, 400, "invalid", "limit"),
    ("lanes-limit-fraction", "GET", "/lanes?limit=2.5", None, JSON, 400, "invalid", "limit"),
    ("lanes-cursor-garbage", "GET", "/lanes?cursor=not-a-cursor", None, JSON, 400, "invalid", "cursor"),
    ("lanes-repeated-status", "GET", "/lanes?status=active&status=completed", None, JSON, 400, "invalid", "status"),
    ("lane-id-quote", "GET", "/lanes/x'--", None, JSON, 400, "invalid", "lane_id"),
    ("complete-status-done", "POST", "/lanes/LANE/complete", {"status": "done"}, JSON, 400, "invalid", "status"),
    ("complete-status-active", "POST", "/lanes/LANE/complete", {"status": "active"}, JSON, 400, "invalid",
     "status"),
    ("complete-status-number", "POST", "/lanes/LANE/complete", {"status": 1}, JSON, 400, "invalid", "status"),
    ("complete-unknown-field", "POST", "/lanes/LANE/complete", {"status": "completed", "why": "x"}, JSON, 400,
     "invalid", "why"),
    ("complete-lane-id-unicode", "POST", "/lanes/l%C3%A4ne/complete", None, JSON, 400, "invalid", "lane_id"),
    # Settings
    ("settings-max-lanes-0", "PATCH", "/accounts/acc/settings", {"max_concurrent_lanes": 0}, JSON, 400, "invalid",
     "max_concurrent_lanes"),
    ("settings-max-lanes-11", "PATCH", "/accounts/acc/settings", {"max_concurrent_lanes": 11}, JSON, 400,
     "invalid", "max_concurrent_lanes"),
    ("settings-max-lanes-string", "PATCH", "/accounts/acc/settings", {"max_concurrent_lanes": "3"}, JSON, 400,
     "invalid", "max_concurrent_lanes"),
    ("settings-max-lanes-boolean", "PATCH", "/accounts/acc/settings", {"max_concurrent_lanes": True}, JSON, 400,
     "invalid", "max_concurrent_lanes"),
    ("settings-max-daily-fraction", "PATCH", "/accounts/acc/settings", raw('{"max_daily_lanes": 10.5}'), JSON, 400,
     "invalid", "max_daily_lanes"),
    ("settings-concurrent-yes", "PATCH", "/accounts/acc/settings", {"concurrent_trading_enabled": "yes"}, JSON, 400,
     "invalid", "concurrent_trading_enabled"),
    ("settings-auto-create-1", "PATCH", "/accounts/acc/settings", {"auto_create_lanes": 1}, JSON, 400, "invalid",
     "auto_create_lanes"),
    ("settings-strategy-random", "PATCH", "/accounts/acc/settings", {"lane_assignment_strategy": "random"}, JSON,
     400, "invalid", "lane_assignment_strategy"),
    ("settings-cool-down-3601", "PATCH", "/accounts/acc/settings", {"cool_down_seconds": 3601}, JSON, 400,
     "invalid", "cool_down_seconds"),
    ("settings-cool-down-infinity", "PATCH", "/accounts/acc/settings", raw('{"cool_down_seconds": Infinity}'),
     JSON, 400, "invalid_json", None),
    ("settings-unknown", "PATCH", "/accounts/acc/settings", {"max_lanes": 3}, JSON, 400, "invalid", "max_lanes"),
    ("settings-empty-object", "PATCH", "/accounts/acc/settings", {}, JSON, 400, "invalid", "body"),
    ("settings-array", "PATCH", "/accounts/acc/settings", [{"max_daily_lanes": 5}], JSON, 400, "invalid", "body"),
    ("settings-account-space", "PATCH", "/accounts/a%20cc/settings", {"max_daily_lanes": 5}, JSON, 400, "invalid",
     "account"),
    ("settings-account-101-chars", "GET", "/accounts/" + "a" * 101 + "/settings", None, JSON, 400, "invalid",
     "account"),
    ("settings-form-body", "PATCH", "/accounts/acc/settings", raw("max_daily_lanes=5"),
     "application/x-www-form-urlencoded", 415, "unsupported_media_type", None),
    # Status and stats
    ("status-account-unicode", "GET", "/accounts/%C3%A4cc/status", None, JSON, 400, "invalid", "account"),
    ("stats-days-text", "GET", "/accounts/acc/stats?days=abc", None, JSON, 400, "invalid", "days"),
    ("stats-days-0", "GET", "/accounts/acc/stats?days=0", None, JSON, 400, "invalid", "days"),
    ("stats-days-366", "GET", "/accounts/acc/stats?days=366", None, JSON, 400, "invalid", "days"),
    ("stats-days-fraction", "GET", "/accounts/acc/stats?days=1.5", None, JSON, 400, "invalid", "days"),
    ("stats-days-negative", "GET", "/accounts/acc/stats?days=-1", None, JSON, 400, "invalid", "days"),
    ("stats-days-unicode-digit", "GET", "/stats?days=%D9%A3", None, JSON, 400, "invalid", "days"),
    ("stats-unknown-query", "GET", "/stats?account=acc", None, JSON, 400, "invalid", "account"),
    ("status-unknown-query", "GET", "/status?all=1", None, JSON, 400, "invalid", "all"),
]


@pytest.fixture
def book(client):
    """Account "acc" with a lane (its base trade lost) and an open lane trade "t-open"."""
    services.account_create(name="acc", values={"martingale_multiplier": "1.50"})
    services.settings_update(account_name="acc", values={"cool_down_seconds": 0}, actor="test")
    _, raw_token = services.token_create(name="bot")
    headers = {"Authorization": f"Bearer {raw_token}"}
    for trade_id in ("t-base", "t-open"):
        client.post("/api/v1/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": trade_id},
                    content_type=JSON, headers=headers)
        if trade_id == "t-base":
            client.post("/api/v1/trades/t-base/result", {"result": "loss"}, content_type=JSON, headers=headers)
    assert Trade.objects.get(trade_id="t-open").status == "open"
    return {"token": raw_token, "lane_id": Lane.objects.get().lane_id}


def snapshot():
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Account, TradingSettings, Trade, Lane, LaneEvent)
    }


def test_there_are_at_least_35_malformed_requests():
    assert len(CASES) >= 35
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("method,path,body,content_type,status,code,field", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_malformed_request_is_refused_with_the_error_shape_and_changes_nothing(
    client, book, method, path, body, content_type, status, code, field
):
    data = body if isinstance(body, bytes) else ("" if body is None else json.dumps(body))
    before = snapshot()
    response = client.generic(
        method, "/api/v1" + path.replace("LANE", book["lane_id"]), data, content_type=content_type,
        headers={"Authorization": f"Bearer {book['token']}"},
    )
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if field is None:
        assert "fields" not in error
    else:
        assert set(error["fields"]) == {field}
        assert error["fields"][field]
    assert snapshot() == before


def test_several_bad_fields_are_named_together(client, book):
    response = client.post(
        "/api/v1/trades",
        {"account": "acc", "symbol": "EUR USD", "direction": "up", "max_wait_seconds": -1},
        content_type=JSON,
        headers={"Authorization": f"Bearer {book['token']}"},
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"symbol", "direction", "max_wait_seconds"}


def test_an_unexpected_error_is_a_logged_json_500_not_an_html_page(client, book, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "trade_refresh", explode)
    response = client.get("/api/v1/trades/t-open", headers={"Authorization": f"Bearer {book['token']}"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "boom" not in response.content.decode()
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)
