#!/usr/bin/env python
"""Dashboard pages at scale: render times and SQL query counts with 1,000 accounts, 100,000 lanes
(10,000 active: every account at max_concurrent_lanes' largest value, 10) and 1,000,000 trades.

usage: .venv/bin/python bench/dashboard_scale.py [--database-url URL] [--runs 7] [--reuse]
       [--accounts 1000] [--lanes 100000] [--active 10000] [--trades 1000000]

Without --database-url (or DATABASE_URL) the data goes to a fresh SQLite file under .tmp/ (never
the project's own db.sqlite3). The tables are migrated, emptied and filled with raw batched
inserts (about 1.5 minutes for the full size on SQLite), with the statistics' triggers off, then
the running totals are rebuilt (lanes.summary.rebuild, as the migration does on a full database;
its time is printed); --reuse keeps a database already filled with the same counts. Each page is
then fetched through Django's test client as a logged-in staff user (the API with a bearer
token), and each read called directly: one warm-up, then --runs timed runs; the median and the
query count are printed per page or call.
"""
import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BATCH = 5000
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "EURJPY", "BTCUSD", "XAUUSD", "USDCHF")
DAYS = 90  # the history is spread over this many days before now


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--lanes", type=int, default=100_000)
    parser.add_argument("--active", type=int, default=10_000)
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep the data when the counts already match")
    return parser.parse_args()


def setup_django(database_url, reuse):
    if not database_url:
        folder = ROOT / ".tmp"
        folder.mkdir(exist_ok=True)
        path = folder / "dashboard_scale.sqlite3"
        if not reuse:  # a fresh file is much faster than deleting a million rows
            for stale in folder.glob(path.name + "*"):
                stale.unlink()
        database_url = f"sqlite:///{path}"
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-secret-key")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "martingale_project.settings")
    os.environ.setdefault("SECURE_HTTPS", "false")  # the test client speaks plain HTTP
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # no log line per login
    import django

    django.setup()
    return database_url


def insert(cursor, table, columns, rows):
    """Raw executemany in batches; returns the number of rows written."""
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    total, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            cursor.executemany(sql, batch)
            total += len(batch)
            batch = []
    if batch:
        cursor.executemany(sql, batch)
        total += len(batch)
    return total


def fill(args):
    """Accounts (each with settings), lanes and trades, with explicit ids so rows can refer to each other.

    Lane ``pk`` belongs to account ``(pk - 1) % accounts``; every ``lanes / active``-th lane of an
    account is active. Trades spread over the last DAYS days; 60 % belong to one of their account's
    lanes. The newest trade of each account is open on its first (active) lane; a few are queued.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from lanes import risk_blocks, summary
    from lanes.engine import round2, stake_at
    from lanes.models import Account, Lane, LaneEvent, RiskBlock, RiskChange, StatsBucket, StatsChange, Trade
    from settings_app.models import TradingSettings

    rng = random.Random(7)
    now = timezone.now()
    stakes = [stake_at(Decimal("1.00"), Decimal("2.20"), level) for level in range(8)]
    invested = [sum(stakes[: level + 1]) for level in range(8)]
    names = [f"acc{i:04d}" for i in range(args.accounts)]
    per_account = args.lanes // args.accounts
    active_every = max(args.lanes // max(args.active, 1), 1)
    lanes_of = [[a + 1 + args.accounts * j for j in range(per_account)] for a in range(args.accounts)]

    def lane_uid(pk):
        return f"lane{pk:08d}"

    def when(moment):
        return connection.ops.adapt_datetimefield_value(moment)

    def ago(seconds):
        return now - timedelta(seconds=seconds)

    def lane_rows():
        for pk in range(1, args.lanes + 1):
            account, index = (pk - 1) % args.accounts, (pk - 1) // args.accounts
            active = index % active_every == 0
            created = ago(rng.uniform(0, 30 * 3600) if active else rng.uniform(0, DAYS * 86400))
            level = rng.randint(1, 7)
            outcome = None if active else rng.choices(("recovered", "exhausted", "force_completed", "cancelled"), (70, 15, 10, 5))[0]
            status = "active" if active else ("cancelled" if outcome == "cancelled" else "completed")
            updated = created + timedelta(minutes=level)
            yield (
                pk, lane_uid(pk), names[account], rng.choice(SYMBOLS), status, level, "1.00", str(stakes[level]),
                "2.20", 7, str(invested[level]), str(round2(invested[level] * Decimal("1.85"))), json.dumps([f"x{pk}"]),
                when(created), when(updated), None if active else when(updated), outcome, when(updated),
            )

    def trade_rows():
        for pk in range(1, args.trades + 1):
            account = (pk - 1) % args.accounts
            requested = ago(rng.uniform(60, DAYS * 86400))
            status = rng.choices(("won", "lost", "draw"), (52, 46, 2))[0]
            lane_pk = rng.choice(lanes_of[account]) if rng.random() < 0.6 and lanes_of[account] else None
            if pk > args.trades - args.accounts and lanes_of[account]:  # each account's newest trade
                status, lane_pk, requested = "open", lanes_of[account][0], ago(30)
            elif pk > args.trades - 2 * args.accounts and rng.random() < 0.05:
                status, lane_pk, requested = "queued", None, ago(5)
            level = rng.randint(1, 7) if lane_pk else 0
            stake = stakes[level]
            profit = {"won": round2(stake * Decimal("0.85")), "lost": -stake, "draw": Decimal("0.00")}.get(status)
            queued = status == "queued"
            yield (
                pk, f"t{pk}", account + 1, rng.choice(SYMBOLS), "call", status,
                None if queued else ("lane" if lane_pk else "base"), lane_uid(lane_pk) if lane_pk else None,
                None if queued else level,
                None if queued else str(stake), None, str(round2(stake * Decimal("1.85"))), None,
                None if profit is None else str(profit), 60, when(requested), None if queued else when(requested),
                when(requested + timedelta(minutes=1)) if profit is not None else None,
                when(requested + timedelta(minutes=1)), "bench",
            )

    # Raw inserts without the statistics' triggers, then one rebuild of the running totals: what
    # the migration does on a database that already holds the rows (timed below).
    summary.drop_triggers()
    risk_blocks.drop_triggers()
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (LaneEvent, Trade, Lane, TradingSettings, Account, StatsChange, StatsBucket, RiskChange, RiskBlock):
            cursor.execute(f"DELETE FROM {model._meta.db_table}")
        insert(
            cursor, Account._meta.db_table,
            ("id", "worker_name", "is_demo", "enabled", "balance", "base_amount", "martingale_multiplier",
             "martingale_enabled", "created_at", "last_updated", "martingale_max_level", "payout_rate",
             "enhanced_martingale_enabled", "legacy_consecutive_losses"),
            ((i + 1, name, True, True, "5000.00", "1.00", "2.20", True, when(ago(DAYS * 86400)), when(now), 7,
              "0.8500", True, 0) for i, name in enumerate(names)),
        )
        insert(
            cursor, TradingSettings._meta.db_table,
            ("account_name", "concurrent_trading_enabled", "max_concurrent_lanes", "lane_assignment_strategy",
             "auto_create_lanes", "cool_down_seconds", "max_daily_lanes", "created_at", "updated_at"),
            ((name, i % 2 == 0, 10, "fifo", i % 50 != 0, 0, 50, when(now), when(now)) for i, name in enumerate(names)),
        )
        insert(
            cursor, Lane._meta.db_table,
            ("id", "lane_id", "account_name", "symbol", "status", "current_level", "base_amount", "current_amount",
             "multiplier", "max_level", "total_invested", "total_potential_payout", "trade_ids", "created_at",
             "updated_at", "completed_at", "outcome", "last_assigned_at"),
            lane_rows(),
        )
        insert(
            cursor, Trade._meta.db_table,
            ("id", "trade_id", "account_id", "symbol", "direction", "status", "kind", "lane_id", "level", "amount",
             "requested_payout", "expected_payout", "payout", "profit", "max_wait_seconds", "requested_at", "opened_at",
             "settled_at", "expires_at", "requested_by"),
            trade_rows(),
        )
    summary.install_triggers()
    started = time.perf_counter()
    summary.rebuild()
    print(f"running totals (lanes.summary) rebuilt in {time.perf_counter() - started:.1f} s")
    risk_blocks.install_triggers()
    started = time.perf_counter()
    risk_blocks.rebuild()
    print(f"risk blocks (lanes.risk_blocks) rebuilt in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE" if connection.vendor == "sqlite"
            else "ANALYZE TABLE accounts, martingale_lanes, martingale_trades, martingale_stats_buckets"
        )
        if connection.vendor != "sqlite":
            cursor.fetchall()


def counts():
    from lanes.models import Account, Lane, Trade

    return Account.objects.count(), Lane.objects.count(), Lane.objects.filter(status="active").count(), Trade.objects.count()


def measure(runs, account):
    from django.contrib.auth.models import User
    from django.test import Client

    from lanes import selectors, services
    from lanes.models import Lane

    user, _ = User.objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    lane_id = Lane.objects.filter(account_name=account).values_list("lane_id", flat=True).first()
    pages = [
        ("overview", "/"),
        ("overview (htmx partial)", "/overview/live/"),
        ("overview page 10", "/?page=10"),
        ("account page", f"/account/{account}/"),
        ("lane page", f"/lane/{lane_id}/"),
        ("settings page", f"/account/{account}/settings/"),
        ("stats, 1 day", "/stats/?days=1"),
        ("stats, 7 days", "/stats/?days=7"),
        ("stats, 30 days", "/stats/?days=30"),
        ("stats, 30 days, one account", f"/stats/?days=30&account={account}"),
    ]
    _, raw_token = services.token_create(name=f"bench-{os.getpid()}")
    bearer = {"Authorization": f"Bearer {raw_token}"}
    pages += [
        ("stats, 365 days", "/stats/?days=365"),
        ("GET /api/v1/status", "/api/v1/status", bearer),
        ("GET /api/v1/stats?days=30", "/api/v1/stats?days=30", bearer),
    ]
    calls = [
        (f"stats_get, {days} day{'s' if days > 1 else ''}", lambda days=days: selectors.stats_get(days=days))
        for days in (1, 7, 30, 365)
    ] + [
        ("stats_get, 30 days, one account", lambda: selectors.stats_get(days=30, account=account)),
    ] + [
        (f"risk_stats_get, {days} days", lambda days=days: selectors.risk_stats_get(days=days)) for days in (7, 30, 365)
    ] + [
        ("risk_stats_get, 30 days, one account", lambda: selectors.risk_stats_get(days=30, account=account)),
        ("status_all + JSON", lambda: json.dumps(selectors.status_all())),
    ]
    print(f"{'page':32} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'queries':>8}")
    for name, url, *headers in pages:
        headers = headers[0] if headers else {}
        timed(name, runs, lambda: client.get(url, headers=headers), url)
    print()
    for name, call in calls:
        timed(name, runs, call)


def timed(name, runs, call, url=None):
    """One warm-up (which also counts the queries), then ``runs`` timed calls; prints one row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = call()
    query_count = len(queries)  # now: the next requests reset the connection's query log
    if url is not None and response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    print(f"{name:32} {statistics.median(times):10.1f} {min(times):8.1f} {max(times):8.1f} {query_count:8d}")


def main():
    args = parse_args()
    url = setup_django(args.database_url, args.reuse)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    wanted = (args.accounts, args.lanes, args.active, args.trades)
    print(f"database: {connection.vendor} ({url.split('@')[-1]})")
    if args.reuse and counts() == wanted:
        print("reusing the data already there")
    else:
        started = time.perf_counter()
        fill(args)
        print(f"filled in {time.perf_counter() - started:.1f} s")
    accounts, lanes, active, trades = counts()
    from lanes.models import StatsBucket, StatsChange

    print(f"{accounts} accounts, {lanes} lanes ({active} active), {trades} trades; {args.runs} runs per page")
    print(f"running totals: {StatsBucket.objects.count()} buckets, {StatsChange.objects.count()} changes pending\n")
    measure(args.runs, f"acc{args.accounts // 2:04d}")


if __name__ == "__main__":
    main()
