"""Every read of the lane engine, for the API, the dashboard, the command line, the Python
functions and the status log.

Selectors never write and never open transactions. Each one runs a fixed number of queries,
whatever the number of accounts, lanes or trades: lists are fetched in batches and grouped in
Python, totals are aggregate queries. JSON-ready results use ``lanes.serializers``.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Optional

from django.conf import settings as django_settings
from django.core.paginator import Paginator
from django.db.models import (
    Case, Count, DecimalField, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value, When,
)
from django.utils import timezone

from settings_app.validation import SETTINGS_DEFAULTS, ConfigError

from . import engine
from .models import Account, Lane, LaneEvent, LaneOutcome, LaneStatus, Trade, TradeStatus
from .risk import lane_worst_case, worst_case_exposure
from .serializers import account_json, iso, lane_json, money, settings_json, trade_json
from .services import Forbidden, NotFound, engine_account, today_start

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
        account=engine_account(account),
        settings=settings,
        lanes={},
        trades={},
    )


def _today(names: list[str], ids: list[int], now: datetime) -> tuple[dict[str, int], dict[int, Decimal]]:
    """Lanes created today by account name, and settled trades' profit today by account id."""
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


def _account_statuses(accounts: list[Account], now: datetime) -> list[dict[str, Any]]:
    """The status of each account, in four queries for any number of accounts."""
    names = [account.worker_name for account in accounts]
    ids = [account.pk for account in accounts]

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

    created_today, profit_today = _today(names, ids, now)

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

    days_list, boundaries = _day_buckets(since, now)
    lane_groups = list(
        lanes.values(
            day=_bucket("created_at", boundaries), level=F("current_level"), symbol_=F("symbol"),
            status_=F("status"), outcome_=F("outcome"),
        ).annotate(
            n=Count("id"),
            invested=Sum("total_invested", output_field=TOTAL),
            payout=Sum("total_potential_payout", output_field=TOTAL),
        )
    )
    trade_groups = list(
        trades.values(day=_bucket("opened_at", boundaries), level_=F("level"), symbol_=F("symbol"), status_=F("status"))
        .annotate(n=Count("id"), profit_=Sum("profit", output_field=TOTAL))
    )

    lane_totals = _lane_tally(lane_groups)
    trade_totals = _trade_tally(trade_groups)
    lanes_created = lane_totals["lanes_created"]
    level_sum = sum(row["level"] * row["n"] for row in lane_groups)
    return {
        "account": account,
        "days": days,
        "since": iso(since),
        "until": iso(now),
        "lanes_created": lanes_created,
        "lanes_active": lane_totals["lanes_active"],
        "lanes_recovered": lane_totals["lanes_recovered"],
        "lanes_exhausted": lane_totals["lanes_exhausted"],
        "lanes_cancelled": lane_totals["lanes_cancelled"],
        "lanes_force_completed": lane_totals["lanes_force_completed"],
        "recovery_rate": _rate(lane_totals["lanes_recovered"], lane_totals["lanes_exhausted"]),
        "avg_level": round(level_sum / lanes_created, 2) if lanes_created else 0.0,
        "max_level": max((row["level"] for row in lane_groups), default=0) or 0,
        "total_invested": _total(lane_totals["total_invested"]),
        "total_potential_payout": _total(lane_totals["total_potential_payout"]),
        **_trade_row(trade_totals),
        "trades_open": trade_totals["trades_open"],
        "trades_cancelled": trade_totals["trades_cancelled"],
        "win_rate": _rate(trade_totals["wins"], trade_totals["losses"]),
        "by_level": _by_level(lane_groups, trade_groups),
        "by_symbol": _by_symbol(lane_groups, trade_groups),
        "daily": _daily(lane_groups, trade_groups, days_list),
    }


# The statistics read each table once: one GROUP BY (day, level, symbol, status[, outcome]) per
# table, whose few thousand groups are added up here into the totals, by_level, by_symbol and
# daily. The day of a row is found by comparing its time with the window's TIME_ZONE midnights in
# a balanced CASE (a handful of comparisons per row), so the database never calls a date function
# per row, and the trades' covering index (trade_stats_idx) answers without reading the table.


def _day_buckets(since: datetime, now: datetime) -> tuple[list, list[datetime]]:
    """The TIME_ZONE dates the window touches, and the midnights that start the second and later ones."""
    zone = timezone.get_current_timezone()
    first, last = timezone.localdate(since, zone), timezone.localdate(now, zone)
    dates = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    # A midnight skipped by a DST change resolves (fold=0) to the instant of the change: still
    # the first instant of that date.
    boundaries = [datetime.combine(day, datetime.min.time(), tzinfo=zone) for day in dates[1:]]
    return dates, boundaries


def _bucket(field: str, boundaries: list[datetime], lo: int = 0, hi: int | None = None):
    """The index of the date of ``field`` among the window's dates: a binary search in SQL."""
    if hi is None:
        hi = len(boundaries)
    if lo == hi:
        return Value(lo, output_field=IntegerField())
    mid = (lo + hi + 1) // 2
    return Case(
        When(**{f"{field}__lt": boundaries[mid - 1]}, then=_bucket(field, boundaries, lo, mid - 1)),
        default=_bucket(field, boundaries, mid, hi),
        output_field=IntegerField(),
    )


def _lane_tally(groups) -> dict[str, Any]:
    tally = {
        "lanes_created": 0, "lanes_active": 0, "lanes_recovered": 0, "lanes_exhausted": 0,
        "lanes_cancelled": 0, "lanes_force_completed": 0, "total_invested": None, "total_potential_payout": None,
    }
    for row in groups:
        n, outcome = row["n"], row["outcome_"]
        tally["lanes_created"] += n
        if row["status_"] == LaneStatus.ACTIVE:
            tally["lanes_active"] += n
        if outcome == LaneOutcome.RECOVERED:
            tally["lanes_recovered"] += n
        elif outcome == LaneOutcome.EXHAUSTED:
            tally["lanes_exhausted"] += n
        elif outcome == LaneOutcome.FORCE_COMPLETED:
            tally["lanes_force_completed"] += n
        # Lanes adopted from the old bot may be cancelled without an outcome.
        if outcome == LaneOutcome.CANCELLED or (outcome is None and row["status_"] == LaneStatus.CANCELLED):
            tally["lanes_cancelled"] += n
        tally["total_invested"] = _add(tally["total_invested"], row["invested"])
        tally["total_potential_payout"] = _add(tally["total_potential_payout"], row["payout"])
    return tally


def _trade_tally(groups) -> dict[str, Any]:
    tally = {**EMPTY_TRADES, "trades_open": 0, "trades_cancelled": 0}
    key = {TradeStatus.WON: "wins", TradeStatus.LOST: "losses", TradeStatus.DRAW: "draws",
           TradeStatus.OPEN: "trades_open", TradeStatus.CANCELLED: "trades_cancelled"}
    for row in groups:
        tally["trades"] += row["n"]
        status = row["status_"]
        if status in key:
            tally[key[status]] += row["n"]
        if status in SETTLED_STATES:
            tally["net_profit"] = _add(tally["net_profit"], row["profit_"])
    return tally


def _add(total: Optional[Decimal], value: Optional[Decimal]) -> Optional[Decimal]:
    return total if value is None else (value if total is None else total + value)


def _grouped(groups, key) -> dict[Any, list]:
    by_key = defaultdict(list)
    for row in groups:
        by_key[key(row)].append(row)
    return by_key


def _by_level(lane_groups, trade_groups) -> list[dict[str, Any]]:
    by_trades = _grouped(trade_groups, lambda row: row["level_"])
    by_lanes = _grouped(
        (row for row in lane_groups if row["outcome_"] in (LaneOutcome.RECOVERED, LaneOutcome.EXHAUSTED)),
        lambda row: row["level"],
    )
    rows = []
    for level in sorted(set(by_trades) | set(by_lanes), key=lambda level: (level is None, level)):
        lane_row = _lane_tally(by_lanes.get(level, []))
        rows.append(
            {
                "level": level,
                **_trade_row(_trade_tally(by_trades.get(level, []))),
                "lanes_recovered": lane_row["lanes_recovered"],
                "lanes_exhausted": lane_row["lanes_exhausted"],
            }
        )
    return rows


def _by_symbol(lane_groups, trade_groups) -> list[dict[str, Any]]:
    by_trades = _grouped(trade_groups, lambda row: row["symbol_"])
    by_lanes = _grouped(lane_groups, lambda row: row["symbol_"])
    rows = []
    for symbol in sorted(set(by_trades) | set(by_lanes)):
        trade_row = _trade_tally(by_trades.get(symbol, []))
        lane_row = _lane_tally(by_lanes.get(symbol, []))
        rows.append(
            {
                "symbol": symbol,
                **_trade_row(trade_row),
                "win_rate": _rate(trade_row["wins"], trade_row["losses"]),
                "lanes_created": lane_row["lanes_created"],
                "lanes_recovered": lane_row["lanes_recovered"],
                "lanes_exhausted": lane_row["lanes_exhausted"],
            }
        )
    return rows


def _daily(lane_groups, trade_groups, dates) -> list[dict[str, Any]]:
    by_trades = _grouped(trade_groups, lambda row: row["day"])
    by_lanes = _grouped(lane_groups, lambda row: row["day"])
    rows = []
    for index, day in enumerate(dates):
        lane_row = _lane_tally(by_lanes.get(index, []))
        rows.append(
            {
                "date": day.isoformat(),
                **_trade_row(_trade_tally(by_trades.get(index, []))),
                "lanes_created": lane_row["lanes_created"],
                "lanes_recovered": lane_row["lanes_recovered"],
                "lanes_exhausted": lane_row["lanes_exhausted"],
            }
        )
    return rows


# --- Dashboard ----------------------------------------------------------------------------------

OVERVIEW_PAGE_SIZE = 50
ACCOUNT_PAGE_LIMIT = 200  # active lanes and live trades listed on one account's page
RECENT_LANES_LIMIT = 50


def stuck_before(now: datetime) -> datetime:
    """Active lanes last changed before this time are stuck (MARTINGALE_STUCK_LANE_HOURS)."""
    return now - timedelta(hours=django_settings.MARTINGALE_STUCK_LANE_HOURS)


@dataclass
class AccountOverview:
    """One account's line on the dashboard overview."""

    account: Account
    settings: dict[str, Any]
    active_lanes: int = 0
    lanes_at_last_level: int = 0
    stuck_lanes: int = 0
    invested: Decimal = engine.ZERO
    open_trades: int = 0
    overdue_trades: int = 0
    queued_trades: int = 0
    lanes_created_today: int = 0
    net_profit_today: Decimal = engine.ZERO
    worst_case: Decimal = engine.ZERO

    @property
    def slots(self) -> int:
        return self.settings["max_concurrent_lanes"] if self.settings["concurrent_trading_enabled"] else 1

    @property
    def emergency_stop(self) -> bool:
        return not self.settings["auto_create_lanes"]

    @property
    def daily_limit_reached(self) -> bool:
        return self.lanes_created_today >= self.settings["max_daily_lanes"]

    @property
    def exceeds_balance(self) -> bool:
        return self.worst_case > self.account.balance

    @property
    def warnings(self) -> list[str]:
        found = []
        if self.lanes_at_last_level:
            found.append(f"{self.lanes_at_last_level} lane(s) at the last level")
        if self.stuck_lanes:
            found.append(f"{self.stuck_lanes} stuck lane(s)")
        if self.overdue_trades:
            found.append(f"{self.overdue_trades} overdue trade(s)")
        if self.daily_limit_reached:
            found.append("daily lane limit reached")
        if self.exceeds_balance:
            found.append("worst case exceeds balance")
        return found


def _account_worst_case(account: Account, settings: dict[str, Any]) -> Decimal:
    return worst_case_exposure(
        base=account.base_amount,
        multiplier=account.martingale_multiplier,
        max_level=account.martingale_max_level,
        max_concurrent_lanes=settings["max_concurrent_lanes"],
        slots=settings["max_concurrent_lanes"] if settings["concurrent_trading_enabled"] else 1,
        enhanced=account.enhanced_martingale_enabled,
        martingale=account.martingale_enabled,
    )


def account_overviews(*, accounts: list[Account], now: datetime) -> list[AccountOverview]:
    """Counts and warnings of the given accounts, in four grouped queries for any number of them."""
    names = [account.worker_name for account in accounts]
    ids = [account.pk for account in accounts]
    lanes = {
        row["account_name"]: row
        for row in Lane.objects.filter(account_name__in=names, status=LaneStatus.ACTIVE)
        .order_by()
        .values("account_name")
        .annotate(
            n=Count("id"),
            last_level=Count("id", filter=Q(current_level__gte=F("max_level"))),
            stuck=Count("id", filter=Q(updated_at__lt=stuck_before(now))),
            invested=Sum("total_invested", output_field=TOTAL),
        )
    }
    live: dict[tuple[int, str], dict[str, int]] = {
        (row["account_id"], row["status"]): row
        for row in Trade.objects.filter(account_id__in=ids, status__in=(TradeStatus.QUEUED, TradeStatus.OPEN))
        .order_by()
        .values("account_id", "status")
        .annotate(n=Count("id"), overdue=Count("id", filter=Q(opened_at__lt=overdue_before(now))))
    }
    created_today, profit_today = _today(names, ids, now)
    rows = []
    for account in accounts:
        settings = settings_json(account.worker_name, account.trading_settings)
        lane_row = lanes.get(account.worker_name, {})
        rows.append(
            AccountOverview(
                account=account,
                settings=settings,
                active_lanes=lane_row.get("n", 0),
                lanes_at_last_level=lane_row.get("last_level", 0),
                stuck_lanes=lane_row.get("stuck", 0),
                invested=engine.round2(lane_row.get("invested") or engine.ZERO),
                open_trades=live.get((account.pk, TradeStatus.OPEN), {}).get("n", 0),
                overdue_trades=live.get((account.pk, TradeStatus.OPEN), {}).get("overdue", 0),
                queued_trades=live.get((account.pk, TradeStatus.QUEUED), {}).get("n", 0),
                lanes_created_today=created_today.get(account.worker_name, 0),
                net_profit_today=engine.round2(profit_today.get(account.pk) or engine.ZERO),
                worst_case=_account_worst_case(account, settings),
            )
        )
    return rows


def overview_get(*, page: int = 1, search: str = "", per_page: int = OVERVIEW_PAGE_SIZE, now: datetime | None = None) -> dict:
    """The dashboard overview: one page of accounts (by name) with their counts and warnings,
    and totals over every account. A fixed number of queries whatever the number of rows."""
    now = now or timezone.now()
    accounts = _accounts().order_by("worker_name")
    if search:
        accounts = accounts.filter(worker_name__icontains=search)
    paginator = Paginator(accounts, per_page)
    page_obj = paginator.get_page(page)
    lane_totals = Lane.objects.filter(status=LaneStatus.ACTIVE).order_by().aggregate(
        active=Count("id"),
        last_level=Count("id", filter=Q(current_level__gte=F("max_level"))),
        stuck=Count("id", filter=Q(updated_at__lt=stuck_before(now))),
    )
    trade_totals = Trade.objects.filter(status__in=(TradeStatus.QUEUED, TradeStatus.OPEN)).order_by().aggregate(
        open=Count("id", filter=Q(status=TradeStatus.OPEN)),
        overdue=Count("id", filter=Q(status=TradeStatus.OPEN, opened_at__lt=overdue_before(now))),
        queued=Count("id", filter=Q(status=TradeStatus.QUEUED)),
    )
    return {
        "generated_at": now,
        "page": page_obj,
        "rows": account_overviews(accounts=list(page_obj.object_list), now=now),
        "totals": {"accounts": paginator.count, **lane_totals, **trade_totals},
    }


def account_page_get(*, account_name: str, now: datetime | None = None) -> dict:
    """One account for its dashboard page: the overview line, its active lanes (with
    ``open_trade_id``), its latest finished lanes, and its open and queued trades."""
    now = now or timezone.now()
    account = account_get(account_name=account_name)
    overview = account_overviews(accounts=[account], now=now)[0]
    active = list(
        _with_open_trade(Lane.objects.filter(account_name=account_name, status=LaneStatus.ACTIVE)).order_by("created_at", "id")[
            : ACCOUNT_PAGE_LIMIT + 1
        ]
    )
    cutoff = stuck_before(now)
    for lane in active:
        lane.stuck = lane.updated_at < cutoff
    finished = list(
        Lane.objects.filter(account_name=account_name)
        .exclude(status=LaneStatus.ACTIVE)
        .order_by("-completed_at", "-id")[:RECENT_LANES_LIMIT]
    )
    live = list(
        Trade.objects.filter(account=account, status__in=(TradeStatus.QUEUED, TradeStatus.OPEN))
        .annotate(lane_code=F("lane__lane_id"))
        .order_by("requested_at", "id")[: 2 * ACCOUNT_PAGE_LIMIT + 1]
    )
    open_trades = [trade for trade in live if trade.status == TradeStatus.OPEN]
    for trade in open_trades:
        trade.overdue = trade.opened_at < overdue_before(now)
    queued = [trade for trade in live if trade.status == TradeStatus.QUEUED]
    for position, trade in enumerate(queued, start=1):
        trade.queue_position = position
    return {
        "account": account,
        "overview": overview,
        "settings": overview.settings,
        "active_lanes": active[:ACCOUNT_PAGE_LIMIT],
        "more_active_lanes": len(active) > ACCOUNT_PAGE_LIMIT,
        "finished_lanes": finished,
        "open_trades": open_trades[:ACCOUNT_PAGE_LIMIT],
        "queued_trades": queued[:ACCOUNT_PAGE_LIMIT],
        "more_trades": len(live) > 2 * ACCOUNT_PAGE_LIMIT,
        "generated_at": now,
    }


def account_names_get() -> list[str]:
    return list(Account.objects.order_by("worker_name").values_list("worker_name", flat=True))


TRADE_EXPORT_COLUMNS = (
    "trade_id", "account__worker_name", "symbol", "direction", "status", "kind", "lane__lane_id", "level",
    "amount", "expected_payout", "payout", "profit", "requested_at", "opened_at", "settled_at", "expires_at",
    "requested_by",
)
EVENT_EXPORT_COLUMNS = ("id", "created_at", "account_name", "lane__lane_id", "kind", "trade_id", "actor", "data")


def trades_export(*, days: int, account: str | None = None, now: datetime | None = None):
    """The trades requested in the last ``days`` × 24 hours as tuples, in the order they were
    recorded, fetched in batches (for a streaming CSV)."""
    days = _clean_days(days)
    now = now or timezone.now()
    trades = Trade.objects.filter(requested_at__gte=now - timedelta(days=days), requested_at__lte=now)
    if account is not None:
        trades = trades.filter(account__worker_name=account)
    return trades.order_by("id").values_list(*TRADE_EXPORT_COLUMNS).iterator(chunk_size=2000)


def events_export(*, days: int, account: str | None = None, now: datetime | None = None):
    """The lane events written in the last ``days`` × 24 hours as tuples, oldest first."""
    days = _clean_days(days)
    now = now or timezone.now()
    events = LaneEvent.objects.filter(created_at__gte=now - timedelta(days=days), created_at__lte=now)
    if account is not None:
        events = events.filter(account_name=account)
    return events.order_by("created_at", "id").values_list(*EVENT_EXPORT_COLUMNS).iterator(chunk_size=2000)


# --- Background checks: stuck lanes, overdue trades, queues ---------------------------------------


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
    lanes = _with_open_trade(_stuck_lanes(now or timezone.now())).order_by("updated_at", "id")
    return list(lanes[: max(0, limit)])


def overdue_trades(*, now: datetime | None = None, limit: int = 100) -> list[Trade]:
    """Trades open for longer than MARTINGALE_TRADE_TIMEOUT_SECONDS, oldest first, each with
    ``lane_code`` and ``account_name``."""
    trades = (
        _overdue_trades(now or timezone.now())
        .annotate(lane_code=F("lane__lane_id"), account_name=F("account__worker_name"))
        .order_by("opened_at", "id")
    )
    return list(trades[: max(0, limit)])


def health_counts(*, now: datetime | None = None) -> dict[str, int]:
    """How many lanes are stuck and how many trades are overdue now."""
    now = now or timezone.now()
    return {"stuck_lanes": _stuck_lanes(now).count(), "overdue_trades": _overdue_trades(now).count()}


def queued_account_names() -> list[str]:
    """Every account with a queued trade, in one query; disabled ones too, as their queues still expire."""
    accounts = Account.objects.filter(trades__status=TradeStatus.QUEUED).order_by("worker_name")
    return list(accounts.values_list("worker_name", flat=True).distinct())


def lane_trades_with_base(*, lane: Lane) -> list[Trade]:
    """The lane's trades preceded by the base trade whose loss created it (first in trade_ids),
    each with ``lane_code``."""
    wanted = Q(lane=lane)
    if lane.trade_ids:
        wanted |= Q(trade_id=lane.trade_ids[0])
    trades = list(Trade.objects.filter(wanted).order_by("requested_at", "id"))
    for trade in trades:
        trade.lane_code = lane.lane_id if trade.lane_id == lane.pk else None
    return trades
