"""The one place that validates configuration: the six trading settings and the account's own
settings. The API, the CLI, the dashboard form and the admin all call these functions, so every
interface refuses the same values with the same message naming the field and its range; the
ranges themselves live in ``lanes.ranges``.

Values arrive either typed (JSON from the API: bool, int, Decimal or str for decimals) or as text
(the CLI and the forms); ``from_text=True`` parses text first.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping, Optional

from lanes.engine import MULTIPLIER, ladder_problem
from lanes.ranges import ACCOUNT, ALL_SETTINGS, InvalidInput, clean_fields


def clean_trading_settings(raw: Mapping[str, Any], *, from_text: bool = False) -> dict[str, Any]:
    """Validate any subset of the trading settings (the six of SPEC §2 and the risk guard's of
    §11); unknown names are refused."""
    return clean_fields(ALL_SETTINGS, raw, from_text=from_text, what="a setting")


def clean_account_fields(raw: Mapping[str, Any], *, from_text: bool = False) -> dict[str, Any]:
    """Validate any subset of the account's configuration fields."""
    return clean_fields(ACCOUNT, raw, from_text=from_text, what="an account setting")


def check_stake_fits(
    base_amount: Decimal,
    multiplier: Decimal,
    max_level: int,
    payout_rate: Decimal,
    *,
    ladder_mode: str = MULTIPLIER,
    max_stake: Optional[Decimal] = None,
) -> None:
    """Refuse a configuration whose lane, run to its last level (in its ladder mode, within
    max_stake), would not fit DECIMAL(10,2), or whose base amount is above max_stake."""
    problem = ladder_problem(base_amount, multiplier, max_level, payout_rate, mode=ladder_mode, max_stake=max_stake)
    if problem is not None:
        raise InvalidInput({problem[0]: problem[1]})
