"""URLs of the bot API, mounted at /api/v1/ (SPEC §9).

Path parameters are plain strings here and validated in the views, so a malformed id is a 400
naming the field rather than a 404. Anything else under /api/v1/ is a JSON 404.
"""
from django.urls import path, re_path

from . import api

urlpatterns = [
    path("trades", api.trade_create, name="api-trades"),
    path("trades/<str:trade_id>", api.trade_detail, name="api-trade"),
    path("trades/<str:trade_id>/result", api.trade_result, name="api-trade-result"),
    path("trades/<str:trade_id>/cancel", api.trade_cancel, name="api-trade-cancel"),
    path("lanes", api.lane_index, name="api-lanes"),
    path("lanes/<str:lane_id>", api.lane_detail, name="api-lane"),
    path("lanes/<str:lane_id>/complete", api.lane_complete, name="api-lane-complete"),
    path("accounts/<str:account>", api.account_detail, name="api-account"),
    path("accounts/<str:account>/settings", api.account_settings, name="api-account-settings"),
    path("accounts/<str:account>/status", api.account_status, name="api-account-status"),
    path("accounts/<str:account>/stats", api.account_stats, name="api-account-stats"),
    path("stats", api.stats, name="api-stats"),
    path("status", api.status, name="api-status"),
    path("health", api.health, name="api-health"),
    path("openapi.json", api.openapi, name="api-openapi"),
    re_path(r"^(?P<path>.*)$", api.not_found, name="api-not-found"),
]
