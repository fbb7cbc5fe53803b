"""App config for the lane engine."""
from django.apps import AppConfig


class LanesConfig(AppConfig):
    name = "lanes"
    verbose_name = "Martingale lanes"
    default_auto_field = "django.db.models.AutoField"
