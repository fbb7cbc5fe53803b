"""Accounts (SPEC §1–2, §9): an account's own fields, its six trading settings, its status and
statistics."""
from __future__ import annotations

from django.http import JsonResponse
from ninja import Query, Router

from .. import selectors, services
from ..ranges import ACCOUNT, ALL_SETTINGS, STATS_DAYS, InvalidInput
from ..serializers import account_json, settings_json
from .auth import actor, check_account
from .params import known_query
from .schemas import DAYS, Account, AccountChange, AccountName, AccountPatch, AccountStatus, Settings, SettingsPatch, Stats

router = Router()


def _given(body, names) -> dict:
    values = body.model_dump(exclude_unset=True)
    if not values:
        raise InvalidInput({"body": "must be a JSON object naming at least one of " + ", ".join(names)})
    return values


@router.get("/accounts/{account}", response=Account, operation_id="getAccount", summary="The account's own fields: stakes, payout rate, balance and switches")
def get_account(request, account: AccountName):
    check_account(request, account)
    known_query(request)
    return JsonResponse(account_json(selectors.account_get(account_name=account)))


@router.patch(
    "/accounts/{account}",
    response=AccountChange,
    operation_id="updateAccount",
    summary="Change the account's own fields; all or nothing",
    description=(
        "Switching martingale or lanes off with active lanes answers a warning (the lanes stay idle), and "
        "complete_active_lanes completes them in the same change."
    ),
)
def update_account(request, account: AccountName, body: AccountPatch):
    check_account(request, account)
    values = _given(body, [*ACCOUNT, "complete_active_lanes"])
    complete = bool(values.pop("complete_active_lanes", False))
    change = services.account_update(name=account, values=values, actor=actor(request), complete_active_lanes=complete)
    return JsonResponse(
        {
            **account_json(change.account),
            "warnings": change.warnings,
            "completed_lanes": [lane.lane_id for lane in change.completed_lanes],
        }
    )


@router.get(
    "/accounts/{account}/settings",
    response=Settings,
    operation_id="getSettings",
    summary="The account's trading settings: the six of lanes and the risk guard's (the defaults when it has none stored)",
)
def get_settings(request, account: AccountName):
    check_account(request, account)
    known_query(request)
    return JsonResponse(selectors.settings_get(account_name=account))


@router.patch(
    "/accounts/{account}/settings",
    response=Settings,
    operation_id="updateSettings",
    summary="Change any of the trading settings, the risk guard's included (null = off); all or nothing",
)
def update_settings(request, account: AccountName, body: SettingsPatch):
    check_account(request, account)
    row = services.settings_update(account_name=account, values=_given(body, ALL_SETTINGS), actor=actor(request))
    return JsonResponse(settings_json(account, row))


@router.get(
    "/accounts/{account}/status",
    response=AccountStatus,
    operation_id="getAccountStatus",
    summary="The account with its settings, slots, active lanes, open and queued trades",
)
def get_account_status(request, account: AccountName):
    check_account(request, account)
    known_query(request)
    return JsonResponse(selectors.account_status_get(account_name=account))


@router.get("/accounts/{account}/stats", response=Stats, operation_id="getAccountStats", summary="Statistics of one account over the last `days` days")
def get_account_stats(request, account: AccountName, days: DAYS = Query(STATS_DAYS.default)):
    check_account(request, account)
    known_query(request, "days")
    return JsonResponse(selectors.stats_with_risk_get(account=account, days=days))
