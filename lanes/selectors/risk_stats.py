"""The risk guard's statistics of a window (SPEC §11): the lanes' net profit by outcome, the
recovered lanes that still lost, the exposure now, the largest drawdown and the longest run of
losses.

Read from the rows of the window (the lanes created and the trades opened in it, as
``stats_get``), not from the running totals of ``lanes.summary``: a drawdown and a run of losses
depend on the order of the trades, which totals do not keep. Four queries, whatever the data;
the time grows with the rows of the window.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import BigIntegerField, Count, F, Q, Sum
from django.db.models.functions import Cast, Round
from django.utils import timezone

from .. import engine
from ..models import Account, Lane, LaneOutcome, LaneStatus, Trade
from ..serializers import iso, lane_remaining_risk, money
from ..services import NotFound
from .accounts import SETTLED_STATES, TOTAL
from .lanes import check_scope, with_open_trade
from .stats import clean_days, stats_get

OUTCOMES = (*LaneOutcome.values, LaneStatus.ACTIVE)  # an active lane has no outcome yet


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
    if account is not None:
        if not Account.objects.filter(worker_name=account).exists():
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

    # Profits as whole cents (exact in every database, and no Decimal per row: a 30-day window of
    # a million trades spent 0.9 s in the row converters); the engine's functions add them up.
    settled = (
        trades.filter(opened_at__gte=since, opened_at__lte=now, status__in=SETTLED_STATES)
        .order_by("settled_at", "id")
        .annotate(cents=Cast(Round(F("profit") * 100), BigIntegerField()))
        .values_list("status", "cents")
    )
    statuses, profits = [], []
    for status, cents in settled.iterator(chunk_size=5000):
        statuses.append(status)
        profits.append(cents or 0)

    # Exposure is a figure of now, over every active lane (whenever created) and open trade.
    active = list(with_open_trade(lanes.filter(status=LaneStatus.ACTIVE)))
    open_unlaned = trades.filter(status=engine.OPEN, kind__in=(engine.BASE, engine.LEGACY)).aggregate(
        total=Sum("amount", output_field=TOTAL)
    )["total"]
    exposure = sum((lane_remaining_risk(lane) for lane in active), engine.ZERO) + (open_unlaned or engine.ZERO)
    return {
        "account": account,
        "days": days,
        "since": iso(since),
        "until": iso(now),
        "lanes_recovered_at_loss": at_loss,
        "net_profit_by_outcome": {outcome: money(engine.round2(total)) for outcome, total in by_outcome.items()},
        "exposure": money(engine.round2(exposure)),
        "max_drawdown": money(engine.round2(Decimal(engine.max_drawdown(profits)) / 100)),
        "max_consecutive_losses": engine.longest_losing_run(statuses),
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
