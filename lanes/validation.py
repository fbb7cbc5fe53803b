"""Validation of the bot's input (SPEC §3, §9): names, symbols, trade ids, results, amounts.

Strict: a JSON value of the wrong type is refused rather than coerced. Each function raises
``ConfigError`` (from settings_app.validation) naming the field, so every interface can show it.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Optional

from settings_app.validation import MONEY_MAX, ConfigError, parse_decimal

from . import engine

SYMBOL_RE = re.compile(r"[A-Za-z0-9_./:\-]{1,50}")
TRADE_ID_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
NAME_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
TRADE_REQUEST_FIELDS = ("account", "symbol", "trade_id", "direction", "expected_payout", "max_wait_seconds")


def _text(value: Any, field: str, pattern: re.Pattern, what: str) -> str:
    if not isinstance(value, str):
        raise ConfigError({field: f"must be a string of {what}"})
    if not pattern.fullmatch(value):
        raise ConfigError({field: f"must be {what}"})
    return value


def clean_account_name(value: Any, field: str = "account") -> str:
    return _text(value, field, NAME_RE, "1–100 characters of A-Z a-z 0-9 _ . : -")


def clean_symbol(value: Any, field: str = "symbol") -> str:
    return _text(value, field, SYMBOL_RE, "1–50 characters of A-Z a-z 0-9 _ . / : -")


def clean_trade_id(value: Any, field: str = "trade_id") -> str:
    return _text(value, field, TRADE_ID_RE, "1–100 characters of A-Z a-z 0-9 _ . : -")


def clean_money(value: Any, field: str, *, low: Decimal = Decimal("0.01")) -> Decimal:
    try:
        return parse_decimal(value, 2, low, MONEY_MAX)
    except ValueError as exc:
        raise ConfigError({field: str(exc)}) from None


def clean_int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError({field: f"must be a whole number from {low} to {high}"})
    return value


def clean_choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError({field: "must be one of " + ", ".join(choices)})
    return value


def unknown_fields(data: dict, allowed: tuple[str, ...]) -> None:
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise ConfigError({name: "is not a known field" for name in extra})


def clean_trade_request(data: Any, new_trade_id) -> tuple[str, engine.Request]:
    """(account name, engine.Request) from a POST /api/v1/trades body."""
    if not isinstance(data, dict):
        raise ConfigError({"body": "must be a JSON object"})
    unknown_fields(data, TRADE_REQUEST_FIELDS)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    checks = {
        "account": lambda v: clean_account_name(v),
        "symbol": lambda v: clean_symbol(v),
        "trade_id": lambda v: clean_trade_id(v),
        "direction": lambda v: None if v is None else clean_choice(v, "direction", ("call", "put")),
        "expected_payout": lambda v: None if v is None else clean_money(v, "expected_payout"),
        "max_wait_seconds": lambda v: clean_int(v, "max_wait_seconds", 0, 3600),
    }
    for name, check in checks.items():
        if name not in data:
            if name in ("account", "symbol"):
                errors[name] = "is required"
            continue
        try:
            values[name] = check(data[name])
        except ConfigError as exc:
            errors.update(exc.errors)
    if errors:
        raise ConfigError(errors)
    request = engine.Request(
        trade_id=values.get("trade_id") or new_trade_id(),
        symbol=values["symbol"],
        direction=values.get("direction"),
        expected_payout=values.get("expected_payout"),
        max_wait_seconds=values.get("max_wait_seconds", 60),
    )
    return values["account"], request


def clean_result(data: Any) -> tuple[str, Optional[Decimal]]:
    if not isinstance(data, dict):
        raise ConfigError({"body": "must be a JSON object"})
    unknown_fields(data, ("result", "payout"))
    if "result" not in data:
        raise ConfigError({"result": "is required (win, loss or draw)"})
    result = clean_choice(data["result"], "result", engine.RESULTS)
    payout = data.get("payout")
    if payout is not None:
        payout = clean_money(payout, "payout", low=Decimal("0.00"))
    return result, payout
