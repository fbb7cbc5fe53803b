"""The risk guard's statistics of a window (SPEC §11): the lanes' net profit by outcome, the
recovered lanes that still lost, the exposure now, the largest drawdown and the longest run of
losses.

The lanes' figures are read from the lanes created in the window (as ``stats_get``). The drawdown
and the losing run depend on the order of the trades, which the running totals of
``lanes.summary`` do not keep: for one account or all they come from the stored stretches of
``lanes.risk_blocks`` (about one row per day of the window plus its two ends' trades); for a list
of accounts, from the window's settled trades in settle order.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from .. import engine, risk_blocks
from settings_app.models import TradingSettings

from ..models import Account, Lane, LaneOutcome, LaneStatus, Trade
from ..serializers import iso, money
from ..services import NotFound
from .accounts import SETTLED_STATES, TOTAL
from .lanes import check_scope
from .stats import clean_days, stats_get

OUTCOMES = (*LaneOutcome.values, LaneStatus.ACTIVE)  # an active lane has no outcome yet
# engine.ladder_remaining_risk's arguments, as lane columns (max_stake is the account's).
LADDER = ("ladder_mode", "base_amount", "multiplier", "payout_rate", "max_level", "current_level", "current_amount")


def risk_stats_get(
    *, account: str | None = None, days: int = 7, account_names: list[str] | None = None, now: datetime | None = None
) -> dict:
    """``lanes_recovered_at_loss`` (recovered lanes whose net_profit is below 0),
    ``net_profit_by_outcome`` (the lanes' net_profit summed by outcome, "active" for the active
    ones), ``exposure`` (now: the active lanes' remaining risk plus the open base and legacy
    trades' stakes, engine.exposure), ``max_drawdown`` and ``max_consecutive_losses`` (the
    settled trades in settle order), over the lanes created and the trades opened in the last
    ``days`` × 24 hours."""
    days = clean_days(days)
    check_scope(account, account_names)
    now = now or timezone.now()
    since = now - timedelta(days=days)
    lanes, trades = Lane.objects.order_by(), Trade.objects.order_by()
    scope = risk_blocks.ALL
    if account is not None:
        scope = Account.objects.filter(worker_name=account).values_list("id", flat=True).first()
        if scope is None:
            raise NotFound(f"account {account} not found")
        lanes, trades = lanes.filter(account_name=account), trades.filter(account__worker_name=account)
    if account_names is not None:
        lanes, trades = lanes.filter(account_name__in=account_names), trades.filter(account__worker_name__in=account_names)

    by_outcome = {outcome: engine.ZERO for outcome in OUTCOMES}
    at_loss = 0
    for row in (
        lanes.filter(created_at__gte=since, created_at__lte=now)
        .values("status", "outcome")
        .annotate(
            net=Sum("net_profit", output_field=TOTAL),
            at_loss=Count("id", filter=Q(outcome=LaneOutcome.RECOVERED, net_profit__lt=0)),
        )
    ):
        key = row["outcome"] or (LaneStatus.ACTIVE if row["status"] == LaneStatus.ACTIVE else LaneOutcome.CANCELLED)
        by_outcome[key] += row["net"] or engine.ZERO
        at_loss += row["at_loss"]

    if account_names is None:
        stretch = risk_blocks.stretch(scope, since, now)
    else:
        settled = (
            trades.filter(opened_at__gte=since, opened_at__lte=now, status__in=SETTLED_STATES)
            .order_by("settled_at", "id")
            .annotate(cents=risk_blocks.CENTS)
            .values_list("status", "cents")
        )
        stretch = engine.Stretch.of((status, cents or 0) for status, cents in settled.iterator(chunk_size=5000))

    # Exposure is a figure of now, over every active lane (whenever created) and open trade: the
    # active lanes counted by ladder and place on it (few groups however many lanes).
    max_stake = TradingSettings.objects.filter(account_name=OuterRef("account_name")).values("max_stake")[:1]
    groups = (
        lanes.filter(status=LaneStatus.ACTIVE)
        .annotate(account_max_stake=Subquery(max_stake))
        .values(*LADDER, "account_max_stake")
        .annotate(lanes=Count("id"))
        .order_by()
    )
    exposure = sum(
        (engine.ladder_remaining_risk(*(row[name] for name in LADDER), row["account_max_stake"]) * row["lanes"] for row in groups),
        engine.ZERO,
    )
    open_unlaned = trades.filter(status=engine.OPEN, kind__in=(engine.BASE, engine.LEGACY)).aggregate(
        total=Sum("amount", output_field=TOTAL)
    )["total"]
    exposure += open_unlaned or engine.ZERO
    return {
        "account": account,
        "days": days,
        "since": iso(since),
        "until": iso(now),
        "lanes_recovered_at_loss": at_loss,
        "net_profit_by_outcome": {outcome: money(engine.round2(total)) for outcome, total in by_outcome.items()},
        "exposure": money(engine.round2(exposure)),
        "max_drawdown": money(engine.round2(Decimal(stretch.drawdown) / 100)),
        "max_consecutive_losses": stretch.longest,
    }


RISK_KEYS = ("lanes_recovered_at_loss", "net_profit_by_outcome", "exposure", "max_drawdown", "max_consecutive_losses")


def stats_with_risk_get(
    *, account: str | None = None, days: int = 7, account_names: list[str] | None = None, now: datetime | None = None
) -> dict:
    """``stats_get`` with the risk guard's statistics beside it, of the same window: what the API,
    the command line and the Python function answer."""
    now = now or timezone.now()
    stats = stats_get(account=account, days=days, account_names=account_names, now=now)
    risk = risk_stats_get(account=account, days=days, account_names=account_names, now=now)
    return {**stats, **{key: risk[key] for key in RISK_KEYS}}
