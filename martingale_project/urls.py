"""Top-level URLs: the bot API, the admin, the login pages and the dashboard."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("lanes.urls")),
    path("", include("lanes.dashboard_urls")),
]

# Errors raised before any view (a bad Host header, say) answer JSON under /api/.
handler400 = "lanes.api.errors.bad_request"
handler500 = "lanes.api.errors.server_error"
