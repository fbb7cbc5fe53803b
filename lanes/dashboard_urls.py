"""URLs of the trader's dashboard, mounted at the site root (SPEC §9, "Dashboard")."""
from django.urls import path

from . import views
from .simulator import web as simulator_web

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("overview/live/", views.overview_partial, name="overview-partial"),
    path("account/<str:name>/", views.account_detail, name="account"),
    path("account/<str:name>/settings/", views.account_settings, name="settings"),
    path("account/<str:name>/settings/risk/", views.account_settings_risk, name="settings-risk"),
    path("account/<str:name>/reset/", views.account_reset, name="reset"),
    path("account/<str:name>/emergency-stop/", views.account_emergency_stop, name="emergency-stop"),
    path("lock/<str:lock_id>/release/", views.lock_release, name="lock-release"),
    path("lane/<str:lane_id>/", views.lane_detail, name="lane"),
    path("lane/<str:lane_id>/complete/", views.lane_complete, name="lane-complete"),
    path("trade/<str:trade_id>/settle/", views.trade_settle, name="trade-settle"),
    path("stats/", views.stats, name="stats"),
    path("simulate/", simulator_web.simulate_page, name="simulate"),
    path("simulate/<str:job>/", simulator_web.simulate_run, name="simulate-run"),
    path("simulate/<str:job>/status/", simulator_web.simulate_status, name="simulate-status"),
    path("export/trades.csv", views.export_trades, name="export-trades"),
    path("export/lane-events.csv", views.export_events, name="export-events"),
    path("export/lanes.csv", views.export_lanes, name="export-lanes"),
]
