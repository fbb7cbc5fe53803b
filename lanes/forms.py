"""The admin's account form, checked by settings_app.validation like every other interface."""
from __future__ import annotations

from django import forms

from settings_app.validation import ConfigError, check_stake_fits, clean_account_fields

from .models import Account
from .validation import clean_account_name

MONEY_FIELDS = ("balance", "base_amount", "martingale_multiplier", "payout_rate", "martingale_max_level")
FLAG_FIELDS = ("is_demo", "enabled", "martingale_enabled", "enhanced_martingale_enabled")


class AccountAdminForm(forms.ModelForm):
    # Text, not DecimalField/IntegerField, so the messages are settings_app.validation's.
    balance = forms.CharField(required=False, help_text="0.00–99,999,999.99")
    base_amount = forms.CharField(required=False, help_text="0.01–99,999,999.99")
    martingale_multiplier = forms.CharField(required=False, help_text="1.01–999.99")
    martingale_max_level = forms.CharField(required=False, help_text="1–20")
    payout_rate = forms.CharField(required=False, help_text="0.0100–10.0000")

    class Meta:
        model = Account
        fields = ("worker_name", *FLAG_FIELDS, *MONEY_FIELDS)

    def clean_worker_name(self):
        try:
            return clean_account_name(self.cleaned_data["worker_name"], field="worker_name")
        except ConfigError as error:
            raise forms.ValidationError(error.errors["worker_name"]) from None

    def clean(self):
        data = super().clean()
        self.account_values = {}
        raw = {name: data[name] for name in (*FLAG_FIELDS, *MONEY_FIELDS) if name in self.fields and name in data}
        try:
            self.account_values = clean_account_fields(raw, from_text=True)
            check_stake_fits(
                self.account_values.get("base_amount", self.instance.base_amount),
                self.account_values.get("martingale_multiplier", self.instance.martingale_multiplier),
                self.account_values.get("martingale_max_level", self.instance.martingale_max_level),
                self.account_values.get("payout_rate", self.instance.payout_rate),
            )
        except ConfigError as error:
            for field, message in error.errors.items():
                self.add_error(field if field in self.fields else None, message)
            self.account_values = {}
        data.update(self.account_values)
        return data
