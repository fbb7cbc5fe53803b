"""App config for the trading settings."""
from django.apps import AppConfig


class SettingsAppConfig(AppConfig):
    name = "settings_app"
    verbose_name = "Trading settings"
    default_auto_field = "django.db.models.AutoField"
