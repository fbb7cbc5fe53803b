"""JSON shapes of the API and of the CLI's --json output (SPEC §9).

Money is a string with two places (four for payout_rate); times are ISO 8601 with offset.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Optional

from settings_app.models import TradingSettings

from . import engine
from .adapters import engine_lane
from .models import Account, AccountLock, Lane, LaneEvent, Trade
from .ranges import ALL_SETTINGS_DEFAULTS, RISK_SETTINGS, Amount, Off


def money(value: Optional[Decimal]) -> Optional[str]:
    return None if value is None else f"{value:.2f}"


def iso(value: Optional[datetime]) -> Optional[str]:
    return None if value is None else value.isoformat()


def trade_json(trade: Trade, *, account_name: str, queue_position: Optional[int] = None) -> dict[str, Any]:
    """A trade, as the API and the command line show it."""
    queued = trade.status == "queued"
    return {
        "trade_id": trade.trade_id,
        "account": account_name,
        "symbol": trade.symbol,
        "direction": trade.direction,
        "status": trade.status,
        "kind": None if queued else trade.kind,
        "lane_id": None if queued else trade.lane_id,
        "level": None if queued else trade.level,
        "amount": None if queued else money(trade.amount),
        "expected_payout": money(trade.expected_payout if trade.expected_payout is not None else trade.requested_payout),
        "payout": money(trade.payout),
        "profit": money(trade.profit),
        "requested_at": iso(trade.requested_at),
        "opened_at": iso(trade.opened_at),
        "settled_at": iso(trade.settled_at),
        "expires_at": iso(trade.expires_at),
        "max_wait_seconds": trade.max_wait_seconds,
        "queue_position": queue_position if queued else None,
    }


def lane_remaining_risk(lane: Lane) -> Decimal:
    """engine.remaining_risk of a lane row, within its account's max_stake (the selectors read it
    beside the lane as ``account_max_stake``)."""
    return engine.remaining_risk(engine_lane(lane), getattr(lane, "account_max_stake", None))


def lane_json(lane: Lane, *, open_trade_id: Optional[str] = None) -> dict[str, Any]:
    """Every martingale_lanes column (trade_ids as a list) plus outcome, open_trade_id and the
    risk guard's remaining_risk (SPEC §9, §11)."""
    return {
        "id": lane.pk,
        "lane_id": lane.lane_id,
        "account_name": lane.account_name,
        "symbol": lane.symbol,
        "status": lane.status,
        "current_level": lane.current_level,
        "base_amount": money(lane.base_amount),
        "current_amount": money(lane.current_amount),
        "multiplier": money(lane.multiplier),
        "max_level": lane.max_level,
        "total_invested": money(lane.total_invested),
        "total_potential_payout": money(lane.total_potential_payout),
        "trade_ids": list(lane.trade_ids or []),
        "created_at": iso(lane.created_at),
        "updated_at": iso(lane.updated_at),
        "completed_at": iso(lane.completed_at),
        "outcome": lane.outcome,
        "open_trade_id": open_trade_id if open_trade_id is not None else getattr(lane, "open_trade_id", None),
        "ladder_mode": lane.ladder_mode,
        "payout_rate": None if lane.payout_rate is None else f"{lane.payout_rate:.4f}",
        "net_profit": money(lane.net_profit),
        "remaining_risk": money(lane_remaining_risk(lane)),
    }


def lock_json(lock: AccountLock, *, account_name: str, now: datetime) -> dict[str, Any]:
    return {
        "lock_id": lock.lock_id,
        "account": account_name,
        "reason": lock.reason,
        "created_at": iso(lock.created_at),
        "locked_until": iso(lock.locked_until),
        "released_at": iso(lock.released_at),
        "released_by": lock.released_by,
        "note": lock.note,
        "active": lock.released_at is None and now < lock.locked_until,
    }


def event_json(event: LaneEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "kind": event.kind,
        "trade_id": event.trade_id,
        "actor": event.actor,
        "data": event.data,
        "created_at": iso(event.created_at),
    }


MONEY_SETTINGS = tuple(
    name for name, field in RISK_SETTINGS.items() if isinstance(field, Off) and isinstance(field.inner, Amount)
)


def settings_json(account_name: str, row: Optional[TradingSettings]) -> dict[str, Any]:
    """The trading settings of an account, the six of SPEC §2 and the risk guard's of §11 (the
    defaults without a row); an amount that is off is null."""
    values = {name: getattr(row, name) for name in ALL_SETTINGS_DEFAULTS} if row else dict(ALL_SETTINGS_DEFAULTS)
    for name in MONEY_SETTINGS:
        values[name] = money(values[name])
    return {"account": account_name, **values}


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.pk,
        "worker_name": account.worker_name,
        "is_demo": account.is_demo,
        "enabled": account.enabled,
        "balance": money(account.balance),
        "base_amount": money(account.base_amount),
        "martingale_multiplier": money(account.martingale_multiplier),
        "martingale_enabled": account.martingale_enabled,
        "martingale_max_level": account.martingale_max_level,
        "payout_rate": f"{account.payout_rate:.4f}",
        "enhanced_martingale_enabled": account.enhanced_martingale_enabled,
        "legacy_consecutive_losses": account.legacy_consecutive_losses,
        "created_at": iso(account.created_at),
        "last_updated": iso(account.last_updated),
    }
