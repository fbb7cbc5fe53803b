"""Top-level URLs: the bot API, the admin and the login pages."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("lanes.urls")),
    path("", include("lanes.dashboard_urls")),
]
