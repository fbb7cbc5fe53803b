"""What the dashboard's overview and account pages show. The pages hold the summaries of
``selectors.status`` (numbers and warnings from the engine's functions) and no rules of their own."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.utils import timezone

from .. import engine
from ..adapters import engine_lane
from ..models import Lane, LaneStatus, Trade, TradeStatus
from .accounts import account_get, account_queryset
from .alarms import overdue_before, stuck_before
from .status import account_summaries

OVERVIEW_PAGE_SIZE = 50
ACCOUNT_PAGE_LIMIT = 200  # active lanes, open and queued trades listed on one account's page
RECENT_LANES_LIMIT = 50


def overview_get(*, page=1, search: str = "", per_page: int = OVERVIEW_PAGE_SIZE, now: Optional[datetime] = None) -> dict:
    """One page of accounts (by name) with their summaries, and totals over every account, in a
    fixed number of queries whatever the number of rows."""
    now = now or timezone.now()
    paginator = Paginator(account_queryset(search=search), per_page)
    page_obj = paginator.get_page(page)
    levels = (
        Lane.objects.filter(status=LaneStatus.ACTIVE)
        .order_by()
        .values("current_level", "max_level")
        .annotate(n=Count("id"), stuck=Count("id", filter=Q(updated_at__lt=stuck_before(now))))
    )
    trade_totals = Trade.objects.filter(status__in=engine.LIVE).order_by().aggregate(
        open=Count("id", filter=Q(status=TradeStatus.OPEN)),
        overdue=Count("id", filter=Q(status=TradeStatus.OPEN, opened_at__lt=overdue_before(now))),
        queued=Count("id", filter=Q(status=TradeStatus.QUEUED)),
    )
    lane_totals = {"active": 0, "last_level": 0, "stuck": 0}
    for group in levels:
        lane_totals["active"] += group["n"]
        lane_totals["stuck"] += group["stuck"]
        if engine.at_last_level(group["current_level"], group["max_level"]):
            lane_totals["last_level"] += group["n"]
    return {
        "generated_at": now,
        "page": page_obj,
        "rows": account_summaries(list(page_obj.object_list), now, trade_lists=False),
        "totals": {"accounts": paginator.count, **lane_totals, **trade_totals},
    }


def account_page_get(*, account_name: str, now: Optional[datetime] = None) -> dict:
    """One account for its dashboard page: its summary (active lanes, open and queued trades) and
    its latest finished lanes."""
    now = now or timezone.now()
    summary = account_summaries([account_get(account_name=account_name)], now)[0]
    finished = list(
        Lane.objects.filter(account_name=account_name)
        .exclude(status=LaneStatus.ACTIVE)
        .order_by("-completed_at", "-id")[:RECENT_LANES_LIMIT]
    )
    active = summary.active_lanes[:ACCOUNT_PAGE_LIMIT]
    for lane in active:  # what each can still lose (SPEC §11), within the account's max_stake
        lane.remaining_risk = engine.remaining_risk(engine_lane(lane), summary.settings.max_stake)
    return {
        "account": summary.account,
        "summary": summary,
        "active_lanes": active,
        "more_active_lanes": len(summary.active_lanes) > ACCOUNT_PAGE_LIMIT,
        "finished_lanes": finished,
        "open_trades": summary.open_trades[:ACCOUNT_PAGE_LIMIT],
        "queued_trades": summary.queued_trades[:ACCOUNT_PAGE_LIMIT],
        "more_trades": max(len(summary.open_trades), len(summary.queued_trades)) > ACCOUNT_PAGE_LIMIT,
        "generated_at": now,
    }
