"""What each account is doing now: its lanes, trades, slots, today's counts, worst case and
warnings, for the status API, the command line, the status log and the dashboard.

Every number comes from the engine's functions (``lanes.engine``, ``lanes.risk``) applied to the
rows read here; a fixed number of queries serves any number of accounts.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Optional

from django.db.models import Count, Q
from django.utils import timezone

from .. import engine
from ..adapters import engine_account, engine_lane, engine_settings
from ..models import Account, Lane, LaneStatus, Trade, TradeStatus
from ..risk import AccountCounts, Warning, account_warnings
from ..serializers import account_json, iso, lane_json, money, settings_json, trade_json
from .accounts import account_get, account_list, today_by_account
from .alarms import overdue_before, stuck_before
from .lanes import with_open_trade


@dataclass
class AccountSummary:
    """One account now. Lane rows carry ``open_trade_id``, ``stuck``, ``full`` and
    ``at_last_level``; open trade rows carry ``overdue``, queued ones ``queue_position``."""

    account: Account
    rules: engine.Account
    settings: engine.Settings
    active_lanes: list[Lane]
    open_count: int
    queued_count: int
    counts: AccountCounts
    net_profit_today: Decimal
    open_trades: list[Trade] = field(default_factory=list)
    queued_trades: list[Trade] = field(default_factory=list)

    @property
    def slots(self) -> int:
        return engine.slots(self.rules, self.settings)

    @property
    def free_slots(self) -> int:
        return max(0, self.slots - self.open_count)

    @property
    def worst_case(self) -> Decimal:
        return engine.worst_case(self.rules, self.settings)

    @property
    def lane_risk(self) -> Decimal:
        return engine.lane_risk(self.rules.base_amount, self.rules.multiplier, self.rules.max_level)

    @property
    def invested(self) -> Decimal:
        return sum((lane.total_invested for lane in self.active_lanes), engine.ZERO)

    @property
    def warnings(self) -> list[Warning]:
        return account_warnings(self.rules, self.settings, self.counts, self.account.balance)

    @property
    def exceeds_balance(self) -> bool:
        return any(warning.kind == "balance" for warning in self.warnings)


def account_summaries(accounts: list[Account], now: datetime, *, trade_lists: bool = True) -> list[AccountSummary]:
    """The summaries of ``accounts`` in four queries, whatever their number. Without
    ``trade_lists`` the open and queued trades are only counted."""
    names = [account.worker_name for account in accounts]
    ids = [account.pk for account in accounts]
    stuck_cutoff, overdue_cutoff = stuck_before(now), overdue_before(now)

    lanes_by_account: dict[str, list[Lane]] = defaultdict(list)
    for lane in with_open_trade(Lane.objects.filter(account_name__in=names, status=LaneStatus.ACTIVE)).order_by("created_at", "id"):
        lanes_by_account[lane.account_name].append(lane)

    open_by_account: dict[int, list[Trade]] = defaultdict(list)
    queued_by_account: dict[int, list[Trade]] = defaultdict(list)
    live_counts: dict[tuple[int, str], dict[str, int]] = {}
    live = Trade.objects.filter(account_id__in=ids, status__in=engine.LIVE).order_by()
    if trade_lists:
        for trade in live:
            (queued_by_account if trade.status == TradeStatus.QUEUED else open_by_account)[trade.account_id].append(trade)
    else:
        live_counts = {
            (row["account_id"], row["status"]): row
            for row in live.values("account_id", "status").annotate(
                n=Count("id"), overdue=Count("id", filter=Q(opened_at__lt=overdue_cutoff))
            )
        }

    created_today, profit_today = today_by_account(names, ids, now)
    summaries = []
    for account in accounts:
        rules, settings = engine_account(account), engine_settings(account.trading_settings)
        lanes = lanes_by_account[account.worker_name]
        for lane in lanes:
            lane.stuck = lane.updated_at < stuck_cutoff
            lane.full = engine.lane_is_full(engine_lane(lane), rules.payout_rate)
            lane.at_last_level = engine.at_last_level(lane.current_level, lane.max_level)
        open_trades = sorted(open_by_account[account.pk], key=engine.queue_key)
        queued = sorted(queued_by_account[account.pk], key=engine.queue_key)
        for trade in open_trades:
            trade.overdue = trade.opened_at < overdue_cutoff
        for position, trade in enumerate(queued, start=1):
            trade.queue_position = position
        if trade_lists:
            open_count, queued_count = len(open_trades), len(queued)
            overdue = sum(trade.overdue for trade in open_trades)
        else:
            open_row = live_counts.get((account.pk, TradeStatus.OPEN), {})
            open_count, overdue = open_row.get("n", 0), open_row.get("overdue", 0)
            queued_count = live_counts.get((account.pk, TradeStatus.QUEUED), {}).get("n", 0)
        counts = AccountCounts(
            active_lanes=len(lanes),
            lanes_at_last_level=sum(lane.at_last_level for lane in lanes),
            full_lanes=sum(lane.full for lane in lanes),
            stuck_lanes=sum(lane.stuck for lane in lanes),
            overdue_trades=overdue,
            lanes_created_today=created_today.get(account.worker_name, 0),
        )
        summaries.append(
            AccountSummary(
                account=account,
                rules=rules,
                settings=settings,
                active_lanes=lanes,
                open_count=open_count,
                queued_count=queued_count,
                counts=counts,
                net_profit_today=engine.round2(profit_today.get(account.pk) or engine.ZERO),
                open_trades=open_trades,
                queued_trades=queued,
            )
        )
    return summaries


def status_json(summary: AccountSummary) -> dict[str, Any]:
    account, name = summary.account, summary.account.worker_name
    return {
        "account": account_json(account),
        "settings": settings_json(name, account.trading_settings),
        "mode": "legacy" if engine.is_legacy(summary.rules) else "enhanced",
        "slots": summary.slots,
        "free_slots": summary.free_slots,
        "active_lanes": [lane_json(lane) for lane in summary.active_lanes],
        "open_trades": [trade_json(trade, account_name=name) for trade in summary.open_trades],
        "queued_trades": [
            trade_json(trade, account_name=name, queue_position=trade.queue_position) for trade in summary.queued_trades
        ],
        "lanes_created_today": summary.counts.lanes_created_today,
        "net_profit_today": money(summary.net_profit_today),
        "lane_worst_case": money(summary.lane_risk),
        "worst_case_exposure": money(summary.worst_case),
        "warnings": [{"kind": warning.kind, "message": warning.message} for warning in summary.warnings],
    }


def account_status_get(*, account_name: str, now: Optional[datetime] = None) -> dict:
    """One account: its fields, settings, slots, active lanes, open and queued trades (queued ones
    with their ``queue_position``), today's lanes and profit, its worst case and warnings."""
    account = account_get(account_name=account_name)
    return status_json(account_summaries([account], now or timezone.now())[0])


def status_all(*, account_names: Optional[list[str]] = None, now: Optional[datetime] = None) -> dict:
    """The status of every enabled account (within ``account_names`` when given)."""
    now = now or timezone.now()
    accounts = account_list(account_names=account_names, enabled_only=True)
    return {"generated_at": iso(now), "accounts": [status_json(s) for s in account_summaries(accounts, now)]}
