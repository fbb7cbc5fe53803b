"""URLs of the bot API (filled in by lanes.api)."""
urlpatterns = []
