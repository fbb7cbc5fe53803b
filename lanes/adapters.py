"""The engine's view of the database rows: plain dataclasses built from model instances, for the
services (which decide with them) and the selectors (which ask the engine's derived numbers)."""
from __future__ import annotations

from typing import Optional

from settings_app.models import TradingSettings

from . import engine
from .models import Account, Lane, Trade
from .ranges import ALL_SETTINGS_DEFAULTS

SETTINGS_FIELDS = tuple(ALL_SETTINGS_DEFAULTS)  # the six of SPEC §2 and the risk guard's (§11)
TRADE_FIELDS = (
    "trade_id", "symbol", "direction", "status", "kind", "lane_id", "level", "amount", "requested_payout",
    "expected_payout", "payout", "profit", "max_wait_seconds", "requested_at", "opened_at",
    "settled_at", "expires_at",
)


def engine_account(account: Account) -> engine.Account:
    return engine.Account(
        name=account.worker_name,
        base_amount=account.base_amount,
        multiplier=account.martingale_multiplier,
        max_level=account.martingale_max_level,
        payout_rate=account.payout_rate,
        enabled=account.enabled,
        martingale_enabled=account.martingale_enabled,
        enhanced=account.enhanced_martingale_enabled,
        legacy_losses=account.legacy_consecutive_losses,
    )


def engine_settings(row: Optional[TradingSettings]) -> engine.Settings:
    """A trading_settings row (the defaults without one)."""
    if row is None:
        return engine.Settings()
    return engine.Settings(**{name: getattr(row, name) for name in SETTINGS_FIELDS})


# The lane columns the engine reads, besides its row id and trade_ids.
LANE_FIELDS = (
    "lane_id", "symbol", "base_amount", "current_amount", "multiplier", "max_level", "created_at",
    "current_level", "status", "total_invested", "total_potential_payout", "completed_at", "outcome",
    "last_assigned_at", "ladder_mode", "payout_rate", "net_profit",
)


def engine_lane_of(values: dict) -> engine.Lane:
    """A lane's column values (``id`` its row id) as the engine's Lane."""
    return engine.Lane(
        pk=values["id"], trade_ids=list(values["trade_ids"] or []), **{name: values[name] for name in LANE_FIELDS}
    )


def engine_lane(lane: Lane) -> engine.Lane:
    return engine.Lane(
        pk=lane.pk, trade_ids=list(lane.trade_ids or []), **{name: getattr(lane, name) for name in LANE_FIELDS}
    )


def engine_trade(trade: Trade) -> engine.Trade:
    return engine.Trade(pk=trade.pk, **{name: getattr(trade, name) for name in TRADE_FIELDS})
