"""The overview, an account page, a lane page and the statistics page run a fixed number of SQL
queries whatever the number of accounts, lanes and trades (issue #3's scale rule)."""
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lanes.models import Account, Lane, LaneEvent, Trade
from settings_app.models import TradingSettings

pytestmark = pytest.mark.django_db

# Session and user (2) plus each page's own reads; the same bound for small and large data.
# The overview and the account page read each account's active lock (SPEC §11): one query more.
BUDGET = {"overview": 11, "account": 11, "lane": 5, "stats": 11, "stats_account": 12}


def populate(accounts: int, lanes_per_account: int, trades_per_lane: int) -> None:
    """Accounts with settings, active and finished lanes, and settled, open and queued trades."""
    now = timezone.now()
    Account.objects.bulk_create(Account(worker_name=f"acc{i:04d}", balance=Decimal("100.00")) for i in range(accounts))
    TradingSettings.objects.bulk_create(
        TradingSettings(account_name=f"acc{i:04d}", concurrent_trading_enabled=True) for i in range(0, accounts, 2)
    )
    ids = dict(Account.objects.values_list("worker_name", "pk"))
    lanes = []
    for name in ids:
        for j in range(lanes_per_account):
            active = j % 3 == 0
            lanes.append(
                Lane(
                    lane_id=uuid.uuid4().hex, account_name=name, symbol=("EURUSD", "GBPUSD")[j % 2],
                    status="active" if active else "completed", outcome=None if active else ("recovered", "exhausted")[j % 2],
                    current_level=1 + j % 7, max_level=7, base_amount=Decimal("1.00"), current_amount=Decimal("2.00"),
                    multiplier=Decimal("2.00"), total_invested=Decimal("3.00"), created_at=now - timedelta(hours=j),
                    completed_at=None if active else now - timedelta(minutes=j),
                )
            )
    Lane.objects.bulk_create(lanes, batch_size=500)
    lanes = list(Lane.objects.values_list("lane_id", "account_name", "status"))
    trades, events = [], []
    for lane_id, name, status in lanes:
        for k in range(trades_per_lane):
            state = "open" if status == "active" and k == trades_per_lane - 1 else ("won", "lost", "draw")[k % 3]
            trades.append(
                Trade(
                    trade_id=uuid.uuid4().hex, account_id=ids[name], symbol="EURUSD", status=state, kind="lane", lane_id=lane_id,
                    level=k + 1, amount=Decimal("2.00"), expected_payout=Decimal("3.70"),
                    profit=None if state == "open" else {"won": Decimal("1.70"), "lost": Decimal("-2.00"), "draw": Decimal("0")}[state],
                    requested_at=now - timedelta(minutes=k), opened_at=now - timedelta(minutes=k),
                    settled_at=None if state == "open" else now,
                )
            )
            events.append(LaneEvent(lane_id=lane_id, account_name=name, kind="trade_assigned", actor="bot", created_at=now))
    for name, pk in ids.items():
        trades.append(Trade(trade_id=uuid.uuid4().hex, account_id=pk, symbol="EURUSD", status="queued", requested_at=now))
    Trade.objects.bulk_create(trades, batch_size=500)
    LaneEvent.objects.bulk_create(events, batch_size=500)


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        assert response.status_code == 200, url
    return len(queries)


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_user("boss", is_staff=True))
    return client


@pytest.mark.parametrize("accounts,lanes_per_account,trades_per_lane", [(2, 2, 2), (60, 9, 4)])
def test_pages_run_the_same_number_of_queries_whatever_the_data(
    staff_client, django_assert_max_num_queries, accounts, lanes_per_account, trades_per_lane
):
    populate(accounts, lanes_per_account, trades_per_lane)
    lane_id = Lane.objects.filter(account_name="acc0000").values_list("lane_id", flat=True).first()
    pages = {
        "overview": reverse("dashboard:overview"),
        "account": reverse("dashboard:account", args=["acc0000"]),
        "lane": reverse("dashboard:lane", args=[lane_id]),
        "stats": reverse("dashboard:stats") + "?days=30",
        "stats_account": reverse("dashboard:stats") + "?days=7&account=acc0001",
    }
    for page, url in pages.items():
        with django_assert_max_num_queries(BUDGET[page]):
            staff_client.get(url)


def test_small_and_large_data_need_exactly_as_many_queries(staff_client):
    populate(3, 3, 2)
    lane_id = Lane.objects.filter(account_name="acc0000").values_list("lane_id", flat=True).first()
    urls = [
        reverse("dashboard:overview"),
        reverse("dashboard:overview-partial"),
        reverse("dashboard:account", args=["acc0000"]),
        reverse("dashboard:lane", args=[lane_id]),
        reverse("dashboard:stats") + "?days=30",
    ]
    small = [count_queries(staff_client, url) for url in urls]
    Account.objects.bulk_create(Account(worker_name=f"more{i:03d}") for i in range(40))
    Lane.objects.bulk_create(
        Lane(
            lane_id=uuid.uuid4().hex, account_name="acc0000", symbol=f"S{i}", base_amount=Decimal("1"),
            current_amount=Decimal("2"), multiplier=Decimal("2"),
        )
        for i in range(80)
    )
    large = [count_queries(staff_client, url) for url in urls]
    assert small == large
