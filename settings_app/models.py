"""The `trading_settings` table: one row per account, created on first write."""
from django.db import models
from django.db.models.functions import Now

from lanes.ranges import SETTINGS_DEFAULTS as DEFAULTS


class LaneAssignmentStrategy(models.TextChoices):
    FIFO = "fifo", "FIFO (oldest lane first)"
    ROUND_ROBIN = "round_robin", "Round robin"
    SYMBOL_PRIORITY = "symbol_priority", "Symbol priority"


class TradingSettings(models.Model):
    account_name = models.CharField(max_length=100, unique=True)
    concurrent_trading_enabled = models.BooleanField(
        default=DEFAULTS["concurrent_trading_enabled"], db_default=DEFAULTS["concurrent_trading_enabled"]
    )
    max_concurrent_lanes = models.IntegerField(
        default=DEFAULTS["max_concurrent_lanes"], db_default=DEFAULTS["max_concurrent_lanes"]
    )
    lane_assignment_strategy = models.CharField(
        max_length=15,
        choices=LaneAssignmentStrategy.choices,
        default=DEFAULTS["lane_assignment_strategy"],
        db_default=DEFAULTS["lane_assignment_strategy"],
    )
    auto_create_lanes = models.BooleanField(default=DEFAULTS["auto_create_lanes"], db_default=DEFAULTS["auto_create_lanes"])
    cool_down_seconds = models.IntegerField(default=DEFAULTS["cool_down_seconds"], db_default=DEFAULTS["cool_down_seconds"])
    max_daily_lanes = models.IntegerField(default=DEFAULTS["max_daily_lanes"], db_default=DEFAULTS["max_daily_lanes"])
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "trading_settings"
        verbose_name = "trading settings"
        verbose_name_plural = "trading settings"
        # No CHECK constraints: adopted tables may hold rows the old bot wrote out of range;
        # settings_app.validation refuses such values on every write instead.

    def __str__(self):
        return f"settings of {self.account_name}"
