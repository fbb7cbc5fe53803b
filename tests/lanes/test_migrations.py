"""`manage.py migrate` creates a fresh database with the seed DDL's columns, and adopts a database
the old bot made (its three tables already there, with rows) without losing or changing a row."""
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from lanes import engine, services
from lanes.models import Account, Lane

pytestmark = pytest.mark.django_db(transaction=True)

SEED_COLUMNS = {
    "accounts": [
        "id", "worker_name", "is_demo", "enabled", "balance", "base_amount", "martingale_multiplier",
        "martingale_enabled", "created_at", "last_updated",
    ],
    "martingale_lanes": [
        "id", "lane_id", "account_name", "symbol", "status", "current_level", "base_amount",
        "current_amount", "multiplier", "max_level", "total_invested", "total_potential_payout",
        "trade_ids", "created_at", "updated_at", "completed_at",
    ],
    "trading_settings": [
        "id", "account_name", "concurrent_trading_enabled", "max_concurrent_lanes",
        "lane_assignment_strategy", "auto_create_lanes", "cool_down_seconds", "max_daily_lanes",
        "created_at", "updated_at",
    ],
}

# The old bot's DDL: the description's two tables and the accounts table of SPEC §1.
OLD_DDL = [
    """CREATE TABLE accounts (
        id INTEGER PRIMARY KEY AUTO_INCREMENT,
        worker_name VARCHAR(100) UNIQUE NOT NULL,
        is_demo BOOLEAN DEFAULT TRUE,
        enabled BOOLEAN DEFAULT TRUE,
        balance DECIMAL(10,2) DEFAULT 0.00,
        base_amount DECIMAL(10,2) DEFAULT 1.00,
        martingale_multiplier DECIMAL(5,2) DEFAULT 2.00,
        martingale_enabled BOOLEAN DEFAULT TRUE,
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        last_updated TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
    )""",
    """CREATE TABLE martingale_lanes (
        id INTEGER PRIMARY KEY AUTO_INCREMENT,
        lane_id VARCHAR(100) UNIQUE NOT NULL,
        account_name VARCHAR(100) NOT NULL,
        symbol VARCHAR(50) NOT NULL,
        status ENUM('active', 'completed', 'cancelled') DEFAULT 'active',
        current_level INTEGER DEFAULT 1,
        base_amount DECIMAL(10,2) NOT NULL,
        current_amount DECIMAL(10,2) NOT NULL,
        multiplier DECIMAL(5,2) NOT NULL,
        max_level INTEGER DEFAULT 7,
        total_invested DECIMAL(10,2) DEFAULT 0.00,
        total_potential_payout DECIMAL(10,2) DEFAULT 0.00,
        trade_ids TEXT DEFAULT '[]',
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
        completed_at TIMESTAMP NULL
    )""",
    """CREATE TABLE trading_settings (
        id INTEGER PRIMARY KEY AUTO_INCREMENT,
        account_name VARCHAR(100) UNIQUE NOT NULL,
        concurrent_trading_enabled BOOLEAN DEFAULT FALSE,
        max_concurrent_lanes INTEGER DEFAULT 3,
        lane_assignment_strategy ENUM('fifo', 'round_robin', 'symbol_priority') DEFAULT 'fifo',
        auto_create_lanes BOOLEAN DEFAULT TRUE,
        cool_down_seconds INTEGER DEFAULT 0,
        max_daily_lanes INTEGER DEFAULT 10,
        created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
        updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
    )""",
]

OLD_ROWS = [
    "INSERT INTO accounts (worker_name, is_demo, enabled, balance, base_amount, martingale_multiplier,"
    " martingale_enabled, created_at, last_updated) VALUES"
    " ('pelly_demo', 1, 1, 1234.56, 2.00, 1.50, 1, '2025-06-01 10:00:00', '2025-06-02 11:00:00'),"
    " ('pelly_real', 0, 0, 0.00, 5.00, 2.00, 0, '2025-06-01 10:00:00', '2025-06-01 10:00:00')",
    "INSERT INTO martingale_lanes (lane_id, account_name, symbol, status, current_level, base_amount,"
    " current_amount, multiplier, max_level, total_invested, total_potential_payout, trade_ids,"
    " created_at, updated_at, completed_at) VALUES"
    " ('old-lane-1', 'pelly_demo', 'EURUSD', 'active', 2, 2.00, 4.50, 1.50, 7, 5.00, 9.25,"
    " '[\"a1\", \"a2\"]', '2025-06-03 09:00:00', '2025-06-03 09:05:00', NULL),"
    " ('old-lane-2', 'pelly_demo', 'GBPUSD', 'completed', 1, 2.00, 3.00, 1.50, 7, 2.00, 3.70,"
    " '[\"b1\"]', '2025-06-03 08:00:00', '2025-06-03 08:30:00', '2025-06-03 08:30:00')",
    "INSERT INTO trading_settings (account_name, concurrent_trading_enabled, max_concurrent_lanes,"
    " lane_assignment_strategy, auto_create_lanes, cool_down_seconds, max_daily_lanes, created_at,"
    " updated_at) VALUES ('pelly_demo', 1, 5, 'round_robin', 1, 0, 20, '2025-06-01 10:00:00',"
    " '2025-06-01 10:00:00')",
]


def _for_sqlite(ddl: str) -> str:
    """SQLite spelling of the MySQL DDL: no AUTO_INCREMENT keyword, ENUM, ON UPDATE or TIMESTAMP NULL."""
    import re

    ddl = ddl.replace("INTEGER PRIMARY KEY AUTO_INCREMENT", "INTEGER PRIMARY KEY AUTOINCREMENT")
    ddl = re.sub(r"ENUM\(([^)]*)\)", "VARCHAR(20)", ddl)
    return ddl.replace(" ON UPDATE CURRENT_TIMESTAMP", "").replace("TIMESTAMP NULL", "TIMESTAMP")


def _columns(table):
    with connection.cursor() as cursor:
        return [c.name for c in connection.introspection.get_table_description(cursor, table)]


def _rows(table):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(SEED_COLUMNS[table])} FROM {table} ORDER BY id")
        return cursor.fetchall()


@pytest.fixture
def old_bot_database():
    """The project's tables removed and the old bot's tables created with rows; migrated back after."""
    call_command("migrate", "settings_app", "zero", verbosity=0)
    try:
        with connection.cursor() as cursor:
            for ddl in OLD_DDL:
                cursor.execute(ddl if connection.vendor == "mysql" else _for_sqlite(ddl))
            for insert in OLD_ROWS:
                cursor.execute(insert)
        yield
    finally:
        call_command("migrate", verbosity=0)


def test_fresh_database_has_the_seed_columns_in_order_then_the_project_columns():
    for table, seed in SEED_COLUMNS.items():
        assert _columns(table)[: len(seed)] == seed
    assert _columns("accounts")[len(SEED_COLUMNS["accounts"]):] == [
        "martingale_max_level", "payout_rate", "enhanced_martingale_enabled", "legacy_consecutive_losses",
    ]


@pytest.mark.mysql
def test_fresh_mysql_columns_have_the_seed_ddl_types():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, column_type FROM information_schema.columns"
            " WHERE table_schema = DATABASE() AND table_name IN ('martingale_lanes', 'trading_settings', 'accounts')"
        )
        types = {(t, c): ty.lower() for t, c, ty in cursor.fetchall()}
    assert types[("martingale_lanes", "lane_id")] == "varchar(100)"
    assert types[("martingale_lanes", "symbol")] == "varchar(50)"
    assert types[("martingale_lanes", "status")] == "enum('active','completed','cancelled')"
    assert types[("martingale_lanes", "base_amount")] == "decimal(10,2)"
    assert types[("martingale_lanes", "multiplier")] == "decimal(5,2)"
    assert types[("martingale_lanes", "trade_ids")] == "text"
    assert types[("trading_settings", "lane_assignment_strategy")] == "enum('fifo','round_robin','symbol_priority')"
    assert types[("accounts", "martingale_multiplier")] == "decimal(5,2)"
    assert types[("accounts", "payout_rate")] == "decimal(5,4)"


def test_migrate_adopts_the_old_bots_tables_without_changing_a_row(old_bot_database):
    before = {table: _rows(table) for table in SEED_COLUMNS}
    call_command("migrate", verbosity=0)
    assert {table: _rows(table) for table in SEED_COLUMNS} == before
    assert "payout_rate" in _columns("accounts")
    assert "outcome" in _columns("martingale_lanes")
    demo = Account.objects.get(worker_name="pelly_demo")
    assert (demo.balance, demo.base_amount, demo.martingale_multiplier) == (Decimal("1234.56"), Decimal("2.00"), Decimal("1.50"))
    assert (demo.martingale_max_level, demo.payout_rate, demo.enhanced_martingale_enabled) == (7, Decimal("0.8500"), True)
    lane = Lane.objects.get(lane_id="old-lane-1")
    assert (lane.trade_ids, lane.current_level, lane.current_amount) == (["a1", "a2"], 2, Decimal("4.50"))


def test_adopted_lanes_and_settings_drive_the_engine(old_bot_database):
    call_command("migrate", verbosity=0)
    now = datetime(2026, 11, 2, 9, 0, tzinfo=dt_timezone.utc)
    outcome = services.trade_open(
        account_name="pelly_demo", request=engine.Request(trade_id="new-1", symbol="EURUSD"), actor="test", now=now
    )
    # The old lane at level 2 takes the trade: its stake is the stored current_amount.
    assert (outcome.trade.kind, outcome.trade.level, outcome.trade.amount) == ("lane", 2, Decimal("4.50"))
    lane = Lane.objects.get(lane_id="old-lane-1")
    assert lane.trade_ids == ["a1", "a2", "new-1"]
    assert lane.total_invested == Decimal("9.50")
