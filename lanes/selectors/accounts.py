"""Reads of accounts and their settings, and of what each did today."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, QuerySet, Sum

from ..models import Account, Lane, Trade, TradeStatus
from ..serializers import settings_json
from ..services import NotFound, today_start

SETTLED_STATES = (TradeStatus.WON, TradeStatus.LOST, TradeStatus.DRAW)
# Sums over many rows can outgrow the columns' DECIMAL(10,2).
TOTAL = DecimalField(max_digits=20, decimal_places=2)


def _accounts() -> QuerySet:
    return Account.objects.select_related("trading_settings")


def account_get(*, account_name: str) -> Account:
    """The account, with its ``trading_settings`` row (None when it has none yet)."""
    account = _accounts().filter(worker_name=account_name).first()
    if account is None:
        raise NotFound(f"account {account_name} not found")
    return account


def account_list(*, account_names: list[str] | None = None, enabled_only: bool = False) -> list[Account]:
    """Accounts by name, each with its ``trading_settings`` row (None when it has none yet)."""
    accounts = _accounts()
    if account_names is not None:
        accounts = accounts.filter(worker_name__in=account_names)
    if enabled_only:
        accounts = accounts.filter(enabled=True)
    return list(accounts.order_by("worker_name"))


def account_queryset(*, search: str = "") -> QuerySet:
    """Every account by name (``search``: names containing it), with its settings row."""
    accounts = _accounts().order_by("worker_name")
    return accounts.filter(worker_name__icontains=search) if search else accounts


def account_names_get() -> list[str]:
    return list(Account.objects.order_by("worker_name").values_list("worker_name", flat=True))


def settings_get(*, account_name: str) -> dict:
    account = account_get(account_name=account_name)
    return settings_json(account.worker_name, account.trading_settings)


def today_by_account(names: list[str], ids: list[int], now: datetime) -> tuple[dict[str, int], dict[int, Decimal]]:
    """Lanes created today by account name, and settled trades' profit today by account id
    (the TIME_ZONE day of ``now``)."""
    day_start = today_start(now)
    day_end = day_start + timedelta(days=1)
    created = dict(
        Lane.objects.filter(account_name__in=names, created_at__gte=day_start, created_at__lt=day_end)
        .order_by()
        .values("account_name")
        .annotate(n=Count("id"))
        .values_list("account_name", "n")
    )
    profit = dict(
        Trade.objects.filter(account_id__in=ids, status__in=SETTLED_STATES, settled_at__gte=day_start, settled_at__lt=day_end)
        .order_by()
        .values("account_id")
        .annotate(total=Sum("profit", output_field=TOTAL))
        .values_list("account_id", "total")
    )
    return created, profit
