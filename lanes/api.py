"""The bot API (SPEC §9): each view parses its input, calls one service or selector and answers
JSON. Authentication, body parsing and error answers live in ``lanes.decorators.api_view``.

Scope: a token acts only on the accounts it covers. A request that names an account outside the
token's scope is refused with 403 before the account is looked up, so a scoped token cannot probe
which accounts exist; a trade or lane outside the scope answers 404, as an unknown one does.
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable, Optional

from django.http import HttpRequest, JsonResponse
from django.views import defaults as django_defaults
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from . import engine, selectors, services
from .decorators import api_view, error_response
from .health import health as health_check
from .models import ApiToken, LaneStatus
from .openapi import OPENAPI
from .ranges import ACCOUNT, LANE_LIST_LIMIT, SETTINGS, Flag, InvalidInput
from .selectors.stats import clean_days
from .serializers import account_json, event_json, lane_json, settings_json, trade_json
from .validation import (
    clean,
    clean_account_name,
    clean_choice,
    clean_result,
    clean_trade_id,
    clean_trade_request,
    unknown_fields,
)

ACCOUNT_PATCH_FIELDS = (*ACCOUNT, "complete_active_lanes")


# --- Parsing helpers ----------------------------------------------------------------------------


def _actor(request: HttpRequest) -> str:
    return f"token:{request.api_token.name}"


def _scope(token: ApiToken) -> Optional[list[str]]:
    """The account names a token covers, None for every account (the selectors' convention)."""
    return None if token.all_accounts else list(token.account_names)


def _account(request: HttpRequest, raw: str) -> str:
    """A path's account name, validated and within the token's scope."""
    name = clean_account_name(raw)
    if not request.api_token.covers(name):
        raise services.Forbidden(f"this token may not act on account {name}")
    return name


def _query(request: HttpRequest, allowed: Iterable[str]) -> dict[str, str]:
    allowed = tuple(allowed)
    errors = {name: "is not a known query parameter" for name in request.GET if name not in allowed}
    errors.update({name: "must be given once" for name in request.GET if len(request.GET.getlist(name)) > 1})
    if errors:
        raise InvalidInput(errors)
    return {name: request.GET[name] for name in request.GET}


def _object(data: Any, allowed: Iterable[str], *, empty_ok: bool = False) -> dict:
    """A JSON object body with only ``allowed`` keys; an empty body is ``{}`` when ``empty_ok``."""
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput({"body": "must be a JSON object"})
    unknown_fields(data, tuple(allowed))
    return data


def _new_trade_id() -> str:
    return uuid.uuid4().hex


def _trade(outcome: services.TradeOutcome, account_name: Optional[str] = None) -> dict[str, Any]:
    name = account_name or outcome.trade.account.worker_name
    return trade_json(outcome.trade, account_name=name, queue_position=outcome.queue_position)


# --- Trades -------------------------------------------------------------------------------------


@api_view(["POST"])
def trade_create(request):
    account, trade_request = clean_trade_request(request.data, _new_trade_id)
    if not request.api_token.covers(account):
        raise services.Forbidden(f"this token may not act on account {account}")
    outcome = services.trade_open(
        account_name=account, request=trade_request, actor=_actor(request), authorize=request.api_token.covers
    )
    response = JsonResponse(_trade(outcome, account), status=201 if outcome.created else 200)
    response["Location"] = reverse("api-trade", args=[trade_request.trade_id])
    return response


@api_view(["GET"])
def trade_detail(request, trade_id):
    _query(request, ())
    outcome = services.trade_refresh(
        trade_id=clean_trade_id(trade_id), actor=_actor(request), authorize=request.api_token.covers
    )
    return _trade(outcome)


@api_view(["POST"])
def trade_result(request, trade_id):
    trade_id = clean_trade_id(trade_id)
    result, payout = clean_result(request.data)
    outcome = services.trade_settle(
        trade_id=trade_id, result=result, payout=payout, actor=_actor(request), authorize=request.api_token.covers
    )
    lane = lane_json(outcome.lane, open_trade_id=outcome.lane_open_trade_id) if outcome.lane else None
    return {**_trade(outcome), "lane": lane}


@api_view(["POST"])
def trade_cancel(request, trade_id):
    trade_id = clean_trade_id(trade_id)
    _object(request.data, (), empty_ok=True)
    outcome = services.trade_cancel(trade_id=trade_id, actor=_actor(request), authorize=request.api_token.covers)
    return _trade(outcome)


# --- Lanes --------------------------------------------------------------------------------------


@api_view(["GET"])
def lane_index(request):
    query = _query(request, ("account", "status", "limit", "cursor"))
    account = clean_account_name(query["account"]) if "account" in query else None
    status = clean_choice(query["status"], "status", tuple(LaneStatus.values)) if "status" in query else None
    lanes, cursor = selectors.lane_page(
        account=account,
        status=status,
        account_names=_scope(request.api_token),
        limit=query.get("limit", LANE_LIST_LIMIT.default),
        cursor=query.get("cursor"),
    )
    return {"lanes": [lane_json(lane) for lane in lanes], "next": cursor}


@api_view(["GET"])
def lane_detail(request, lane_id):
    _query(request, ())
    lane = selectors.lane_get(lane_id=clean_trade_id(lane_id, field="lane_id"))
    if not request.api_token.covers(lane.account_name):
        raise services.NotFound(f"lane {lane.lane_id} not found")  # as an unknown one: ids cannot be probed
    return {
        **lane_json(lane),
        "events": [event_json(event) for event in selectors.lane_events(lane=lane)],
        "trades": [trade_json(trade, account_name=lane.account_name) for trade in selectors.lane_trades(lane=lane)],
    }


@api_view(["POST"])
def lane_complete(request, lane_id):
    lane_id = clean_trade_id(lane_id, field="lane_id")
    body = _object(request.data, ("status",), empty_ok=True)
    status = clean_choice(body.get("status", engine.COMPLETED), "status", engine.LANE_END_STATUSES)
    services.lane_force_complete(
        lane_id=lane_id, status=status, actor=_actor(request), authorize=request.api_token.covers
    )
    # Read back for open_trade_id: a trade open in the lane stays open and takes its result later.
    return lane_json(selectors.lane_get(lane_id=lane_id))


# --- Accounts -----------------------------------------------------------------------------------


@api_view(["GET", "PATCH"])
def account_settings(request, account):
    account = _account(request, account)
    if request.method == "GET":
        _query(request, ())
        return selectors.settings_get(account_name=account)
    if not isinstance(request.data, dict) or not request.data:
        raise InvalidInput({"body": "must be a JSON object naming at least one of " + ", ".join(SETTINGS)})
    row = services.settings_update(account_name=account, values=request.data, actor=_actor(request))
    return settings_json(account, row)


@api_view(["GET", "PATCH"])
def account_detail(request, account):
    """The account's own fields (stakes, balance, switches); a PATCH answers what to know about it."""
    account = _account(request, account)
    if request.method == "GET":
        _query(request, ())
        return account_json(selectors.account_get(account_name=account))
    if not isinstance(request.data, dict) or not request.data:
        raise InvalidInput({"body": "must be a JSON object naming at least one of " + ", ".join(ACCOUNT_PATCH_FIELDS)})
    body = _object(request.data, ACCOUNT_PATCH_FIELDS)
    complete = clean(Flag(False), body.pop("complete_active_lanes", False), "complete_active_lanes")
    change = services.account_update(
        name=account, values=body, actor=_actor(request), complete_active_lanes=complete
    )
    return {
        **account_json(change.account),
        "warnings": change.warnings,
        "completed_lanes": [lane.lane_id for lane in change.completed_lanes],
    }


@api_view(["GET"])
def account_status(request, account):
    account = _account(request, account)
    _query(request, ())
    return selectors.account_status_get(account_name=account)


@api_view(["GET"])
def account_stats(request, account):
    account = _account(request, account)
    days = clean_days(_query(request, ("days",)).get("days", "7"))
    return selectors.stats_get(account=account, days=days)


@api_view(["GET"])
def stats(request):
    days = clean_days(_query(request, ("days",)).get("days", "7"))
    return selectors.stats_get(days=days, account_names=_scope(request.api_token))


@api_view(["GET"])
def status(request):
    _query(request, ())
    return selectors.status_all(account_names=_scope(request.api_token))


# --- Service ------------------------------------------------------------------------------------


@api_view(["GET"], auth=False)
def health(request):
    document, healthy = health_check()
    return document, 200 if healthy else 503


@api_view(["GET"], auth=False)
def openapi(request):
    return OPENAPI


@csrf_exempt
def not_found(request, path=""):
    return error_response(404, "not_found", f"no API endpoint at {request.path}")


# --- Errors raised before a view runs ------------------------------------------------------------


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
    """Django's handler500: JSON under /api/ (the API's own views already answer JSON errors)."""
    if _is_api(request):
        return error_response(500, "internal_error", "an unexpected error occurred; it was logged")
    return django_defaults.server_error(request)
