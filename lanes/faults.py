"""Database faults the service can name (SPEC §9, §10).

A transaction the database aborts (a deadlock, a lock wait timeout, a Galera cluster's
certification failure, which comes back as a deadlock) is retried a few times with jitter, then
refused with ``DatabaseBusy`` (HTTP 503 ``database_busy``). So is a statement that met a trigger the
server failed to load, once the server's cached copies of the tables are cleared (below). An unreachable database is
``DatabaseUnavailable`` (HTTP 503 ``database_unavailable``), logged once per outage rather than
with a traceback per request. Nothing is ever half-written: each attempt is one transaction.
"""
from __future__ import annotations

import functools
import logging
import random
import re
import time
from typing import Callable, Optional, TypeVar

from django.db import DatabaseError, InterfaceError, connection

logger = logging.getLogger("lanes.faults")

ATTEMPTS = 8
BACKOFF_SECONDS = 0.02  # the first retry waits up to this, each next one twice as long, at most
BACKOFF_CAP_SECONDS = 0.5  # ... this: about 2 s in all before database_busy
BUSY, UNAVAILABLE = "busy", "unavailable"
# MySQL / MariaDB error codes.
ABORTED_CODES = {1205, 1213}  # lock wait timeout; deadlock (also Galera's certification failure)
UNREACHABLE_CODES = {1040, 1047, 1053, 1927, 2002, 2003, 2005, 2006, 2013, 2026, 2055, 4031}
# A MariaDB 10.11 Galera node under load keeps, now and then, a table instance whose triggers
# (lanes.summary, lanes.risk_blocks) failed to parse in its table cache: every statement that fires
# them fails with error 1064 "Unknown trigger has an error in its body: 'Query was empty'" although
# the trigger on disk is fine, on any connection, until the instance leaves the cache (seen to last
# the whole of a 30 s soak). Nothing was written (the transaction rolls back). ``clear_broken_triggers``
# evicts this server's instances of the tables with triggers (FLUSH LOCAL TABLES, which needs the
# RELOAD privilege) and the attempt is retried.
BROKEN_TRIGGER_CODE = 1064
BROKEN_TRIGGER = re.compile(r"trigger .*has an error in its body", re.IGNORECASE)
ACCESS_DENIED_CODES = {1227}  # ER_SPECIFIC_ACCESS_DENIED_ERROR (RELOAD)
FLUSH_EVERY_SECONDS = 1.0  # at most one flush a second per process
FLUSH_LOCK_WAIT_SECONDS = 5


class DatabaseFault(Exception):
    code = "database_unavailable"
    retry_after = 2


class DatabaseBusy(DatabaseFault):
    """The database aborted the transaction again and again (contention)."""

    code = "database_busy"
    retry_after = 1


class DatabaseUnavailable(DatabaseFault):
    """The database cannot be reached."""


def classify(exc: BaseException) -> Optional[str]:
    """``busy`` for an aborted transaction worth retrying, ``unavailable`` for an unreachable
    database, None for anything else (a bug, to be answered 500)."""
    if isinstance(exc, DatabaseFault):
        return BUSY if isinstance(exc, DatabaseBusy) else UNAVAILABLE
    if isinstance(exc, InterfaceError):
        return UNAVAILABLE
    if not isinstance(exc, DatabaseError):
        return None
    code = _code(exc)
    if code in ABORTED_CODES or broken_trigger(exc):
        return BUSY
    if code in UNREACHABLE_CODES:
        return UNAVAILABLE
    text = str(exc).lower()
    if "database is locked" in text or "database table is locked" in text:  # SQLite
        return BUSY
    if "unable to open database" in text or "disk i/o error" in text:
        return UNAVAILABLE
    return None


def _code(exc: BaseException) -> Optional[int]:
    args = getattr(exc.__cause__, "args", None) or getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def broken_trigger(exc: BaseException) -> bool:
    """The server could not load a trigger of a table this statement wrote (see BROKEN_TRIGGER)."""
    return _code(exc) == BROKEN_TRIGGER_CODE and BROKEN_TRIGGER.search(str(exc.__cause__ or exc)) is not None


class _Flushes:
    at: float = float("-inf")
    denied: bool = False


def clear_broken_triggers(connection=connection) -> None:
    """Evict this database server's cached instances of the tables that have triggers, so that the
    next statement loads their triggers again (see BROKEN_TRIGGER). ``FLUSH LOCAL TABLES``: this
    node only, not replicated; it waits at most FLUSH_LOCK_WAIT_SECONDS for statements using them.
    Without the RELOAD privilege it logs once how to grant it, and the retry takes a new connection."""
    now = time.monotonic()
    if connection.vendor != "mysql" or _Flushes.denied or now - _Flushes.at < FLUSH_EVERY_SECONDS:
        connection.close()
        return
    _Flushes.at = now
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
            )
            tables = ", ".join(connection.ops.quote_name(name) for (name,) in cursor.fetchall())
            cursor.execute("SELECT @@SESSION.lock_wait_timeout")
            (wait,) = cursor.fetchone()
            cursor.execute("SET SESSION lock_wait_timeout = %s", [FLUSH_LOCK_WAIT_SECONDS])
            try:
                cursor.execute(f"FLUSH LOCAL TABLES {tables}")
            finally:
                cursor.execute("SET SESSION lock_wait_timeout = %s", [wait])
        logger.warning("a trigger failed to load on this database server: flushed %s from its table cache", tables)
    except DatabaseError as error:
        if _code(error) in ACCESS_DENIED_CODES:
            _Flushes.denied = True
            logger.error(
                "a trigger failed to load on this database server and this user may not clear it: grant it "
                "RELOAD (README, Production), or run FLUSH TABLES on the server; retrying meanwhile"
            )
        else:
            logger.warning("could not flush the tables with triggers: %s", error)
        connection.close()


class _Outage:
    """When this process last found the database unreachable: one log line when it goes, one when it
    comes back."""

    since: Optional[float] = None

    @classmethod
    def down(cls, exc: BaseException) -> None:
        if cls.since is None:
            cls.since = time.monotonic()
            logger.error("database unreachable: %s: %s", type(exc).__name__, exc)

    @classmethod
    def up(cls) -> None:
        if cls.since is not None:
            logger.warning("database reachable again after %.1f s", time.monotonic() - cls.since)
            cls.since = None


def refused(exc: BaseException) -> DatabaseFault:
    """The fault to answer for a database error ``classify`` named (records an outage)."""
    if classify(exc) == UNAVAILABLE:
        _Outage.down(exc)
        return DatabaseUnavailable("the database cannot be reached; retry later")
    return DatabaseBusy("the database is busy; nothing was changed, retry later")


def reachable() -> None:
    """A database call succeeded: an outage, if there was one, is over."""
    _Outage.up()


F = TypeVar("F", bound=Callable)


def retried(function: F) -> F:
    """Run a service's transaction again when the database aborts it; raise ``DatabaseBusy``
    after ``ATTEMPTS`` tries and ``DatabaseUnavailable`` at once when it cannot be reached.

    Inside an outer transaction (a caller's ``atomic``) there is nothing to retry alone: the
    error goes to the caller.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if connection.in_atomic_block:
            return function(*args, **kwargs)
        for attempt in range(ATTEMPTS):
            try:
                answer = function(*args, **kwargs)
            except DatabaseError as exc:
                kind = classify(exc)
                if kind is None:
                    raise
                if kind == UNAVAILABLE:
                    connection.close_if_unusable_or_obsolete()
                    raise refused(exc) from exc
                if broken_trigger(exc):
                    clear_broken_triggers()
                if attempt == ATTEMPTS - 1:
                    logger.warning("%s: gave up after %d aborted attempts: %s", function.__name__, ATTEMPTS, exc)
                    raise refused(exc) from exc
                time.sleep(random.uniform(0, min(BACKOFF_SECONDS * 2**attempt, BACKOFF_CAP_SECONDS)))
            else:
                reachable()
                return answer

    return wrapper  # type: ignore[return-value]
