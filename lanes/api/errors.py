"""The bot API's answers to what goes wrong (SPEC §9): the JSON error shape ``{"error": {"code",
"message", "fields"?}}`` for every refusal the service can name, the strict JSON body parser, and
Django's 400/405/500 answers under /api/, so that no request, however malformed, gets an HTML page
or a bare 500.
"""
from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any, Optional

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import Http404, HttpRequest, JsonResponse
from django.views import defaults as django_defaults
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from .. import engine, faults, services
from ..ranges import InvalidInput

logger = logging.getLogger("lanes.api")

MAX_BODY_BYTES = 64 * 1024
ENGINE_RETRY_AFTER = 1  # seconds before a change refused with engine_error may be retried


class ApiError(Exception):
    """An error answer decided outside the services (authentication, body parsing)."""

    def __init__(self, status: int, code: str, message: str, *, fields=None, headers=None, extra=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields
        self.headers = headers or {}
        self.extra = extra or {}  # more members of the error object, e.g. retry_after


def error_response(status: int, code: str, message: str, *, fields=None, headers=None, **extra) -> JsonResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra)
    response = JsonResponse({"error": error}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# --- The body: strict JSON -------------------------------------------------------------------------


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice in one object")
    return dict(pairs)


class StrictJSON(Parser):
    """JSON bodies with exact Decimals; NaN, Infinity, duplicate keys, other media types, other
    charsets and bodies over 64 KiB are refused. An empty body is an empty object; null is no body."""

    def parse_body(self, request: HttpRequest) -> Any:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise ApiError(400, "invalid_json", "the Content-Length header is not a number") from None
        if declared > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
        body = request.body
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
        if not body:
            return {}
        charset = request.content_params.get("charset", "utf-8").lower()
        if request.content_type != "application/json" or charset not in ("utf-8", "utf8"):
            raise ApiError(415, "unsupported_media_type", "the body must be JSON sent as Content-Type: application/json")
        try:
            data = json.loads(
                body.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
            )
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_json", "the body is not valid UTF-8") from None
        except RecursionError:
            raise ApiError(400, "invalid_json", "the body is nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, NaN/Infinity, duplicate keys, huge integers
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
        if data is not None and not isinstance(data, dict):
            raise InvalidInput({"body": "must be a JSON object"})
        return data  # null: as no body (an optional body may be omitted)


# --- Validation errors: each field named, with the message of lanes.ranges ---------------------------


def _field_messages(error: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in error.errors:
        location = [part for part in item.get("loc", ()) if part not in ("body", "query", "path", "payload")]
        name = str(location[0]) if location and not isinstance(location[0], int) else "body"
        kind = item.get("type", "")
        if kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a known field"
        elif kind == "value_error" and item.get("ctx", {}).get("error") is not None:
            message = str(item["ctx"]["error"])
        elif kind in ("model_attributes_type", "dict_type", "model_type"):
            name, message = "body", "must be a JSON object"
        elif kind.startswith("literal") or kind == "enum":
            message = "must be one of " + ", ".join(str(v) for v in item.get("ctx", {}).get("expected", "").split(" or "))
        else:
            message = item.get("msg", "is not valid")
        fields.setdefault(name, message)
    return fields


def answer(exc: Exception) -> Optional[JsonResponse]:
    """The JSON answer to an error the service can name; None for anything else (a bug)."""
    if isinstance(exc, HttpError) and exc.__cause__ is not None and answer(exc.__cause__) is not None:
        return answer(exc.__cause__)  # ninja wraps what the body parser raised
    if isinstance(exc, RequestDataTooBig):
        return error_response(413, "too_large", "the body is larger than this server reads")
    if isinstance(exc, ApiError):
        headers = dict(exc.headers)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=headers, **exc.extra)
    if isinstance(exc, ValidationError):
        exc = InvalidInput(_field_messages(exc))
    if isinstance(exc, InvalidInput):
        return error_response(400, "invalid", str(exc), fields=exc.errors)
    if isinstance(exc, services.NotFound):
        return error_response(404, "not_found", str(exc) or "not found")
    if isinstance(exc, services.Forbidden):
        return error_response(403, "forbidden", str(exc) or "this token may not act on that account")
    if isinstance(exc, engine.Busy):
        return error_response(
            409, "busy", exc.message, retry_after=exc.retry_after, headers={"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, engine.AccountLocked):
        return error_response(
            409, exc.code, exc.message, retry_after=exc.retry_after, locked_until=exc.locked_until.isoformat(),
            lock_id=exc.lock.lock_id, reason=exc.lock.reason, headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, engine.Refused):  # Conflict, AccountDisabled
        return error_response(409, exc.code, exc.message)
    if isinstance(exc, DatabaseError) and faults.classify(exc) is not None:
        exc = faults.refused(exc)  # outside a service's retries, e.g. the token look-up
    if isinstance(exc, faults.DatabaseFault):
        return error_response(
            503, exc.code, str(exc), retry_after=exc.retry_after, headers={"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, services.EngineUnavailable):
        return error_response(
            503, "engine_error", str(exc), retry_after=ENGINE_RETRY_AFTER, headers={"Retry-After": str(ENGINE_RETRY_AFTER)}
        )
    if isinstance(exc, AuthenticationError):  # an operation's auth refused without saying why
        return error_response(401, "unauthorized", "send the API token as Authorization: Bearer <token>")
    if isinstance(exc, Http404):
        return error_response(404, "not_found", str(exc) or "not found")
    if isinstance(exc, HttpError) and 400 <= exc.status_code < 500:
        return error_response(exc.status_code, "bad_request", str(exc))
    return None


def on_exception(request: HttpRequest, exc: Exception) -> JsonResponse:
    """Every exception of an API operation: its JSON answer, or a logged 500."""
    response = answer(exc)
    if response is None:
        logger.exception("unexpected error in %s %s", request.method, request.path, exc_info=exc)
        response = error_response(500, "internal_error", "an unexpected error occurred; it has been logged")
    return response


def json_answers(view):
    """Ninja answers a known path with an unknown method (405), and its root (404), in plain text
    or HTML: the JSON error shape instead."""

    def wrapped(request: HttpRequest, *args, **kwargs):
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return not_found(request)
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        if response.status_code == 405:
            allowed = response["Allow"]
            return error_response(
                405, "method_not_allowed", f"{request.method} is not allowed here; use {allowed}", headers={"Allow": allowed}
            )
        if response.status_code == 404:
            return not_found(request)
        return response

    wrapped.csrf_exempt = True
    return wrapped


def only_get(view):
    """The document and the docs page are read with GET (ninja's views take any method)."""

    def wrapped(request: HttpRequest, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return error_response(
                405, "method_not_allowed", f"{request.method} is not allowed here; use GET", headers={"Allow": "GET"}
            )
        return view(request, *args, **kwargs)

    wrapped.csrf_exempt = True
    return wrapped


# --- Errors raised before any view ------------------------------------------------------------------


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    """Django's handler400 (a Host header not in ALLOWED_HOSTS, a body Django will not read, …):
    JSON under /api/."""
    if _is_api(request):
        reason = str(exception) if exception is not None and str(exception) else "the request was refused"
        return error_response(400, "bad_request", reason)
    return django_defaults.bad_request(request, exception)


def server_error(request):
    """Django's handler500: JSON under /api/ (the API's own operations already answer JSON errors)."""
    if _is_api(request):
        return error_response(500, "internal_error", "an unexpected error occurred; it was logged")
    return django_defaults.server_error(request)


def not_found(request, path=""):
    return error_response(404, "not_found", f"no API endpoint at {request.path}")
