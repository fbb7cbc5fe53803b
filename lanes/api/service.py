"""Reads over every account in the token's scope, and the service's health (SPEC §9)."""
from __future__ import annotations

from django.http import JsonResponse
from ninja import Query, Router

from .. import selectors
from ..health import health as health_check
from ..ranges import STATS_DAYS
from .auth import scope
from .params import known_query
from .schemas import DAYS, Health, Stats, Status

router = Router()


@router.get("/stats", response=Stats, operation_id="getStats", summary="Statistics of every account in the token's scope over the last `days` days")
def get_stats(request, days: DAYS = Query(STATS_DAYS.default)):
    known_query(request, "days")
    return JsonResponse(selectors.stats_with_risk_get(days=days, account_names=scope(request)))


@router.get("/status", response=Status, operation_id="getStatus", summary="The status of every enabled account in the token's scope")
def get_status(request):
    known_query(request)
    return JsonResponse(selectors.status_all(account_names=scope(request)))


@router.get(
    "/health",
    auth=None,
    response={200: Health, 503: Health},
    operation_id="health",
    summary="Database and broker health; a broker outage is reported but is not a failure",
)
def health(request):
    document, healthy = health_check()
    return JsonResponse(document, status=200 if healthy else 503)
