"""The OpenAPI document at /api/v1/openapi.json: it lists exactly the routes of lanes.urls with
the methods each view takes, every documented operation answers, and the answers match the
documented schemas."""
import json
import re

import pytest
from django.urls import URLPattern

from lanes import services
from lanes import urls as lane_urls
from lanes.models import Lane
from lanes.openapi import OPENAPI

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
PREFIX = "/api/v1/"


def routes():
    """{documented-style path: methods the view takes} from lanes.urls, without the JSON 404."""
    found = {}
    for pattern in lane_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name == "api-not-found":
            continue
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        found[PREFIX + route] = {method.lower() for method in pattern.callback.api_methods}
    return found


def documented():
    return {path: {m for m in item if m in METHODS} for path, item in OPENAPI["paths"].items()}


def resolve(ref):
    node = OPENAPI
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


def conforms(value, schema, where="$"):
    """Problems of ``value`` against the subset of JSON Schema the document uses."""
    if "$ref" in schema:
        return conforms(value, resolve(schema["$ref"]), where)
    problems = []
    if "allOf" in schema:
        for part in schema["allOf"]:
            problems += conforms(value, part, where)
    if "oneOf" in schema:
        matches = [part for part in schema["oneOf"] if not conforms(value, part, where)]
        if len(matches) != 1:
            problems.append(f"{where}: matches {len(matches)} of oneOf")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            isinstance(value, TYPES[t]) and not (isinstance(value, bool) and t in ("integer", "number"))
            for t in types
        )
        if not ok:
            return problems + [f"{where}: {value!r} is not {types}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where}: {name} is missing")
        for name, item in value.items():
            if name in properties:
                problems += conforms(item, properties[name], f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where}: {name} is not documented")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += conforms(item, schema["additionalProperties"], f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += conforms(item, schema["items"], f"{where}[{index}]")
    return problems


def all_refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from all_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_refs(item)


@pytest.fixture
def book(client):
    """Account "acc": a lane from a lost base trade, its open trade "t-open", a queued "t-queued"."""
    services.account_create(name="acc", values={"martingale_multiplier": "1.50"})
    _, raw = services.token_create(name="bot")
    headers = {"Authorization": f"Bearer {raw}"}

    def call(method, path, body=None, *, token=True):
        response = client.generic(
            method, path, json.dumps(body) if body is not None else "", content_type="application/json",
            headers=headers if token else {},
        )
        return response

    call("POST", "/api/v1/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t-base"})
    call("POST", "/api/v1/trades/t-base/result", {"result": "loss"})
    call("POST", "/api/v1/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t-open"})
    call("POST", "/api/v1/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t-queued"})
    return call, Lane.objects.get().lane_id


# One valid request per documented operation, in an order that keeps each one valid.
VALID_REQUESTS = [
    ("/api/v1/trades", "post", "/api/v1/trades", {"account": "acc", "symbol": "GBPUSD", "trade_id": "t-new"}),
    ("/api/v1/trades/{trade_id}", "get", "/api/v1/trades/t-open", None),
    ("/api/v1/lanes", "get", "/api/v1/lanes?account=acc&status=active", None),
    ("/api/v1/lanes/{lane_id}", "get", "/api/v1/lanes/LANE", None),
    ("/api/v1/accounts/{account}", "get", "/api/v1/accounts/acc", None),
    ("/api/v1/accounts/{account}", "patch", "/api/v1/accounts/acc", {"martingale_enabled": False}),
    ("/api/v1/accounts/{account}/settings", "get", "/api/v1/accounts/acc/settings", None),
    ("/api/v1/accounts/{account}/settings", "patch", "/api/v1/accounts/acc/settings", {"max_daily_lanes": 20}),
    ("/api/v1/accounts/{account}/status", "get", "/api/v1/accounts/acc/status", None),
    ("/api/v1/accounts/{account}/stats", "get", "/api/v1/accounts/acc/stats?days=30", None),
    ("/api/v1/stats", "get", "/api/v1/stats?days=1", None),
    ("/api/v1/status", "get", "/api/v1/status", None),
    ("/api/v1/health", "get", "/api/v1/health", None),
    ("/api/v1/openapi.json", "get", "/api/v1/openapi.json", None),
    ("/api/v1/trades/{trade_id}/cancel", "post", "/api/v1/trades/t-queued/cancel", None),
    ("/api/v1/lanes/{lane_id}/complete", "post", "/api/v1/lanes/LANE/complete", {"status": "cancelled"}),
    ("/api/v1/trades/{trade_id}/result", "post", "/api/v1/trades/t-open/result", {"result": "win"}),
]


def test_the_document_is_openapi_3_1_with_bearer_security_and_needs_no_token(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "An API token"
    }
    assert document == json.loads(json.dumps(OPENAPI))


def test_the_document_lists_every_route_with_the_methods_its_view_takes():
    assert documented() == routes()


def test_every_reference_in_the_document_resolves():
    refs = set(all_refs(OPENAPI))
    assert refs
    for ref in refs:
        assert isinstance(resolve(ref), dict), ref


def test_the_document_describes_every_schema_the_api_answers_with():
    schemas = OPENAPI["components"]["schemas"]
    for name in ("Trade", "Lane", "LaneEvent", "Settings", "AccountStatus", "Stats", "Health", "Error"):
        assert name in schemas


def test_every_operation_documents_its_errors():
    for path, item in OPENAPI["paths"].items():
        for method in set(item) & set(METHODS):
            operation = item[method]
            answers = operation["responses"]
            if operation.get("security", OPENAPI["security"]):
                assert "401" in answers and "400" in answers, (path, method)
            if "{" in path:
                assert {"403", "404"} <= set(answers), (path, method)
            if "requestBody" in operation:
                assert {"413", "415"} <= set(answers), (path, method)
            for status, answer in answers.items():
                if status[0] in "45" and status != "503":
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_the_trade_request_body_states_the_rules():
    body = OPENAPI["components"]["schemas"]["TradeRequest"]
    assert body["required"] == ["account", "symbol"]
    assert body["additionalProperties"] is False
    assert body["properties"]["symbol"]["maxLength"] == 50
    assert re.search(body["properties"]["symbol"]["pattern"], "EUR/USD")
    assert not re.search(body["properties"]["symbol"]["pattern"], "EUR USD")
    assert (body["properties"]["max_wait_seconds"]["minimum"], body["properties"]["max_wait_seconds"]["maximum"]) == (
        0, 3600
    )


def test_every_documented_operation_has_a_valid_request_here():
    covered = {(path, method) for path, method, _, _ in VALID_REQUESTS}
    assert covered == {(path, method) for path, methods in documented().items() for method in methods}


def test_every_documented_operation_answers_its_documented_schema(book):
    call, lane_id = book
    for doc_path, method, url, body in VALID_REQUESTS:
        response = call(method.upper(), url.replace("LANE", lane_id), body)
        assert response.status_code not in (404, 405), (doc_path, method, response.content[:200])
        answers = OPENAPI["paths"][doc_path][method]["responses"]
        assert str(response.status_code) in answers, (doc_path, method, response.status_code)
        schema = answers[str(response.status_code)]["content"]["application/json"].get("schema")
        if schema is not None:
            problems = conforms(response.json(), schema)
            assert not problems, (doc_path, method, problems)


def test_error_answers_match_the_error_schema(book):
    call, _ = book
    error_schema = {"$ref": "#/components/schemas/Error"}
    answers = [
        call("POST", "/api/v1/trades", {"account": "acc", "symbol": "EUR USD"}),
        call("GET", "/api/v1/status", token=False),
        call("GET", "/api/v1/trades/nope"),
        call("POST", "/api/v1/trades/t-base/result", {"result": "win"}),
        call("POST", "/api/v1/trades", {"account": "acc", "symbol": "EURUSD", "max_wait_seconds": 0}),
    ]
    assert [response.status_code for response in answers] == [400, 401, 404, 409, 409]
    for response in answers:
        assert not conforms(response.json(), error_schema), response.json()
