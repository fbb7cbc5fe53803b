"""URLs of the bot API, mounted at /api/v1/ (SPEC §9): ninja's operations (their 405 and 404
answers in the JSON error shape), and a JSON 404 for anything else under /api/v1/."""
from django.urls import URLPattern, re_path

from .api import api, errors

patterns, _, _ = api.urls
app_name = api.urls_namespace  # "api": ninja reverses its own views in it
for pattern in patterns:
    if isinstance(pattern, URLPattern):
        pattern.callback = errors.json_answers(pattern.callback)
        if pattern.name in ("openapi-json", "openapi-view"):
            pattern.callback = errors.only_get(pattern.callback)

urlpatterns = [*patterns, re_path(r"^(?P<path>.*)$", errors.not_found, name="api-not-found")]
