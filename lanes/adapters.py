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


def engine_lane(lane: Lane) -> engine.Lane:
    return engine.Lane(
        lane_id=lane.lane_id,
        symbol=lane.symbol,
        base_amount=lane.base_amount,
        current_amount=lane.current_amount,
        multiplier=lane.multiplier,
        max_level=lane.max_level,
        created_at=lane.created_at,
        current_level=lane.current_level,
        status=lane.status,
        total_invested=lane.total_invested,
        total_potential_payout=lane.total_potential_payout,
        trade_ids=list(lane.trade_ids or []),
        completed_at=lane.completed_at,
        outcome=lane.outcome,
        last_assigned_at=lane.last_assigned_at,
        pk=lane.pk,
        ladder_mode=lane.ladder_mode,
        payout_rate=lane.payout_rate,
        net_profit=lane.net_profit,
    )


def engine_trade(trade: Trade) -> engine.Trade:
    return engine.Trade(pk=trade.pk, **{name: getattr(trade, name) for name in TRADE_FIELDS})
