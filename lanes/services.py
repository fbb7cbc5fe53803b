"""Every write of the lane engine.

Each function that changes an account opens one transaction, locks the account row and loads
its state after the lock (``lanes.loading``), lets ``lanes.engine`` decide, and writes the trades,
lanes, account and audit events it changed in the same transaction. Log lines about the change
are written once it is committed. A transaction the database aborts is retried
(``lanes.faults``).

When the lane logic fails unexpectedly, an opening of trades (a request, a queued trade opening)
is served by the legacy rules from a state loaded afresh (SPEC §6); any other change is refused
with ``EngineUnavailable`` and nothing is written.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Iterable, Optional

from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.db.models import F

from settings_app.models import TradingSettings
from settings_app.validation import check_stake_fits, clean_account_fields, clean_trading_settings

from . import engine
from .adapters import TRADE_FIELDS, engine_account, engine_trade
from .faults import retried
from .loading import Forbidden, Loaded, NotFound, lock_and_load, today_start  # noqa: F401 (services.* names)
from .models import Account, AccountLock, ApiToken, Lane, LaneEvent, Trade
from .ranges import LOCK_MINUTES, InvalidInput
from .statements import PreparedRowWrites, PreparedValues
from .validation import clean, clean_account_name, clean_note

logger = logging.getLogger("lanes")


class EngineUnavailable(Exception):
    """The lane logic failed on a change the legacy fallback does not serve (SPEC §6): nothing
    was written, and the same call may be retried (HTTP 503 ``engine_error``)."""


@dataclass
class TradeOutcome:
    trade: Trade
    queue_position: Optional[int]
    lane: Optional[Lane]
    lane_open_trade_id: Optional[str]
    created: bool = False  # a new trade row (201) rather than a repeat of an existing one (200)
    changed: bool = True


Authorize = Optional[Callable[[str], bool]]


# --- Loading and saving an account's state ---------------------------------------------------


LANE_UPDATE_FIELDS = [
    "status", "current_level", "current_amount", "total_invested", "total_potential_payout",
    "trade_ids", "updated_at", "completed_at", "outcome", "last_assigned_at", "net_profit",
]


LANE_WRITES = PreparedRowWrites(Lane, tuple(LANE_UPDATE_FIELDS))
TRADE_WRITES = PreparedRowWrites(Trade, TRADE_FIELDS[2:])
EVENT_WRITES = PreparedRowWrites(LaneEvent, ())


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
        ladder_mode=lane.ladder_mode,
        payout_rate=lane.payout_rate,
        net_profit=lane.net_profit,
    )


def _lock_row(account: Account, lock: engine.Lock) -> AccountLock:
    return AccountLock(
        pk=lock.pk,
        lock_id=lock.lock_id,
        account=account,
        reason=lock.reason,
        created_at=lock.created_at,
        locked_until=lock.locked_until,
        released_at=lock.released_at,
        released_by=lock.released_by,
        note=lock.note,
    )


def _save(loaded: Loaded, actor: str) -> dict[str, Lane]:
    """Write what the engine changed; returns the changed lanes' rows by lane_id."""
    state, account, rows, now = loaded.state, loaded.account, loaded.rows, loaded.now
    # New lanes first: a trade and an event refer to their lane's row.
    for lane_id in sorted(state.dirty_lanes, key=lambda i: (state.lanes[i].pk is not None, i)):
        lane = state.lanes[lane_id]
        row = _lane_row(account, lane, now)
        if lane.pk is None:
            LANE_WRITES.insert(row)
            lane.pk = row.pk
        else:
            LANE_WRITES.update(row)
        loaded.lane_rows[lane_id] = row
    # Closing trades first: a queued trade opening on the lane another trade just left must not
    # meet that trade still open (the one-open-trade-per-lane index).
    for trade_id in sorted(state.dirty_trades, key=lambda i: (state.trades[i].status == engine.OPEN, i)):
        trade = state.trades[trade_id]
        row = rows.get(trade_id) or Trade(account=account, requested_by=actor)
        for name in TRADE_FIELDS:
            setattr(row, name, getattr(trade, name))
        if row.pk is None:
            TRADE_WRITES.insert(row)
            trade.pk = row.pk
        else:
            TRADE_WRITES.update(row)
        rows[trade_id] = row
    for lane_id, profit in state.late_lane_profits:
        Lane.objects.filter(lane_id=lane_id).update(net_profit=F("net_profit") + profit)
    for lock in state.locks:
        if lock.lock_id in state.dirty_locks:
            row = _lock_row(account, lock)
            if lock.pk is None:
                row.save(force_insert=True)
                lock.pk = row.pk
            else:
                row.save(update_fields=["released_at", "released_by"])
            loaded.lock_rows[lock.lock_id] = row
    if state.account_dirty:
        Account.objects.filter(pk=account.pk).update(
            legacy_consecutive_losses=state.account.legacy_losses, last_updated=now
        )
    if state.events:
        EVENT_WRITES.insert_all([
            LaneEvent(
                lane_id=event.lane_id,
                account_name=account.worker_name,
                kind=event.kind,
                trade_id=event.trade_id,
                actor=actor,
                data=event.data,
                created_at=now,
            )
            for event in state.events
        ])
    for note in state.notes:
        transaction.on_commit(lambda note=note: logger.info(note))
    return loaded.lane_rows


Operation = Callable[[engine.AccountState, datetime], Any]


def _open_trades(loaded: Loaded, reload: Callable[[datetime], Loaded], operation: Operation, what: str):
    """Run an engine operation that opens trades; if the lane logic fails unexpectedly, serve it
    by the legacy rules (SPEC §6) from a state loaded afresh, so nothing of the failed attempt stays.

    Returns the state that was served and the operation's answer.
    """
    try:
        return loaded, operation(loaded.state, loaded.now)
    except (engine.Refused, InvalidInput):
        raise
    except Exception:
        name = loaded.account.worker_name
        if not django_settings.MARTINGALE_LEGACY_FALLBACK or loaded.state.legacy():
            logger.exception("lane logic failed for %s on account %s", what, name)
            raise
        logger.exception("lane logic failed for %s on account %s; serving it with the legacy rules", what, name)
        fresh = reload(loaded.now)
        fresh.state.legacy_only = True
        return fresh, operation(fresh.state, fresh.now)


def _change(loaded: Loaded, operation: Operation, what: str):
    """Run an engine operation that settles, cancels or completes: never by the legacy rules
    (a lane is never moved by them); a failure writes nothing and is answered 503."""
    try:
        return operation(loaded.state, loaded.now)
    except (engine.Refused, InvalidInput):
        raise
    except Exception as exc:
        logger.exception("lane logic failed for %s on account %s; nothing was written", what, loaded.account.worker_name)
        raise EngineUnavailable(f"the lane logic failed for {what}; nothing was written, retry later") from exc


def _outcome(loaded: Loaded, trade_id: str, **extra) -> TradeOutcome:
    state, lane_rows = loaded.state, loaded.lane_rows
    trade = state.trades[trade_id]
    if trade.lane_id:
        lane_row = lane_rows.get(trade.lane_id) or Lane.objects.get(lane_id=trade.lane_id)
    else:  # a base trade whose loss created a lane answers with that lane, also when repeated
        lane_row = next((row for row in lane_rows.values() if row.trade_ids[:1] == [trade_id]), None)
        if lane_row is None and trade.kind == engine.BASE and trade.status == engine.LOST:
            created = LaneEvent.objects.filter(kind="created", trade_id=trade_id).select_related("lane").first()
            lane_row = created.lane if created else None
    open_trade = state.open_trade_of(lane_row.lane_id) if lane_row is not None else None
    if lane_row is not None:
        lane_row.account_max_stake = state.settings.max_stake  # its remaining risk's bound (serializers)
    return TradeOutcome(
        trade=loaded.rows[trade_id],
        queue_position=state.queue_position(trade_id),
        lane=lane_row,
        lane_open_trade_id=open_trade.trade_id if open_trade else None,
        **extra,
    )


def _new_lane_id() -> str:
    return uuid.uuid4().hex


# --- Trades -----------------------------------------------------------------------------------


@retried
def trade_open(
    *, account_name: str, request: engine.Request, actor: str, authorize: Authorize = None, now: Optional[datetime] = None
) -> TradeOutcome:
    """A bot asks for a stake: open the trade now, queue it, or refuse it (SPEC §3–4)."""

    def load(at: Optional[datetime]) -> Loaded:
        return lock_and_load(at, account_name=account_name, trade_id=request.trade_id, authorize=authorize)

    try:
        with transaction.atomic():
            loaded = load(now)
            existing = loaded.rows.get(request.trade_id)
            if existing is not None:
                if existing.account_id != loaded.account.pk or not engine.same_request(engine_trade(existing), request):
                    raise engine.Conflict(f"trade_id {request.trade_id} already exists with other fields")
                loaded, _ = _open_trades(loaded, load, engine.serve_queue, "serving the queue")
                _save(loaded, actor)
                return _outcome(loaded, request.trade_id, created=False, changed=False)
            loaded, _ = _open_trades(
                loaded, load, lambda s, at: engine.request_trade(s, request, at), "a trade request"
            )
            _save(loaded, actor)
            return _outcome(loaded, request.trade_id, created=True)
    except IntegrityError:
        # Another account's request took this trade_id between our read and our insert.
        if Trade.objects.filter(trade_id=request.trade_id).exists():
            raise engine.Conflict(f"trade_id {request.trade_id} already exists with other fields") from None
        raise


@retried
def trade_settle(
    *,
    trade_id: str,
    result: str,
    payout: Optional[Decimal] = None,
    actor: str,
    by_hand: bool = False,
    authorize: Authorize = None,
    now: Optional[datetime] = None,
) -> TradeOutcome:
    """A bot reports win, loss or draw, or a person enters it (``by_hand``); the lanes move on (SPEC §5)."""
    with transaction.atomic():
        loaded = lock_and_load(now, trade_id=trade_id, authorize=authorize)
        changed = _change(
            loaded,
            lambda s, at: engine.settle_trade(s, trade_id, result, payout, at, _new_lane_id, by_hand=by_hand),
            f"the result of trade {trade_id}",
        )
        _save(loaded, actor)
        return _outcome(loaded, trade_id, changed=changed)


@retried
def trade_cancel(*, trade_id: str, actor: str, authorize: Authorize = None, now: Optional[datetime] = None) -> TradeOutcome:
    with transaction.atomic():
        loaded = lock_and_load(now, trade_id=trade_id, authorize=authorize)
        changed = _change(loaded, lambda s, at: engine.cancel_trade(s, trade_id, at), f"cancelling trade {trade_id}")
        _save(loaded, actor)
        return _outcome(loaded, trade_id, changed=changed)


@retried
def trade_refresh(*, trade_id: str, actor: str, authorize: Authorize = None, now: Optional[datetime] = None) -> TradeOutcome:
    """Read one trade; touching the account serves its queue first (SPEC §3)."""

    def load(at: Optional[datetime]) -> Loaded:
        return lock_and_load(at, trade_id=trade_id, authorize=authorize)

    with transaction.atomic():
        loaded, _ = _open_trades(load(now), load, engine.serve_queue, "serving the queue")
        _save(loaded, actor)
        return _outcome(loaded, trade_id, changed=False)


@retried
def queue_serve(*, account_name: str, actor: str = "system", now: Optional[datetime] = None) -> int:
    """Serve one account's queue (expire, open); returns how many trades changed state."""

    def load(at: Optional[datetime]) -> Loaded:
        return lock_and_load(at, account_name=account_name)

    with transaction.atomic():
        loaded, _ = _open_trades(load(now), load, engine.serve_queue, "serving the queue")
        _save(loaded, actor)
        return len(loaded.state.dirty_trades)


# --- Lanes ------------------------------------------------------------------------------------


@retried
def lane_force_complete(
    *, lane_id: str, status: str = engine.COMPLETED, actor: str, authorize: Authorize = None, now: Optional[datetime] = None
) -> Lane:
    """End a lane by hand, as completed or cancelled (SPEC §7)."""
    if status not in engine.LANE_END_STATUSES:
        raise InvalidInput({"status": "must be completed or cancelled"})
    account_name = Lane.objects.filter(lane_id=lane_id).values_list("account_name", flat=True).first()
    if account_name is None or (authorize is not None and not authorize(account_name)):
        raise NotFound(f"lane {lane_id} not found")
    with transaction.atomic():
        loaded = lock_and_load(now, account_name=account_name, authorize=authorize)
        _change(loaded, lambda s, at: engine.complete_lane(s, lane_id, status, at), f"completing lane {lane_id}")
        return _save(loaded, actor)[lane_id]


@retried
def account_reset(
    *, account_name: str, status: str = engine.COMPLETED, actor: str, now: Optional[datetime] = None
) -> list[Lane]:
    """Complete every active lane of one account in one action (SPEC §7)."""
    if status not in engine.LANE_END_STATUSES:
        raise InvalidInput({"status": "must be completed or cancelled"})
    with transaction.atomic():
        loaded = lock_and_load(now, account_name=account_name)
        _change(loaded, lambda s, at: engine.complete_all_lanes(s, status, at), f"resetting account {account_name}")
        return list(_save(loaded, actor).values())


def account_emergency_stop(*, account_name: str, actor: str) -> TradingSettings:
    """Emergency stop = auto_create_lanes off (SPEC §7)."""
    return settings_update(account_name=account_name, actor=actor, values={"auto_create_lanes": False})


# --- Locks (SPEC §11) -----------------------------------------------------------------------------


def _new_id() -> str:
    return uuid.uuid4().hex


@retried
def account_lock(
    *, account_name: str, minutes: Any, note: str = "", actor: str, authorize: Authorize = None,
    now: Optional[datetime] = None, from_text: bool = False,
) -> AccountLock:
    """Pause an account by hand for ``minutes``: no new trade opens until it ends or is released."""
    minutes = clean(LOCK_MINUTES, minutes, "minutes", from_text=from_text)
    try:
        note = clean_note(note)
    except ValueError as exc:
        raise InvalidInput({"note": str(exc)}) from None
    with transaction.atomic():
        loaded = lock_and_load(now, account_name=account_name, authorize=authorize)
        lock = _change(
            loaded, lambda s, at: engine.lock_account(s, minutes, note, at, _new_id()), f"locking account {account_name}"
        )
        _save(loaded, actor)
        return loaded.lock_rows[lock.lock_id]


@retried
def lock_release(
    *, lock_id: str, actor: str, authorize: Authorize = None, now: Optional[datetime] = None
) -> AccountLock:
    """End one lock at once (a lock already released or ended is answered as it is); the
    account's queue is served."""
    row = AccountLock.objects.select_related("account").filter(lock_id=lock_id).first()
    if row is None or (authorize is not None and not authorize(row.account.worker_name)):
        raise NotFound(f"lock {lock_id} not found")
    with transaction.atomic():
        loaded = lock_and_load(now, account_name=row.account.worker_name, authorize=authorize)
        _change(
            loaded, lambda s, at: engine.release_locks(s, at, actor, lock_id=lock_id), f"releasing lock {lock_id}"
        )
        _save(loaded, actor)
        return loaded.lock_rows.get(lock_id) or AccountLock.objects.select_related("account").get(lock_id=lock_id)


@retried
def account_unlock(*, account_name: str, actor: str, now: Optional[datetime] = None) -> list[AccountLock]:
    """End every active lock of an account at once; the queue is served."""
    with transaction.atomic():
        loaded = lock_and_load(now, account_name=account_name)
        released = _change(loaded, lambda s, at: engine.release_locks(s, at, actor), f"unlocking account {account_name}")
        _save(loaded, actor)
        return [loaded.lock_rows[lock.lock_id] for lock in released]


# --- Settings and accounts ---------------------------------------------------------------------


@dataclass
class ConfigChange:
    """What a change of configuration did, and what the person who made it should know."""

    account: Account
    settings: Optional[TradingSettings]
    completed_lanes: list[Lane]
    warnings: list[dict[str, Any]]


def idle_lanes_warning(account: engine.Account, active_lanes: int) -> Optional[dict[str, Any]]:
    """The warning for active lanes that an account's mode gives no trades (None when they trade)."""
    if not active_lanes or engine.lanes_take_trades(account):
        return None
    why = "martingale is off" if not account.martingale_enabled else "the account is in legacy mode"
    return {
        "code": "lanes_take_no_trades",
        "active_lanes": active_lanes,
        "message": (
            f"{active_lanes} active lane(s) of {account.name} take no trades while {why}: they stay as they "
            "are until switched back; complete them to close them now"
        ),
    }


@retried
def account_configure(
    *,
    account_name: str,
    account_values: Optional[dict] = None,
    settings_values: Optional[dict] = None,
    actor: str,
    from_text: bool = False,
    complete_active_lanes: bool = False,
    now: Optional[datetime] = None,
) -> ConfigChange:
    """Change an account's own settings and its trading settings together, in one transaction
    under the account's lock, so no trade opens between the two; optionally complete its active
    lanes in the same change. Nothing changes unless every value is valid."""
    account_values = clean_account_fields(account_values or {}, from_text=from_text)
    settings_values = clean_trading_settings(settings_values or {}, from_text=from_text)
    with transaction.atomic():
        loaded = lock_and_load(now, account_name=account_name)
        account = loaded.account
        for name, value in account_values.items():
            setattr(account, name, value)
        current = loaded.state.settings
        check_stake_fits(
            account.base_amount, account.martingale_multiplier, account.martingale_max_level, account.payout_rate,
            ladder_mode=settings_values.get("ladder_mode", current.ladder_mode),
            max_stake=settings_values["max_stake"] if "max_stake" in settings_values else current.max_stake,
        )
        if account_values:
            account.save(update_fields=[*account_values, "last_updated"])
        row = None
        if settings_values:
            row, _ = TradingSettings.objects.get_or_create(account_name=account_name)
            for name, value in settings_values.items():
                setattr(row, name, value)
            row.save()
        completed: list[Lane] = []
        if complete_active_lanes:
            # Read again: the queue this serves follows the settings just saved, not the old ones.
            loaded = lock_and_load(loaded.now, account_name=account_name)
            _change(loaded, lambda s, at: engine.complete_all_lanes(s, engine.COMPLETED, at), f"resetting account {account_name}")
            completed = list(_save(loaded, actor).values())
        changed = {**account_values, **settings_values}
        if changed:
            transaction.on_commit(lambda: logger.info("settings changed account=%s by=%s %s", account_name, actor, changed))
        remaining = len(loaded.state.active_lanes())
        warning = idle_lanes_warning(engine_account(account), remaining)
        return ConfigChange(account, row, completed, [warning] if warning else [])


def settings_update(*, account_name: str, values: dict, actor: str, from_text: bool = False) -> TradingSettings:
    """Validate and save any of the trading settings (SPEC §2, §11); the row is created on first write."""
    change = account_configure(account_name=account_name, settings_values=values, actor=actor, from_text=from_text)
    return change.settings or TradingSettings.objects.get(account_name=account_name)


@retried
def account_create(*, name: str, values: dict, from_text: bool = False) -> Account:
    name = clean_account_name(name, field="name")
    cleaned = clean_account_fields(values, from_text=from_text)
    account = Account(worker_name=name, **cleaned)
    check_stake_fits(account.base_amount, account.martingale_multiplier, account.martingale_max_level, account.payout_rate)
    try:
        with transaction.atomic():
            account.save(force_insert=True)
    except IntegrityError:
        raise InvalidInput({"name": f"account {name} already exists"}) from None
    return account


def account_update(
    *, name: str, values: dict, actor: str = "system", from_text: bool = False, complete_active_lanes: bool = False
) -> ConfigChange:
    return account_configure(
        account_name=name, account_values=values, actor=actor, from_text=from_text, complete_active_lanes=complete_active_lanes
    )


# --- Tokens -----------------------------------------------------------------------------------


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_create(*, name: str, account_names: Iterable[str] = ()) -> tuple[ApiToken, str]:
    """A new bearer token; no account names = every account. The raw token is returned once."""
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
        raise InvalidInput({"name": f"a token named {name} already exists"}) from None
    return token, raw


TOKEN_FIELDS = tuple(field.attname for field in ApiToken._meta.concrete_fields)
# Every bot call looks its token up: compiled once (building the ORM query cost ten times running it).
TOKEN_BY_HASH = PreparedValues(
    lambda token_hash: ApiToken.objects.filter(token_hash=token_hash, revoked_at__isnull=True).values(*TOKEN_FIELDS)[:1],
    texts=("token_hash",),
)


def token_for(raw: str) -> Optional[ApiToken]:
    """The unrevoked token whose hash is ``raw``'s, or None."""
    rows = TOKEN_BY_HASH.run(token_hash=token_hash(raw))
    if not rows:
        return None
    return ApiToken.from_db("default", TOKEN_FIELDS, [rows[0][name] for name in TOKEN_FIELDS])
