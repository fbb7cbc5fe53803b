"""The bot API (SPEC §9) on django-ninja, mounted at /api/v1/.

A router per resource (``trades``, ``lanes``, ``accounts``, ``service``); one schema per body and
answer (``schemas``), from which ninja generates the OpenAPI document at /api/v1/openapi.json and
the docs page at /api/v1/docs (Swagger UI from ninja's own static files, no CDN). Authentication
is ``auth.bearerAuth``; every refusal is the JSON error shape of ``errors``. Operations parse their
input, call one service or selector and answer the JSON of ``lanes.serializers``.
"""
from __future__ import annotations

from typing import Any

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from . import accounts, errors, lanes, locks, service, trades
from .auth import bearerAuth
from .schemas import Error

TITLE = "Martingale Lanes bot API"
DESCRIPTION = (
    "Trades, lanes, settings, status and statistics for trading bots. Money is a decimal string with two "
    'places. Errors are {"error": {"code", "message", "fields"?}}. Bodies are JSON objects sent as '
    "application/json, at most 64 KiB; unknown fields are refused. A method a path does not take answers 405 "
    "with an Allow header, an unknown path 404, both with the error shape."
)


def _retry_after(when: str, required: bool = True) -> dict:
    return {
        "required": required,
        "schema": {"type": "integer", "minimum": 1},
        "description": f"whole seconds to wait before retrying ({when})",
    }


DATABASE_FAULTS = (
    "database_busy (the database aborted the transaction again and again) or database_unavailable (it cannot "
    "be reached): nothing was written; retry after retry_after seconds (also the Retry-After header)"
)
# The error answers of each operation, beside the answers its schemas give: (status, description, headers).
COMMON = [
    ("400", "Invalid input: `fields` names each parameter or body field at fault", {}),
    (
        "401",
        "Missing, malformed, unknown or revoked token (unauthorized)",
        {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}, "description": 'Bearer realm="api"'}},
    ),
    (
        "429",
        "throttled: this client sent too many missing or bad tokens lately; every request from it is refused, "
        "whatever its token, until its window ends (retry_after and the Retry-After header)",
        {"Retry-After": _retry_after("the end of the window")},
    ),
    ("503", DATABASE_FAULTS, {"Retry-After": _retry_after("as the error's retry_after")}),
]
FORBIDDEN = ("403", "The account is outside the token's scope", {})
UNKNOWN = ("404", "No such account, trade or lane (a trade or lane outside the token's scope too)", {})
BODY = [
    ("413", "The body is larger than 64 KiB (too_large)", {}),
    ("415", "The body is not sent as application/json in UTF-8 (unsupported_media_type)", {}),
]
ENGINE = (
    "503",
    DATABASE_FAULTS + "; or engine_error: the lane logic failed on this change, nothing was written, retry later",
    {"Retry-After": _retry_after("every code, engine_error included")},
)
REFUSED = {
    "requestTrade": (
        "busy (no slot now and max_wait_seconds is 0; see retry_after and the Retry-After header), "
        "account_disabled, account_locked (a circuit breaker or a pause by hand locked the account: see reason, "
        "locked_until, retry_after and the Retry-After header; nothing was stored), or conflict (the trade_id "
        "exists with other fields)",
        {"Retry-After": _retry_after("busy and account_locked only", required=False)},
    ),
    "reportResult": ("The trade is settled with another result, or is queued, expired or cancelled", {}),
    "cancelTrade": ("The trade is already settled or expired", {}),
    "completeLane": ("The lane is already finished", {}),
}
NAMES_ACCOUNT = {"requestTrade", "getAccount", "updateAccount", "getSettings", "updateSettings", "getAccountStatus",
                 "getAccountStats", "listLanes", "listLocks", "lockAccount"}
NAMES_OBJECT = {"requestTrade", "getTrade", "reportResult", "cancelTrade", "getLane", "completeLane", "getAccount",
                "updateAccount", "getSettings", "updateSettings", "getAccountStatus", "getAccountStats", "listLocks",
                "lockAccount", "releaseLock"}
CHANGES_LANES = {"reportResult", "cancelTrade", "completeLane", "updateAccount", "lockAccount", "releaseLock"}
LOCATION = {"Location": {"schema": {"type": "string"}, "description": "the trade's URL"}}


def _plain_optional_body(operation: dict) -> None:
    """An optional body is said by `required: false`; ninja also writes it as `anyOf [X, null]`,
    which generated clients then send as a JSON `undefined`. Say it once, as X."""
    body = operation.get("requestBody")
    if not body or body.get("required"):
        return
    for media in body["content"].values():
        choices = media["schema"].get("anyOf", [])
        kept = [choice for choice in choices if choice != {"type": "null"}]
        if choices and len(kept) == 1:
            media["schema"] = kept[0]


class MartingaleAPI(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> dict:
        """Ninja's document, completed with what schemas cannot say: the error answers and their
        headers, and the document's own path."""
        document = super().get_openapi_schema(*args, **kwargs)
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for item in document["paths"].values():
            for method, operation in item.items():
                name = operation.get("operationId")
                responses = operation["responses"] = {str(code): answer for code, answer in operation["responses"].items()}
                if name == "health":
                    operation["security"] = []  # no token
                    responses["503"]["description"] = "The database does not answer"
                    continue
                _plain_optional_body(operation)
                answers = list(COMMON)
                if name in NAMES_ACCOUNT:
                    answers.append(FORBIDDEN)
                if name in NAMES_OBJECT:
                    answers.append(UNKNOWN)
                if method in ("post", "patch"):
                    answers += BODY
                if name in CHANGES_LANES:
                    answers.append(ENGINE)
                if name in REFUSED:
                    answers.append(("409", *REFUSED[name]))
                for status, description, headers in answers:
                    responses[status] = {"description": description, "content": error, **({"headers": headers} if headers else {})}
                if name == "requestTrade":
                    for status in ("200", "201"):
                        responses[status]["headers"] = LOCATION
                    responses["201"]["description"] = "A new trade, open or queued"
                    responses["200"]["description"] = "The same trade_id was already requested with the same fields"
        document["paths"]["/api/v1/openapi.json"] = {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {}}}},
            }
        }
        error_schema = Error.model_json_schema(ref_template="#/components/schemas/{model}")
        document["components"]["schemas"].update(error_schema.pop("$defs", {}))
        document["components"]["schemas"]["Error"] = error_schema
        return document


api = MartingaleAPI(
    title=TITLE,
    version="1.0.0",
    description=DESCRIPTION,
    auth=bearerAuth(),
    parser=errors.StrictJSON(),
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
for module in (trades, lanes, accounts, locks, service):
    api.add_router("", module.router)


# Every exception, ninja's own included (it answers validation errors with 422 by default): the
# error shape of SPEC §9, a 400 naming each field.
for exception in (Exception, ValidationError, AuthenticationError, HttpError, Http404):
    api.add_exception_handler(exception, errors.on_exception)
