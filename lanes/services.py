"""Every write of the lane engine.

Each function that changes an account's trades or lanes opens one transaction, locks the
account row (``select_for_update``; on SQLite the IMMEDIATE transaction serialises writers),
loads that account's book only after the lock, lets ``lanes.engine`` decide, and writes the
trades, lanes, account and audit events it changed in the same transaction.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Callable, Iterable, Optional

from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.db.models import Count, FilteredRelation, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from settings_app.models import TradingSettings
from settings_app.validation import (
    SETTINGS_DEFAULTS,
    ConfigError,
    check_stake_fits,
    clean_account_fields,
    clean_trading_settings,
)

from . import engine
from .models import Account, ApiToken, Lane, LaneEvent, Trade
from .statements import PreparedValues

logger = logging.getLogger("lanes")

LIVE_TRADE_STATES = (engine.QUEUED, engine.OPEN)


class NotFound(Exception):
    """The named account, trade or lane does not exist (HTTP 404)."""


class Forbidden(Exception):
    """The caller may not act on this account (HTTP 403)."""


@dataclass
class TradeOutcome:
    trade: Trade
    queue_position: Optional[int]
    lane: Optional[Lane]
    lane_open_trade_id: Optional[str]
    created: bool = False  # a new trade row (201) rather than a repeat of an existing one (200)
    changed: bool = True


Authorize = Optional[Callable[[str], bool]]


# --- Loading and saving a book ----------------------------------------------------------------


def today_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in the project's TIME_ZONE (the day of max_daily_lanes)."""
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


ACCOUNT_FIELDS = [f.attname for f in Account._meta.concrete_fields]
SETTINGS_FIELDS = tuple(SETTINGS_DEFAULTS)
TRADE_FIELDS = (
    "trade_id", "symbol", "direction", "status", "kind", "level", "amount", "requested_payout",
    "expected_payout", "payout", "profit", "max_wait_seconds", "requested_at", "opened_at",
    "settled_at", "expires_at",
)
TRADE_COLUMNS = ("id", "lane_id", "requested_by", *TRADE_FIELDS)


def _account_with_live_trades(accounts: Q, live: Q, today: datetime):
    """One locking statement: the account row, its settings, the day's lane count, the latest
    opening, and its live trades (one row per trade, or one row with no trade)."""
    last_open = (
        Trade.objects.filter(account=OuterRef("pk"), opened_at__isnull=False)
        .order_by("-opened_at")
        .values("opened_at")[:1]
    )
    lanes_today = (
        Lane.objects.filter(account_name=OuterRef("worker_name"), created_at__gte=today)
        .order_by()
        .values("account_name")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        Account.objects.select_for_update()
        .filter(accounts)
        .annotate(
            last_open=Subquery(last_open),
            lanes_today=Coalesce(Subquery(lanes_today, output_field=IntegerField()), Value(0)),
            live=FilteredRelation("trades", condition=live),
        )
        .values(
            *ACCOUNT_FIELDS,
            "last_open",
            "lanes_today",
            "trading_settings__id",
            *(f"trading_settings__{name}" for name in SETTINGS_FIELDS),
            *(f"live__{name}" for name in TRADE_COLUMNS),
            "live__lane__lane_id",
        )
    )


LIVE = Q(trades__status__in=LIVE_TRADE_STATES)
LOCK_BY_NAME = PreparedValues(
    lambda name, today: _account_with_live_trades(Q(worker_name=name), LIVE, today), texts=("name",), times=("today",)
)
LOCK_BY_NAME_WITH_TRADE = PreparedValues(
    lambda name, trade_id, today: _account_with_live_trades(Q(worker_name=name), LIVE | Q(trades__trade_id=trade_id), today),
    texts=("name", "trade_id"),
    times=("today",),
)
# A subquery, not a join: the trade row must not be locked before its account row.
LOCK_BY_TRADE = PreparedValues(
    lambda trade_id, today: _account_with_live_trades(
        Q(pk__in=Trade.objects.filter(trade_id=trade_id).values("account_id")), LIVE | Q(trades__trade_id=trade_id), today
    ),
    texts=("trade_id",),
    times=("today",),
)


def _lock_and_load(
    now: Optional[datetime], *, account_name: Optional[str] = None, trade_id: Optional[str] = None,
    authorize: Authorize = None,
) -> tuple[Account, engine.Book, dict[str, Trade], datetime]:
    """Lock one account row, by its name or by one of its trades, and load its book after the lock.

    One statement locks the account and reads its settings and its queued and open trades
    (plus ``trade_id``, whatever its state); a second reads its active lanes. Without a given
    ``now`` the clock is read once the lock is held, so times follow the order of the changes.
    """
    today = today_start(now or timezone.now())
    if account_name is None:
        rows = LOCK_BY_TRADE.run(trade_id=trade_id, today=today)
    elif trade_id is None:
        rows = LOCK_BY_NAME.run(name=account_name, today=today)
    else:
        rows = LOCK_BY_NAME_WITH_TRADE.run(name=account_name, trade_id=trade_id, today=today)
    if not rows:
        raise NotFound(f"account {account_name} not found" if account_name else f"trade {trade_id} not found")
    now = now or timezone.now()
    first = rows[0]
    account = Account(**{name: first[name] for name in ACCOUNT_FIELDS})
    if authorize is not None and not authorize(account.worker_name):
        raise Forbidden(f"this token may not act on account {account.worker_name}")
    if first["trading_settings__id"] is None:
        settings = engine.Settings()
    else:
        settings = engine.Settings(**{name: first[f"trading_settings__{name}"] for name in SETTINGS_FIELDS})
    trades: dict[str, Trade] = {}
    for row in rows:
        if row["live__id"] is not None:
            trade = Trade(account=account, **{name: row[f"live__{name}"] for name in TRADE_COLUMNS})
            trade.lane_code = row["live__lane__lane_id"]
            trades[trade.trade_id] = trade
    lanes = Lane.objects.filter(account_name=account.worker_name, status=engine.ACTIVE)
    book = engine.Book(
        account=engine_account(account),
        settings=settings,
        lanes={lane.lane_id: _engine_lane(lane) for lane in lanes},
        trades={t.trade_id: _engine_trade(t) for t in trades.values()},
        last_open=first["last_open"],
        lanes_created_today=first["lanes_today"],
    )
    return account, book, trades, now


def engine_account(account: Account) -> engine.Account:
    """The engine's view of an account row."""
    return engine.Account(
        name=account.worker_name,
        base_amount=account.base_amount,
        multiplier=account.martingale_multiplier,
        max_level=account.martingale_max_level,
        payout_rate=account.payout_rate,
        enabled=account.enabled,
        martingale_enabled=account.martingale_enabled,
        enhanced=account.enhanced_martingale_enabled,
        legacy_losses=account.legacy_consecutive_losses,
    )


def _engine_lane(lane: Lane) -> engine.Lane:
    return engine.Lane(
        lane_id=lane.lane_id,
        symbol=lane.symbol,
        base_amount=lane.base_amount,
        current_amount=lane.current_amount,
        multiplier=lane.multiplier,
        max_level=lane.max_level,
        created_at=lane.created_at,
        current_level=lane.current_level,
        status=lane.status,
        total_invested=lane.total_invested,
        total_potential_payout=lane.total_potential_payout,
        trade_ids=list(lane.trade_ids or []),
        completed_at=lane.completed_at,
        outcome=lane.outcome,
        last_assigned_at=lane.last_assigned_at,
        pk=lane.pk,
    )


def _engine_trade(trade: Trade) -> engine.Trade:
    return engine.Trade(lane_id=trade.lane_code, pk=trade.pk, **{f: getattr(trade, f) for f in TRADE_FIELDS})


LANE_UPDATE_FIELDS = [
    "status", "current_level", "current_amount", "total_invested", "total_potential_payout",
    "trade_ids", "updated_at", "completed_at", "outcome", "last_assigned_at",
]


def _lane_row(account: Account, lane: engine.Lane, now: datetime) -> Lane:
    return Lane(
        pk=lane.pk,
        lane_id=lane.lane_id,
        account_name=account.worker_name,
        symbol=lane.symbol,
        status=lane.status,
        current_level=lane.current_level,
        base_amount=lane.base_amount,
        current_amount=lane.current_amount,
        multiplier=lane.multiplier,
        max_level=lane.max_level,
        total_invested=lane.total_invested,
        total_potential_payout=lane.total_potential_payout,
        trade_ids=list(lane.trade_ids),
        created_at=lane.created_at,
        updated_at=now,
        completed_at=lane.completed_at,
        outcome=lane.outcome,
        last_assigned_at=lane.last_assigned_at,
    )


def _save(book: engine.Book, account: Account, rows: dict[str, Trade], now: datetime, actor: str) -> dict[str, Lane]:
    """Write what the engine changed; returns the changed lanes' rows by lane_id."""
    lane_rows: dict[str, Lane] = {}
    for lane_id in sorted(book.dirty_lanes, key=lambda i: (book.lanes[i].pk is not None, i)):
        lane = book.lanes[lane_id]
        row = _lane_row(account, lane, now)
        if lane.pk is None:
            row.save(force_insert=True)
            lane.pk = row.pk
        else:
            row.save(update_fields=LANE_UPDATE_FIELDS)
        lane_rows[lane_id] = row
    # Closing trades first: a queued trade opening on the lane another trade just left must not
    # meet that trade still open (the one-open-trade-per-lane index).
    for trade_id in sorted(book.dirty_trades, key=lambda i: (book.trades[i].status == engine.OPEN, i)):
        trade = book.trades[trade_id]
        row = rows.get(trade_id) or Trade(account=account, requested_by=actor)
        for name in TRADE_FIELDS:
            setattr(row, name, getattr(trade, name))
        if trade.lane_id in book.lanes:  # else the lane finished earlier and keeps its pk
            row.lane_id = book.lanes[trade.lane_id].pk
        row.lane_code = trade.lane_id
        if row.pk is None:
            row.save(force_insert=True)
            trade.pk = row.pk
        else:
            row.save(update_fields=[*TRADE_FIELDS[2:], "lane"])
        rows[trade_id] = row
    if book.account_dirty:
        Account.objects.filter(pk=account.pk).update(
            legacy_consecutive_losses=book.account.legacy_losses, last_updated=now
        )
    if book.events:
        LaneEvent.objects.bulk_create(
            LaneEvent(
                lane_id=book.lanes[event.lane_id].pk if event.lane_id else None,
                account_name=account.worker_name,
                kind=event.kind,
                trade_id=event.trade_id,
                actor=actor,
                data=event.data,
                created_at=now,
            )
            for event in book.events
        )
        for event in book.events:
            if event.kind == "not_created":
                logger.info("lane not created account=%s trade=%s reason=%s", account.worker_name, event.trade_id, event.data["reason"])
    return lane_rows


def _decide(book: engine.Book, operation: Callable[[engine.Book], object], what: str):
    """Run an engine operation; on an unexpected error, serve it by the legacy rules (SPEC §6)."""
    snapshot = copy.deepcopy(book)
    try:
        return book, operation(book)
    except engine.EngineError:
        raise
    except Exception:
        if not django_settings.MARTINGALE_LEGACY_FALLBACK or book.legacy():
            logger.exception("lane logic failed for %s on account %s", what, book.account.name)
            raise
        logger.exception(
            "lane logic failed for %s on account %s; serving it with the legacy rules", what, book.account.name
        )
        snapshot.legacy_only = True
        return snapshot, operation(snapshot)


def _outcome(book: engine.Book, rows: dict[str, Trade], lane_rows: dict[str, Lane], trade_id: str, **extra) -> TradeOutcome:
    trade = book.trades[trade_id]
    if trade.lane_id:
        lane_row = lane_rows.get(trade.lane_id) or Lane.objects.get(lane_id=trade.lane_id)
    else:  # a base trade whose loss created a lane answers with that lane, also when repeated
        lane_row = next((row for row in lane_rows.values() if row.trade_ids[:1] == [trade_id]), None)
        if lane_row is None and trade.kind == engine.BASE and trade.status == engine.LOST:
            created = LaneEvent.objects.filter(kind="created", trade_id=trade_id).select_related("lane").first()
            lane_row = created.lane if created else None
    open_trade = book.open_trade_of(lane_row.lane_id) if lane_row is not None else None
    return TradeOutcome(
        trade=rows[trade_id],
        queue_position=book.queue_position(trade_id),
        lane=lane_row,
        lane_open_trade_id=open_trade.trade_id if open_trade else None,
        **extra,
    )


def _new_lane_id() -> str:
    return uuid.uuid4().hex


# --- Trades -----------------------------------------------------------------------------------


def trade_open(
    *, account_name: str, request: engine.Request, actor: str, authorize: Authorize = None, now: Optional[datetime] = None
) -> TradeOutcome:
    """A bot asks for a stake: open the trade now, queue it, or refuse it (SPEC §3–4)."""
    try:
        with transaction.atomic():
            account, book, rows, now = _lock_and_load(
                now, account_name=account_name, trade_id=request.trade_id, authorize=authorize
            )
            existing = rows.get(request.trade_id)
            if existing is not None:
                if existing.account_id != account.pk or not engine.same_request(_engine_trade(existing), request):
                    raise engine.Conflict(f"trade_id {request.trade_id} already exists with other fields")
                book.trades[request.trade_id] = _engine_trade(existing)
                engine.serve_queue(book, now)
                lane_rows = _save(book, account, rows, now, actor)
                return _outcome(book, rows, lane_rows, request.trade_id, created=False, changed=False)
            book, _ = _decide(book, lambda b: engine.request_trade(b, request, now), "a trade request")
            lane_rows = _save(book, account, rows, now, actor)
            return _outcome(book, rows, lane_rows, request.trade_id, created=True)
    except IntegrityError:
        # Another account's request took this trade_id between our read and our insert.
        if Trade.objects.filter(trade_id=request.trade_id).exists():
            raise engine.Conflict(f"trade_id {request.trade_id} already exists with other fields") from None
        raise


def _with_trade(trade_id: str, actor: str, authorize: Authorize, now: Optional[datetime], operation, what: str):
    with transaction.atomic():
        account, book, rows, now = _lock_and_load(now, trade_id=trade_id, authorize=authorize)
        book, changed = _decide(book, lambda b: operation(b, now), what)
        lane_rows = _save(book, account, rows, now, actor)
        return _outcome(book, rows, lane_rows, trade_id, changed=bool(changed))


def trade_settle(
    *,
    trade_id: str,
    result: str,
    payout: Optional[Decimal] = None,
    actor: str,
    authorize: Authorize = None,
    now: Optional[datetime] = None,
) -> TradeOutcome:
    """A bot reports win, loss or draw; the lanes move on (SPEC §5)."""
    return _with_trade(
        trade_id,
        actor,
        authorize,
        now,
        lambda book, at: engine.settle_trade(book, trade_id, result, payout, at, _new_lane_id),
        f"the result of trade {trade_id}",
    )


def trade_cancel(*, trade_id: str, actor: str, authorize: Authorize = None, now: Optional[datetime] = None) -> TradeOutcome:
    return _with_trade(
        trade_id, actor, authorize, now, lambda book, at: engine.cancel_trade(book, trade_id, at), f"cancelling {trade_id}"
    )


def trade_refresh(*, trade_id: str, actor: str, authorize: Authorize = None, now: Optional[datetime] = None) -> TradeOutcome:
    """Read one trade; touching the account serves its queue first (SPEC §3)."""

    def serve(book, at):
        engine.serve_queue(book, at)
        return False

    return _with_trade(trade_id, actor, authorize, now, serve, f"reading {trade_id}")


def queue_serve(*, account_name: str, actor: str = "system", now: Optional[datetime] = None) -> int:
    """Serve one account's queue (expire, open); returns how many trades changed state."""
    with transaction.atomic():
        account, book, rows, now = _lock_and_load(now, account_name=account_name)
        book, _ = _decide(book, lambda b: engine.serve_queue(b, now), "serving the queue")
        _save(book, account, rows, now, actor)
        return len(book.dirty_trades)


# --- Lanes ------------------------------------------------------------------------------------


def lane_force_complete(
    *, lane_id: str, status: str = "completed", actor: str, authorize: Authorize = None, now: Optional[datetime] = None
) -> Lane:
    """End a lane by hand, as completed or cancelled (SPEC §7)."""
    if status not in (engine.COMPLETED, engine.CANCELLED):
        raise ConfigError({"status": "must be completed or cancelled"})
    lane_row = Lane.objects.filter(lane_id=lane_id).only("account_name").first()
    if lane_row is None:
        raise NotFound(f"lane {lane_id} not found")
    with transaction.atomic():
        account, book, rows, now = _lock_and_load(now, account_name=lane_row.account_name, authorize=authorize)
        engine.complete_lane(book, lane_id, status, now)
        return _save(book, account, rows, now, actor)[lane_id]


def account_reset(*, account_name: str, status: str = "completed", actor: str, now: Optional[datetime] = None) -> list[Lane]:
    """Complete every active lane of one account in one action (SPEC §7)."""
    if status not in (engine.COMPLETED, engine.CANCELLED):
        raise ConfigError({"status": "must be completed or cancelled"})
    with transaction.atomic():
        account, book, rows, now = _lock_and_load(now, account_name=account_name)
        for lane in book.active_lanes():
            engine.complete_lane(book, lane.lane_id, status, now)
        return list(_save(book, account, rows, now, actor).values())


def account_emergency_stop(*, account_name: str, actor: str) -> TradingSettings:
    """Emergency stop = auto_create_lanes off (SPEC §7)."""
    return settings_update(account_name=account_name, actor=actor, values={"auto_create_lanes": False})


# --- Settings, accounts, tokens ----------------------------------------------------------------


def settings_update(*, account_name: str, values: dict, actor: str, from_text: bool = False) -> TradingSettings:
    """Validate and save any of the six settings; the row is created on first write."""
    cleaned = clean_trading_settings(values, from_text=from_text)
    with transaction.atomic():
        account = Account.objects.select_for_update().filter(worker_name=account_name).first()
        if account is None:
            raise NotFound(f"account {account_name} not found")
        row, _ = TradingSettings.objects.get_or_create(account_name=account_name)
        changed = {name: value for name, value in cleaned.items() if getattr(row, name) != value}
        for name, value in cleaned.items():
            setattr(row, name, value)
        row.save()
        if changed:
            logger.info("settings changed account=%s by=%s %s", account_name, actor, changed)
        return row


def account_create(*, name: str, values: dict, from_text: bool = False) -> Account:
    from .validation import clean_account_name

    name = clean_account_name(name, field="name")
    cleaned = clean_account_fields(values, from_text=from_text)
    account = Account(worker_name=name, **cleaned)
    check_stake_fits(
        account.base_amount, account.martingale_multiplier, account.martingale_max_level, account.payout_rate
    )
    try:
        with transaction.atomic():
            account.save(force_insert=True)
    except IntegrityError:
        raise ConfigError({"name": f"account {name} already exists"}) from None
    return account


def account_update(*, name: str, values: dict, from_text: bool = False) -> Account:
    cleaned = clean_account_fields(values, from_text=from_text)
    with transaction.atomic():
        account = Account.objects.select_for_update().filter(worker_name=name).first()
        if account is None:
            raise NotFound(f"account {name} not found")
        for field, value in cleaned.items():
            setattr(account, field, value)
        check_stake_fits(
        account.base_amount, account.martingale_multiplier, account.martingale_max_level, account.payout_rate
    )
        account.save()
        return account


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_create(*, name: str, account_names: Iterable[str] = ()) -> tuple[ApiToken, str]:
    """A new bearer token; no account names = every account. The raw token is returned once."""
    from .validation import clean_account_name

    names = sorted(set(account_names))
    missing = set(names) - set(Account.objects.filter(worker_name__in=names).values_list("worker_name", flat=True))
    if missing:
        raise NotFound("no such account: " + ", ".join(sorted(missing)))
    name = clean_account_name(name, field="name")
    raw = "ml_" + secrets.token_urlsafe(32)
    token = ApiToken(name=name, token_hash=token_hash(raw), prefix=raw[:8], all_accounts=not names, account_names=names)
    try:
        with transaction.atomic():
            token.save(force_insert=True)
    except IntegrityError:
        raise ConfigError({"name": f"a token named {name} already exists"}) from None
    return token, raw


def token_for(raw: str) -> Optional[ApiToken]:
    return ApiToken.objects.filter(token_hash=token_hash(raw), revoked_at__isnull=True).first()

