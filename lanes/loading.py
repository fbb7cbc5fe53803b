"""What a change reads of its account, under the account's lock (SPEC §10), in one statement.

``SELECT … FOR UPDATE`` of the account row (with its settings row) whose select list also reads,
once the lock is granted: the database's clock (``SYSDATE``, not ``NOW``, which is the time the
statement began, before it waited), the account's latest opening, its queued and open trades
(plus the trade the call names) and its active and recent lanes, the last two as JSON arrays built
by the database. Those correlated subqueries are plain reads: they lock nothing (a join to the
trades did, through an index covering every account's open trades, and deadlocked one account
with another), and under READ COMMITTED they see every change committed before the lock was
granted (tests/lanes/test_loading.py holds MariaDB to both).

On SQLite, which has no row locks, the IMMEDIATE transaction serialises writers and the clock is
the process's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from typing import Any, Callable, Optional

from django.db.models import DateTimeField, DecimalField, Expression, Func, Q, TextField
from django.utils import timezone

from . import engine
from .adapters import SETTINGS_FIELDS, TRADE_FIELDS, engine_account, engine_lane, engine_trade
from .fields import JSONListTextField
from .models import Account, Lane, Trade
from .statements import PreparedValues

ACCOUNT_FIELDS = [f.attname for f in Account._meta.concrete_fields]
TRADE_COLUMNS = ("id", "requested_by", *TRADE_FIELDS)
LANE_FIELDS = [f for f in Lane._meta.concrete_fields]

Authorize = Optional[Callable[[str], bool]]


class NotFound(Exception):
    """The named account, trade or lane does not exist (HTTP 404)."""


class Forbidden(Exception):
    """The caller may not act on this account (HTTP 403)."""


def today_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in the project's TIME_ZONE (the day of max_daily_lanes)."""
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


class LockedNow(Func):
    """The database's clock when the row's lock is granted: SYSDATE, not NOW, which is the time
    the statement began, before it waited for the lock. The connection's time zone is UTC
    (settings). NULL on SQLite: the process's clock is used."""

    template = "NULL"
    output_field = DateTimeField()

    def as_mysql(self, compiler, connection, **extra_context):
        return "SYSDATE(6)", []


class StateSQL(Expression):
    """A correlated subquery of the locking statement, written per database (``mysql``,
    ``sqlite``) with ``{accounts}`` for the locked table; ``params`` follow the SQL."""

    def __init__(self, mysql: str, sqlite: str, params=(), output_field=None):
        super().__init__(output_field=output_field or TextField())
        self.sql = {"mysql": mysql, "sqlite": sqlite}
        self.params = list(params)

    def as_sql(self, compiler, connection, **extra_context):
        table = connection.ops.quote_name(Account._meta.db_table)
        params = [connection.ops.adapt_datetimefield_value(p) if isinstance(p, datetime) else p for p in self.params]
        return "(" + self.sql[connection.vendor].format(accounts=table) + ")", params


def _json_rows(table: str, columns: list[str], where: str) -> tuple[str, str]:
    """The rows of ``table`` that ``where`` selects as a JSON array of objects (MySQL, SQLite)."""
    pairs = ", ".join(f"'{column}', {column}" for column in columns)
    return (
        f"SELECT JSON_ARRAYAGG(JSON_OBJECT({pairs})) FROM {table} WHERE {where}",
        f"SELECT json_group_array(json_object({pairs})) FROM {table} WHERE {where}",
    )


TRADE_MODEL_FIELDS = {name: Trade._meta.get_field(name) for name in TRADE_COLUMNS}
LIVE_SQL = ", ".join(f"'{status}'" for status in engine.LIVE)
# Lanes created since two days before the app server's clock hold every lane of the current
# TIME_ZONE day (at most 25 hours long) even from a server whose clock is a day off; lock_and_load
# counts today's exactly once it knows the time.
RECENT_HOURS = 48


def _locked_account(accounts: Q, since: datetime, trade_id=None):
    trades, lanes = Trade._meta.db_table, Lane._meta.db_table
    named = " OR trade_id = %s" if trade_id is not None else ""
    live = _json_rows(
        trades, [f.column for f in TRADE_MODEL_FIELDS.values()], f"account_id = {{accounts}}.id AND (status IN ({LIVE_SQL}){named})"
    )
    recent = _json_rows(
        lanes, [f.column for f in LANE_FIELDS],
        f"account_name = {{accounts}}.worker_name AND (status = '{engine.ACTIVE}' OR created_at >= %s)",
    )
    last_open = f"SELECT MAX(opened_at) FROM {trades} WHERE account_id = {{accounts}}.id"
    return (
        Account.objects.select_for_update()
        .filter(accounts)
        .annotate(
            db_now=LockedNow(),
            last_open=StateSQL(last_open, last_open, output_field=DateTimeField()),
            live=StateSQL(*live, [trade_id] if trade_id is not None else []),
            recent_lanes=StateSQL(*recent, [since]),
        )
        .values(
            *ACCOUNT_FIELDS,
            "db_now",
            "last_open",
            "live",
            "recent_lanes",
            "trading_settings__id",
            *(f"trading_settings__{name}" for name in SETTINGS_FIELDS),
        )
    )


LOCK_BY_NAME = PreparedValues(
    lambda name, since: _locked_account(Q(worker_name=name), since), texts=("name",), times=("since",)
)
LOCK_BY_NAME_AND_TRADE = PreparedValues(
    lambda name, trade_id, since: _locked_account(Q(worker_name=name), since, trade_id),
    texts=("name", "trade_id"),
    times=("since",),
)
# A trade's account is looked up first, by a statement of its own: a subquery in the locking
# statement's WHERE would be a consistent read made before the lock wait, and under READ COMMITTED
# the state subqueries would then share its stale snapshot (two workers settling one trade each saw
# it open). The trade's row is read without a lock, so it is never locked before its account.
LOCK_BY_ID_AND_TRADE = PreparedValues(
    lambda pk, trade_id, since: _locked_account(Q(pk=pk), since, trade_id),
    ints=("pk",),
    texts=("trade_id",),
    times=("since",),
)
ACCOUNT_OF_TRADE = PreparedValues(
    lambda trade_id: Trade.objects.filter(trade_id=trade_id).values("account_id"), texts=("trade_id",)
)


def _typed(model_field, value: Any) -> Any:
    """A value of a JSON object the database built, as the model field holds it."""
    if value is None:
        return None
    if isinstance(model_field, DecimalField):
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-model_field.decimal_places))
    if isinstance(model_field, DateTimeField):
        return _datetime(value)
    if isinstance(model_field, JSONListTextField):
        return model_field.to_python(value)
    return value


def _datetime(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace(" ", "T"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt_timezone.utc)


def _rows(account: Account, row: dict) -> tuple[list[Trade], list[Lane]]:
    trades = [
        Trade(account=account, **{name: _typed(f, item[f.column]) for name, f in TRADE_MODEL_FIELDS.items()})
        for item in json.loads(row["live"] or "[]", parse_float=Decimal)
    ]
    lanes = [
        Lane(**{f.attname: _typed(f, item[f.column]) for f in LANE_FIELDS})
        for item in json.loads(row["recent_lanes"] or "[]", parse_float=Decimal)
    ]
    return trades, lanes


@dataclass
class Loaded:
    """An account's row and state, loaded under its lock, and the trade rows behind the state."""

    account: Account
    state: engine.AccountState
    rows: dict[str, Trade]
    now: datetime
    lane_rows: dict[str, Lane] = field(default_factory=dict)


def lock_and_load(
    now: Optional[datetime], *, account_name: Optional[str] = None, trade_id: Optional[str] = None,
    authorize: Authorize = None,
) -> Loaded:
    """Lock one account row, by its name or by one of its trades, and load its state after the
    lock; the time of the change is the database's clock once the lock is held (unless ``now``
    is given), so times follow the order of the changes on every app server and the day is the
    day of the change. A trade of an account outside ``authorize`` is answered as unknown."""
    since = (now or timezone.now()) - timedelta(hours=RECENT_HOURS)
    if account_name is None:
        owner = ACCOUNT_OF_TRADE.run(trade_id=trade_id)
        locked = LOCK_BY_ID_AND_TRADE.run(pk=owner[0]["account_id"], trade_id=trade_id, since=since) if owner else []
    elif trade_id is None:
        locked = LOCK_BY_NAME.run(name=account_name, since=since)
    else:
        locked = LOCK_BY_NAME_AND_TRADE.run(name=account_name, trade_id=trade_id, since=since)
    if not locked:
        raise NotFound(f"account {account_name} not found" if account_name else f"trade {trade_id} not found")
    first = locked[0]
    account = Account(**{name: first[name] for name in ACCOUNT_FIELDS})
    if authorize is not None and not authorize(account.worker_name):
        if account_name is None:
            raise NotFound(f"trade {trade_id} not found")
        raise Forbidden(f"this token may not act on account {account.worker_name}")
    now = now or first["db_now"] or timezone.now()
    settings = (
        engine.Settings()
        if first["trading_settings__id"] is None
        else engine.Settings(**{name: first[f"trading_settings__{name}"] for name in SETTINGS_FIELDS})
    )
    today = today_start(now)
    trades, lanes = _rows(account, first)
    state = engine.AccountState(
        account=engine_account(account),
        settings=settings,
        lanes={lane.lane_id: engine_lane(lane) for lane in lanes if lane.status == engine.ACTIVE},
        trades={trade.trade_id: engine_trade(trade) for trade in trades},
        last_open=first["last_open"],
        lanes_created_today=sum(lane.created_at >= today for lane in lanes),
    )
    return Loaded(account, state, {trade.trade_id: trade for trade in trades}, now)
