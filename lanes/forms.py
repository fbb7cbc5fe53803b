"""The admin's account form, checked by settings_app.validation like every other interface."""
from __future__ import annotations

from django import forms

from settings_app.forms import help_for
from settings_app.validation import check_stake_fits, clean_account_fields

from .models import Account
from .ranges import PAYOUT, InvalidInput
from .validation import clean_account_name

MONEY_FIELDS = ("balance", "base_amount", "martingale_multiplier", "payout_rate", "martingale_max_level")
FLAG_FIELDS = ("is_demo", "enabled", "martingale_enabled", "enhanced_martingale_enabled")


class AccountAdminForm(forms.ModelForm):
    # Text, not DecimalField/IntegerField, so the messages are settings_app.validation's.
    balance = forms.CharField(required=False, help_text=help_for("balance"))
    base_amount = forms.CharField(required=False, help_text=help_for("base_amount"))
    martingale_multiplier = forms.CharField(required=False, help_text=help_for("martingale_multiplier"))
    martingale_max_level = forms.CharField(required=False, help_text=help_for("martingale_max_level"))
    payout_rate = forms.CharField(required=False, help_text=help_for("payout_rate"))

    class Meta:
        model = Account
        fields = ("worker_name", *FLAG_FIELDS, *MONEY_FIELDS)

    def clean_worker_name(self):
        try:
            return clean_account_name(self.cleaned_data["worker_name"], field="worker_name")
        except InvalidInput as error:
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
        except InvalidInput as error:
            for field, message in error.errors.items():
                self.add_error(field if field in self.fields else None, message)
            self.account_values = {}
        data.update(self.account_values)
        return data


class SettleForm(forms.Form):
    """A result entered by hand for an open trade whose bot lost track of it."""

    result = forms.ChoiceField(
        choices=[("win", "Win"), ("loss", "Loss"), ("draw", "Draw")], widget=forms.RadioSelect, label="Result"
    )
    payout = forms.CharField(
        required=False,
        label="Payout (optional)",
        help_text=PAYOUT.help,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )

    def clean_payout(self):
        raw = self.cleaned_data["payout"].strip()
        if not raw:
            return None
        try:
            return PAYOUT.clean(raw)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
