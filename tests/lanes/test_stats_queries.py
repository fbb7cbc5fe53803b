"""The statistics run a fixed number of queries, whatever the window and the amount of data: over
every account, the running totals (lanes.summary, one statement) and one GROUP BY over the lanes
and one over the trades at the window's two ends; for one account or a token's accounts, one GROUP
BY over the lanes and one over the trades (plus the account look-up for one account)."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lanes import selectors
from lanes.models import Account, Lane, Trade

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=dt_timezone.utc)
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY")
STATUSES = ("won", "lost", "draw", "open", "cancelled")
OUTCOMES = ("recovered", "exhausted", "force_completed", "cancelled", None)


def fill(accounts: int, per_account: int) -> list[str]:
    """Lanes and trades of every symbol, level, status and outcome, spread over the last 40 days."""
    names = [f"acc{i}" for i in range(accounts)]
    rows = [
        Account(worker_name=name, balance="100.00", base_amount="1.00", martingale_multiplier="2.00")
        for name in names
    ]
    Account.objects.bulk_create(rows)
    lanes, trades = [], []
    for a, account in enumerate(Account.objects.order_by("pk")):
        for i in range(per_account):
            at = NOW - timedelta(hours=(i * 7 + a * 3) % (40 * 24), minutes=i % 60)
            outcome = OUTCOMES[i % len(OUTCOMES)]
            lanes.append(
                Lane(
                    lane_id=f"{account.worker_name}-L{i}", account_name=account.worker_name, symbol=SYMBOLS[i % 3],
                    status="active" if outcome is None else ("cancelled" if outcome == "cancelled" else "completed"),
                    current_level=1 + i % 4, base_amount="1.00", current_amount="1.00", multiplier="2.00",
                    max_level=4, total_invested="3.00", total_potential_payout="5.55", outcome=outcome,
                    created_at=at, updated_at=at,
                )
            )
            status = STATUSES[i % len(STATUSES)]
            trades.append(
                Trade(
                    trade_id=f"{account.worker_name}-t{i}", account=account, symbol=SYMBOLS[(i + 1) % 3],
                    status=status, level=i % 5 or None, amount="1.00",
                    profit={"won": "0.85", "lost": "-1.00", "draw": "0.00"}.get(status),
                    requested_at=at, opened_at=at,
                )
            )
    Lane.objects.bulk_create(lanes)
    Trade.objects.bulk_create(trades)
    return names


def count_queries(**kwargs) -> int:
    with CaptureQueriesContext(connection) as queries:
        stats = selectors.stats_get(now=NOW, **kwargs)
    assert len(stats["daily"]) == kwargs["days"] + 1
    return len(queries)


@pytest.mark.parametrize("accounts, per_account", [(0, 0), (1, 3), (4, 60)], ids=["empty", "small", "larger"])
def test_stats_query_count_does_not_depend_on_the_window_or_the_data(accounts, per_account, django_assert_max_num_queries):
    names = fill(accounts, per_account)
    with django_assert_max_num_queries(3):
        selectors.stats_get(days=30, now=NOW)
    assert {count_queries(days=days) for days in (1, 7, 30, 365)} == {3}
    if names:
        assert {count_queries(days=days, account_names=names[:2]) for days in (1, 30)} == {2}
        with django_assert_max_num_queries(3):
            selectors.stats_get(days=30, account=names[0], now=NOW)
        assert {count_queries(days=days, account=names[0]) for days in (1, 30)} == {3}


def test_stats_of_a_larger_history_add_up_across_totals_levels_symbols_and_days():
    fill(4, 60)
    stats = selectors.stats_get(days=30, now=NOW)
    for key in ("trades", "wins", "losses", "draws"):
        assert sum(row[key] for row in stats["daily"]) == stats[key]
        assert sum(row[key] for row in stats["by_level"]) == stats[key]
        assert sum(row[key] for row in stats["by_symbol"]) == stats[key]
    assert sum(row["lanes_created"] for row in stats["daily"]) == stats["lanes_created"]
    assert sum(row["lanes_created"] for row in stats["by_symbol"]) == stats["lanes_created"]
    for key in ("lanes_recovered", "lanes_exhausted"):
        assert sum(row[key] for row in stats["by_level"]) == stats[key]
    window = Trade.objects.filter(opened_at__gte=NOW - timedelta(days=30), opened_at__lte=NOW)
    assert stats["trades"] == window.count()
    assert stats["wins"] == window.filter(status="won").count()
