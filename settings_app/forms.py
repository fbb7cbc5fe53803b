"""Forms that edit an account's configuration: the dashboard's settings form and the admin's
trading-settings form.

Number fields are plain text here and every value is checked by ``settings_app.validation``,
so the dashboard and the admin show the very messages the API and the CLI give; labels' help
texts and ranges come from ``lanes.ranges``.
"""
from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Fieldset, Layout, Row
from django import forms

from lanes.models import Account
from lanes.ranges import ACCOUNT, ALL_SETTINGS, LADDER_MODES, RISK_DEFAULTS, SETTINGS_DEFAULTS, Flag, InvalidInput

from .models import LaneAssignmentStrategy, TradingSettings
from .validation import check_stake_fits, clean_account_fields, clean_trading_settings

STAKE_FIELDS = ("base_amount", "martingale_multiplier", "martingale_max_level", "payout_rate")
SWITCH_FIELDS = ("martingale_enabled", "enhanced_martingale_enabled")


def help_for(name: str) -> str:
    """A field's help text with its allowed range, from lanes.ranges."""
    field = ALL_SETTINGS.get(name) or ACCOUNT[name]
    if isinstance(field, Flag):
        return field.help
    return f"{field.help} {field.describe()}."


def _add_errors(form: forms.BaseForm, error: InvalidInput) -> None:
    for field, message in error.errors.items():
        form.add_error(field if field in form.fields else None, message)


def _text(label: str, name: str, inputmode: str = "decimal") -> forms.CharField:
    # Not an IntegerField/DecimalField: their own messages (and the browser's min/max checks)
    # would differ from the API's; settings_app.validation has the only say.
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_for(name),
        widget=forms.TextInput(attrs={"inputmode": inputmode, "autocomplete": "off"}),
    )


def _settings_fields() -> dict[str, forms.Field]:
    return {
        "concurrent_trading_enabled": forms.BooleanField(
            label="Concurrent trading", required=False, help_text=help_for("concurrent_trading_enabled")
        ),
        "max_concurrent_lanes": _text("Max concurrent lanes", "max_concurrent_lanes", "numeric"),
        "lane_assignment_strategy": forms.CharField(
            label="Lane assignment strategy",
            required=False,
            widget=forms.Select(choices=LaneAssignmentStrategy.choices),
            help_text=help_for("lane_assignment_strategy"),
        ),
        "auto_create_lanes": forms.BooleanField(
            label="Auto-create lanes", required=False, help_text=help_for("auto_create_lanes")
        ),
        "cool_down_seconds": _text("Cool-down (seconds)", "cool_down_seconds", "numeric"),
        "max_daily_lanes": _text("Max lanes per day", "max_daily_lanes", "numeric"),
    }


# SPEC §11: a setting that may be off is an empty box (or "off").
OFF_FIELDS = ("max_stake", "max_exposure", "daily_stop_loss", "daily_take_profit", "max_exhausted_lanes")


def _risk_fields() -> dict[str, forms.Field]:
    fields = {
        "ladder_mode": forms.CharField(
            label="Ladder mode",
            required=False,
            widget=forms.Select(choices=[(mode, mode.capitalize()) for mode in LADDER_MODES]),
            help_text=help_for("ladder_mode"),
        ),
        "max_stake": _text("Max stake", "max_stake"),
        "max_exposure": _text("Max exposure", "max_exposure"),
        "daily_stop_loss": _text("Daily stop-loss", "daily_stop_loss"),
        "daily_take_profit": _text("Daily take-profit", "daily_take_profit"),
        "max_exhausted_lanes": _text("Max exhausted lanes", "max_exhausted_lanes", "numeric"),
        "exhausted_window_hours": _text("Exhausted-lanes window (hours)", "exhausted_window_hours", "numeric"),
        "lock_minutes": _text("Lock for (minutes)", "lock_minutes", "numeric"),
    }
    for name in OFF_FIELDS:
        fields[name].widget.attrs["placeholder"] = "off"
    return fields


def _initial_text(value: Any) -> Any:
    """A stored setting as the form shows it: off as an empty box, money with its two places."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    return str(value)


class AccountSettingsForm(forms.Form):
    """The six trading settings of SPEC §2, the account's stake settings and its mode switches."""

    martingale_enabled = forms.BooleanField(label="Martingale", required=False, help_text=help_for("martingale_enabled"))
    enhanced_martingale_enabled = forms.BooleanField(
        label="Lanes (enhanced mode)", required=False, help_text=help_for("enhanced_martingale_enabled")
    )
    complete_active_lanes = forms.BooleanField(
        label="Also complete the active lanes",
        required=False,
        help_text="Force-complete every active lane of the account in the same change.",
    )
    base_amount = _text("Base amount", "base_amount")
    martingale_multiplier = _text("Multiplier", "martingale_multiplier")
    martingale_max_level = _text("Max level", "martingale_max_level", "numeric")
    payout_rate = _text("Payout rate", "payout_rate")

    def __init__(self, *args, active_lanes: int = 0, current: dict[str, Any] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.current = current or {}  # the stored risk-guard settings, for what the post leaves out
        self.fields.update(_settings_fields())
        self.fields.update(_risk_fields())
        self.active_lanes = active_lanes
        modes = [Row(Column("martingale_enabled"), Column("enhanced_martingale_enabled"))]
        if active_lanes:
            self.fields["complete_active_lanes"].label = f"Also complete the {active_lanes} active lane(s)"
            modes.append("complete_active_lanes")
        else:
            del self.fields["complete_active_lanes"]
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset("Mode", *modes),
            Fieldset(
                "Lanes",
                Row(Column("concurrent_trading_enabled"), Column("auto_create_lanes")),
                Row(Column("max_concurrent_lanes"), Column("max_daily_lanes")),
                Row(Column("lane_assignment_strategy"), Column("cool_down_seconds")),
            ),
            Fieldset(
                "Stakes",
                Row(Column("base_amount"), Column("martingale_multiplier")),
                Row(Column("martingale_max_level"), Column("payout_rate")),
            ),
            Fieldset(
                "Risk guard (empty = off)",
                Row(Column("ladder_mode"), Column("max_stake")),
                Row(Column("max_exposure"), Column("lock_minutes")),
                Row(Column("daily_stop_loss"), Column("daily_take_profit")),
                Row(Column("max_exhausted_lanes"), Column("exhausted_window_hours")),
            ),
        )

    @classmethod
    def initial_for(cls, account: Account, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            **{name: settings[name] for name in SETTINGS_DEFAULTS},
            **{name: _initial_text(settings.get(name, default)) for name, default in RISK_DEFAULTS.items()},
            **{name: getattr(account, name) for name in SWITCH_FIELDS},
            "base_amount": f"{account.base_amount:.2f}",
            "martingale_multiplier": f"{account.martingale_multiplier:.2f}",
            "martingale_max_level": str(account.martingale_max_level),
            "payout_rate": f"{account.payout_rate:.4f}",
        }

    def clean(self):
        data = super().clean()
        self.settings_values: dict[str, Any] = {}
        self.account_values: dict[str, Any] = {}
        try:
            # A risk-guard setting the post leaves out keeps its value (an empty box is "off").
            names = [*SETTINGS_DEFAULTS, *(name for name in RISK_DEFAULTS if name in self.data)]
            self.settings_values = clean_trading_settings({name: data.get(name, "") for name in names}, from_text=True)
        except InvalidInput as error:
            _add_errors(self, error)
        try:
            self.account_values = clean_account_fields(
                {name: data.get(name, "") for name in (*STAKE_FIELDS, *SWITCH_FIELDS)}, from_text=True
            )
        except InvalidInput as error:
            _add_errors(self, error)
        else:
            try:
                check_stake_fits(
                    *(self.account_values[name] for name in STAKE_FIELDS),
                    ladder_mode=self.settings_values.get("ladder_mode", self.current.get("ladder_mode", RISK_DEFAULTS["ladder_mode"])),
                    max_stake=self.settings_values.get("max_stake", self.current.get("max_stake")),
                )
            except InvalidInput as error:
                _add_errors(self, error)
        self.complete_active_lanes = bool(data.get("complete_active_lanes"))
        return data


class TradingSettingsAdminForm(forms.ModelForm):
    """The admin's form for a trading_settings row, checked by settings_app.validation."""

    class Meta:
        model = TradingSettings
        fields = ("account_name", *SETTINGS_DEFAULTS, *RISK_DEFAULTS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(_settings_fields())
        self.fields.update(_risk_fields())
        if self.instance.pk is not None and not self.is_bound:
            for name in RISK_DEFAULTS:  # off as an empty box, as the dashboard shows it
                self.initial[name] = _initial_text(getattr(self.instance, name))

    def clean_account_name(self):
        name = self.cleaned_data["account_name"]
        if self.instance.pk is None and not Account.objects.filter(worker_name=name).exists():
            raise forms.ValidationError(f"account {name} not found")
        return name

    def clean(self):
        data = super().clean()
        self.settings_values = {}
        try:
            names = [*SETTINGS_DEFAULTS, *(name for name in RISK_DEFAULTS if name in self.data)]
            self.settings_values = clean_trading_settings({name: data.get(name, "") for name in names}, from_text=True)
        except InvalidInput as error:
            _add_errors(self, error)
        data.update(self.settings_values)
        return data
