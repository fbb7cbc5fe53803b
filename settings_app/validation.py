"""The one place that validates configuration: the six trading settings and the account's money
settings. The API, the CLI, the dashboard form and the admin all call these functions, so every
interface refuses the same values with the same message naming the field and its range.

Values arrive either typed (JSON from the API: bool, int, Decimal or str for decimals) or as text
(the CLI); ``from_text=True`` parses text first.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any, Mapping, Optional

MONEY_MAX = Decimal("99999999.99")
CENT = Decimal("0.01")

STRATEGIES = ("fifo", "round_robin", "symbol_priority")

SETTINGS_DEFAULTS: dict[str, Any] = {
    "concurrent_trading_enabled": False,
    "max_concurrent_lanes": 3,
    "lane_assignment_strategy": "fifo",
    "auto_create_lanes": True,
    "cool_down_seconds": 0,
    "max_daily_lanes": 10,
}


class ConfigError(ValueError):
    """Invalid configuration; ``errors`` maps each bad field to its message."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in self.errors.items()))


def _bool(value: Any, from_text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if from_text and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("must be true or false")


def _int(value: Any, from_text: bool, low: int, high: int) -> int:
    if from_text and isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"must be a whole number from {low} to {high}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise ValueError(f"must be from {low} to {high}")
    return value


def parse_decimal(value: Any, places: int, low: Decimal, high: Decimal, *, text_ok: bool = True) -> Decimal:
    """A finite decimal with at most ``places`` decimal places within [low, high].

    Accepts Decimal, int and numeric strings; floats are refused (they are not exact money).
    """
    rng = f"from {low} to {high}"
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"must be a decimal number {rng}, as a string such as \"{low}\"")
    if isinstance(value, str):
        if not text_ok or not value.strip() or len(value) > 32:
            raise ValueError(f"must be a decimal number {rng}")
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"must be a decimal number {rng}") from None
    elif isinstance(value, int):
        value = Decimal(value)
    elif not isinstance(value, Decimal):
        raise ValueError(f"must be a decimal number {rng}")
    if not value.is_finite():
        raise ValueError(f"must be a finite decimal number {rng}")
    if not low <= value <= high:
        raise ValueError(f"must be {rng}")
    if value.as_tuple().exponent < -places and value != value.quantize(Decimal(1).scaleb(-places)):
        raise ValueError(f"must have at most {places} decimal places")
    return value.quantize(Decimal(1).scaleb(-places))


ACCOUNT_RANGES = {
    "base_amount": (2, Decimal("0.01"), MONEY_MAX),
    "martingale_multiplier": (2, Decimal("1.01"), Decimal("999.99")),
    "payout_rate": (4, Decimal("0.0100"), Decimal("10.0000")),
    "balance": (2, Decimal("0.00"), MONEY_MAX),
}
MAX_LEVEL_RANGE = (1, 20)


def clean_trading_settings(raw: Mapping[str, Any], *, from_text: bool = False) -> dict[str, Any]:
    """Validate any subset of the six settings; unknown names are refused."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            if name in ("concurrent_trading_enabled", "auto_create_lanes"):
                cleaned[name] = _bool(value, from_text)
            elif name == "max_concurrent_lanes":
                cleaned[name] = _int(value, from_text, 1, 10)
            elif name == "cool_down_seconds":
                cleaned[name] = _int(value, from_text, 0, 3600)
            elif name == "max_daily_lanes":
                cleaned[name] = _int(value, from_text, 1, 50)
            elif name == "lane_assignment_strategy":
                if not isinstance(value, str) or value not in STRATEGIES:
                    raise ValueError("must be one of " + ", ".join(STRATEGIES))
                cleaned[name] = value
            else:
                raise ValueError("is not a setting (allowed: " + ", ".join(SETTINGS_DEFAULTS) + ")")
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise ConfigError(errors)
    return cleaned


def clean_account_fields(raw: Mapping[str, Any], *, from_text: bool = False) -> dict[str, Any]:
    """Validate any subset of the account's configuration fields."""
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            if name in ACCOUNT_RANGES:
                places, low, high = ACCOUNT_RANGES[name]
                cleaned[name] = parse_decimal(value, places, low, high)
            elif name == "martingale_max_level":
                cleaned[name] = _int(value, from_text, *MAX_LEVEL_RANGE)
            elif name in ("is_demo", "enabled", "martingale_enabled", "enhanced_martingale_enabled"):
                cleaned[name] = _bool(value, from_text)
            else:
                raise ValueError("is not an account setting")
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise ConfigError(errors)
    return cleaned


def largest_stake(base_amount: Decimal, multiplier: Decimal, max_level: int) -> Decimal:
    """round2(base × multiplier^max_level), computed exactly."""
    with localcontext() as ctx:
        ctx.prec = 200
        return (base_amount * multiplier**max_level).quantize(CENT, ROUND_HALF_UP)


def check_stake_fits(
    base_amount: Decimal, multiplier: Decimal, max_level: int, payout_rate: Optional[Decimal] = None
) -> None:
    """Refuse a configuration whose largest stake, or the totals of a lane that runs to its last
    level (total_invested, and total_potential_payout at ``payout_rate``), would not fit DECIMAL(10,2)."""
    stake = largest_stake(base_amount, multiplier, max_level)
    advice = "lower the base amount, the multiplier or the max level"
    if stake > MONEY_MAX:
        raise ConfigError(
            {
                "martingale_multiplier": (
                    f"the stake at level {max_level} would be {stake:,.2f}, more than {MONEY_MAX:,.2f}: {advice}"
                )
            }
        )
    stakes = [largest_stake(base_amount, multiplier, level) for level in range(max_level + 1)]
    invested = sum(stakes, Decimal("0.00"))
    if invested > MONEY_MAX:
        raise ConfigError(
            {
                "martingale_multiplier": (
                    f"a lane that reaches level {max_level} would have invested {invested:,.2f}, more than "
                    f"{MONEY_MAX:,.2f}: {advice}"
                )
            }
        )
    if payout_rate is not None:
        payouts = sum(((s * (1 + payout_rate)).quantize(CENT, ROUND_HALF_UP) for s in stakes), Decimal("0.00"))
        if payouts > MONEY_MAX:
            raise ConfigError(
                {
                    "payout_rate": (
                        f"the potential payouts of a lane that reaches level {max_level} would total "
                        f"{payouts:,.2f}, more than {MONEY_MAX:,.2f}: {advice}, or the payout rate"
                    )
                }
            )
