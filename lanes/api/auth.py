"""Who calls the bot API: the bearer token, resolved to its scope, with the bad-token throttle of
``lanes.throttle`` (SPEC §9). Refusals are JSON: 401 with ``WWW-Authenticate``, 429 ``throttled``."""
from __future__ import annotations

import re
from typing import Optional

from django.http import HttpRequest
from ninja.security import HttpBearer

from .. import services, throttle
from ..models import ApiToken
from .errors import ApiError

# A token is "ml_" + url-safe base64; anything else cannot match a stored hash.
TOKEN_RE = re.compile(r"[A-Za-z0-9_\-]{1,200}")


class bearerAuth(HttpBearer):  # noqa: N801 (the name is the document's security scheme)
    openapi_description = "An API token"

    def __call__(self, request: HttpRequest) -> ApiToken:
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

    def authenticate(self, request: HttpRequest, token: str) -> Optional[ApiToken]:  # pragma: no cover
        return services.token_for(token)


def actor(request: HttpRequest) -> str:
    return f"token:{request.auth.name}"


def scope(request: HttpRequest) -> Optional[list[str]]:
    """The account names the token covers, None for every account (the selectors' convention)."""
    token = request.auth
    return None if token.all_accounts else list(token.account_names)


def check_account(request: HttpRequest, name: str) -> str:
    """An account named by the request, within the token's scope (403 otherwise, SPEC §9)."""
    if not request.auth.covers(name):
        raise services.Forbidden(f"this token may not act on account {name}")
    return name
