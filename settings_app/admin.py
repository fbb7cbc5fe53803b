"""Django admin for trading_settings: checked by settings_app.validation, saved by the service."""
from django.contrib import admin

from lanes import services

from .forms import TradingSettingsAdminForm
from .models import TradingSettings


@admin.register(TradingSettings)
class TradingSettingsAdmin(admin.ModelAdmin):
    form = TradingSettingsAdminForm
    list_display = (
        "account_name", "concurrent_trading_enabled", "max_concurrent_lanes", "lane_assignment_strategy",
        "auto_create_lanes", "cool_down_seconds", "max_daily_lanes", "ladder_mode", "max_stake", "max_exposure",
        "daily_stop_loss", "daily_take_profit", "max_exhausted_lanes", "updated_at",
    )
    list_filter = ("concurrent_trading_enabled", "lane_assignment_strategy", "auto_create_lanes")
    search_fields = ("account_name",)
    date_hierarchy = "updated_at"
    readonly_fields = ("created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # The row belongs to its account by name; it is never moved to another account.
        return (*self.readonly_fields, "account_name") if obj is not None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The form has checked the values; the service locks the account and writes the row.
        saved = services.settings_update(
            account_name=obj.account_name, values=form.settings_values, actor=f"admin:{request.user.get_username()}"
        )
        obj.pk = saved.pk
