"""The `trading_settings` table: one row per account, created on first write."""
from django.db import models
from django.db.models.functions import Now

from lanes.ranges import ALL_SETTINGS_DEFAULTS as DEFAULTS, LADDER_MODES


class LaneAssignmentStrategy(models.TextChoices):
    FIFO = "fifo", "FIFO (oldest lane first)"
    ROUND_ROBIN = "round_robin", "Round robin"
    SYMBOL_PRIORITY = "symbol_priority", "Symbol priority"


class LadderMode(models.TextChoices):
    MULTIPLIER = LADDER_MODES[0], "Multiplier (stake × multiplier per level)"
    RECOVER = LADDER_MODES[1], "Recover (the losses and the base profit at the payout rate)"


def _money_or_off():
    return models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)


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
    # The risk guard (SPEC §11); NULL = off.
    ladder_mode = models.CharField(
        max_length=10, choices=LadderMode.choices, default=DEFAULTS["ladder_mode"], db_default=DEFAULTS["ladder_mode"]
    )
    max_stake = _money_or_off()
    max_exposure = _money_or_off()
    daily_stop_loss = _money_or_off()
    daily_take_profit = _money_or_off()
    max_exhausted_lanes = models.IntegerField(null=True, blank=True)
    exhausted_window_hours = models.IntegerField(
        default=DEFAULTS["exhausted_window_hours"], db_default=DEFAULTS["exhausted_window_hours"]
    )
    lock_minutes = models.IntegerField(default=DEFAULTS["lock_minutes"], db_default=DEFAULTS["lock_minutes"])

    class Meta:
        db_table = "trading_settings"
        verbose_name = "trading settings"
        verbose_name_plural = "trading settings"
        # No CHECK constraints: adopted tables may hold rows the old bot wrote out of range;
        # settings_app.validation refuses such values on every write instead.

    def __str__(self):
        return f"settings of {self.account_name}"
