"""What each account is doing now: its lanes, trades, slots, today's counts, worst case, exposure,
active lock and warnings, for the status API, the command line, the status log and the dashboard.

Every number comes from the engine's functions (``lanes.engine``, ``lanes.risk``) applied to the
rows read here; a fixed number of queries serves any number of accounts.

``status_all`` (the status of every account: 20,000 active lanes are a 10 MB document) reads the
active lanes as plain values instead of model instances and turns each row into its JSON at once
(``_lane_documents``): times as the database's text, money through the same conversion Django
applies, once per distinct value. The document is the one ``lane_json`` makes of the model
(tests/lanes/test_status_scale.py compares them).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from typing import Any, Optional

from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .. import engine
from ..adapters import engine_account, engine_lane, engine_settings
from ..models import Account, AccountLock, Lane, LaneStatus, Trade, TradeStatus
from ..risk import AccountCounts, Warning, account_warnings
from ..serializers import account_json, iso, lane_json, lane_remaining_risk, lock_json, money, settings_json, trade_json
from ..loading import today_start
from .accounts import SETTLED_STATES, TOTAL, account_get, account_list
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
    # SPEC §11: the active lanes' remaining risk plus the open base and legacy trades' stakes, and
    # the active lock that ends last.
    exposure: Decimal = engine.ZERO
    active_lock: Optional[AccountLock] = None
    # status_all's summaries carry their active lanes as documents (lane_json's), not as rows:
    # ``active_lanes`` is then empty.
    lane_documents: Optional[list[dict[str, Any]]] = None

    @property
    def slots(self) -> int:
        return engine.slots(self.rules, self.settings)

    @property
    def free_slots(self) -> int:
        return max(0, self.slots - self.open_count)

    @property
    def worst_case(self) -> Decimal:
        return _worst_case(self.rules, self.settings)

    @property
    def lane_risk(self) -> Decimal:
        rules, settings = self.rules, self.settings
        if engine.is_legacy(rules):
            return _lane_risk(rules.base_amount, rules.multiplier, rules.max_level)
        return _lane_risk(
            rules.base_amount, rules.multiplier, rules.max_level,
            mode=settings.ladder_mode, payout_rate=rules.payout_rate, max_stake=settings.max_stake,
        )

    @property
    def invested(self) -> Decimal:
        return sum((lane.total_invested for lane in self.active_lanes), engine.ZERO)

    @property
    def max_exposure(self) -> Optional[Decimal]:
        return self.settings.max_exposure

    @property
    def headroom(self) -> Optional[Decimal]:
        """What exposure is left before max_exposure (None when it is off)."""
        return engine.headroom(self.settings, self.exposure)

    @property
    def warnings(self) -> list[Warning]:
        return account_warnings(self.rules, self.settings, self.counts, self.account.balance)

    @property
    def exceeds_balance(self) -> bool:
        return any(warning.kind == "balance" for warning in self.warnings)


# Accounts mostly share their ladders: each worst case and lane risk is computed once.
_lane_risk = functools.lru_cache(maxsize=1024)(engine.lane_risk)


def _rules_key(rules: engine.Account) -> tuple:
    return tuple(getattr(rules, name) for name in RULE_FIELDS)


RULE_FIELDS = tuple(f.name for f in dataclasses.fields(engine.Account))


_WORST_CASES: dict[tuple, Decimal] = {}


def _worst_case(rules: engine.Account, settings: engine.Settings) -> Decimal:
    """engine.worst_case, once per (every field of the account's rules, settings)."""
    key = (_rules_key(rules), settings)
    found = _WORST_CASES.get(key)
    if found is None:
        if len(_WORST_CASES) > 4096:
            _WORST_CASES.clear()
        found = _WORST_CASES[key] = engine.worst_case(rules, settings)
    return found


def account_summaries(
    accounts: list[Account], now: datetime, *, trade_lists: bool = True, lane_documents: bool = False
) -> list[AccountSummary]:
    """The summaries of ``accounts`` in four queries, whatever their number. Without
    ``trade_lists`` the open and queued trades are only counted; with ``lane_documents`` the
    active lanes come as their JSON documents (``AccountSummary.lane_documents``)."""
    names = [account.worker_name for account in accounts]
    ids = [account.pk for account in accounts]
    stuck_cutoff, overdue_cutoff = stuck_before(now), overdue_before(now)

    lanes_by_account: dict[str, list[Lane]] = defaultdict(list)
    if not lane_documents:
        for lane in with_open_trade(Lane.objects.filter(_among("account_name", names), status=LaneStatus.ACTIVE)).order_by("created_at", "id"):
            lanes_by_account[lane.account_name].append(lane)

    open_by_account: dict[int, list[Trade]] = defaultdict(list)
    queued_by_account: dict[int, list[Trade]] = defaultdict(list)
    live_counts: dict[tuple[int, str], dict[str, int]] = {}
    live = Trade.objects.filter(_among("account_id", ids), status__in=engine.LIVE).order_by()
    documents: dict[str, LaneDocuments] = {}
    if trade_lists:
        for trade in live:
            (queued_by_account if trade.status == TradeStatus.QUEUED else open_by_account)[trade.account_id].append(trade)
        if lane_documents:
            # A lane's open trade is one of its account's open trades (SPEC §4: at most one).
            open_trade_ids = {
                trade.lane_id: trade.trade_id for trades in open_by_account.values() for trade in trades if trade.lane_id
            }
            documents = _lane_documents(accounts, stuck_cutoff, open_trade_ids)
    else:
        assert not lane_documents, "the lane documents need the open trades (trade_lists)"
        live_counts = {
            (row["account_id"], row["status"]): row
            for row in live.values("account_id", "status").annotate(
                n=Count("id"),
                overdue=Count("id", filter=Q(opened_at__lt=overdue_cutoff)),
                unlaned=Sum("amount", filter=Q(kind__in=(engine.BASE, engine.LEGACY)), output_field=TOTAL),
            )
        }
    locks: dict[int, AccountLock] = {}
    for lock in AccountLock.objects.filter(_among("account_id", ids), released_at__isnull=True, locked_until__gt=now):
        if lock.account_id not in locks or lock.locked_until > locks[lock.account_id].locked_until:
            locks[lock.account_id] = lock

    created_today, profit_today = _today_by_account(names, ids, now)
    summaries = []
    for account in accounts:
        rules, settings = engine_account(account), engine_settings(account.trading_settings)
        lanes = lanes_by_account[account.worker_name]
        for lane in lanes:
            lane.stuck = lane.updated_at < stuck_cutoff
            lane.full = engine.lane_is_full(engine_lane(lane), rules.payout_rate)
            lane.at_last_level = engine.lane_at_last_level(engine_lane(lane), settings.max_stake)
        open_trades = sorted(open_by_account[account.pk], key=engine.queue_key)
        queued = sorted(queued_by_account[account.pk], key=engine.queue_key)
        for trade in open_trades:
            trade.overdue = trade.opened_at < overdue_cutoff
        for position, trade in enumerate(queued, start=1):
            trade.queue_position = position
        if trade_lists:
            open_count, queued_count = len(open_trades), len(queued)
            overdue = sum(trade.overdue for trade in open_trades)
            unlaned = sum((t.amount for t in open_trades if t.kind in (engine.BASE, engine.LEGACY)), engine.ZERO)
        else:
            open_row = live_counts.get((account.pk, TradeStatus.OPEN), {})
            open_count, overdue = open_row.get("n", 0), open_row.get("overdue", 0)
            unlaned = open_row.get("unlaned") or engine.ZERO
            queued_count = live_counts.get((account.pk, TradeStatus.QUEUED), {}).get("n", 0)
        if lane_documents:
            found = documents.get(account.worker_name) or LaneDocuments()
            lane_counts = (len(found.documents), found.at_last_level, found.full, found.stuck)
            lanes_risk = found.remaining_risk
        else:
            lane_counts = (
                len(lanes), sum(lane.at_last_level for lane in lanes), sum(lane.full for lane in lanes),
                sum(lane.stuck for lane in lanes),
            )
            lanes_risk = sum((lane_remaining_risk(lane) for lane in lanes), engine.ZERO)
        counts = AccountCounts(
            active_lanes=lane_counts[0],
            lanes_at_last_level=lane_counts[1],
            full_lanes=lane_counts[2],
            stuck_lanes=lane_counts[3],
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
                lane_documents=documents[account.worker_name].documents if account.worker_name in documents else (
                    [] if lane_documents else None
                ),
                exposure=engine.round2(lanes_risk + unlaned),
                active_lock=locks.get(account.pk),
            )
        )
    return summaries


IN_LIST_MAX = 500


def _among(field: str, values: list) -> Q:
    """``field IN values``, as IN lists of at most IN_LIST_MAX values joined by OR: MariaDB turns
    an IN list of 1,000 values or more (in_predicate_conversion_threshold) into a join with a
    table of them, and then read every trade for today's profit (half a second at a million)."""
    if len(values) <= IN_LIST_MAX:
        return Q(**{f"{field}__in": values})
    found = Q()
    for start in range(0, len(values), IN_LIST_MAX):
        found |= Q(**{f"{field}__in": values[start : start + IN_LIST_MAX]})
    return found


def _today_by_account(names: list[str], ids: list[int], now: datetime) -> tuple[dict[str, int], dict[int, Decimal]]:
    """Lanes created today by account name, and settled trades' profit today by account id
    (the TIME_ZONE day of ``now``): selectors.accounts.today_by_account, with the IN lists of
    ``_among``."""
    day_start = today_start(now)
    day_end = day_start + timedelta(days=1)
    created = dict(
        Lane.objects.filter(_among("account_name", names), created_at__gte=day_start, created_at__lt=day_end)
        .order_by()
        .values("account_name")
        .annotate(n=Count("id"))
        .values_list("account_name", "n")
    )
    profit = dict(
        Trade.objects.filter(_among("account_id", ids), status__in=SETTLED_STATES, settled_at__gte=day_start, settled_at__lt=day_end)
        .order_by()
        .values("account_id")
        .annotate(total=Sum("profit", output_field=TOTAL))
        .values_list("account_id", "total")
    )
    return created, profit


# --- The active lanes as documents ---------------------------------------------------------------


@dataclass
class LaneDocuments:
    """One account's active lanes as lane_json documents (oldest first), and how many of them
    are at their last level, full and stuck."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    at_last_level: int = 0
    full: int = 0
    stuck: int = 0
    remaining_risk: Decimal = engine.ZERO


LANE_DECIMALS = ("base_amount", "current_amount", "multiplier", "total_invested", "total_potential_payout")
LANE_TIMES = ("created_at", "updated_at", "completed_at")


def _lane_documents(
    accounts: list[Account], stuck_cutoff: datetime, open_trade_ids: dict[str, str]
) -> dict[str, LaneDocuments]:
    """The active lanes of ``accounts`` by account name, in one query, as ``lane_json`` makes
    them of the model (``open_trade_id`` from ``open_trade_ids``, by lane_id), with the engine's
    ``at_last_level`` and ``lane_is_full`` and the stuck flag counted per account."""
    if not accounts:
        return {}
    rates = {account.worker_name: account.payout_rate for account in accounts}
    max_stakes = {
        account.worker_name: account.trading_settings.max_stake if account.trading_settings is not None else None
        for account in accounts
    }
    ops = connection.ops
    quote = ops.quote_name
    text = "CHAR" if connection.vendor == "mysql" else "TEXT"
    # Times (and, on MySQL/MariaDB, amounts) as the database's text: no per-value conversion by
    # the driver; each distinct amount is converted once (_Amounts), each time by slicing its
    # text when it has the usual shape (_iso).
    columns = []
    for column in (
        "id", "lane_id", "account_name", "symbol", "status", "current_level", *LANE_DECIMALS[:3], "max_level",
        *LANE_DECIMALS[3:], "trade_ids", *LANE_TIMES, "outcome", "ladder_mode", "payout_rate", "net_profit",
    ):
        as_text = column in LANE_TIMES or (column in (*LANE_DECIMALS, "payout_rate", "net_profit") and connection.vendor == "mysql")
        columns.append(f"CAST(l.{quote(column)} AS {text})" if as_text else f"l.{quote(column)}")
    names = list(rates)
    among = " OR ".join(
        f"l.account_name IN ({', '.join(['%s'] * len(names[start : start + IN_LIST_MAX]))})"
        for start in range(0, len(names), IN_LIST_MAX)
    )
    sql = f"SELECT {', '.join(columns)} FROM {quote(Lane._meta.db_table)} l WHERE l.status = %s AND ({among})"
    with connection.cursor() as cursor:
        cursor.execute(sql, [LaneStatus.ACTIVE, *names])
        rows = list(cursor.fetchall())
    # Oldest first, as the other reads (sorted here: an ORDER BY could send the database down
    # the created_at index through every lane).
    rows.sort(key=lambda row: (_canonical(row[13]), row[0]))

    amounts = _Amounts()
    texts = amounts.texts
    trade_ids = Lane._meta.get_field("trade_ids")
    loads = json.loads
    scan = json.JSONDecoder().scan_once
    cutoff = _canonical(str(stuck_cutoff.astimezone(dt_timezone.utc).replace(tzinfo=None)))
    found: dict[str, LaneDocuments] = {}
    full_cache: dict[tuple, bool] = {}
    risk_cache: dict[tuple, tuple[bool, Decimal]] = {}
    rate_field = Lane._meta.get_field("payout_rate")
    for (
        pk, lane_id, account_name, symbol, status, level, base, current, multiplier, max_level, invested, payout,
        ids_text, created, updated, completed, outcome, ladder_mode, lane_rate, net_profit,
    ) in rows:
        # trade_ids.to_python, without its call for the usual JSON list.
        try:
            # The C scanner without json.loads' wrapper (a fifth of this loop's time); anything
            # but one whole JSON value goes the long way.
            parsed, end = scan(ids_text, 0) if ids_text else ([], 0)
            if ids_text and end != len(ids_text):
                parsed = loads(ids_text)
        except (ValueError, StopIteration):
            parsed = trade_ids.to_python(ids_text)  # raises as the model would
        ids = [str(v) for v in parsed] if type(parsed) is list else trade_ids.to_python(ids_text) or []
        rate = rates[account_name]
        key = (current, invested, payout, len(ids), rate)
        full = full_cache.get(key)
        if full is None:
            full = full_cache[key] = engine.lane_is_full(
                _Stake(amounts.value(current), amounts.value(invested), amounts.value(payout), ids), rate
            )
        account_lanes = found.get(account_name)
        if account_lanes is None:
            account_lanes = found[account_name] = LaneDocuments()
        risk_key = (ladder_mode, base, multiplier, lane_rate, max_level, level, current, max_stakes[account_name])
        risk = risk_cache.get(risk_key)
        if risk is None:
            rate = None if lane_rate is None else Decimal(str(lane_rate)).quantize(rate_field_quantum(rate_field))
            ladder_lane = engine.Lane(
                lane_id=lane_id, symbol=symbol, base_amount=amounts.value(base), current_amount=amounts.value(current),
                multiplier=amounts.value(multiplier), max_level=max_level, created_at=None, current_level=level,
                ladder_mode=ladder_mode, payout_rate=rate,
            )
            stake_limit = max_stakes[account_name]
            risk = risk_cache[risk_key] = (
                engine.lane_at_last_level(ladder_lane, stake_limit), engine.remaining_risk(ladder_lane, stake_limit),
            )
        lane_last, lane_risk = risk
        account_lanes.at_last_level += lane_last
        account_lanes.remaining_risk += lane_risk
        account_lanes.full += full
        account_lanes.stuck += _canonical(updated) < cutoff
        account_lanes.documents.append(
            {
                "id": pk,
                "lane_id": lane_id,
                "account_name": account_name,
                "symbol": symbol,
                "status": status,
                "current_level": level,
                "base_amount": texts[base] if base in texts else amounts.text(base),
                "current_amount": texts[current] if current in texts else amounts.text(current),
                "multiplier": texts[multiplier] if multiplier in texts else amounts.text(multiplier),
                "max_level": max_level,
                "total_invested": texts[invested] if invested in texts else amounts.text(invested),
                "total_potential_payout": texts[payout] if payout in texts else amounts.text(payout),
                "trade_ids": ids,
                "created_at": _iso(created),
                "updated_at": _iso(updated),
                "completed_at": None if completed is None else _iso(completed),
                "outcome": outcome,
                "open_trade_id": open_trade_ids.get(lane_id),
                "ladder_mode": ladder_mode,
                "payout_rate": None if lane_rate is None else f"{Decimal(str(lane_rate)):.4f}",
                "net_profit": texts[net_profit] if net_profit in texts else amounts.text(net_profit),
                "remaining_risk": money(lane_risk),
            }
        )
    return found


def rate_field_quantum(model_field) -> Decimal:
    return Decimal(1).scaleb(-model_field.decimal_places)


@dataclass
class _Stake:
    """What ``engine.lane_is_full`` reads of a lane (an AttributeError if it reads anything else).
    Lanes with the same stake, totals, number of trades and payout rate are judged once."""

    current_amount: Optional[Decimal]
    total_invested: Optional[Decimal]
    total_potential_payout: Optional[Decimal]
    trade_ids: list[str]


class _Amounts:
    """A DECIMAL(10,2) value as the database sends it (a float or an int from SQLite, text from
    the CAST on MySQL/MariaDB) -> the Decimal the model would hold (the converters Django applies
    to the column) and its money() text, each computed once per distinct value."""

    def __init__(self):
        self.values: dict = {}
        self.texts: dict = {}
        field = Lane._meta.get_field("total_invested")
        self.expression = field.get_col(Lane._meta.db_table)
        self.converters = connection.ops.get_db_converters(self.expression) + self.expression.get_db_converters(connection)

    def value(self, raw) -> Optional[Decimal]:
        if raw not in self.values:
            value = Decimal(raw) if connection.vendor == "mysql" and raw is not None else raw
            for converter in self.converters:
                value = converter(value, self.expression, connection)
            self.values[raw] = value
        return self.values[raw]

    def text(self, raw) -> Optional[str]:
        self.texts[raw] = money(self.value(raw))
        return self.texts[raw]


def _canonical(raw: str) -> str:
    """A DATETIME column's text as 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC, no zero fraction), whose
    order is the times' order."""
    if len(raw) == 19 or (len(raw) == 26 and raw[19] == "."):
        if raw[10] == " " and raw[4] == "-" and raw[13] == ":":
            return raw[:19] if raw[20:] == "000000" else raw
    return str(_moment(raw).astimezone(dt_timezone.utc).replace(tzinfo=None))


def _moment(raw: Optional[str]) -> Optional[datetime]:
    """A DATETIME column's text (UTC) as the aware datetime the model would hold."""
    if raw is None:
        return None
    value = parse_datetime(raw)
    return value if timezone.is_aware(value) else value.replace(tzinfo=dt_timezone.utc)


def _iso(raw: Optional[str]) -> Optional[str]:
    """iso() of a DATETIME column's text: 'YYYY-MM-DD HH:MM:SS' or with six digits of fraction
    (not all zero) is sliced; anything else goes through the datetime."""
    if raw is None:
        return None
    if len(raw) == 19 or (len(raw) == 26 and raw[19] == "." and raw[20:] != "000000"):
        if raw[10] == " " and raw[4] == "-" and raw[13] == ":":
            return f"{raw[:10]}T{raw[11:]}+00:00"
    return iso(_moment(raw))


def status_json(summary: AccountSummary, now: Optional[datetime] = None) -> dict[str, Any]:
    now = now or timezone.now()
    account, name = summary.account, summary.account.worker_name
    return {
        "account": account_json(account),
        "settings": settings_json(name, account.trading_settings),
        "mode": "legacy" if engine.is_legacy(summary.rules) else "enhanced",
        "slots": summary.slots,
        "free_slots": summary.free_slots,
        "active_lanes": (
            summary.lane_documents if summary.lane_documents is not None else [lane_json(lane) for lane in summary.active_lanes]
        ),
        "open_trades": [trade_json(trade, account_name=name) for trade in summary.open_trades],
        "queued_trades": [
            trade_json(trade, account_name=name, queue_position=trade.queue_position) for trade in summary.queued_trades
        ],
        "lanes_created_today": summary.counts.lanes_created_today,
        "net_profit_today": money(summary.net_profit_today),
        "lane_worst_case": money(summary.lane_risk),
        "worst_case_exposure": money(summary.worst_case),
        "exposure": money(summary.exposure),
        "max_exposure": money(summary.max_exposure),
        "exposure_headroom": money(summary.headroom),
        "active_lock": None if summary.active_lock is None else lock_json(summary.active_lock, account_name=name, now=now),
        "warnings": [{"kind": warning.kind, "message": warning.message} for warning in summary.warnings],
    }


def account_status_get(*, account_name: str, now: Optional[datetime] = None) -> dict:
    """One account: its fields, settings, slots, active lanes, open and queued trades (queued ones
    with their ``queue_position``), today's lanes and profit, its worst case and warnings."""
    account = account_get(account_name=account_name)
    now = now or timezone.now()
    return status_json(account_summaries([account], now)[0], now)


def status_all(*, account_names: Optional[list[str]] = None, now: Optional[datetime] = None) -> dict:
    """The status of every enabled account (within ``account_names`` when given)."""
    now = now or timezone.now()
    accounts = account_list(account_names=account_names, enabled_only=True)
    summaries = account_summaries(accounts, now, lane_documents=True)
    return {"generated_at": iso(now), "accounts": [status_json(summary, now) for summary in summaries]}
