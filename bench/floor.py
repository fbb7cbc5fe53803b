#!/usr/bin/env python
"""The SQL floor of the bot API: one trade request and one result as hand-written SQL.

No Django, no HTTP: mysqlclient (MySQLdb) on one connection per bot, autocommit off (each
transaction begins with its first statement and ends with an explicit COMMIT), the session as the
app sets it (READ COMMITTED, time zone UTC, utf8mb4). The tables are the project's own (created by
``manage.py migrate``), so the floor and the API use the same schema and indexes. This is the least
a correct implementation must do in the database for each call (SPEC §3–5, §10), no batching
across calls:

request (POST /api/v1/trades):
  1. the bearer token by its SHA-256 (``martingale_api_tokens``), as every API call does
  2. ``SELECT … FOR UPDATE`` of the account row joined with its settings row; ``SYSDATE(6)`` is the
     time of the change (the database's clock once the lock is granted, as in the app)
  3. the account's active lanes
  4. the account's queued and open trades (free slots, idle lanes)
  5. ``INSERT`` the trade: a base trade, or a lane trade when the account has an idle active lane
  6. for a lane trade: ``UPDATE`` that lane (trade_ids, totals, last_assigned_at) and
  7. ``INSERT`` its ``trade_assigned`` event
  8. ``COMMIT``

result (POST /api/v1/trades/{id}/result):
  1. the token
  2. the trade's account id, read without a lock (so a trade row is never locked before its
     account, as the app does)
  3. ``SELECT … FOR UPDATE`` of the account and its settings (+ ``SYSDATE(6)``)
  4. the trade, and the account's queued and open trades (the queue a result serves), in one
     ``UNION ALL``
  5. a lane trade: its lane; a lost base trade: how many lanes are active and were created today
     (``max_concurrent_lanes``, ``max_daily_lanes``); a won base trade: nothing
  6. ``UPDATE`` the trade (status, payout, profit, settled_at)
  7. the lane: a lost base trade ``INSERT``s one (or only an event ``not_created`` at a limit), a
     lane loss advances it (or exhausts it at its last level), a win completes it (``UPDATE``)
  8. ``INSERT`` the event
  9. ``COMMIT``

So 6 or 8 statements for a request, 6 to 9 for a result (each statement one round trip; COMMIT
included). A deadlock or lock wait timeout rolls back and retries the transaction, as the app's
services do. What the floor leaves out, because a bot bench never needs it: queued trades (every
bench account has a free slot for each of its bots; the floor refuses rather than queue), the
cool-down (0 on the bench accounts), the legacy mode, other lane strategies than FIFO, and the JSON
answer itself.

Run alone (a smoke test and the statement counts):
    .venv/bin/python bench/floor.py --database-url mysql://…/martingale --account NAME --token RAW [--cycles 200]
The comparison with the API is bench/api_cycles.py (``make bench``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
import uuid
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import unquote, urlparse

import MySQLdb

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MONEY_MAX = Decimal("99999999.99")
MAX_LANE_TRADES = 600
ABORTED = {1205, 1213}  # lock wait timeout, deadlock: roll back and retry, as lanes.faults does
ATTEMPTS = 8


def connect_args(url: str) -> dict:
    """MySQLdb.connect() arguments from a mysql:// DATABASE_URL."""
    parts = urlparse(url)
    if parts.scheme not in ("mysql", "mysql2", "mariadb"):
        raise SystemExit(f"the floor needs a mysql:// database URL, not {parts.scheme}://")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/"),
        "charset": "utf8mb4",
    }


def connect(url: str, *, autocommit: bool = False):
    """A connection set up as the app's (settings.py): READ COMMITTED, UTC, utf8mb4."""
    conn = MySQLdb.connect(**connect_args(url), autocommit=autocommit)
    cursor = conn.cursor()
    cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    cursor.execute("SET time_zone = '+00:00'")
    if not autocommit:
        conn.commit()
    return conn


def round2(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def stake_at(base: Decimal, multiplier: Decimal, level: int) -> Decimal:
    return round2(base * multiplier**level)


def expected_payout(stake: Decimal, rate: Decimal) -> Decimal:
    return round2(stake * (1 + rate))


class Refused(Exception):
    """A case the floor does not implement (the bench never makes it)."""


SETTINGS_JOIN = (
    "SELECT a.id, a.worker_name, a.enabled, a.base_amount, a.martingale_multiplier, a.martingale_max_level,"
    " a.payout_rate, a.martingale_enabled, a.enhanced_martingale_enabled,"
    " COALESCE(s.concurrent_trading_enabled, 0), COALESCE(s.max_concurrent_lanes, 3),"
    " COALESCE(s.lane_assignment_strategy, 'fifo'), COALESCE(s.auto_create_lanes, 1),"
    " COALESCE(s.cool_down_seconds, 0), COALESCE(s.max_daily_lanes, 10), SYSDATE(6)"
    " FROM accounts a LEFT JOIN trading_settings s ON s.account_name = a.worker_name"
)
LOCK_BY_NAME = SETTINGS_JOIN + " WHERE a.worker_name = %s FOR UPDATE"
LOCK_BY_ID = SETTINGS_JOIN + " WHERE a.id = %s FOR UPDATE"
TOKEN = "SELECT name, all_accounts, account_names FROM martingale_api_tokens WHERE token_hash = %s AND revoked_at IS NULL"
ACTIVE_LANES = (
    "SELECT id, lane_id, current_level, current_amount, total_invested, total_potential_payout, trade_ids,"
    " created_at FROM martingale_lanes WHERE account_name = %s AND status = 'active'"
)
LIVE_TRADES = "SELECT trade_id, status, lane_id FROM martingale_trades WHERE account_id = %s AND status IN ('queued', 'open')"
TRADE_COLUMNS = "id, trade_id, status, kind, lane_id, level, amount, expected_payout, symbol"
TRADE_AND_LIVE = (
    f"SELECT {TRADE_COLUMNS} FROM martingale_trades WHERE trade_id = %s"
    f" UNION ALL SELECT {TRADE_COLUMNS} FROM martingale_trades WHERE account_id = %s AND status IN ('queued', 'open')"
)
INSERT_TRADE = (
    "INSERT INTO martingale_trades (trade_id, symbol, direction, status, kind, level, amount, requested_payout,"
    " expected_payout, payout, profit, max_wait_seconds, requested_at, opened_at, settled_at, expires_at,"
    " requested_by, account_id, lane_id)"
    " VALUES (%s, %s, NULL, 'open', %s, %s, %s, NULL, %s, NULL, NULL, %s, %s, %s, NULL, %s, %s, %s, %s)"
)
ASSIGN_LANE = (
    "UPDATE martingale_lanes SET trade_ids = %s, total_invested = %s, total_potential_payout = %s,"
    " last_assigned_at = %s, updated_at = %s WHERE id = %s"
)
INSERT_EVENT = (
    "INSERT INTO martingale_lane_events (lane_id, account_name, kind, trade_id, actor, data, created_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
ACCOUNT_OF_TRADE = "SELECT account_id FROM martingale_trades WHERE trade_id = %s"
LANE = (
    "SELECT id, status, current_level, base_amount, multiplier, max_level, total_invested"
    " FROM martingale_lanes WHERE lane_id = %s"
)
LANE_COUNTS = (
    "SELECT (SELECT COUNT(*) FROM martingale_lanes WHERE account_name = %s AND status = 'active'),"
    " (SELECT COUNT(*) FROM martingale_lanes WHERE account_name = %s AND created_at >= %s)"
)
SETTLE_TRADE = "UPDATE martingale_trades SET status = %s, payout = %s, profit = %s, settled_at = %s WHERE id = %s"
INSERT_LANE = (
    "INSERT INTO martingale_lanes (lane_id, account_name, symbol, status, current_level, base_amount,"
    " current_amount, multiplier, max_level, total_invested, total_potential_payout, trade_ids, created_at,"
    " updated_at, completed_at, outcome, last_assigned_at)"
    " VALUES (%s, %s, %s, 'active', 1, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, NULL)"
)
ADVANCE_LANE = "UPDATE martingale_lanes SET current_level = %s, current_amount = %s, updated_at = %s WHERE id = %s"
END_LANE = "UPDATE martingale_lanes SET status = 'completed', outcome = %s, completed_at = %s, updated_at = %s WHERE id = %s"


class Floor:
    """One bot's connection and the two transactions. ``statements`` counts the round trips of the
    calls made (COMMIT included), ``calls`` the calls, per kind (``request``, ``result``)."""

    def __init__(self, url: str, token: str, lane_prefix: str = "floor-"):
        self.conn = connect(url)
        self.cursor = self.conn.cursor()
        self.token_hash = hashlib.sha256(token.encode()).hexdigest()
        self.lane_prefix = lane_prefix
        self.statements = {"request": 0, "result": 0}
        self.calls = {"request": 0, "result": 0}
        self.retries = 0
        self._kind = "request"

    def close(self):
        self.conn.close()

    # --- plumbing ---------------------------------------------------------------------------

    def _q(self, sql: str, params=()) -> tuple:
        self.statements[self._kind] += 1
        self.cursor.execute(sql, params)
        return self.cursor.fetchall()

    def _commit(self):
        self.statements[self._kind] += 1
        self.conn.commit()

    def _transaction(self, kind: str, body, *args):
        self._kind = kind
        self.calls[kind] += 1
        for attempt in range(ATTEMPTS):
            try:
                answer = body(*args)
                self._commit()
                return answer
            except MySQLdb.OperationalError as exc:
                self.conn.rollback()
                if exc.args[0] not in ABORTED or attempt == ATTEMPTS - 1:
                    raise
                self.retries += 1
                time.sleep(random.uniform(0, 0.02 * 2**attempt))
            except BaseException:
                self.conn.rollback()
                raise

    def _token(self) -> tuple:
        rows = self._q(TOKEN, (self.token_hash,))
        if not rows:
            raise Refused("401: the token is unknown or revoked")
        return rows[0]

    @staticmethod
    def _covers(token: tuple, account: str) -> bool:
        return bool(token[1]) or account in json.loads(token[2])

    def _lock(self, sql: str, key) -> tuple:
        rows = self._q(sql, (key,))
        if not rows:
            raise Refused(f"404: account {key} not found")
        row = rows[0]
        if not row[2] or not row[7] or not row[8]:
            raise Refused("the floor serves enabled accounts in lanes mode with martingale on")
        if row[13]:
            raise Refused("the floor does not implement the cool-down")
        if row[11] != "fifo":
            raise Refused("the floor implements the FIFO lane strategy only")
        return row

    # --- a trade request --------------------------------------------------------------------

    def request(self, account: str, trade_id: str, symbol: str = "EURUSD", max_wait_seconds: int = 30) -> dict:
        return self._transaction("request", self._request, account, trade_id, symbol, max_wait_seconds)

    def _request(self, account, trade_id, symbol, max_wait_seconds):
        token = self._token()
        if not self._covers(token, account):
            raise Refused(f"403: the token may not act on {account}")
        actor = f"token:{token[0]}"
        (account_id, name, _, base_amount, _, _, rate, _, _, concurrent, max_lanes, _, _, _, _, now) = self._lock(
            LOCK_BY_NAME, account
        )
        lanes = self._q(ACTIVE_LANES, (name,))
        live = self._q(LIVE_TRADES, (account_id,))
        if any(status == "queued" for _, status, _ in live):
            raise Refused("the floor does not serve queues (the bench never queues)")
        slots = max_lanes if concurrent else 1
        if sum(status == "open" for _, status, _ in live) >= slots:
            raise Refused("no free slot: the floor does not queue (the bench never queues)")
        busy = {lane_id for _, status, lane_id in live if status == "open" and lane_id}
        lane = None
        for row in sorted(lanes, key=lambda r: (r[7], r[0])):  # FIFO: oldest lane first
            lane_pk, lane_id, level, amount, invested, potential, trade_ids, _ = row
            if lane_id in busy:
                continue
            ids = json.loads(trade_ids or "[]")
            payout = expected_payout(amount, rate)
            if len(ids) < MAX_LANE_TRADES and invested + amount <= MONEY_MAX and potential + payout <= MONEY_MAX:
                lane = (lane_pk, lane_id, level, amount, invested, potential, ids)
                break
        if lane is None:
            kind, level, amount, lane_id = "base", 0, base_amount, None
        else:
            kind, level, amount, lane_id = "lane", lane[2], lane[3], lane[1]
        payout = expected_payout(amount, rate)
        expires = now + timedelta(seconds=max_wait_seconds)
        self._q(
            INSERT_TRADE,
            (trade_id, symbol, kind, level, amount, payout, max_wait_seconds, now, now, expires, actor, account_id, lane_id),
        )
        if lane is not None:
            lane_pk, _, _, _, invested, potential, ids = lane
            ids.append(trade_id)
            self._q(ASSIGN_LANE, (json.dumps(ids), invested + amount, potential + payout, now, now, lane_pk))
            data = {"level": level, "amount": str(amount)}
            self._q(INSERT_EVENT, (lane_id, name, "trade_assigned", trade_id, actor, json.dumps(data), now))
        return {"trade_id": trade_id, "status": "open", "kind": kind, "lane_id": lane_id, "level": level, "amount": amount}

    # --- a result ---------------------------------------------------------------------------

    def result(self, trade_id: str, result: str) -> dict:
        return self._transaction("result", self._result, trade_id, result)

    def _result(self, trade_id, result):
        token = self._token()
        actor = f"token:{token[0]}"
        owner = self._q(ACCOUNT_OF_TRADE, (trade_id,))
        if not owner:
            raise Refused(f"404: trade {trade_id} not found")
        (account_id, name, _, _, multiplier, max_level, _, _, _, _, max_lanes, _, auto_create, _, max_daily, now) = (
            self._lock(LOCK_BY_ID, owner[0][0])
        )
        if not self._covers(token, name):
            raise Refused(f"404: trade {trade_id} not found")
        rows = self._q(TRADE_AND_LIVE, (trade_id, account_id))
        trade_pk, _, status, kind, lane_id, level, amount, payout_if_won, symbol = next(r for r in rows if r[1] == trade_id)
        if any(row[2] == "queued" for row in rows):
            raise Refused("the floor does not serve queues (the bench never queues)")
        if status != "open":
            raise Refused(f"409: trade {trade_id} is {status}")
        if result not in ("win", "loss"):
            raise Refused("the floor settles wins and losses")
        payout = payout_if_won if result == "win" else ZERO
        profit = payout - amount
        lane = None
        if kind == "lane":
            found = self._q(LANE, (lane_id,))
            lane = found[0] if found and found[0][1] == "active" else None  # else completed by hand meanwhile
        elif result == "loss":
            today = now.replace(hour=0, minute=0, second=0, microsecond=0)  # TIME_ZONE is UTC on the bench
            active, created_today = self._q(LANE_COUNTS, (name, name, today))[0]
        self._q(SETTLE_TRADE, ("won" if result == "win" else "lost", payout, profit, now, trade_pk))
        event = None
        if kind == "base" and result == "loss":
            top = stake_at(amount, multiplier, max_level)
            reason = None
            if not auto_create:
                reason = "auto_create_lanes is off"
            elif active >= max_lanes:
                reason = f"max_concurrent_lanes reached ({active} of {max_lanes} active)"
            elif created_today >= max_daily:
                reason = f"max_daily_lanes reached ({created_today} of {max_daily} today)"
            elif top > MONEY_MAX:
                reason = f"the stake at level {max_level} would be {top:,.2f}, more than {MONEY_MAX:,.2f}"
            if reason is not None:
                event = (None, "not_created", {"reason": reason, "symbol": symbol})
            else:
                new_id = self.lane_prefix + uuid.uuid4().hex
                first = stake_at(amount, multiplier, 1)
                self._q(
                    INSERT_LANE,
                    (new_id, name, symbol, amount, first, multiplier, max_level, amount, payout_if_won,
                     json.dumps([trade_id]), now, now),
                )
                event = (new_id, "created", {"level": 1, "amount": str(first), "base_amount": str(amount)})
        elif lane is not None:
            lane_pk, _, _, base, lane_multiplier, lane_max, invested = lane
            if result == "win":
                self._q(END_LANE, ("recovered", now, now, lane_pk))
                event = (lane_id, "recovered", {"level": level, "profit": str(profit)})
            elif level >= lane_max:
                self._q(END_LANE, ("exhausted", now, now, lane_pk))
                event = (lane_id, "exhausted", {"level": level, "total_invested": str(invested)})
            else:
                new_amount = stake_at(base, lane_multiplier, level + 1)
                self._q(ADVANCE_LANE, (level + 1, new_amount, now, lane_pk))
                event = (lane_id, "advanced", {"level": level + 1, "amount": str(new_amount)})
        if event is not None:
            self._q(INSERT_EVENT, (event[0], name, event[1], trade_id, actor, json.dumps(event[2]), now))
        return {"trade_id": trade_id, "status": "won" if result == "win" else "lost", "lane_event": event and event[1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--account", required=True, help="an existing account (manage.py martingale account add …)")
    parser.add_argument("--token", required=True, help="a raw API token (manage.py martingale token create …)")
    parser.add_argument("--cycles", type=int, default=200)
    args = parser.parse_args()
    floor = Floor(args.database_url, args.token)
    rng = random.Random()
    started = time.perf_counter()
    for _ in range(args.cycles):
        trade_id = "floor-" + uuid.uuid4().hex
        floor.request(args.account, trade_id)
        floor.result(trade_id, rng.choice(("win", "loss")))
    elapsed = time.perf_counter() - started
    floor.close()
    print(f"{args.cycles} cycles in {elapsed:.2f} s: {args.cycles / elapsed:.1f} cycles/s, "
          f"{elapsed / args.cycles * 1000:.2f} ms per cycle, {floor.retries} retries")
    for kind in ("request", "result"):
        print(f"SQL statements per {kind}: {floor.statements[kind] / floor.calls[kind]:.2f} (COMMIT included)")


if __name__ == "__main__":
    main()
