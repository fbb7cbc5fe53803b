"""Forms that edit an account's configuration: the dashboard's settings form and the admin's
trading-settings form.

Number fields are plain text here and every value is checked by ``settings_app.validation``,
so the dashboard and the admin show the very messages the API and the CLI give.
"""
from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Fieldset, Layout, Row
from django import forms

from lanes.models import Account

from .models import LaneAssignmentStrategy, TradingSettings
from .validation import SETTINGS_DEFAULTS, ConfigError, check_stake_fits, clean_account_fields, clean_trading_settings

ACCOUNT_FIELDS = ("base_amount", "martingale_multiplier", "martingale_max_level", "payout_rate")


def _add_errors(form: forms.BaseForm, error: ConfigError) -> None:
    for field, message in error.errors.items():
        form.add_error(field if field in form.fields else None, message)


def _text(label: str, help_text: str = "", inputmode: str = "decimal") -> forms.CharField:
    # Not an IntegerField/DecimalField: their own messages (and the browser's min/max checks)
    # would differ from the API's; settings_app.validation has the only say.
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.TextInput(attrs={"inputmode": inputmode, "autocomplete": "off"}),
    )


def _settings_fields() -> dict[str, forms.Field]:
    return {
        "concurrent_trading_enabled": forms.BooleanField(
            label="Concurrent trading", required=False, help_text="Several lanes trade at once (one open trade each)."
        ),
        "max_concurrent_lanes": _text("Max concurrent lanes", "1–10 active lanes at a time.", "numeric"),
        "lane_assignment_strategy": forms.CharField(
            label="Lane assignment strategy",
            required=False,
            widget=forms.Select(choices=LaneAssignmentStrategy.choices),
            help_text="Which idle lane a new trade joins.",
        ),
        "auto_create_lanes": forms.BooleanField(
            label="Auto-create lanes", required=False, help_text="Off = emergency stop: no new lanes."
        ),
        "cool_down_seconds": _text("Cool-down (seconds)", "0–3600 between two trade openings.", "numeric"),
        "max_daily_lanes": _text("Max lanes per day", "1–50 new lanes a day.", "numeric"),
    }


class AccountSettingsForm(forms.Form):
    """The six trading settings of SPEC §2 plus the account's stake settings."""

    base_amount = _text("Base amount", "Stake of a base trade, 0.01–99,999,999.99.")
    martingale_multiplier = _text("Multiplier", "Stake × this after each loss, 1.01–999.99.")
    martingale_max_level = _text("Max level", "Last level of a lane, 1–20.", "numeric")
    payout_rate = _text("Payout rate", "Profit per unit of stake on a win, 0.0100–10.0000.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(_settings_fields())
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
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
        )

    @classmethod
    def initial_for(cls, account: Account, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            **{name: settings[name] for name in SETTINGS_DEFAULTS},
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
            self.settings_values = clean_trading_settings(
                {name: data.get(name, "") for name in SETTINGS_DEFAULTS}, from_text=True
            )
        except ConfigError as error:
            _add_errors(self, error)
        try:
            self.account_values = clean_account_fields({name: data.get(name, "") for name in ACCOUNT_FIELDS}, from_text=True)
        except ConfigError as error:
            _add_errors(self, error)
        else:
            try:
                check_stake_fits(
                    self.account_values["base_amount"],
                    self.account_values["martingale_multiplier"],
                    self.account_values["martingale_max_level"],
                    self.account_values["payout_rate"],
                )
            except ConfigError as error:
                _add_errors(self, error)
        return data


class TradingSettingsAdminForm(forms.ModelForm):
    """The admin's form for a trading_settings row, checked by settings_app.validation."""

    class Meta:
        model = TradingSettings
        fields = ("account_name", *SETTINGS_DEFAULTS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.update(_settings_fields())

    def clean_account_name(self):
        name = self.cleaned_data["account_name"]
        if self.instance.pk is None and not Account.objects.filter(worker_name=name).exists():
            raise forms.ValidationError(f"account {name} not found")
        return name

    def clean(self):
        data = super().clean()
        self.settings_values = {}
        try:
            self.settings_values = clean_trading_settings(
                {name: data.get(name, "") for name in SETTINGS_DEFAULTS}, from_text=True
            )
        except ConfigError as error:
            _add_errors(self, error)
        data.update(self.settings_values)
        return data
