"""Bearer tokens, account scope, methods and CSRF of the bot API (SPEC §9)."""
import json

import pytest
from django.test import Client
from django.utils import timezone

from lanes import services
from lanes.models import ApiToken, Lane, LaneEvent, Trade
from settings_app.models import TradingSettings

pytestmark = pytest.mark.django_db

# Every endpoint that needs a token, with a request that would succeed with a good one.
AUTHENTICATED = [
    ("POST", "/api/v1/trades", {"account": "other", "symbol": "EURUSD", "trade_id": "new-1"}),
    ("GET", "/api/v1/trades/o-open", None),
    ("POST", "/api/v1/trades/o-open/result", {"result": "win"}),
    ("POST", "/api/v1/trades/o-open/cancel", None),
    ("GET", "/api/v1/lanes", None),
    ("GET", "/api/v1/lanes/LANE", None),
    ("POST", "/api/v1/lanes/LANE/complete", None),
    ("GET", "/api/v1/accounts/other/settings", None),
    ("PATCH", "/api/v1/accounts/other/settings", {"auto_create_lanes": False}),
    ("GET", "/api/v1/accounts/other/status", None),
    ("GET", "/api/v1/accounts/other/stats", None),
    ("GET", "/api/v1/stats", None),
    ("GET", "/api/v1/status", None),
]

# Every endpoint that names an account, trade or lane, pointed at the account "other".
# An account named outside the token's scope is 403; a trade or lane of such an account is 404,
# as an unknown one is, so ids cannot be probed (SPEC §9).
OUT_OF_SCOPE_IDS = [
    ("GET", "/api/v1/trades/o-open", None),
    ("POST", "/api/v1/trades/o-open/result", {"result": "win"}),
    ("POST", "/api/v1/trades/o-open/cancel", None),
    ("GET", "/api/v1/lanes/LANE", None),
    ("POST", "/api/v1/lanes/LANE/complete", None),
]
OUT_OF_SCOPE_ACCOUNTS = [
    ("POST", "/api/v1/trades", {"account": "other", "symbol": "EURUSD", "trade_id": "new-1"}),
    ("GET", "/api/v1/lanes?account=other", None),
    ("GET", "/api/v1/accounts/other", None),
    ("PATCH", "/api/v1/accounts/other", {"enabled": False}),
    ("GET", "/api/v1/accounts/other/settings", None),
    ("PATCH", "/api/v1/accounts/other/settings", {"auto_create_lanes": False}),
    ("GET", "/api/v1/accounts/other/status", None),
    ("GET", "/api/v1/accounts/other/stats", None),
]
OUT_OF_SCOPE = OUT_OF_SCOPE_IDS + OUT_OF_SCOPE_ACCOUNTS


@pytest.fixture
def book():
    """Account "other" with a lane (its base trade lost) and an open lane trade "o-open"."""
    services.account_create(name="acc", values={})
    services.account_create(name="other", values={"martingale_multiplier": "1.50"})
    _, raw = services.token_create(name="setup")
    client = Client()
    headers = {"Authorization": f"Bearer {raw}"}
    for trade_id in ("o-base", "o-open"):
        client.post("/api/v1/trades", {"account": "other", "symbol": "EURUSD", "trade_id": trade_id},
                    content_type="application/json", headers=headers)
        if trade_id == "o-base":
            client.post("/api/v1/trades/o-base/result", {"result": "loss"}, content_type="application/json",
                        headers=headers)
    return Lane.objects.get().lane_id


def snapshot():
    return [
        list(model.objects.order_by("pk").values())
        for model in (Trade, Lane, LaneEvent, TradingSettings)
    ]


def send(client, method, path, body, book, **headers):
    path = path.replace("LANE", book)
    data = json.dumps(body) if body is not None else ""
    return client.generic(method, path, data, content_type="application/json", headers=headers)


def assert_error(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


@pytest.mark.parametrize("method,path,body", AUTHENTICATED)
def test_a_request_without_a_token_is_401(client, book, method, path, body):
    before = snapshot()
    response = send(client, method, path, body, book)
    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert snapshot() == before


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token ml_abc", "ml_abc", "Bearer ml_unknown", "Bearer a b",
     "Bearer ml_ünïcode", "Bearer " + "x" * 300],
)
def test_a_malformed_or_unknown_token_is_401(client, book, header):
    response = send(client, "POST", "/api/v1/trades", {"account": "other", "symbol": "EURUSD"}, book,
                    Authorization=header)
    assert_error(response, 401, "unauthorized")
    assert not Trade.objects.filter(requested_by="token:bot").exists()


@pytest.mark.parametrize("method,path,body", AUTHENTICATED)
def test_a_revoked_token_is_401(client, book, method, path, body):
    token, raw = services.token_create(name="bot")
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    before = snapshot()
    response = send(client, method, path, body, book, Authorization=f"Bearer {raw}")
    assert_error(response, 401, "unauthorized")
    assert snapshot() == before


def test_the_bearer_scheme_is_case_insensitive(client, book):
    _, raw = services.token_create(name="bot")
    response = send(client, "GET", "/api/v1/status", None, book, Authorization=f"bearer {raw}")
    assert response.status_code == 200


@pytest.mark.parametrize("method,path,body", OUT_OF_SCOPE_ACCOUNTS)
def test_an_account_outside_the_tokens_scope_is_403_and_changes_nothing(client, book, method, path, body):
    _, raw = services.token_create(name="bot", account_names=["acc"])
    before = snapshot()
    response = send(client, method, path, body, book, Authorization=f"Bearer {raw}")
    assert_error(response, 403, "forbidden")
    assert snapshot() == before


@pytest.mark.parametrize("method,path,body", OUT_OF_SCOPE_IDS)
def test_a_trade_or_lane_of_another_account_answers_as_an_unknown_one(client, book, method, path, body):
    _, raw = services.token_create(name="bot", account_names=["acc"])
    before = snapshot()
    response = send(client, method, path, body, book, Authorization=f"Bearer {raw}")
    unknown = send(client, method, path.replace("o-open", "no-such").replace("LANE", "no-such"), body, "", Authorization=f"Bearer {raw}")
    assert_error(response, 404, "not_found")
    assert unknown.status_code == 404
    assert response.json()["error"]["message"].endswith("not found")
    assert snapshot() == before


@pytest.mark.parametrize("method,path,body", OUT_OF_SCOPE)
def test_a_token_for_every_account_may_act_on_any(client, book, method, path, body):
    _, raw = services.token_create(name="bot")
    response = send(client, method, path, body, book, Authorization=f"Bearer {raw}")
    assert response.status_code in (200, 201)


@pytest.mark.parametrize(
    "method,path",
    [("GET", "/api/v1/trades"), ("DELETE", "/api/v1/trades/o-open"), ("PUT", "/api/v1/accounts/other/settings"),
     ("GET", "/api/v1/trades/o-open/result"), ("POST", "/api/v1/status"), ("POST", "/api/v1/health")],
)
def test_a_method_the_endpoint_does_not_take_is_405_with_allow(client, book, method, path):
    _, raw = services.token_create(name="bot")
    response = send(client, method, path, None, book, Authorization=f"Bearer {raw}")
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"]


def test_health_and_the_openapi_document_need_no_token(client):
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_csrf_does_not_apply_to_token_requests(book):
    _, raw = services.token_create(name="bot")
    client = Client(enforce_csrf_checks=True)
    response = send(client, "POST", "/api/v1/trades", {"account": "acc", "symbol": "EURUSD"}, book,
                    Authorization=f"Bearer {raw}")
    assert response.status_code == 201


def test_an_unknown_api_path_is_a_json_404(client, book):
    _, raw = services.token_create(name="bot")
    for path in ("/api/v1/nothing", "/api/v1/trades/a/b/c", "/api/v1/trades/", "/api/v1/"):
        assert_error(send(client, "GET", path, None, book, Authorization=f"Bearer {raw}"), 404, "not_found")


def test_a_host_not_allowed_gets_a_json_400_under_the_api(client):
    response = client.get("/api/v1/health", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "bad_request"
