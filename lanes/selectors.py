"""Every read of the lane engine, for the API, the dashboard, the command line, the Python
functions and the status log.

Selectors never write and never open transactions. Each one runs a fixed number of queries,
whatever the number of accounts, lanes or trades: lists are fetched in batches and grouped in
Python, totals are aggregate queries. JSON-ready results use ``lanes.serializers``.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Optional

from django.db.models import Avg, Count, DecimalField, F, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from settings_app.validation import SETTINGS_DEFAULTS, ConfigError

from . import engine
from .models import Account, Lane, LaneEvent, LaneOutcome, LaneStatus, Trade, TradeStatus
from .risk import lane_worst_case, worst_case_exposure
from .serializers import account_json, iso, lane_json, money, settings_json, trade_json
from .services import Forbidden, NotFound, today_start

STATS_DAYS_RANGE = (1, 365)
SETTLED_STATES = (TradeStatus.WON, TradeStatus.LOST, TradeStatus.DRAW)
# Sums over many rows can outgrow the columns' DECIMAL(10,2).
TOTAL = DecimalField(max_digits=20, decimal_places=2)


# --- Lanes --------------------------------------------------------------------------------------


def _with_open_trade(lanes: QuerySet) -> QuerySet:
    open_trade = Trade.objects.filter(lane=OuterRef("pk"), status=TradeStatus.OPEN).values("trade_id")[:1]
    return lanes.annotate(open_trade_id=Subquery(open_trade))


def _check_scope(account: Optional[str], account_names: Optional[list[str]]) -> None:
    if account is not None and account_names is not None and account not in account_names:
        raise Forbidden(f"this token may not read account {account}")


def lane_list(
    *,
    account: str | None = None,
    status: str | None = None,
    account_names: list[str] | None = None,
    limit: int = 500,
) -> list[Lane]:
    """Lanes with ``open_trade_id``: active ones oldest first (the FIFO order), others newest first.

    ``account_names`` (None = every account) is the caller's scope.
    """
    if status is not None and status not in LaneStatus.values:
        raise ConfigError({"status": "must be one of " + ", ".join(LaneStatus.values)})
    _check_scope(account, account_names)
    lanes = _with_open_trade(Lane.objects.all())
    if account is not None:
        lanes = lanes.filter(account_name=account)
    if account_names is not None:
        lanes = lanes.filter(account_name__in=account_names)
    if status is not None:
        lanes = lanes.filter(status=status)
    order = ("created_at", "id") if status == LaneStatus.ACTIVE else ("-created_at", "-id")
    return list(lanes.order_by(*order)[: max(0, limit)])


def lane_get(*, lane_id: str) -> Lane:
    lane = _with_open_trade(Lane.objects.filter(lane_id=lane_id)).first()
    if lane is None:
        raise NotFound(f"lane {lane_id} not found")
    return lane


def lane_events(*, lane: Lane) -> list[LaneEvent]:
    return list(LaneEvent.objects.filter(lane=lane).order_by("created_at", "id"))


def lane_trades(*, lane: Lane) -> list[Trade]:
    """The lane's trades in request order, each with ``lane_code`` (the lane's lane_id)."""
    trades = list(Trade.objects.filter(lane=lane).order_by("requested_at", "id"))
    for trade in trades:
        trade.lane_code = lane.lane_id
    return trades


# --- Accounts and settings ----------------------------------------------------------------------


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


def settings_get(*, account_name: str) -> dict:
    account = account_get(account_name=account_name)
    return settings_json(account.worker_name, account.trading_settings)


def _engine_book(account: Account) -> engine.Book:
    row = account.trading_settings
    settings = engine.Settings(**{name: getattr(row, name) for name in SETTINGS_DEFAULTS}) if row else engine.Settings()
    return engine.Book(
        account=engine.Account(
            name=account.worker_name,
            base_amount=account.base_amount,
            multiplier=account.martingale_multiplier,
            max_level=account.martingale_max_level,
            payout_rate=account.payout_rate,
            enabled=account.enabled,
            martingale_enabled=account.martingale_enabled,
            enhanced=account.enhanced_martingale_enabled,
            legacy_losses=account.legacy_consecutive_losses,
        ),
        settings=settings,
        lanes={},
        trades={},
    )


def _account_statuses(accounts: list[Account], now: datetime) -> list[dict[str, Any]]:
    """The status of each account, in four queries for any number of accounts."""
    names = [account.worker_name for account in accounts]
    ids = [account.pk for account in accounts]
    day_start = today_start(now)
    day_end = day_start + timedelta(days=1)

    lanes_by_account: dict[str, list[Lane]] = defaultdict(list)
    active = _with_open_trade(Lane.objects.filter(account_name__in=names, status=LaneStatus.ACTIVE))
    for lane in active.order_by("created_at", "id"):
        lanes_by_account[lane.account_name].append(lane)

    open_by_account: dict[int, list[Trade]] = defaultdict(list)
    queued_by_account: dict[int, list[Trade]] = defaultdict(list)
    live = (
        Trade.objects.filter(account_id__in=ids, status__in=(TradeStatus.QUEUED, TradeStatus.OPEN))
        .annotate(lane_code=F("lane__lane_id"))
        .order_by("requested_at", "id")
    )
    for trade in live:
        target = queued_by_account if trade.status == TradeStatus.QUEUED else open_by_account
        target[trade.account_id].append(trade)

    created_today = dict(
        Lane.objects.filter(account_name__in=names, created_at__gte=day_start, created_at__lt=day_end)
        .order_by()
        .values("account_name")
        .annotate(n=Count("id"))
        .values_list("account_name", "n")
    )
    profit_today = dict(
        Trade.objects.filter(
            account_id__in=ids, status__in=SETTLED_STATES, settled_at__gte=day_start, settled_at__lt=day_end
        )
        .order_by()
        .values("account_id")
        .annotate(total=Sum("profit", output_field=TOTAL))
        .values_list("account_id", "total")
    )

    statuses = []
    for account in accounts:
        name = account.worker_name
        settings = settings_json(name, account.trading_settings)
        slots = _engine_book(account).slots()
        open_trades = open_by_account[account.pk]
        lane_risk = lane_worst_case(account.base_amount, account.martingale_multiplier, account.martingale_max_level)
        statuses.append(
            {
                "account": account_json(account),
                "settings": settings,
                "mode": "enhanced" if account.enhanced_martingale_enabled else "legacy",
                "slots": slots,
                "free_slots": max(0, slots - len(open_trades)),
                "active_lanes": [lane_json(lane) for lane in lanes_by_account[name]],
                "open_trades": [trade_json(trade, account_name=name) for trade in open_trades],
                "queued_trades": [
                    trade_json(trade, account_name=name, queue_position=position)
                    for position, trade in enumerate(queued_by_account[account.pk], start=1)
                ],
                "lanes_created_today": created_today.get(name, 0),
                "net_profit_today": money(engine.round2(profit_today.get(account.pk) or engine.ZERO)),
                "lane_worst_case": money(lane_risk),
                "worst_case_exposure": money(
                    worst_case_exposure(
                        base=account.base_amount,
                        multiplier=account.martingale_multiplier,
                        max_level=account.martingale_max_level,
                        max_concurrent_lanes=settings["max_concurrent_lanes"],
                        slots=slots,
                        enhanced=account.enhanced_martingale_enabled,
                        martingale=account.martingale_enabled,
                    )
                ),
            }
        )
    return statuses


def account_status_get(*, account_name: str, now: datetime | None = None) -> dict:
    """One account: its fields, settings, slots, active lanes, open and queued trades (queued ones
    with their ``queue_position``), today's lanes and profit, and its worst-case exposure."""
    account = account_get(account_name=account_name)
    return _account_statuses([account], now or timezone.now())[0]


def status_all(*, account_names: list[str] | None = None, now: datetime | None = None) -> dict:
    """The status of every enabled account (within ``account_names`` when given)."""
    now = now or timezone.now()
    accounts = account_list(account_names=account_names, enabled_only=True)
    return {"generated_at": iso(now), "accounts": _account_statuses(accounts, now)}


# --- Statistics ---------------------------------------------------------------------------------


def _clean_days(days: Any) -> int:
    low, high = STATS_DAYS_RANGE
    if isinstance(days, str) and days.strip().isdigit():
        days = int(days.strip())
    if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
        raise ConfigError({"days": f"must be a whole number from {low} to {high}"})
    return days


def _rate(part: int, other: int) -> float:
    return round(part / (part + other), 4) if part + other else 0.0


def _total(value: Optional[Decimal]) -> str:
    return money(engine.round2(value or engine.ZERO))


def _trade_counts() -> dict[str, Any]:
    return {
        "trades": Count("id"),
        "wins": Count("id", filter=Q(status=TradeStatus.WON)),
        "losses": Count("id", filter=Q(status=TradeStatus.LOST)),
        "draws": Count("id", filter=Q(status=TradeStatus.DRAW)),
        "net_profit": Sum("profit", filter=Q(status__in=SETTLED_STATES), output_field=TOTAL),
    }


def _lane_outcomes() -> dict[str, Any]:
    return {
        "lanes_recovered": Count("id", filter=Q(outcome=LaneOutcome.RECOVERED)),
        "lanes_exhausted": Count("id", filter=Q(outcome=LaneOutcome.EXHAUSTED)),
    }


def _trade_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "trades": row["trades"],
        "wins": row["wins"],
        "losses": row["losses"],
        "draws": row["draws"],
        "net_profit": _total(row["net_profit"]),
    }


EMPTY_TRADES = {"trades": 0, "wins": 0, "losses": 0, "draws": 0, "net_profit": None}


def stats_get(
    *,
    account: str | None = None,
    days: int = 7,
    account_names: list[str] | None = None,
    now: datetime | None = None,
) -> dict:
    """Statistics of the lanes created and the trades opened in the last ``days`` × 24 hours.

    The window is ``since <= time <= now``. ``net_profit`` sums the settled trades' profit.
    ``daily`` has one row per TIME_ZONE date the window touches (``days + 1`` dates unless
    ``now`` is midnight), zero-filled, so its rows add up to the totals; each trade counts on the
    day it opened, each lane (and its outcome) on the day it was created.
    """
    days = _clean_days(days)
    _check_scope(account, account_names)
    now = now or timezone.now()
    since = now - timedelta(days=days)
    lanes = Lane.objects.filter(created_at__gte=since, created_at__lte=now).order_by()
    trades = Trade.objects.filter(opened_at__gte=since, opened_at__lte=now).order_by()
    if account is not None:
        account_id = Account.objects.filter(worker_name=account).values_list("pk", flat=True).first()
        if account_id is None:
            raise NotFound(f"account {account} not found")
        lanes = lanes.filter(account_name=account)
        trades = trades.filter(account_id=account_id)
    if account_names is not None:
        lanes = lanes.filter(account_name__in=account_names)
        trades = trades.filter(account__worker_name__in=account_names)

    lane_totals = lanes.aggregate(
        lanes_created=Count("id"),
        lanes_active=Count("id", filter=Q(status=LaneStatus.ACTIVE)),
        **_lane_outcomes(),
        # Lanes adopted from the old bot may be cancelled without an outcome.
        lanes_cancelled=Count(
            "id", filter=Q(outcome=LaneOutcome.CANCELLED) | Q(status=LaneStatus.CANCELLED, outcome__isnull=True)
        ),
        lanes_force_completed=Count("id", filter=Q(outcome=LaneOutcome.FORCE_COMPLETED)),
        avg_level=Avg("current_level"),
        max_level=Max("current_level"),
        total_invested=Sum("total_invested", output_field=TOTAL),
        total_potential_payout=Sum("total_potential_payout", output_field=TOTAL),
    )
    trade_totals = trades.aggregate(
        **_trade_counts(),
        trades_open=Count("id", filter=Q(status=TradeStatus.OPEN)),
        trades_cancelled=Count("id", filter=Q(status=TradeStatus.CANCELLED)),
    )

    return {
        "account": account,
        "days": days,
        "since": iso(since),
        "until": iso(now),
        "lanes_created": lane_totals["lanes_created"],
        "lanes_active": lane_totals["lanes_active"],
        "lanes_recovered": lane_totals["lanes_recovered"],
        "lanes_exhausted": lane_totals["lanes_exhausted"],
        "lanes_cancelled": lane_totals["lanes_cancelled"],
        "lanes_force_completed": lane_totals["lanes_force_completed"],
        "recovery_rate": _rate(lane_totals["lanes_recovered"], lane_totals["lanes_exhausted"]),
        "avg_level": round(float(lane_totals["avg_level"] or 0), 2),
        "max_level": lane_totals["max_level"] or 0,
        "total_invested": _total(lane_totals["total_invested"]),
        "total_potential_payout": _total(lane_totals["total_potential_payout"]),
        **_trade_row(trade_totals),
        "trades_open": trade_totals["trades_open"],
        "trades_cancelled": trade_totals["trades_cancelled"],
        "win_rate": _rate(trade_totals["wins"], trade_totals["losses"]),
        "by_level": _by_level(lanes, trades),
        "by_symbol": _by_symbol(lanes, trades),
        "daily": _daily(lanes, trades, since, now),
    }


def _by_level(lanes: QuerySet, trades: QuerySet) -> list[dict[str, Any]]:
    by_trades = {row["level"]: row for row in trades.values("level").annotate(**_trade_counts())}
    by_lanes = {
        row["current_level"]: row
        for row in lanes.filter(outcome__in=(LaneOutcome.RECOVERED, LaneOutcome.EXHAUSTED))
        .values("current_level")
        .annotate(**_lane_outcomes())
    }
    rows = []
    for level in sorted(set(by_trades) | set(by_lanes), key=lambda level: (level is None, level)):
        lane_row = by_lanes.get(level, {})
        rows.append(
            {
                "level": level,
                **_trade_row(by_trades.get(level, EMPTY_TRADES)),
                "lanes_recovered": lane_row.get("lanes_recovered", 0),
                "lanes_exhausted": lane_row.get("lanes_exhausted", 0),
            }
        )
    return rows


def _by_symbol(lanes: QuerySet, trades: QuerySet) -> list[dict[str, Any]]:
    by_trades = {row["symbol"]: row for row in trades.values("symbol").annotate(**_trade_counts())}
    by_lanes = {
        row["symbol"]: row
        for row in lanes.values("symbol").annotate(lanes_created=Count("id"), **_lane_outcomes())
    }
    rows = []
    for symbol in sorted(set(by_trades) | set(by_lanes)):
        trade_row = by_trades.get(symbol, EMPTY_TRADES)
        lane_row = by_lanes.get(symbol, {})
        rows.append(
            {
                "symbol": symbol,
                **_trade_row(trade_row),
                "win_rate": _rate(trade_row["wins"], trade_row["losses"]),
                "lanes_created": lane_row.get("lanes_created", 0),
                "lanes_recovered": lane_row.get("lanes_recovered", 0),
                "lanes_exhausted": lane_row.get("lanes_exhausted", 0),
            }
        )
    return rows


def _daily(lanes: QuerySet, trades: QuerySet, since: datetime, now: datetime) -> list[dict[str, Any]]:
    zone = timezone.get_current_timezone()
    by_trades = {
        row["day"]: row
        for row in trades.annotate(day=TruncDate("opened_at", tzinfo=zone)).values("day").annotate(**_trade_counts())
    }
    by_lanes = {
        row["day"]: row
        for row in lanes.annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(lanes_created=Count("id"), **_lane_outcomes())
    }
    first, last = timezone.localdate(since, zone), timezone.localdate(now, zone)
    rows = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        lane_row = by_lanes.get(day, {})
        rows.append(
            {
                "date": day.isoformat(),
                **_trade_row(by_trades.get(day, EMPTY_TRADES)),
                "lanes_created": lane_row.get("lanes_created", 0),
                "lanes_recovered": lane_row.get("lanes_recovered", 0),
                "lanes_exhausted": lane_row.get("lanes_exhausted", 0),
            }
        )
    return rows
