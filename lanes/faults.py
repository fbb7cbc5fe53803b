"""Database faults the service can name (SPEC §9, §10).

A transaction the database aborts (a deadlock, a lock wait timeout, a Galera cluster's
certification failure, which comes back as a deadlock) is retried a few times with jitter, then
refused with ``DatabaseBusy`` (HTTP 503 ``database_busy``). So is a table whose trigger the server
failed to load (below), retried on a new connection. An unreachable database is
``DatabaseUnavailable`` (HTTP 503 ``database_unavailable``), logged once per outage rather than
with a traceback per request. Nothing is ever half-written: each attempt is one transaction.
"""
from __future__ import annotations

import functools
import logging
import random
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
# A MariaDB 10.11 Galera node, under load in the first seconds after a migration, has been seen to
# keep a table instance whose triggers (lanes.summary) failed to load in its table cache: statements
# that fire them fail with error 1064 "Unknown trigger has an error in its body: 'Query was empty'"
# although the trigger on disk is fine and other instances of the table work. Nothing was written
# (the transaction is rolled back); the instance goes from the cache within seconds. The attempt is
# retried on a new connection (another server thread, so maybe another table cache instance).
BROKEN_TRIGGER_CODE = 1064
BROKEN_TRIGGER_TEXT = "unknown trigger has an error in its body"


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
    args = getattr(exc.__cause__, "args", None) or exc.args
    code = args[0] if args and isinstance(args[0], int) else None
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


def broken_trigger(exc: BaseException) -> bool:
    """The server could not load a trigger of a table this statement wrote (see BROKEN_TRIGGER_TEXT)."""
    args = getattr(exc.__cause__, "args", None) or getattr(exc, "args", ())
    return bool(args) and args[0] == BROKEN_TRIGGER_CODE and BROKEN_TRIGGER_TEXT in str(args[-1]).lower()


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
                    logger.warning("%s: a table's trigger failed to load on this database server, retrying: %s",
                                   function.__name__, exc)
                    connection.close()
                if attempt == ATTEMPTS - 1:
                    logger.warning("%s: gave up after %d aborted attempts: %s", function.__name__, ATTEMPTS, exc)
                    raise refused(exc) from exc
                time.sleep(random.uniform(0, min(BACKOFF_SECONDS * 2**attempt, BACKOFF_CAP_SECONDS)))
            else:
                reachable()
                return answer

    return wrapper  # type: ignore[return-value]
