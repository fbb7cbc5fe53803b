"""Running totals for the statistics (SPEC §9), kept up to date by the database itself.

The statistics of every account over ``days`` × 24 hours used to read every trade opened and
every lane created in the window (a million trades: half a second for 30 days, seconds for 365).
They now read totals per UTC quarter-hour, hour and day, plus the few rows at the window's two
ends, and come out the same to the cent.

**Writes.** The write path has no statement to spare (tests/lanes/test_query_budget.py), so
database triggers on ``martingale_trades`` and ``martingale_lanes`` (AFTER INSERT, AFTER UPDATE)
append to ``martingale_stats_changes`` (``StatsChange``), in the transaction of the change, what
it did to the totals: the row's old contribution taken away, its new one added. A contribution
is keyed by the quarter-hour of the row's time (``opened_at``: a queued trade has none and counts
nowhere; a lane's ``created_at``), its level, symbol, status and outcome, and carries a count and
the money in cents (a trade's profit; a lane's total_invested and total_potential_payout), so
sums are exact integers on every database. Only rows are appended: two accounts' changes never
touch a common row, so the triggers add no lock wait, no deadlock and no Galera certification
conflict between accounts (a shared running total would be such a row for every change).

**Roll-up.** ``roll_up_all`` (meant for a beat task, every minute) moves the changes into
``martingale_stats_buckets`` (``StatsBucket``): per kind ("t" trades, "l" lanes), per breakdown
(``dim`` "s" by status and outcome, "l" also by level, "y" also by symbol) and per width (900,
3,600 and 86,400 seconds, UTC-aligned), in transactions that each delete exactly the changes they
added (read under ``FOR UPDATE``). Only the roll-up writes the buckets. Until it runs, the
changes are read as they are (exact, a little slower); a statistics read that meets more than
``ROLL_UP_AT`` of them rolls them up itself (``roll_up_if_behind``), so the backlog stays bounded
even without the beat task.

**Reads.** ``read`` answers, in one statement (so a roll-up never counts twice or not at all),
the buckets inside the window plus the changes not rolled up yet. Local midnights fall on
quarter-hours in every zone in use today (whole, half and 45-minute offsets; ``plan`` checks it
and the caller reads the raw rows otherwise), so the window's days are made of whole buckets;
only the part of the window before its first quarter-hour and after its last is read from the
trades and lanes themselves.

Rows are never deleted (there is no DELETE trigger: ``rebuild`` recomputes everything after a
hand-made deletion). On SQLite a migration that rebuilds one of the two tables drops their
triggers with it: run ``install_triggers`` and ``rebuild`` after it
(tests/lanes/test_stats_summary.py checks the triggers exist after every migration).
"""
from __future__ import annotations

import calendar
import logging
from bisect import bisect_right
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal
from typing import Iterable, Iterator, Optional

from django.db import DatabaseError, connection as default_connection, transaction

logger = logging.getLogger("lanes.summary")

QUARTER, HOUR, DAY = 900, 3600, 86400
WIDTHS = (DAY, HOUR, QUARTER)  # largest first
DIMS = ("s", "l", "y")
TRADE, LANE = "t", "l"
NO_LEVEL, NONE = -1, ""
CHANGES = "martingale_stats_changes"
BUCKETS = "martingale_stats_buckets"
KEY = ("kind", "dim", "width", "slot", "level", "symbol", "status", "outcome")
ROLL_UP_BATCH = 20_000
ROLL_UP_AT = 5_000  # a read that meets more changes than this rolls them up (roll_up_if_behind)

# Per kind: its table, and the columns of its time, level, symbol, status, outcome and money.
SOURCES = {
    TRADE: {
        "table": "martingale_trades", "time": "opened_at", "level": "level", "symbol": "symbol",
        "status": "status", "outcome": None, "amount": "profit", "payout": None,
    },
    LANE: {
        "table": "martingale_lanes", "time": "created_at", "level": "current_level", "symbol": "symbol",
        "status": "status", "outcome": "outcome", "amount": "total_invested", "payout": "total_potential_payout",
    },
}
TRIGGERS = [f"martingale_stats_{name}_{event}" for name in ("trade", "lane") for event in ("insert", "update")]


# --- SQL shared by the triggers and the rebuild ----------------------------------------------------


def _slot_sql(vendor: str, column: str) -> str:
    """The start of the UTC quarter-hour of a time, in epoch seconds (the session is in UTC).

    SQLite's date functions round to the millisecond (10:14:59.9999 would be 10:15): the
    fraction of the stored text ('YYYY-MM-DD HH:MM:SS[.ffffff]', UTC) is cut off first."""
    if vendor == "mysql":
        return f"(TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {column}) DIV {QUARTER} * {QUARTER})"
    return f"(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) / {QUARTER} * {QUARTER})"


def _cents_sql(vendor: str, column: Optional[str]) -> str:
    if column is None:
        return "0"
    return f"CAST(ROUND(COALESCE({column}, 0) * 100) AS {'SIGNED' if vendor == 'mysql' else 'INTEGER'})"


def _values_sql(vendor: str, kind: str, row: str, sign: str = "") -> list[str]:
    """kind, slot, level, symbol, status, outcome, n, amount, payout of row ``row`` (NEW, OLD or
    a table alias) as SQL expressions; ``sign`` "-" takes the contribution away."""
    source = SOURCES[kind]

    def col(name):
        return f"{row}.{source[name]}" if source[name] else None

    return [
        f"'{kind}'",
        _slot_sql(vendor, col("time")),
        f"COALESCE({col('level')}, {NO_LEVEL})",
        col("symbol"),
        f"COALESCE({col('status')}, '')",
        f"COALESCE({col('outcome')}, '')" if source["outcome"] else "''",
        f"{sign}1",
        f"{sign}{_cents_sql(vendor, col('amount'))}",
        f"{sign}{_cents_sql(vendor, col('payout'))}",
    ]


CHANGE_COLUMNS = "kind, slot, level, symbol, status, outcome, n, amount, payout"


def _watched(kind: str) -> list[str]:
    source = SOURCES[kind]
    return [source[name] for name in ("time", "level", "symbol", "status", "outcome", "amount", "payout") if source[name]]


def trigger_sql(vendor: str) -> list[str]:
    """CREATE TRIGGER statements, four per database: AFTER INSERT and AFTER UPDATE on the trades
    and on the lanes. Deterministic (row values only), so row- and statement-based replication
    (and Galera) replay them alike."""
    statements = []
    for kind, name in ((TRADE, "trade"), (LANE, "lane")):
        table, time = SOURCES[kind]["table"], SOURCES[kind]["time"]
        insert = f"INSERT INTO {CHANGES} ({CHANGE_COLUMNS})"
        new, old = _values_sql(vendor, kind, "NEW"), _values_sql(vendor, kind, "OLD", "-")
        if vendor == "mysql":
            same = " AND ".join(f"OLD.{column} <=> NEW.{column}" for column in _watched(kind))
            statements.append(
                f"CREATE TRIGGER martingale_stats_{name}_insert AFTER INSERT ON {table} FOR EACH ROW "
                f"BEGIN IF NEW.{time} IS NOT NULL THEN {insert} VALUES ({', '.join(new)}); END IF; END"
            )
            statements.append(
                f"CREATE TRIGGER martingale_stats_{name}_update AFTER UPDATE ON {table} FOR EACH ROW "
                f"BEGIN IF NOT ({same}) THEN "
                f"IF OLD.{time} IS NOT NULL THEN {insert} VALUES ({', '.join(old)}); END IF; "
                f"IF NEW.{time} IS NOT NULL THEN {insert} VALUES ({', '.join(new)}); END IF; "
                f"END IF; END"
            )
        else:
            changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in _watched(kind))
            statements.append(
                f"CREATE TRIGGER martingale_stats_{name}_insert AFTER INSERT ON {table} "
                f"FOR EACH ROW WHEN NEW.{time} IS NOT NULL "
                f"BEGIN {insert} VALUES ({', '.join(new)}); END"
            )
            statements.append(
                f"CREATE TRIGGER martingale_stats_{name}_update AFTER UPDATE ON {table} "
                f"FOR EACH ROW WHEN {changed} "
                f"BEGIN {insert} SELECT {', '.join(old)} WHERE OLD.{time} IS NOT NULL "
                f"UNION ALL SELECT {', '.join(new)} WHERE NEW.{time} IS NOT NULL; END"
            )
    return statements


TRIGGER_PRIVILEGE = (
    "creating the statistics triggers needs the SUPER privilege while binary logging is on (a Galera "
    "node, or MySQL 8's default): start the server with log_bin_trust_function_creators=1 (or grant "
    "SUPER to the user that migrates) and run migrate again (README, Production)"
)


class TriggerPrivilegeError(RuntimeError):
    pass


def check_trigger_privilege(connection=default_connection) -> None:
    """Raise TriggerPrivilegeError if this connection may not create triggers (before a migration
    changes anything: MySQL/MariaDB cannot roll DDL back). Creates and drops a do-nothing trigger."""
    if connection.vendor != "mysql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TRIGGER martingale_stats_probe BEFORE INSERT ON martingale_lanes FOR EACH ROW SET @martingale_probe = 1"
            )
            cursor.execute("DROP TRIGGER martingale_stats_probe")
    except DatabaseError as error:
        if getattr(error, "args", (None,))[0] == 1419:
            raise TriggerPrivilegeError(TRIGGER_PRIVILEGE) from error
        raise


def install_triggers(
    connection=default_connection, statements: Optional[list[str]] = None, names: Optional[list[str]] = None
) -> None:
    """(Re)create triggers: ``statements`` (default: this module's four) after dropping ``names``
    (default: this module's). Changes made while they are missing are not counted: follow with
    ``rebuild``."""
    try:
        drop_triggers(connection, names)
        with connection.cursor() as cursor:
            for statement in trigger_sql(connection.vendor) if statements is None else statements:
                cursor.execute(statement)  # no parameters: '%' stays as it is
    except DatabaseError as error:
        # MySQL/MariaDB error 1419 (ER_BINLOG_CREATE_ROUTINE_NEED_SUPER).
        if connection.vendor == "mysql" and getattr(error, "args", (None,))[0] == 1419:
            raise TriggerPrivilegeError(TRIGGER_PRIVILEGE) from error
        raise


def drop_triggers(connection=default_connection, names: Optional[list[str]] = None) -> None:
    with connection.cursor() as cursor:
        for name in TRIGGERS if names is None else names:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def installed_triggers(connection=default_connection, names: Optional[list[str]] = None) -> set[str]:
    """Which of ``names`` (default: this module's triggers) the database has."""
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {name for (name,) in cursor.fetchall()} & set(TRIGGERS if names is None else names)


# --- Folding changes into buckets ------------------------------------------------------------------


def _fold(totals: dict, rows: Iterable[tuple]) -> None:
    """Add (kind, slot, level, symbol, status, outcome, n, amount, payout) rows into ``totals``,
    keyed as the buckets are, for every breakdown and width."""
    for kind, slot, level, symbol, status, outcome, n, amount, payout in rows:
        slot, n, amount, payout = int(slot), int(n), int(amount), int(payout)
        for width in WIDTHS:
            start = slot - slot % width
            for key in (
                (kind, "s", width, start, NO_LEVEL, NONE, status, outcome),
                (kind, "l", width, start, level, NONE, status, outcome),
                (kind, "y", width, start, NO_LEVEL, symbol, status, outcome),
            ):
                total = totals.get(key)
                if total is None:
                    totals[key] = [n, amount, payout]
                else:
                    total[0] += n
                    total[1] += amount
                    total[2] += payout


def _add_to_buckets(cursor, vendor: str, totals: dict) -> None:
    """Add ``totals`` to the buckets; drop the buckets a subtraction may have emptied."""
    rows = [(*key, n, amount, payout) for key, (n, amount, payout) in totals.items() if n or amount or payout]
    if not rows:
        return
    columns = ", ".join((*KEY, "n", "amount", "payout"))
    marks = ", ".join(["%s"] * (len(KEY) + 3))
    if vendor == "mysql":
        upsert = (
            f"INSERT INTO {BUCKETS} ({columns}) VALUES ({marks}) ON DUPLICATE KEY UPDATE "
            "n = n + VALUES(n), amount = amount + VALUES(amount), payout = payout + VALUES(payout)"
        )
    else:
        upsert = (
            f"INSERT INTO {BUCKETS} ({columns}) VALUES ({marks}) ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
            "n = n + excluded.n, amount = amount + excluded.amount, payout = payout + excluded.payout"
        )
    for chunk in _chunks(rows, 2000):
        cursor.executemany(upsert, chunk)
    emptied = [row[: len(KEY)] for row in rows if row[-3] < 0 or row[-2] < 0 or row[-1] < 0]
    if emptied:
        where = " AND ".join(f"{column} = %s" for column in KEY)
        for chunk in _chunks(emptied, 2000):
            cursor.executemany(f"DELETE FROM {BUCKETS} WHERE {where} AND n = 0 AND amount = 0 AND payout = 0", chunk)


def _chunks(items: list, size: int):
    for index in range(0, len(items), size):
        yield items[index : index + size]


def roll_up(limit: int = ROLL_UP_BATCH, connection=default_connection) -> int:
    """Move up to ``limit`` changes, oldest first, into the buckets, in one transaction; returns
    how many moved. The changes are read ``FOR UPDATE`` (a change still being written is waited
    for, not skipped) and exactly those are deleted, so each is counted once whatever runs at the
    same time. Run it from one place (two at once wait for each other's locks)."""
    vendor = connection.vendor
    lock = " FOR UPDATE" if vendor == "mysql" else ""
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {CHANGE_COLUMNS} FROM {CHANGES} ORDER BY id LIMIT %s{lock}", [limit])
        rows = cursor.fetchall()
        if not rows:
            return 0
        totals: dict = {}
        _fold(totals, (row[1:] for row in rows))
        _add_to_buckets(cursor, vendor, totals)
        delete_ids(cursor, CHANGES, [row[0] for row in rows])
    return len(rows)


def delete_ids(cursor, table: str, ids: list) -> None:
    """Delete the rows of ``table`` with these ids, in statements of at most 900 (SQLite's limit)."""
    for chunk in _chunks(ids, 900):
        cursor.execute(f"DELETE FROM {table} WHERE id IN ({', '.join(['%s'] * len(chunk))})", chunk)


def drain(roll_up_step, batch: int, connection) -> int:
    """Call ``roll_up_step`` until it moves fewer than ``batch`` changes (none left, or only ones
    written meanwhile); returns how many moved."""
    moved = 0
    while True:
        done = roll_up_step(connection=connection)
        moved += done
        if done < batch:
            return moved


def roll_up_all(connection=default_connection) -> int:
    """Roll up until no change is left (or only ones written meanwhile); returns how many moved."""
    return drain(roll_up, ROLL_UP_BATCH, connection)


def _totals_of_rows(cursor, vendor: str) -> dict:
    """The buckets' totals computed from the trades and lanes themselves (``_fold``'s keys)."""
    totals: dict = {}
    for kind, source in SOURCES.items():
        values = _values_sql(vendor, kind, "t")[:6]
        cursor.execute(
            f"SELECT {', '.join(values)}, COUNT(*), SUM({_cents_sql(vendor, 't.' + source['amount'])}), "
            f"SUM({_cents_sql(vendor, source['payout'] and 't.' + source['payout'])}) "
            f"FROM {source['table']} t WHERE t.{source['time']} IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6"
        )
        _fold(totals, cursor.fetchall())
    return totals


@contextmanager
def snapshot(connection=default_connection) -> Iterator[None]:
    """One transaction whose reads all see the same committed state: REPEATABLE READ on
    MySQL/MariaDB when it is the outermost (the project's connections run READ COMMITTED, a fresh
    view per statement); on SQLite the reads of one transaction share its snapshot already."""
    if connection.vendor == "mysql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # the next transaction only
    with transaction.atomic(using=connection.alias):
        yield


def rebuild(connection=default_connection) -> None:
    """Recompute every bucket from the trades and the lanes (the migration's backfill; after a
    hand-made deletion or missing triggers). Exact even while changes are written: in one
    snapshot (REPEATABLE READ on MySQL/MariaDB; SQLite's write lock) it reads the rows' totals
    and the ids of the changes not rolled up yet, writes the totals as the buckets and deletes
    those changes (their effect is in the rows it read); the changes committed after the
    snapshot stay. Not at the same time as ``roll_up``."""
    vendor = connection.vendor
    with snapshot(connection), connection.cursor() as cursor:
        totals = _totals_of_rows(cursor, vendor)
        # The changes this snapshot sees are in the rows' totals already: they go. Changes
        # committed after it stay, to be rolled up.
        cursor.execute(f"SELECT id FROM {CHANGES}")
        pending = cursor.fetchall()
        cursor.execute(f"DELETE FROM {BUCKETS}")
        delete_ids(cursor, CHANGES, [row[0] for row in pending])
        _add_to_buckets(cursor, vendor, totals)


# --- Reading a window -------------------------------------------------------------------------------


def epoch(moment: datetime) -> int:
    """Whole seconds since 1970-01-01 UTC, rounded down."""
    return calendar.timegm(moment.astimezone(dt_timezone.utc).timetuple())


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=dt_timezone.utc)


@dataclass(frozen=True)
class Plan:
    """A window split into whole quarter-hours [first, last) read from the buckets, and the
    rest, read raw: [since, first) and [last, now]."""

    first: int
    last: int
    boundaries: tuple[int, ...]  # the local midnights inside the window, in epoch seconds

    @property
    def first_at(self) -> datetime:
        return utc(self.first)

    @property
    def last_at(self) -> datetime:
        return utc(self.last)


def plan(since: datetime, now: datetime, boundaries: list[datetime]) -> Optional[Plan]:
    """How to read the window from the buckets, or None when a local midnight inside it is not
    on a quarter-hour (no zone in use today; some historical ones)."""
    seconds = []
    for boundary in boundaries:
        value = epoch(boundary)
        if boundary.microsecond or value % QUARTER:
            return None
        seconds.append(value)
    first = -(-epoch(since) // QUARTER) * QUARTER
    if first == epoch(since) and since.microsecond:
        first += QUARTER
    last = epoch(now) // QUARTER * QUARTER
    if last < first:  # a window shorter than a quarter-hour: everything raw
        first = last = epoch(now)
    return Plan(first=first, last=last, boundaries=tuple(seconds))


def _runs(low: int, high: int) -> list[tuple[int, int, int]]:
    """[low, high) (quarter-hours) as whole buckets, the largest that fit where they are
    aligned: runs of one width, (width, start, end), at most quarters, hours, days, hours,
    quarters."""
    runs = []

    def up(at, width):
        return -(-at // width) * width

    def down(at, width):
        return at // width * width

    def hours_and_quarters(a, b):
        h0, h1 = up(a, HOUR), down(b, HOUR)
        if h0 >= h1:
            return [(QUARTER, a, b)]
        return [(QUARTER, a, h0), (HOUR, h0, h1), (QUARTER, h1, b)]

    d0, d1 = up(low, DAY), down(high, DAY)
    if d0 < d1:
        runs = [*hours_and_quarters(low, d0), (DAY, d0, d1), *hours_and_quarters(d1, high)]
    else:
        runs = hours_and_quarters(low, high)
    return [run for run in runs if run[1] < run[2]]


def _merged(runs: list[tuple[int, int, int]]) -> dict[int, list[list[int]]]:
    """Per width, its runs in order, adjacent ones joined."""
    by_width: dict[int, list[list[int]]] = defaultdict(list)
    for width, start, end in sorted(runs, key=lambda run: (run[0], run[1])):
        joined = by_width[width]
        if joined and joined[-1][1] == start:
            joined[-1][1] = end
        else:
            joined.append([start, end])
    return by_width


def _day_case(column: str, boundaries: tuple[int, ...], low: int = 0, high: Optional[int] = None) -> str:
    """The index of the window's date of an epoch-seconds column: a binary search in SQL."""
    if high is None:
        high = len(boundaries)
    if low == high:
        return str(low)
    mid = (low + high + 1) // 2
    return (
        f"CASE WHEN {column} < {boundaries[mid - 1]} THEN {_day_case(column, boundaries, low, mid - 1)} "
        f"ELSE {_day_case(column, boundaries, mid, high)} END"
    )


def read(window: Plan, connection=default_connection) -> tuple[list[tuple], int]:
    """The buckets and the changes of [first, last), in one statement:
    (kind, dim, day, level, symbol, status, outcome, n, amount, payout) with sums in cents, and
    how many changes not rolled up yet were among them.

    ``dim`` "s" rows (by status and outcome, per date of the window) give the totals and the
    days, "l" ones the levels, "y" ones the symbols (``day`` 0: they cover the whole of
    [first, last)); "j" rows are changes not rolled up yet, with every key, for all three."""
    if window.first >= window.last:
        return [], 0
    by_day = [run for low, high in _days(window) for run in _runs(low, high)]
    whole = _runs(window.first, window.last)
    # Each term names a kind, a breakdown, a width and slots: one range of the buckets' key.
    terms = [
        f"(kind = '{kind}' AND dim = '{dim}' AND {term})"
        for kind in (TRADE, LANE)
        for dim, pieces in (("s", by_day), ("l", whole), ("y", whole))
        for term in _covering(pieces)
    ]
    sql = (
        "SELECT kind, dim, day_index, level, symbol, status, outcome, SUM(n), SUM(amount), SUM(payout), "
        "SUM(pending) FROM ("
        f"SELECT kind, dim, CASE WHEN dim = 's' THEN {_day_case('slot', window.boundaries)} ELSE 0 END AS day_index, "
        f"level, symbol, status, outcome, n, amount, payout, 0 AS pending FROM {BUCKETS} "
        f"WHERE {' OR '.join(terms)} "
        "UNION ALL "
        f"SELECT kind, 'j', {_day_case('slot', window.boundaries)}, level, symbol, status, outcome, n, amount, payout, 1 "
        f"FROM {CHANGES} WHERE slot >= {window.first} AND slot < {window.last}"
        ") parts GROUP BY kind, dim, day_index, level, symbol, status, outcome"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    return [row[:-1] for row in rows], sum(int(row[-1]) for row in rows)


def roll_up_if_behind(pending: int, connection=default_connection) -> None:
    """Roll everything up when a read met more than ``ROLL_UP_AT`` changes (the beat task has not
    run for a while, or does not run): the next reads are fast again. A failure (the database
    busy) is logged and left to the next time: the read was exact anyway."""
    if pending <= ROLL_UP_AT:
        return
    try:
        with transaction.atomic(using=connection.alias):  # a savepoint inside a caller's transaction
            moved = roll_up_all(connection=connection)
    except DatabaseError as exc:
        logger.warning("martingale.summary: rolling up %d pending changes failed: %s", pending, exc)
    else:
        logger.info("martingale.summary: rolled up %d changes (a read met %d)", moved, pending)


def _covering(runs: list[tuple[int, int, int]]) -> list[str]:
    """SQL terms selecting exactly the buckets of ``runs``: per width, each run as a range; or,
    when there are many (a day in a zone off UTC midnight is made of hours, with quarter-hours
    around midnight in a half-hour zone), the whole span with a list of the buckets left out, or
    a list of the buckets taken, whichever is shorter."""
    terms = []
    for width, joined in sorted(_merged(runs).items(), reverse=True):
        if len(joined) <= 4:
            terms += [f"width = {width} AND slot >= {start} AND slot < {end}" for start, end in joined]
            continue
        low, high = joined[0][0], joined[-1][1]
        taken = sum(end - start for start, end in joined) // width
        if (high - low) // width - taken < taken:
            gaps = [slot for (_, end), (start, _) in zip(joined, joined[1:]) for slot in range(end, start, width)]
            terms.append(f"width = {width} AND slot >= {low} AND slot < {high} AND slot NOT IN ({', '.join(map(str, gaps))})")
        else:
            slots = [slot for start, end in joined for slot in range(start, end, width)]
            terms.append(f"width = {width} AND slot IN ({', '.join(map(str, slots))})")
    return terms


def _days(window: Plan) -> list[tuple[int, int]]:
    """[first, last) cut at the local midnights."""
    cuts = [window.first, *(b for b in window.boundaries if window.first < b < window.last), window.last]
    return list(zip(cuts, cuts[1:]))


def day_of(window: Plan, seconds: int) -> int:
    return bisect_right(window.boundaries, seconds)


def cents(value) -> Decimal:
    return Decimal(int(value)) / 100


# --- Checking ---------------------------------------------------------------------------------------


def differences(connection=default_connection) -> dict:
    """Buckets plus pending changes against the trades and lanes themselves: {} when they agree
    (for tests and the invariant check); otherwise {key: (summary, rows)}."""
    vendor = connection.vendor
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        expected = _totals_of_rows(cursor, vendor)
        actual: dict = defaultdict(lambda: [0, 0, 0])
        cursor.execute(f"SELECT {', '.join(KEY)}, n, amount, payout FROM {BUCKETS}")
        for row in cursor.fetchall():
            total = actual[tuple(row[: len(KEY)])]
            for index in range(3):
                total[index] += int(row[len(KEY) + index])
        cursor.execute(f"SELECT {CHANGE_COLUMNS} FROM {CHANGES}")
        _fold(actual, cursor.fetchall())
    keys = set(expected) | set(actual)
    found = {}
    for key in keys:
        want = tuple(expected.get(key, (0, 0, 0)))
        have = tuple(actual.get(key, (0, 0, 0)))
        if want != have:
            found[key] = (have, want)
    return found
