"""The bot API's one decorator: method check, bearer-token auth (with the bad-token throttle of
lanes/throttle.py), strict JSON bodies and the mapping of domain errors to the JSON error shape of
SPEC §9 (``{"error": {"code", "message", "fields"?}}``), so that no request, however malformed,
gets an HTML page or a bare 500.
"""
from __future__ import annotations

import json
import logging
import re
from decimal import Decimal
from functools import wraps
from typing import Any, Callable, Iterable, Optional

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from django.db import DatabaseError

from . import engine, faults, services, throttle
from .ranges import InvalidInput

logger = logging.getLogger("lanes.api")

MAX_BODY_BYTES = 64 * 1024
# A token is "ml_" + url-safe base64; anything else cannot match a stored hash.
TOKEN_RE = re.compile(r"[A-Za-z0-9_\-]{1,200}")
BODY_METHODS = ("POST", "PATCH")
ENGINE_RETRY_AFTER = 1  # seconds before a change refused with engine_error may be retried


class ApiError(Exception):
    """An error answer decided before or outside the services (auth, body parsing)."""

    def __init__(
        self, status: int, code: str, message: str, *, fields: Optional[dict] = None, headers=None, extra=None
    ):
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


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice in one object")
    return dict(pairs)


def parse_json_body(request: HttpRequest) -> Any:
    """The request's JSON body with exact Decimals, or None when the body is empty."""
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
        return None
    charset = request.content_params.get("charset", "utf-8").lower()
    if request.content_type != "application/json" or charset not in ("utf-8", "utf8"):
        raise ApiError(415, "unsupported_media_type", "the body must be JSON sent as Content-Type: application/json")
    try:
        return json.loads(
            body.decode("utf-8"),
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid UTF-8") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, duplicate keys, huge integers
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def authenticate(request: HttpRequest):
    """The request's API token, or ApiError: 401 for a missing or bad token, 429 for a client that
    sent too many of those lately (then even a good token waits for the end of its window)."""
    guard = throttle.AuthThrottle.from_settings()
    client = throttle.client_key(throttle.client_address(request)) if guard.enabled else ""
    refusal = guard.refusal(client)
    if refusal is not None:
        raise ApiError(
            429,
            "throttled",
            f"too many requests with a missing or bad token from this client; retry in {refusal.retry_after} s",
            headers={"Retry-After": str(refusal.retry_after)},
            extra={"retry_after": refusal.retry_after},
        )

    def refuse(message: str) -> ApiError:
        delay = guard.record_failure(client)
        if delay > 0:
            throttle.sleep(delay)
        return ApiError(401, "unauthorized", message)

    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, raw = header.partition(" ")
    if not header:
        raise refuse("send the API token as Authorization: Bearer <token>")
    if scheme.lower() != "bearer" or not TOKEN_RE.fullmatch(raw.strip()):
        raise refuse("the Authorization header must be Bearer <token>")
    token = services.token_for(raw.strip())
    if token is None:
        raise refuse("the token is unknown or revoked")
    return token


def _answer(exc: Exception) -> Optional[JsonResponse]:
    """The JSON answer to an expected error; None for anything else (a bug)."""
    if isinstance(exc, ApiError):
        headers = dict(exc.headers)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=headers, **exc.extra)
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
    if isinstance(exc, engine.Refused):  # Conflict, AccountDisabled
        return error_response(409, exc.code, exc.message)
    if isinstance(exc, DatabaseError) and faults.classify(exc) is not None:
        exc = faults.refused(exc)  # outside a service's retries, e.g. the token look-up
    if isinstance(exc, faults.DatabaseFault):
        return error_response(
            503, exc.code, str(exc), retry_after=exc.retry_after, headers={"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, services.EngineUnavailable):
        return error_response(503, "engine_error", str(exc), headers={"Retry-After": str(ENGINE_RETRY_AFTER)})
    return None


def api_view(methods: Iterable[str], *, auth: bool = True) -> Callable:
    """Wrap a function view of the bot API.

    The view gets ``request.api_token`` (None when ``auth`` is false) and ``request.data``, the
    parsed JSON body of a POST or PATCH (None when the body is empty), and returns a dict, a
    ``(dict, status)`` pair or a response.
    """
    allowed = tuple(m.upper() for m in methods)

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if request.method not in allowed:
                return error_response(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not allowed here; use {', '.join(allowed)}",
                    headers={"Allow": ", ".join(allowed)},
                )
            try:
                request.api_token = authenticate(request) if auth else None
                request.data = parse_json_body(request) if request.method in BODY_METHODS else None
                result = view(request, *args, **kwargs)
            except Exception as exc:
                answer = _answer(exc)
                if answer is None:
                    logger.exception("unexpected error in %s %s", request.method, request.path)
                    answer = error_response(500, "internal_error", "an unexpected error occurred; it has been logged")
                return answer
            if isinstance(result, tuple):
                body, status = result
                return JsonResponse(body, status=status)
            if isinstance(result, dict):
                return JsonResponse(result)
            return result

        decorated = csrf_exempt(wrapped)
        decorated.api_methods = allowed  # read by the OpenAPI tests
        return decorated

    return decorator
