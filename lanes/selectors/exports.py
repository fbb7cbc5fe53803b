"""CSV exports of the dashboard: trades, lanes and lane events of a window, streamed in batches."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from django.utils import timezone

from ..models import Lane, LaneEvent, Trade
from ..serializers import lane_remaining_risk
from .lanes import with_open_trade
from .stats import clean_days

TRADE_EXPORT_COLUMNS = (
    "trade_id", "account__worker_name", "symbol", "direction", "status", "kind", "lane_id", "level",
    "amount", "expected_payout", "payout", "profit", "requested_at", "opened_at", "settled_at", "expires_at",
    "requested_by",
)
EVENT_EXPORT_COLUMNS = ("id", "created_at", "account_name", "lane_id", "kind", "trade_id", "actor", "data")


def trades_export(*, days, account: Optional[str] = None, now: Optional[datetime] = None):
    """The trades requested in the last ``days`` × 24 hours as tuples, in the order they were
    recorded, fetched in batches (for a streaming CSV)."""
    days = clean_days(days)
    now = now or timezone.now()
    trades = Trade.objects.filter(requested_at__gte=now - timedelta(days=days), requested_at__lte=now)
    if account is not None:
        trades = trades.filter(account__worker_name=account)
    return trades.order_by("id").values_list(*TRADE_EXPORT_COLUMNS).iterator(chunk_size=2000)


def events_export(*, days, account: Optional[str] = None, now: Optional[datetime] = None):
    """The lane events written in the last ``days`` × 24 hours as tuples, oldest first."""
    days = clean_days(days)
    now = now or timezone.now()
    events = LaneEvent.objects.filter(created_at__gte=now - timedelta(days=days), created_at__lte=now)
    if account is not None:
        events = events.filter(account_name=account)
    return events.order_by("created_at", "id").values_list(*EVENT_EXPORT_COLUMNS).iterator(chunk_size=2000)


LANE_EXPORT_COLUMNS = (
    "lane_id", "account_name", "symbol", "status", "outcome", "ladder_mode", "payout_rate", "current_level", "max_level",
    "base_amount", "current_amount", "multiplier", "total_invested", "total_potential_payout", "net_profit",
    "remaining_risk", "created_at", "completed_at",
)


def lanes_export(*, days, account: Optional[str] = None, now: Optional[datetime] = None):
    """The lanes created in the last ``days`` × 24 hours as tuples of ``LANE_EXPORT_COLUMNS``,
    oldest first, fetched in batches (for a streaming CSV); remaining_risk is the engine's, within
    the account's max_stake (0.00 once finished)."""
    days = clean_days(days)
    now = now or timezone.now()
    lanes = with_open_trade(Lane.objects.filter(created_at__gte=now - timedelta(days=days), created_at__lte=now))
    if account is not None:
        lanes = lanes.filter(account_name=account)
    for lane in lanes.order_by("created_at", "id").iterator(chunk_size=2000):
        yield tuple(
            lane_remaining_risk(lane) if column == "remaining_risk" else getattr(lane, column) for column in LANE_EXPORT_COLUMNS
        )
