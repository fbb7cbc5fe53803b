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

from django.db import connections
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
                self._compiled[key] = (compiler, sql, tuple(params), slots, names)
        return self._compiled[key]

    def run(self, using: str = "default", **arguments) -> list[dict[str, Any]]:
        compiler, sql, params, slots, names = self._compile(using)
        connection = connections[using]
        params = list(params)
        for place, name in slots.items():
            params[place] = _adapt(connection, arguments[name])
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return [dict(zip(names, row)) for row in compiler.results_iter(results=[rows])]
