"""Statistics of a window of time (SPEC §9): lanes created and trades opened in the last ``days``
× 24 hours, with totals, by level, by symbol and by day."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Optional

from django.db.models import Case, Count, F, IntegerField, Q, Sum, Value, When
from django.utils import timezone

from .. import engine, summary
from ..models import Account, Lane, LaneOutcome, LaneStatus, Trade, TradeStatus
from ..ranges import STATS_DAYS
from ..serializers import iso, money
from ..services import NotFound
from ..validation import clean
from .accounts import SETTLED_STATES, TOTAL
from .lanes import check_scope



def clean_days(days: Any) -> int:
    """The ``days`` of a statistics window or an export (typed, or text from a query string)."""
    return clean(STATS_DAYS, days, "days", from_text=True)


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
    days = clean_days(days)
    check_scope(account, account_names)
    now = now or timezone.now()
    since = now - timedelta(days=days)
    days_list, boundaries = _day_buckets(since, now)
    lanes = Lane.objects.order_by()
    trades = Trade.objects.order_by()
    if account is not None:
        account_id = Account.objects.filter(worker_name=account).values_list("pk", flat=True).first()
        if account_id is None:
            raise NotFound(f"account {account} not found")
        lanes = lanes.filter(account_name=account)
        trades = trades.filter(account_id=account_id)
    if account_names is not None:
        lanes = lanes.filter(account_name__in=account_names)
        trades = trades.filter(account__worker_name__in=account_names)

    lane_parts, trade_parts = Parts(), Parts()
    window = summary.plan(since, now, boundaries) if account is None and account_names is None else None
    if window is None:
        # One account, or a token's accounts: their own rows (an index on the account finds them).
        lane_parts.add_rows(_lane_groups(lanes.filter(created_at__gte=since, created_at__lte=now), _bucket("created_at", boundaries)))
        trade_parts.add_rows(_trade_groups(trades.filter(opened_at__gte=since, opened_at__lte=now), _bucket("opened_at", boundaries)))
    else:
        # Every account: the running totals of the whole quarter-hours, the rows of the rest. No
        # midnight falls inside either end (midnights are on quarter-hours): the rows before
        # ``first`` are on the window's first date, those from ``last`` on its last.
        first, last = window.first_at, window.last_at
        lane_parts.add_rows(_lane_groups(
            lanes.filter(Q(created_at__gte=since, created_at__lt=first) | Q(created_at__gte=last, created_at__lte=now)),
            _ends("created_at", first, len(boundaries)),
        ))
        trade_parts.add_rows(_trade_groups(
            trades.filter(Q(opened_at__gte=since, opened_at__lt=first) | Q(opened_at__gte=last, opened_at__lte=now)),
            _ends("opened_at", first, len(boundaries)),
        ))
        totals, pending = summary.read(window)
        for kind, dim, day, level, symbol, status, outcome, n, amount, payout in totals:
            level = None if level == summary.NO_LEVEL else level
            if kind == summary.LANE:
                row = {
                    "day": day, "level": level, "symbol_": symbol, "status_": status or None,
                    "outcome_": outcome or None, "n": int(n), "invested": summary.cents(amount),
                    "payout": summary.cents(payout),
                }
                lane_parts.add(dim, row)
            else:
                row = {
                    "day": day, "level_": level, "symbol_": symbol, "status_": status or None, "n": int(n),
                    "profit_": summary.cents(amount),
                }
                trade_parts.add(dim, row)
        summary.roll_up_if_behind(pending)

    lane_groups, lane_levels, lane_symbols = lane_parts.merged(LANE_KEYS, LANE_SUMS)
    trade_groups, trade_levels, trade_symbols = trade_parts.merged(TRADE_KEYS, TRADE_SUMS)
    lane_totals = _lane_tally(lane_groups)
    trade_totals = _trade_tally(trade_groups)
    lanes_created = lane_totals["lanes_created"]
    level_sum = sum((row["level"] or 0) * row["n"] for row in lane_levels)
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
        "max_level": max((row["level"] for row in lane_levels if row["level"] is not None), default=0) or 0,
        "total_invested": _total(lane_totals["total_invested"]),
        "total_potential_payout": _total(lane_totals["total_potential_payout"]),
        **_trade_row(trade_totals),
        "trades_open": trade_totals["trades_open"],
        "trades_cancelled": trade_totals["trades_cancelled"],
        "win_rate": _rate(trade_totals["wins"], trade_totals["losses"]),
        "by_level": _by_level(lane_levels, trade_levels),
        "by_symbol": _by_symbol(lane_symbols, trade_symbols),
        "daily": _daily(lane_groups, trade_groups, days_list),
    }


# Each table is read as groups of (day, level, symbol, status[, outcome]) with their count and
# sums, which are added up here into the totals, by_level, by_symbol and daily.
#
# Over every account the groups come from lanes.summary: running totals per UTC quarter-hour,
# hour and day kept by database triggers, by status ("s", per date of the window), by level
# ("l") and by symbol ("y"), plus the changes not rolled up yet ("j", every key), in one
# statement; and from the rows themselves for the minutes before the window's first whole
# quarter-hour and after its last (two GROUP BYs over a few hundred rows). A window of one account
# or of a token's accounts is read from their rows, as two GROUP BYs.
#
# The day of a row is found by comparing its time with the window's TIME_ZONE midnights in a
# balanced CASE (a handful of comparisons per row), so the database never calls a date function
# per row; the trades' covering index (trade_stats_idx) answers without reading the table.

LANE_KEYS = {"s": ("day", "status_", "outcome_"), "l": ("level", "status_", "outcome_"), "y": ("symbol_", "status_", "outcome_")}
LANE_SUMS = ("invested", "payout")
TRADE_KEYS = {"s": ("day", "status_"), "l": ("level_", "status_"), "y": ("symbol_", "status_")}
TRADE_SUMS = ("profit_",)


class Parts:
    """The groups of one table, each for the breakdowns it serves: a group of rows (every key)
    serves all three, a running total only its own."""

    def __init__(self):
        self.parts = {"s": [], "l": [], "y": []}

    def add_rows(self, groups) -> None:
        for row in groups:
            self.add("j", row)

    def add(self, dim: str, row: dict) -> None:
        for target in ("s", "l", "y") if dim == "j" else (dim,):
            self.parts[target].append(row)

    def merged(self, keys: dict, sums: tuple[str, ...]) -> tuple[list, list, list]:
        """Per breakdown, the groups added up by its key, without the keys whose count is 0 (a
        running total and a change that takes it away)."""
        result = []
        for dim in ("s", "l", "y"):
            by_key: dict = {}
            for row in self.parts[dim]:
                key = tuple(row[name] for name in keys[dim])
                total = by_key.get(key)
                if total is None:
                    by_key[key] = {**row}
                else:
                    total["n"] += row["n"]
                    for name in sums:
                        total[name] = _add(total[name], row[name])
            result.append([row for row in by_key.values() if row["n"]])
        return tuple(result)


def _ends(field: str, first: datetime, last_day: int):
    """The date index of a row at either end of the window: 0 before ``first``, else the last."""
    return Case(When(**{f"{field}__lt": first}, then=Value(0)), default=Value(last_day), output_field=IntegerField())


def _lane_groups(lanes, day) -> list[dict]:
    """``day``: the expression of a row's date index (``_bucket`` or ``_ends``)."""
    return list(
        lanes.values(
            day=day, level=F("current_level"), symbol_=F("symbol"),
            status_=F("status"), outcome_=F("outcome"),
        ).annotate(
            n=Count("id"),
            invested=Sum("total_invested", output_field=TOTAL),
            payout=Sum("total_potential_payout", output_field=TOTAL),
        )
    )


def _trade_groups(trades, day) -> list[dict]:
    return list(
        trades.values(day=day, level_=F("level"), symbol_=F("symbol"), status_=F("status"))
        .annotate(n=Count("id"), profit_=Sum("profit", output_field=TOTAL))
    )


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
