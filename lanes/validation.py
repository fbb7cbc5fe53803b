"""Validation of the bot's input (SPEC §3, §5, §9): names, symbols, trade ids, results, amounts.

Strict: a JSON value of the wrong type is refused rather than coerced. Each function raises
``InvalidInput`` naming the field, so every interface can show it. Ranges come from
``lanes.ranges``.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Callable, Optional

from . import engine
from .ranges import (
    DIRECTIONS, EXPECTED_PAYOUT, ID_CHARS, ID_MAX, LOCK_NOTE_MAX, MAX_WAIT_SECONDS, PAYOUT, RESULTS, SYMBOL_CHARS,
    SYMBOL_MAX, Field, InvalidInput,
)

SYMBOL_RE = re.compile(r"[A-Za-z0-9_./:\-]{1,%d}" % SYMBOL_MAX)
ID_RE = re.compile(r"(?!\.{1,2}$)[A-Za-z0-9_.:\-]{1,%d}" % ID_MAX)  # not "." or ".."
TRADE_REQUEST_FIELDS = ("account", "symbol", "trade_id", "direction", "expected_payout", "max_wait_seconds")
ID_RULE = f"1–{ID_MAX} characters of {ID_CHARS}, not . or .."


def _text(value: Any, field: str, pattern: re.Pattern, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput({field: f"must be a string of {what}"})
    if not pattern.fullmatch(value):
        raise InvalidInput({field: f"must be {what}"})
    return value


def clean_account_name(value: Any, field: str = "account") -> str:
    return _text(value, field, ID_RE, ID_RULE)


def clean_symbol(value: Any, field: str = "symbol") -> str:
    return _text(value, field, SYMBOL_RE, f"1–{SYMBOL_MAX} characters of {SYMBOL_CHARS}")


def clean_trade_id(value: Any, field: str = "trade_id") -> str:
    return _text(value, field, ID_RE, ID_RULE)


def clean_note(value: Any) -> str:
    """A lock's note (SPEC §11): text of at most LOCK_NOTE_MAX characters, none is ""; raises
    ValueError with the message every interface shows."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > LOCK_NOTE_MAX:
        raise ValueError(f"must be a string of at most {LOCK_NOTE_MAX} characters")
    return value.strip()


def clean(field_spec: Field, value: Any, field: str, *, from_text: bool = False) -> Any:
    """One value by its range in ``lanes.ranges``, the error naming ``field``."""
    try:
        return field_spec.clean(value, from_text=from_text)
    except ValueError as exc:
        raise InvalidInput({field: str(exc)}) from None


def unknown_fields(data: dict, allowed: tuple[str, ...]) -> None:
    extra = sorted(set(data) - set(allowed))
    if extra:
        raise InvalidInput({name: "is not a known field" for name in extra})


def clean_trade_request(data: Any, new_trade_id: Callable[[], str]) -> tuple[str, engine.Request]:
    """(account name, engine.Request) from a POST /api/v1/trades body."""
    if not isinstance(data, dict):
        raise InvalidInput({"body": "must be a JSON object"})
    unknown_fields(data, TRADE_REQUEST_FIELDS)
    checks = {
        "account": clean_account_name,
        "symbol": clean_symbol,
        "trade_id": clean_trade_id,
        "direction": lambda v: None if v is None else clean_choice(v, "direction", DIRECTIONS),
        "expected_payout": lambda v: None if v is None else clean(EXPECTED_PAYOUT, v, "expected_payout"),
        "max_wait_seconds": lambda v: clean(MAX_WAIT_SECONDS, v, "max_wait_seconds"),
    }
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, check in checks.items():
        if name not in data:
            if name in ("account", "symbol"):
                errors[name] = "is required"
            continue
        try:
            values[name] = check(data[name])
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidInput(errors)
    request = engine.Request(
        trade_id=values.get("trade_id") or new_trade_id(),
        symbol=values["symbol"],
        direction=values.get("direction"),
        expected_payout=values.get("expected_payout"),
        max_wait_seconds=values.get("max_wait_seconds", MAX_WAIT_SECONDS.default),
    )
    return values["account"], request


def clean_choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput({field: "must be one of " + ", ".join(choices)})
    return value


def clean_result(data: Any) -> tuple[str, Optional[Decimal]]:
    if not isinstance(data, dict):
        raise InvalidInput({"body": "must be a JSON object"})
    unknown_fields(data, ("result", "payout"))
    if "result" not in data:
        raise InvalidInput({"result": "is required (win, loss or draw)"})
    result = clean_choice(data["result"], "result", RESULTS)
    payout = data.get("payout")
    if payout is not None:
        payout = clean(PAYOUT, payout, "payout")
    return result, payout
