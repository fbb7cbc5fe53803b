"""The settings a simulation compares (SPEC §12): the account and trading settings each run starts
from, built the way the live service builds them (model rows through ``lanes.adapters``) and
validated by the same functions as every other interface.

The start is an account's current settings (``--account``) or the defaults; each ``--set
"k=v,…"`` is one setting to compare, and ``--grid "k=v1|v2,…"`` every combination. Keys are the
account's columns (``base_amount``, ``martingale_multiplier``, ``martingale_max_level``,
``payout_rate``, ``enhanced_martingale_enabled``, …) and the trading settings (the six of §2 and
the risk guard's of §11).
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, replace
from typing import Any, Optional

from settings_app.models import TradingSettings
from settings_app.validation import check_stake_fits, clean_account_fields, clean_trading_settings

from lanes import engine
from lanes.adapters import engine_account, engine_settings
from lanes.models import Account
from lanes.ranges import ACCOUNT, InvalidInput

SIMULATED = "simulated"


@dataclass(frozen=True)
class Setting:
    """One setting to simulate: what was changed (``changes``, as cleaned) and the engine's view."""

    changes: dict[str, Any]
    account: engine.Account
    settings: engine.Settings

    def label(self) -> str:
        return ",".join(f"{name}={_text(value)}" for name, value in self.changes.items()) or "(start)"

    def as_json(self) -> dict[str, Any]:
        return {name: _json(value) for name, value in self.changes.items()}


def _text(value: Any) -> str:
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, str)) else str(value)


@dataclass
class Start:
    """The rows a setting is applied to (unsaved copies; nothing is written)."""

    account: Account
    settings: TradingSettings


def start_from(account_name: Optional[str] = None) -> Start:
    """The defaults, or an account's current settings (its rows read, never written)."""
    if account_name is None:
        return Start(Account(worker_name=SIMULATED), TradingSettings(account_name=SIMULATED))
    account = Account.objects.filter(worker_name=account_name).first()
    if account is None:
        raise InvalidInput({"account": f"account {account_name} not found"})
    row = TradingSettings.objects.filter(account_name=account_name).first()
    return Start(account, row or TradingSettings(account_name=account_name))


def build(start: Start, raw: dict[str, str]) -> Setting:
    """A setting from text values (as the command line gives them), refused with the message of
    every other interface when a value is out of range or the ladder would not fit."""
    account_raw = {name: value for name, value in raw.items() if name in ACCOUNT}
    settings_raw = {name: value for name, value in raw.items() if name not in ACCOUNT}
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for clean, values in ((clean_account_fields, account_raw), (clean_trading_settings, settings_raw)):
        try:
            cleaned.update(clean(values, from_text=True))
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidInput(errors)
    account_row, settings_row = copy.copy(start.account), copy.copy(start.settings)
    for name, value in cleaned.items():
        setattr(account_row if name in ACCOUNT else settings_row, name, value)
    check_stake_fits(
        account_row.base_amount, account_row.martingale_multiplier, account_row.martingale_max_level,
        account_row.payout_rate, ladder_mode=settings_row.ladder_mode, max_stake=settings_row.max_stake,
    )
    # A simulation starts its progression afresh, whatever the account's legacy count is now.
    account = replace(engine_account(account_row), legacy_losses=0)
    ordered = {name: cleaned[name] for name in raw}
    return Setting(ordered, account, engine_settings(settings_row))


def parse_pairs(text: str, *, what: str) -> dict[str, str]:
    """``k=v,k2=v2`` → {k: v, k2: v2}; a malformed pair is refused naming the option."""
    pairs: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise InvalidInput({what: f"{part.strip()!r} is not key=value (write e.g. martingale_multiplier=2.2)"})
        if name in pairs:
            raise InvalidInput({what: f"{name} is given twice"})
        pairs[name] = value
    return pairs


def settings_to_compare(start: Start, sets: list[str], grids: list[str]) -> list[Setting]:
    """One setting per ``--set`` (or the start alone), each combined with every combination of
    every ``--grid``; duplicates are kept once."""
    bases = [parse_pairs(text, what="--set") for text in sets] or [{}]
    combos: list[dict[str, str]] = [{}]
    for text in grids:
        axes = [(name, values.split("|")) for name, values in parse_pairs(text, what="--grid").items()]
        combos = [
            {**combo, **dict(zip([name for name, _ in axes], choice))}
            for combo in combos
            for choice in itertools.product(*[values for _, values in axes])
        ]
    settings, seen = [], set()
    for base in bases:
        for combo in combos:
            raw = {**base, **combo}
            key = tuple(sorted(raw.items()))
            if key not in seen:
                seen.add(key)
                settings.append(build(start, raw))
    return settings
