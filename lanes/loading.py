"""What a change reads of its account, under the account's lock (SPEC §10).

Two statements, whatever the history:

1. the lock: ``SELECT … FOR UPDATE`` of the account row alone (with its settings row), which also
   reads the database's clock once the lock is granted. Nothing else is read with a lock, so one
   account's change never locks another account's rows (a join to the trades did, through an
   index that covers every account's open trades, and deadlocked);
2. the state, a plain read that sees every committed change: the account's latest opening, its
   queued and open trades (plus the trade the call names) and its active lanes and the lanes it
   created today, as JSON arrays built by the database in one row.

On SQLite, which has no row locks, the IMMEDIATE transaction serialises writers and the clock is
the process's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal
from typing import Any, Callable, Optional

from django.db import connection
from django.db.models import DateTimeField, DecimalField, Func, Q, Subquery
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


def _locked_account(accounts: Q):
    return (
        Account.objects.select_for_update()
        .filter(accounts)
        .annotate(db_now=LockedNow())
        .values(
            *ACCOUNT_FIELDS,
            "db_now",
            "trading_settings__id",
            *(f"trading_settings__{name}" for name in SETTINGS_FIELDS),
        )
    )


LOCK_BY_NAME = PreparedValues(lambda name: _locked_account(Q(worker_name=name)), texts=("name",))
# "= (subquery)": the trade's row is read without a lock, so it is never locked before its account.
LOCK_BY_TRADE = PreparedValues(
    lambda trade_id: _locked_account(Q(pk=Subquery(Trade.objects.filter(trade_id=trade_id).values("account_id")[:1]))),
    texts=("trade_id",),
)


# --- The state, as JSON built by the database ----------------------------------------------------


def _json_rows(vendor: str, table: str, columns: list[str], where: str) -> str:
    pairs = ", ".join(f"'{column}', {column}" for column in columns)
    if vendor == "mysql":
        return f"(SELECT JSON_ARRAYAGG(JSON_OBJECT({pairs})) FROM {table} WHERE {where})"
    return f"(SELECT json_group_array(json_object({pairs})) FROM {table} WHERE {where})"


def _state_sql(vendor: str) -> str:
    """Parameters: account id, account id, trade_id (or NULL), account name, start of today."""
    trade_columns = [Trade._meta.get_field(name).column for name in TRADE_COLUMNS]
    lane_columns = [f.column for f in LANE_FIELDS]
    live = ", ".join(f"'{status}'" for status in engine.LIVE)
    trades = _json_rows(
        vendor, Trade._meta.db_table, trade_columns, f"account_id = %s AND (status IN ({live}) OR trade_id = %s)"
    )
    lanes = _json_rows(
        vendor, Lane._meta.db_table, lane_columns, f"account_name = %s AND (status = '{engine.ACTIVE}' OR created_at >= %s)"
    )
    last_open = f"(SELECT MAX(opened_at) FROM {Trade._meta.db_table} WHERE account_id = %s)"
    return f"SELECT {last_open}, {trades}, {lanes}"


_STATE_SQL: dict[str, str] = {}


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
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace(" ", "T"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt_timezone.utc)


def _read_state(account: Account, trade_id: Optional[str], today: datetime):
    vendor = connection.vendor
    sql = _STATE_SQL.get(vendor) or _STATE_SQL.setdefault(vendor, _state_sql(vendor))
    params = [account.pk, account.pk, trade_id, account.worker_name, connection.ops.adapt_datetimefield_value(today)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        last_open, trades_json, lanes_json = cursor.fetchone()
    trade_fields = {name: Trade._meta.get_field(name) for name in TRADE_COLUMNS}
    trades = [
        Trade(account=account, **{name: _typed(trade_fields[name], row[trade_fields[name].column]) for name in TRADE_COLUMNS})
        for row in json.loads(trades_json or "[]", parse_float=Decimal)
    ]
    lanes = [
        Lane(**{f.attname: _typed(f, row[f.column]) for f in LANE_FIELDS})
        for row in json.loads(lanes_json or "[]", parse_float=Decimal)
    ]
    return (None if last_open is None else _datetime(last_open)), trades, lanes


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
    locked = LOCK_BY_TRADE.run(trade_id=trade_id) if account_name is None else LOCK_BY_NAME.run(name=account_name)
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
    last_open, trades, lanes = _read_state(account, trade_id, today)
    state = engine.AccountState(
        account=engine_account(account),
        settings=settings,
        lanes={lane.lane_id: engine_lane(lane) for lane in lanes if lane.status == engine.ACTIVE},
        trades={trade.trade_id: engine_trade(trade) for trade in trades},
        last_open=last_open,
        lanes_created_today=sum(lane.created_at >= today for lane in lanes),
    )
    return Loaded(account, state, {trade.trade_id: trade for trade in trades}, now)
