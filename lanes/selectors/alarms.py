"""What the background checks watch: stuck lanes, overdue trades, accounts with queued trades."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.db.models import F, QuerySet
from django.utils import timezone

from ..models import Account, Lane, LaneStatus, Trade, TradeStatus
from .lanes import with_open_trade


def stuck_before(now: datetime) -> datetime:
    """Active lanes last changed before this time are stuck (MARTINGALE_STUCK_LANE_HOURS)."""
    return now - timedelta(hours=django_settings.MARTINGALE_STUCK_LANE_HOURS)


def overdue_before(now: datetime) -> datetime:
    """Trades opened before this time and still open are overdue (MARTINGALE_TRADE_TIMEOUT_SECONDS)."""
    return now - timedelta(seconds=django_settings.MARTINGALE_TRADE_TIMEOUT_SECONDS)


def _stuck_lanes(now: datetime) -> QuerySet:
    return Lane.objects.filter(status=LaneStatus.ACTIVE, updated_at__lt=stuck_before(now))


def _overdue_trades(now: datetime) -> QuerySet:
    return Trade.objects.filter(status=TradeStatus.OPEN, opened_at__lt=overdue_before(now))


def stuck_lanes(*, now: datetime | None = None, limit: int = 100) -> list[Lane]:
    """Active lanes with no change (``updated_at``) for MARTINGALE_STUCK_LANE_HOURS, longest idle
    first, each with ``open_trade_id``."""
    lanes = with_open_trade(_stuck_lanes(now or timezone.now())).order_by("updated_at", "id")
    return list(lanes[: max(0, limit)])


def overdue_trades(*, now: datetime | None = None, limit: int = 100) -> list[Trade]:
    """Trades open for longer than MARTINGALE_TRADE_TIMEOUT_SECONDS, oldest first, each with
    ``account_name``."""
    trades = _overdue_trades(now or timezone.now()).annotate(account_name=F("account__worker_name"))
    return list(trades.order_by("opened_at", "id")[: max(0, limit)])


def health_counts(*, now: datetime | None = None) -> dict[str, int]:
    """How many lanes are stuck and how many trades are overdue now."""
    now = now or timezone.now()
    return {"stuck_lanes": _stuck_lanes(now).count(), "overdue_trades": _overdue_trades(now).count()}


def queued_account_names() -> list[str]:
    """Every account with a queued trade, in one query; disabled ones too, as their queues still expire."""
    accounts = Account.objects.filter(trades__status=TradeStatus.QUEUED).order_by("worker_name")
    return list(accounts.values_list("worker_name", flat=True).distinct())
