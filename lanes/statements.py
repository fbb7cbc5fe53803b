"""ORM statements compiled once per process and database, for the bot's hot path.

Building and compiling the locking query of ``services`` costs more than running it. A
``PreparedValues`` builds its ``.values()`` queryset once with sentinel arguments, keeps the SQL
and Django's compiler, and later runs the same SQL with the real arguments in the sentinels'
places, converting rows with the compiler's own converters. The SQL is Django's, so it stays
portable; only the arguments change between calls.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone as dt_timezone
from typing import Any, Callable

from django.db import DatabaseError, connections
from django.db.models import QuerySet

SENTINEL_TEXT = "\x1fsentinel:{}\x1f"
SENTINEL_INT = 2_137_483_011  # + the argument's position: within INT, and no real query compares with it
SENTINEL_TIME = datetime(1999, 12, 31, 23, 59, 58, 123457, tzinfo=dt_timezone.utc)


def _adapt(connection, value: Any) -> Any:
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


class PreparedValues:
    def __init__(
        self,
        build: Callable[..., QuerySet],
        *,
        texts: tuple[str, ...] = (),
        times: tuple[str, ...] = (),
        ints: tuple[str, ...] = (),
    ):
        self._build = build
        self._sentinels: dict[str, Any] = {name: SENTINEL_TEXT.format(name) for name in texts}
        self._sentinels.update({name: SENTINEL_INT + i for i, name in enumerate(ints)})
        self._sentinels.update({name: SENTINEL_TIME.replace(microsecond=i + 1) for i, name in enumerate(times)})
        self._compiled: dict[tuple[str, str], tuple] = {}
        self._lock = threading.Lock()

    def _compile(self, using: str):
        connection = connections[using]
        key = (using, connection.vendor)
        if key not in self._compiled:
            with self._lock:
                queryset = self._build(**self._sentinels)
                compiler = queryset.query.get_compiler(using=using)
                sql, params = compiler.as_sql()
                slots = {}
                for name, sentinel in self._sentinels.items():
                    adapted = _adapt(connection, sentinel)
                    places = [i for i, param in enumerate(params) if param == adapted]
                    if not places:
                        raise LookupError(f"argument {name} does not reach the SQL of {self._build.__name__}")
                    slots.update(dict.fromkeys(places, name))
                query = queryset.query
                names = list(query.selected or [*query.extra_select, *query.values_select, *query.annotation_select])
                # The columns' converters, as results_iter would look them up on every call.
                converters = compiler.get_converters([column[0] for column in compiler.select[: compiler.col_count]])
                self._compiled[key] = (compiler, converters, sql, tuple(params), slots, names)
        return self._compiled[key]

    def run(self, using: str = "default", **arguments) -> list[dict[str, Any]]:
        compiler, converters, sql, params, slots, names = self._compile(using)
        connection = connections[using]
        params = list(params)
        for place, name in slots.items():
            params[place] = _adapt(connection, arguments[name])
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters:
            rows = compiler.apply_converters(rows, converters)
        return [dict(zip(names, row)) for row in rows]


class PreparedRowWrites:
    """The INSERT (every concrete column but an auto primary key) and the UPDATE by primary key
    (``update_fields``) of one model, their SQL built once per database: what ``Model.save``
    sends, without its per-call field walking, signals and query building (a third of the bot
    API's app time, profiled with bench/api_profile.py). Values go through each field's
    ``get_db_prep_save``, as ``save`` does. Only for models without auto_now fields or save
    signals (Lane, Trade)."""

    def __init__(self, model, update_fields: tuple[str, ...]):
        meta = model._meta
        self._pk = meta.pk
        self._insert_fields = [field for field in meta.concrete_fields if field is not meta.auto_field]
        self._update_fields = [meta.get_field(name) for name in update_fields]
        self._table = meta.db_table
        self._sql: dict[tuple[str, str], tuple[str, str]] = {}

    def _statements(self, connection) -> tuple[str, str]:
        key = (connection.alias, connection.vendor)
        if key not in self._sql:
            quote = connection.ops.quote_name
            columns = ", ".join(quote(field.column) for field in self._insert_fields)
            places = ", ".join(["%s"] * len(self._insert_fields))
            sets = ", ".join(f"{quote(field.column)} = %s" for field in self._update_fields)
            self._sql[key] = (
                f"INSERT INTO {quote(self._table)} ({columns}) VALUES ({places})",
                f"UPDATE {quote(self._table)} SET {sets} WHERE {quote(self._pk.column)} = %s" if sets else "",
            )
        return self._sql[key]

    def insert(self, obj, using: str = "default") -> None:
        connection = connections[using]
        sql, _ = self._statements(connection)
        params = [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in self._insert_fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            obj.pk = connection.ops.last_insert_id(cursor, self._table, self._pk.column)
        obj._state.adding, obj._state.db = False, using

    def insert_all(self, objs: list, using: str = "default") -> None:
        """One multi-row INSERT of ``objs``, whose primary keys are not read back."""
        if not objs:
            return
        connection = connections[using]
        sql, _ = self._statements(connection)
        head, _, places = sql.rpartition(" VALUES ")
        params = [field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in objs for field in self._insert_fields]
        with connection.cursor() as cursor:
            cursor.execute(f"{head} VALUES {', '.join([places] * len(objs))}", params)

    def update(self, obj, using: str = "default") -> None:
        connection = connections[using]
        _, sql = self._statements(connection)
        params = [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in self._update_fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, self._pk.get_db_prep_save(obj.pk, connection)])
            if cursor.rowcount == 0:  # as save(update_fields=...): the row must be there
                raise DatabaseError(f"{self._table}: no row {obj.pk} to update")
        obj._state.adding, obj._state.db = False, using
