"""What a change reads of its account, under the account's lock (SPEC §10), in two statements.

1. ``SELECT … FOR UPDATE`` of the account row (with its settings row) and the database's clock
   (``SYSDATE``, not ``NOW``, which is the time the statement began, before it waited). Given a
   trade id, the account is found by a subquery on the trade, so the lock comes first.
2. Once the lock is granted, one plain ``UNION ALL`` of rows (``_state_sql``): the account's
   queued and open trades, the trade the call names, its active lanes, one row per lane created
   since the start of its day (the daily limit), its latest opening, its active locks (SPEC §11)
   and, while a circuit breaker is on, today's settled profit and the lanes exhausted within the
   breaker's window, aligned on shared columns (``STATE_COLUMNS``). Plain reads lock nothing (a join to the trades did, through an index
   covering every account's open trades, and deadlocked one account with another), and under
   READ COMMITTED they see every change committed before the lock was granted
   (tests/lanes/test_loading.py holds MariaDB to both).

An earlier version read the state inside the locking statement as JSON arrays built by
correlated subqueries: MariaDB's ANALYZE FORMAT=JSON showed 0.5–0.7 ms of query optimisation per
call for them against 0.02–0.07 ms for the plain rows, and its OR conditions used an index merge
over every account's open trades.

On SQLite, which has no row locks, the IMMEDIATE transaction serialises writers and the clock is
the process's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from typing import Any, Callable, Optional

from django.db import connections
from django.db.models import AutoField, DateTimeField, DecimalField, Func, IntegerField, Q, Subquery
from django.utils import timezone

from . import engine
from .adapters import SETTINGS_FIELDS, TRADE_FIELDS, engine_account, engine_lane_of, engine_trade
from .fields import JSONListTextField
from .models import Account, AccountLock, Lane, Trade
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


def today_end(now: datetime) -> datetime:
    """The next midnight after ``now`` in the project's TIME_ZONE (a daily breaker's lock ends then)."""
    return today_start(now) + timedelta(days=1)  # wall-clock arithmetic: the zone gives the offset


class LockedNow(Func):
    """The database's clock when the row's lock is granted: SYSDATE, not NOW, which is the time
    the statement began, before it waited for the lock. The connection's time zone is UTC
    (settings). NULL on SQLite: the process's clock is used."""

    template = "NULL"
    output_field = DateTimeField()

    def as_mysql(self, compiler, connection, **extra_context):
        return "SYSDATE(6)", []


TRADE_MODEL_FIELDS = {name: Trade._meta.get_field(name) for name in TRADE_COLUMNS}
LIVE_SQL = ", ".join(f"'{status}'" for status in engine.LIVE)


def _locked_account(accounts: Q):
    """The locking statement: the account, its settings and the database's clock. It reads
    nothing else: under READ COMMITTED a consistent read in it would be made before the lock wait,
    so the account's state is read by the next statement (``STATE_ROWS``), which sees every change
    committed before the lock was granted."""
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
# By one of its trades: the trade's account (which never changes) is a subquery, a read that locks
# nothing, so no trade row is locked before its account.
LOCK_BY_TRADE = PreparedValues(
    lambda trade_id: _locked_account(Q(pk=Subquery(Trade.objects.filter(trade_id=trade_id).values("account_id")[:1]))),
    texts=("trade_id",),
)


def _converter(model_field) -> Callable[[Any], Any]:
    """How a value read by ``STATE_ROWS`` becomes what the model field holds, whatever type the
    union of trades and lanes gave its column (on SQLite, whatever the row holds)."""
    if isinstance(model_field, DecimalField):
        places = Decimal(1).scaleb(-model_field.decimal_places)
        return lambda value: Decimal(str(value)).quantize(places)
    if isinstance(model_field, DateTimeField):
        return _datetime
    if isinstance(model_field, JSONListTextField):
        return model_field.to_python
    if isinstance(model_field, (IntegerField, AutoField)):
        return int
    return str


def _datetime(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace(" ", "T"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt_timezone.utc)


# The account's state, read after the lock as plain rows of one statement: its live trades ("t"),
# the trade the call names ("t"), its active lanes ("l"), one row per lane created today ("c", the
# daily limit; the day of the database's clock under the lock) and its latest opening ("o", the
# cool-down). Trades and lanes share columns of like types; each part is one plain condition on
# one index.
STATE_COLUMNS = [  # (a trade's field, a lane's field)
    ("id", "id"), ("requested_by", "lane_id"), ("trade_id", "account_name"), ("symbol", "symbol"),
    ("direction", "status"), ("status", "outcome"), ("kind", None), ("lane_id", None), ("level", "current_level"),
    ("amount", "base_amount"), ("requested_payout", "current_amount"), ("expected_payout", "multiplier"),
    ("payout", "total_invested"), ("profit", "total_potential_payout"), ("max_wait_seconds", "max_level"),
    ("requested_at", "created_at"), ("opened_at", "updated_at"), ("settled_at", "completed_at"),
    ("expires_at", "last_assigned_at"), (None, "trade_ids"), (None, "ladder_mode"), (None, "payout_rate"),
    (None, "net_profit"),
]
TIME_COLUMN = 1 + [pair[0] for pair in STATE_COLUMNS].index("requested_at")  # where "c" and "o" put theirs


def _position(name: str) -> int:
    """Where a trade's (else a lane's) field is in a state row."""
    trade_names = [pair[0] for pair in STATE_COLUMNS]
    return 1 + (trade_names.index(name) if name in trade_names else [pair[1] for pair in STATE_COLUMNS].index(name))


# A lock ("k") in the columns of like types: lock_id where a lane_id goes, reason where a symbol,
# created_at and locked_until where the times, the note in the text column.
LOCK_COLUMNS = {
    "id": _position("id"), "lock_id": _position("requested_by"), "reason": _position("symbol"),
    "created_at": _position("requested_at"), "locked_until": _position("opened_at"), "note": _position("trade_ids"),
}
PROFIT_COLUMN = _position("profit")  # today's settled profit ("p")
COUNT_COLUMN = _position("level")  # lanes exhausted within the window ("x")
TRADE_CONVERTERS = [
    (i, name, _converter(Trade._meta.get_field(name))) for i, (name, _) in enumerate(STATE_COLUMNS, 1) if name
]
LANE_CONVERTERS = [
    (i, Lane._meta.get_field(name).attname, _converter(Lane._meta.get_field(name)))
    for i, (_, name) in enumerate(STATE_COLUMNS, 1)
    if name
]
assert {name for _, name, _ in TRADE_CONVERTERS} == set(TRADE_COLUMNS)
assert {name for _, name, _ in LANE_CONVERTERS} == {f.attname for f in LANE_FIELDS}


def _state_sql(connection, named: bool, breakers: bool) -> str:
    quote = connection.ops.quote_name
    trades, lanes = quote(Trade._meta.db_table), quote(Lane._meta.db_table)
    locks = quote(AccountLock._meta.db_table)

    def select(tag: str, table: str, columns: list[str], where: str) -> str:
        return f"SELECT '{tag}', {', '.join(columns)} FROM {table} WHERE {where}"

    def side(model, index: int) -> list[str]:
        return [quote(model._meta.get_field(pair[index]).column) if pair[index] else "NULL" for pair in STATE_COLUMNS]

    def one_time(expression: str) -> list[str]:
        return placed({TIME_COLUMN: expression})

    def placed(columns: dict[int, str]) -> list[str]:
        return [columns.get(i, "NULL") for i in range(1, len(STATE_COLUMNS) + 1)]

    lock_columns = placed({place: quote(AccountLock._meta.get_field(name).column) for name, place in LOCK_COLUMNS.items()})

    parts = [select("t", trades, side(Trade, 0), f"account_id = %s AND status IN ({LIVE_SQL})")]
    if named:
        parts.append(select("t", trades, side(Trade, 0), "trade_id = %s AND account_id = %s"))
    parts += [
        select("l", lanes, side(Lane, 1), f"account_name = %s AND status = '{engine.ACTIVE}'"),
        select("c", lanes, ["NULL"] * len(STATE_COLUMNS), "account_name = %s AND created_at >= %s"),
        select("o", trades, one_time("MAX(opened_at)"), "account_id = %s"),
        select("k", locks, lock_columns, "account_id = %s AND released_at IS NULL AND locked_until > %s"),
    ]
    if breakers:
        parts += [
            select("p", trades, placed({PROFIT_COLUMN: "SUM(profit)"}), "account_id = %s AND settled_at >= %s"),
            select(
                "x", lanes, placed({COUNT_COLUMN: "COUNT(*)"}),
                f"account_name = %s AND outcome = '{engine.EXHAUSTED}' AND completed_at >= %s",
            ),
        ]
    return " UNION ALL ".join(parts)


_STATE_SQL: dict[tuple[str, bool, bool], str] = {}


@dataclass
class _State:
    trades: list[Trade]
    lanes: list[engine.Lane]
    created_today: int
    last_open: Optional[datetime]
    locks: list[engine.Lock] = field(default_factory=list)
    profit_today: Decimal = engine.ZERO
    exhausted_in_window: int = 0


def _state_rows(
    account: Account, trade_id: Optional[str], today: datetime, now: datetime, settings: engine.Settings
) -> _State:
    connection = connections[Account.objects.db]
    breakers = settings.breakers_on
    key = (connection.vendor, trade_id is not None, breakers)
    sql = _STATE_SQL.get(key) or _STATE_SQL.setdefault(key, _state_sql(connection, trade_id is not None, breakers))
    adapt = connection.ops.adapt_datetimefield_value
    params = [
        account.pk,
        *((trade_id, account.pk) if trade_id is not None else ()),
        account.worker_name,
        account.worker_name,
        adapt(today),
        account.pk,
        account.pk,
        adapt(now),
    ]
    if breakers:
        window_start = now - timedelta(hours=settings.exhausted_window_hours)
        params += [account.pk, adapt(today), account.worker_name, adapt(window_start)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    state = _State([], [], 0, None)
    seen = set()
    for row in rows:
        tag = row[0]
        if tag == "t":
            values = {name: None if row[i] is None else convert(row[i]) for i, name, convert in TRADE_CONVERTERS}
            if values["trade_id"] not in seen:  # the named trade is also live
                seen.add(values["trade_id"])
                state.trades.append(Trade(account=account, **values))
        elif tag == "l":
            state.lanes.append(engine_lane_of({name: None if row[i] is None else convert(row[i]) for i, name, convert in LANE_CONVERTERS}))
        elif tag == "c":
            state.created_today += 1
        elif tag == "k":
            state.locks.append(
                engine.Lock(
                    lock_id=row[LOCK_COLUMNS["lock_id"]],
                    reason=row[LOCK_COLUMNS["reason"]],
                    created_at=_datetime(row[LOCK_COLUMNS["created_at"]]),
                    locked_until=_datetime(row[LOCK_COLUMNS["locked_until"]]),
                    note=row[LOCK_COLUMNS["note"]] or "",
                    pk=int(row[LOCK_COLUMNS["id"]]),
                )
            )
        elif tag == "p":
            if row[PROFIT_COLUMN] is not None:
                state.profit_today = Decimal(str(row[PROFIT_COLUMN])).quantize(engine.CENT)
        elif tag == "x":
            state.exhausted_in_window = int(row[COUNT_COLUMN] or 0)
        elif row[TIME_COLUMN] is not None:
            state.last_open = _datetime(row[TIME_COLUMN])
    return state


@dataclass
class Loaded:
    """An account's row and state, loaded under its lock, and the trade rows behind the state."""

    account: Account
    state: engine.AccountState
    rows: dict[str, Trade]
    now: datetime
    lane_rows: dict[str, Lane] = field(default_factory=dict)
    lock_rows: dict[str, AccountLock] = field(default_factory=dict)


def lock_and_load(
    now: Optional[datetime], *, account_name: Optional[str] = None, trade_id: Optional[str] = None,
    authorize: Authorize = None,
) -> Loaded:
    """Lock one account row, by its name or by one of its trades, and load its state after the
    lock; the time of the change is the database's clock once the lock is held (unless ``now``
    is given), so times follow the order of the changes on every app server and the day is the
    day of the change. A trade of an account outside ``authorize`` is answered as unknown."""
    if account_name is None:
        locked = LOCK_BY_TRADE.run(trade_id=trade_id)
    else:
        locked = LOCK_BY_NAME.run(name=account_name)
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
    read = _state_rows(account, trade_id, today, now, settings)
    trades = read.trades
    state = engine.AccountState(
        account=engine_account(account),
        settings=settings,
        lanes={lane.lane_id: lane for lane in read.lanes},
        trades={trade.trade_id: engine_trade(trade) for trade in trades},
        last_open=read.last_open,
        lanes_created_today=read.created_today,
        locks=read.locks,
        profit_today=read.profit_today,
        day_end=today_end(now),
        exhausted_in_window=read.exhausted_in_window,
    )
    return Loaded(account, state, {trade.trade_id: trade for trade in trades}, now)
