"""The risk guard's order-dependent statistics of a window (SPEC §11: ``max_drawdown`` and
``max_consecutive_losses`` of the trades opened in it, in settlement order), from stored sums.

A drawdown and a losing run depend on the order of the trades, so the running totals of
``lanes.summary`` cannot give them; reading the window's trades took 1.2 s for 30 days of a
million trades. But a stretch of trades sums up into a few numbers that compose
(``engine.Stretch``): the stretch of a window is its parts' stretches, side by side.

**Blocks.** ``martingale_risk_blocks`` (``RiskBlock``) keeps the stretch of the settled trades
of each UTC quarter-hour and day of settlement, per account and for all accounts (``account_id``
0), with the earliest and latest ``opened_at`` among them. A block serves a window when all its
trades opened inside the window; when none did it is skipped; otherwise the read goes down to
its quarter-hours, and a quarter-hour that mixes is read from its trades. Only the window's two
ends mix (a trade settles after it opens), so a window reads about one block per day and a few
quarter-hours of trades.

**Writes.** Triggers on ``martingale_trades`` (AFTER INSERT, AFTER UPDATE) append to
``martingale_risk_changes`` (``RiskChange``), in the transaction of the change, the account and
the quarter-hour of a settlement written or changed (the old one too when it moves). Rows are
only appended, as for ``lanes.summary``: no common row between accounts, no lock wait, no Galera
conflict. ``roll_up`` (the beat's ``roll_up_stats``, every minute) sums the named quarter-hours
up again from their trades, then their days from their quarter-hours, and deletes exactly the
changes it read (``FOR UPDATE``). A read treats a quarter-hour with changes not rolled up yet as
mixed (it reads its trades), so it is exact at any time; one that meets more than ``ROLL_UP_AT``
such quarter-hours rolls them up first.

``rebuild`` recomputes every block (the migration's backfill; after a hand-made deletion or
missing triggers). A read for a list of accounts (``account_names``) reads the trades as before.
The one assumption: a trade does not settle more than ``MARGIN`` before it opened (clock skew
between database nodes).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Optional

from django.db import DatabaseError, connection as default_connection, transaction
from django.db.models import BigIntegerField, F
from django.db.models.functions import Cast, Round

from . import engine, summary

logger = logging.getLogger("lanes.risk_blocks")

QUARTER, DAY = 900, 86400
ALL = 0  # the account_id of the blocks of every account
MARGIN = DAY  # how far before a window the read looks for trades that opened in it (clock skew)
CHANGES = "martingale_risk_changes"
BLOCKS = "martingale_risk_blocks"
TRIGGERS = ["martingale_risk_trade_insert", "martingale_risk_trade_update"]
ROLL_UP_BATCH = 20_000
ROLL_UP_AT = 200  # quarter-hours not rolled up that a read meets before it rolls them up
SETTLED = (engine.WON, engine.LOST, engine.DRAWN)
STRETCH = ("n", "total", "high", "low", "drawdown", "lead", "tail", "longest", "won")
EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
MICRO = timedelta(microseconds=1)
# A trade's profit as whole cents: exact in every database, and no Decimal per row to convert.
CENTS = Cast(Round(F("profit") * 100), BigIntegerField())


# --- Triggers ---------------------------------------------------------------------------------------


def _slot_sql(vendor: str, column: str) -> str:
    """The start of the UTC quarter-hour of a time, in epoch seconds (as lanes.summary)."""
    if vendor == "mysql":
        return f"(TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {column}) DIV {QUARTER} * {QUARTER})"
    return f"(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) / {QUARTER} * {QUARTER})"


WATCHED = ("settled_at", "status", "profit", "opened_at", "account_id")


def trigger_sql(vendor: str) -> list[str]:
    """CREATE TRIGGER statements: after a trade is inserted with a settled_at, or updated so that
    its settlement (time, status, profit), opening time or account changes, name the quarter-hours
    of its old and new settlement. Deterministic (row values only), so replication replays them."""
    insert = f"INSERT INTO {CHANGES} (account_id, slot)"
    new = f"NEW.account_id, {_slot_sql(vendor, 'NEW.settled_at')}"
    old = f"OLD.account_id, {_slot_sql(vendor, 'OLD.settled_at')}"
    if vendor == "mysql":
        same = " AND ".join(f"OLD.{column} <=> NEW.{column}" for column in WATCHED)
        return [
            f"CREATE TRIGGER martingale_risk_trade_insert AFTER INSERT ON martingale_trades FOR EACH ROW "
            f"BEGIN IF NEW.settled_at IS NOT NULL THEN {insert} VALUES ({new}); END IF; END",
            f"CREATE TRIGGER martingale_risk_trade_update AFTER UPDATE ON martingale_trades FOR EACH ROW "
            f"BEGIN IF NOT ({same}) THEN "
            f"IF OLD.settled_at IS NOT NULL THEN {insert} VALUES ({old}); END IF; "
            f"IF NEW.settled_at IS NOT NULL THEN {insert} VALUES ({new}); END IF; "
            f"END IF; END",
        ]
    changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in WATCHED)
    return [
        f"CREATE TRIGGER martingale_risk_trade_insert AFTER INSERT ON martingale_trades "
        f"FOR EACH ROW WHEN NEW.settled_at IS NOT NULL BEGIN {insert} VALUES ({new}); END",
        f"CREATE TRIGGER martingale_risk_trade_update AFTER UPDATE ON martingale_trades "
        f"FOR EACH ROW WHEN {changed} "
        f"BEGIN {insert} SELECT {old} WHERE OLD.settled_at IS NOT NULL "
        f"UNION ALL SELECT {new} WHERE NEW.settled_at IS NOT NULL; END",
    ]


def install_triggers(connection=default_connection) -> None:
    """(Re)create the triggers (as lanes.summary's). Settlements made while they are missing are not
    counted: follow with ``rebuild``."""
    summary.install_triggers(connection, trigger_sql(connection.vendor), TRIGGERS)


def drop_triggers(connection=default_connection) -> None:
    summary.drop_triggers(connection, TRIGGERS)


def installed_triggers(connection=default_connection) -> set[str]:
    return summary.installed_triggers(connection, names=TRIGGERS)


# --- Summing up ---------------------------------------------------------------------------------------


def micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC (exact)."""
    return (moment - EPOCH) // MICRO


def utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=dt_timezone.utc)


def _trades(connection, account_id: int, *, low: Optional[datetime] = None, high: Optional[datetime] = None):
    """The settled trades of an account (or all), settled in [low, high), in settlement order:
    (status, profit in cents, opened_at, settled_at, account_id)."""
    from .models import Trade

    trades = Trade.objects.using(connection.alias).filter(status__in=SETTLED, settled_at__isnull=False)
    if account_id != ALL:
        trades = trades.filter(account_id=account_id)
    if low is not None:
        trades = trades.filter(settled_at__gte=low)
    if high is not None:
        trades = trades.filter(settled_at__lt=high)
    return (
        trades.order_by("settled_at", "id")
        .annotate(cents=CENTS)
        .values_list("status", "cents", "opened_at", "settled_at", "account_id")
    )


class _Sum:
    """A block being summed up: its stretch and the range of its trades' opening times."""

    __slots__ = ("stretch", "opened_min", "opened_max")

    def __init__(self, stretch: engine.Stretch = engine.Stretch(), opened_min: Optional[int] = None, opened_max: Optional[int] = None):
        self.stretch, self.opened_min, self.opened_max = stretch, opened_min, opened_max

    def add(self, stretch: engine.Stretch, opened_min: int, opened_max: int) -> None:
        self.stretch = self.stretch.then(stretch)
        self.opened_min = opened_min if self.opened_min is None else min(self.opened_min, opened_min)
        self.opened_max = opened_max if self.opened_max is None else max(self.opened_max, opened_max)

    def add_trade(self, status: str, cents: int, opened_at: datetime) -> None:
        opened = micros(opened_at)
        self.add(engine.Stretch.one(status, cents or 0), opened, opened)


def _write(cursor, account_id: int, width: int, slot: int, block: Optional[_Sum]) -> None:
    cursor.execute(f"DELETE FROM {BLOCKS} WHERE account_id = %s AND width = %s AND slot = %s", [account_id, width, slot])
    if block is not None and block.stretch.n:
        _insert(cursor, [(account_id, width, slot, block)])


def _insert(cursor, blocks: list[tuple[int, int, int, _Sum]]) -> None:
    columns = ("account_id", "width", "slot", *STRETCH, "opened_min", "opened_max")
    rows = [
        (account_id, width, slot, *(getattr(block.stretch, name) for name in STRETCH), block.opened_min, block.opened_max)
        for account_id, width, slot, block in blocks
    ]
    for start in range(0, len(rows), 2000):
        cursor.executemany(
            f"INSERT INTO {BLOCKS} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})", rows[start : start + 2000]
        )


def _quarter(connection, cursor, account_id: int, slot: int) -> None:
    """Sum one quarter-hour up again from its trades."""
    block = _Sum()
    for status, cents, opened_at, _, _ in _trades(connection, account_id, low=utc(slot), high=utc(slot + QUARTER)):
        block.add_trade(status, cents, opened_at)
    _write(cursor, account_id, QUARTER, slot, block)


def _block(row: tuple) -> tuple[int, _Sum]:
    """(slot, _Sum) of a blocks row (slot, *STRETCH, opened_min, opened_max)."""
    slot, *numbers, opened_min, opened_max = row
    values = dict(zip(STRETCH, (int(number) for number in numbers)))
    values["won"] = bool(values["won"])
    return int(slot), _Sum(engine.Stretch(**values), int(opened_min), int(opened_max))


BLOCK_COLUMNS = ", ".join(("slot", *STRETCH, "opened_min", "opened_max"))


def _day(cursor, account_id: int, day: int) -> None:
    """Sum one day up again from its quarter-hours."""
    cursor.execute(
        f"SELECT {BLOCK_COLUMNS} FROM {BLOCKS} WHERE account_id = %s AND width = %s AND slot >= %s AND slot < %s ORDER BY slot",
        [account_id, QUARTER, day, day + DAY],
    )
    total = _Sum()
    for _, block in map(_block, cursor.fetchall()):
        total.add(block.stretch, block.opened_min, block.opened_max)
    _write(cursor, account_id, DAY, day, total)


def roll_up(limit: int = ROLL_UP_BATCH, connection=default_connection) -> int:
    """Sum up again the quarter-hours (and their days) named by up to ``limit`` changes, oldest
    first, in one transaction, and delete those changes; returns how many. Read ``FOR UPDATE``:
    a change still being written is waited for, and its trade is then visible."""
    lock = " FOR UPDATE" if connection.vendor == "mysql" else ""
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SELECT id, account_id, slot FROM {CHANGES} ORDER BY id LIMIT %s{lock}", [limit])
        rows = cursor.fetchall()
        if not rows:
            return 0
        quarters = sorted({(int(account), int(slot)) for _, account, slot in rows} | {(ALL, int(slot)) for _, _, slot in rows})
        for account_id, slot in quarters:
            _quarter(connection, cursor, account_id, slot)
        for account_id, day in sorted({(account_id, slot - slot % DAY) for account_id, slot in quarters}):
            _day(cursor, account_id, day)
        summary.delete_ids(cursor, CHANGES, [row[0] for row in rows])
    return len(rows)


def roll_up_all(connection=default_connection) -> int:
    """Roll up until no change is left (or only ones written meanwhile); returns how many moved."""
    return summary.drain(roll_up, ROLL_UP_BATCH, connection)


def rebuild(connection=default_connection) -> None:
    """Recompute every block from the trades, in one snapshot (as lanes.summary.rebuild): the
    changes it sees are in the trades it reads and go; those committed after it stay."""
    with summary.snapshot(connection), connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {CHANGES}")
        pending = [row[0] for row in cursor.fetchall()]
        cursor.execute(f"DELETE FROM {BLOCKS}")
        # One pass in settlement order: the open quarter-hours and days, flushed as the time moves on.
        sums: dict[tuple[int, int, int], _Sum] = {}
        done: list[tuple[int, int, int, _Sum]] = []
        quarter = day = None
        for status, cents, opened_at, settled_at, account_id in _trades(connection, ALL).iterator(chunk_size=5000):
            seconds = summary.epoch(settled_at)
            if seconds - seconds % QUARTER != quarter:
                quarter = seconds - seconds % QUARTER
                done += [(*key, block) for key, block in sums.items() if key[1] == QUARTER]
                sums = {key: block for key, block in sums.items() if key[1] != QUARTER}
            if seconds - seconds % DAY != day:
                day = seconds - seconds % DAY
                done += [(*key, block) for key, block in sums.items()]
                sums = {}
            one, opened = engine.Stretch.one(status, cents or 0), micros(opened_at)
            for key in ((ALL, QUARTER, quarter), (ALL, DAY, day), (account_id, QUARTER, quarter), (account_id, DAY, day)):
                block = sums.get(key)
                if block is None:
                    block = sums[key] = _Sum()
                block.add(one, opened, opened)
            if len(done) >= 5000:
                _insert(cursor, done)
                done = []
        _insert(cursor, done + [(*key, block) for key, block in sums.items()])
        summary.delete_ids(cursor, CHANGES, pending)


# --- Reading a window ---------------------------------------------------------------------------------


def stretch(account_id: int, since: datetime, now: datetime, connection=default_connection) -> engine.Stretch:
    """The stretch of the trades of ``account_id`` (``ALL``: every account) opened in [since, now]
    and settled, in settlement order (profits in cents), from the blocks, in one snapshot."""
    with summary.snapshot(connection), connection.cursor() as cursor:
        answer, pending = _stretch(cursor, connection, account_id, since, now)
    if pending > ROLL_UP_AT:
        try:
            with transaction.atomic(using=connection.alias):
                roll_up_all(connection=connection)
        except DatabaseError as exc:  # the answer was exact anyway; the next read tries again
            logger.warning("martingale.risk_blocks: rolling up %d pending quarter-hours failed: %s", pending, exc)
    return answer


def _stretch(cursor, connection, account_id: int, since: datetime, now: datetime) -> tuple[engine.Stretch, int]:
    from .models import Trade

    low, high = micros(since), micros(now)
    start = summary.epoch(since) // DAY * DAY - MARGIN
    mine = "" if account_id == ALL else f" AND account_id = {int(account_id)}"
    cursor.execute(f"SELECT DISTINCT slot FROM {CHANGES} WHERE slot >= %s{mine}", [start])
    changed = {int(slot) for (slot,) in cursor.fetchall()}
    pieces: list[tuple[int, engine.Stretch]] = []
    raw: set[int] = set(changed)  # quarter-hours read from their trades

    def take(rows: list[tuple], skip: set[int], deeper: set[int]) -> None:
        """Blocks whose trades all opened in the window become pieces; mixed ones go ``deeper``."""
        for slot, block in map(_block, rows):
            if slot in skip or block.opened_max < low or block.opened_min > high:
                continue
            if block.opened_min >= low and block.opened_max <= high:
                pieces.append((slot, block.stretch))
            else:
                deeper.add(slot)

    cursor.execute(
        f"SELECT {BLOCK_COLUMNS} FROM {BLOCKS} WHERE account_id = %s AND width = %s AND slot >= %s ORDER BY slot",
        [account_id, DAY, start],
    )
    down = {slot - slot % DAY for slot in changed}  # days read by their quarter-hours
    take(cursor.fetchall(), set(down), down)
    if down:
        days = " OR ".join(f"(slot >= {day} AND slot < {day + DAY})" for day in sorted(down))
        cursor.execute(
            f"SELECT {BLOCK_COLUMNS} FROM {BLOCKS} WHERE account_id = %s AND width = %s AND ({days}) ORDER BY slot",
            [account_id, QUARTER],
        )
        take(cursor.fetchall(), set(raw), raw)
    if raw:
        ranges = _ranges(sorted(raw))
        for first, last in ranges:
            quarter, block = None, None
            for status, cents, _opened_at, settled_at, _ in _trades(connection, account_id, low=utc(first), high=utc(last)).filter(
                opened_at__gte=since, opened_at__lte=now
            ):
                seconds = summary.epoch(settled_at)
                if seconds - seconds % QUARTER != quarter:
                    if block is not None:
                        pieces.append((quarter, block))
                    quarter, block = seconds - seconds % QUARTER, engine.Stretch()
                block = block.then(engine.Stretch.one(status, cents or 0))
            if block is not None:
                pieces.append((quarter, block))
    # A trade given a settled status by hand without a settled_at sorts first, as in ORDER BY
    # settled_at (the settled_at index finds the few rows without one).
    unsettled = Trade.objects.using(connection.alias).filter(
        status__in=SETTLED, settled_at__isnull=True, opened_at__gte=since, opened_at__lte=now
    )
    if account_id != ALL:
        unsettled = unsettled.filter(account_id=account_id)
    unsettled = unsettled.order_by("id").annotate(cents=CENTS)
    pieces.append((-1, engine.Stretch.of((status, cents or 0) for status, cents in unsettled.values_list("status", "cents"))))
    pieces.sort(key=lambda piece: piece[0])
    answer = engine.Stretch()
    for _, piece in pieces:
        answer = answer.then(piece)
    return answer, len(changed)


def _ranges(quarters: list[int]) -> list[tuple[int, int]]:
    """Sorted quarter-hours as [first, last) ranges, adjacent ones joined."""
    ranges: list[list[int]] = []
    for slot in quarters:
        if ranges and ranges[-1][1] == slot:
            ranges[-1][1] = slot + QUARTER
        else:
            ranges.append([slot, slot + QUARTER])
    return [(first, last) for first, last in ranges]
