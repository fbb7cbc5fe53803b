"""The status of every account (GET /api/v1/status, selectors.status_all) reads the active lanes
as plain values and writes their documents itself: it must give, byte for byte, what
``lane_json`` and ``status_json`` make of the model instances (the dashboard's path), in a
number of queries that does not depend on the number of accounts, lanes or trades."""
import json
import random
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lanes import engine, selectors, services
from lanes.models import Account, Lane, Trade
from lanes.selectors.accounts import account_list
from lanes.selectors.status import account_summaries, status_json
from lanes.serializers import iso

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 9, 30, 15, 250000, tzinfo=dt_timezone.utc)


def model_status(now, account_names=None):
    """status_all as it was: model instances through lane_json."""
    accounts = account_list(account_names=account_names, enabled_only=True)
    return {"generated_at": iso(now), "accounts": [status_json(s) for s in account_summaries(accounts, now)]}


def money(rng, low, high):
    return Decimal(rng.randint(int(low * 100), int(high * 100))) / 100


def build(seed, accounts=6, lanes=40):
    """Accounts of several ladders and payout rates (one disabled), active lanes of every level
    (some at the last, some full, some stuck, some with an open trade), finished lanes, open and
    queued trades."""
    rng = random.Random(seed)
    names = []
    for n in range(accounts):
        name = f"st{seed}x{n}"
        names.append(name)
        services.account_create(
            name=name,
            values={
                "base_amount": str(rng.choice(["1.00", "2.50", "0.35"])), "martingale_multiplier": rng.choice(["2.00", "2.20", "1.75"]),
                "martingale_max_level": rng.choice([3, 5, 7]), "balance": str(money(rng, 0, 5000)),
                "payout_rate": rng.choice(["0.8500", "0.9200", "0.7000"]),
            },
        )
        if rng.random() < 0.5:
            services.settings_update(
                account_name=name, values={"concurrent_trading_enabled": True, "max_concurrent_lanes": rng.randint(1, 6)}, actor="t"
            )
    Account.objects.filter(worker_name=names[-1]).update(enabled=False)
    accounts_by_name = {a.worker_name: a for a in Account.objects.filter(worker_name__in=names)}
    rows = []
    for n in range(lanes):
        name = rng.choice(names)
        account = accounts_by_name[name]
        level = rng.randint(1, account.martingale_max_level)
        created = NOW - timedelta(hours=rng.uniform(0, 72))
        if rng.random() < 0.15:
            created = created.replace(microsecond=0)
        updated = created + timedelta(minutes=rng.randint(0, 3000))
        full = rng.random() < 0.1
        rows.append(
            Lane(
                lane_id=f"{name}-L{n}", account_name=name, symbol=rng.choice(["EURUSD", "GBPUSD", "XAUUSD"]),
                status="active" if rng.random() < 0.8 else "completed", current_level=level,
                base_amount=account.base_amount, current_amount=money(rng, 0.01, 500),
                multiplier=account.martingale_multiplier, max_level=account.martingale_max_level,
                total_invested=Decimal("99999999.00") if full else money(rng, 0, 9999),
                total_potential_payout=money(rng, 0, 99999), trade_ids=[f"x{n}-{i}" for i in range(rng.randint(0, 8))],
                created_at=created, updated_at=min(updated, NOW), outcome=None,
            )
        )
    Lane.objects.bulk_create(rows)
    for lane in Lane.objects.filter(account_name__in=names, status="active"):
        if rng.random() < 0.5:
            Trade.objects.create(
                trade_id=f"open-{lane.lane_id}", account=accounts_by_name[lane.account_name], symbol=lane.symbol, status="open",
                kind="lane", lane_id=lane.lane_id, level=lane.current_level, amount=lane.current_amount,
                requested_at=NOW - timedelta(minutes=rng.randint(1, 30)), opened_at=NOW - timedelta(minutes=rng.randint(1, 30)),
            )
    for n in range(8):
        Trade.objects.create(
            trade_id=f"q{seed}-{n}", account=accounts_by_name[rng.choice(names)], symbol="EURUSD", status="queued",
            requested_at=NOW - timedelta(seconds=rng.randint(1, 50)), expires_at=NOW + timedelta(seconds=30),
        )
    return names


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_status_of_every_account_is_the_document_of_the_models(seed):
    names = build(seed)
    if connection.vendor == "sqlite":
        # Times written by hand: a millisecond fraction and a zero fraction, as text.
        first, second = Lane.objects.filter(status="active", account_name__in=names[:-1]).values_list("lane_id", flat=True)[:2]
        with connection.cursor() as cursor:
            for column, value, lane_id in (("created_at", "2026-11-01 08:00:00.123", first), ("updated_at", "2026-11-01 08:00:00.000000", second)):
                cursor.execute(f"UPDATE martingale_lanes SET {column} = %s WHERE lane_id = %s", [value, lane_id])
                assert cursor.rowcount == 1
    for now in (NOW, NOW + timedelta(days=2)):  # stuck lanes only on the second
        new = selectors.status_all(now=now)
        assert new == model_status(now)
        assert json.dumps(new) == json.dumps(model_status(now))
        scoped = selectors.status_all(now=now, account_names=names[:2])
        assert scoped == model_status(now, account_names=names[:2])
    document = selectors.status_all(now=NOW + timedelta(days=2))
    warnings = {w["kind"] for item in document["accounts"] for w in item["warnings"]}
    assert {"full-lanes", "last-level", "stuck"} <= warnings
    assert any(lane["open_trade_id"] for item in document["accounts"] for lane in item["active_lanes"])


def test_status_of_every_account_with_no_account():
    assert selectors.status_all(now=NOW) == model_status(NOW) == {"generated_at": iso(NOW), "accounts": []}


@pytest.mark.parametrize("accounts, lanes", [(1, 3), (4, 30), (12, 150)])
def test_status_of_every_account_runs_a_fixed_number_of_queries(accounts, lanes):
    build(7 + accounts, accounts=accounts + 1, lanes=lanes)
    with CaptureQueriesContext(connection) as queries:
        selectors.status_all(now=NOW)
    assert len(queries) == 6  # accounts, live trades, lanes, today's lanes, today's profit, active locks


def test_a_lane_is_judged_full_by_the_engine():
    """The lanes that cannot take a trade at their stake (their totals would leave DECIMAL(10,2))
    are the ones engine.lane_is_full names, whatever their trade ids."""
    build(21, lanes=60)
    document = selectors.status_all(now=NOW)
    rates = {a.worker_name: a.payout_rate for a in Account.objects.all()}
    for item in document["accounts"]:
        full = sum(
            engine.lane_is_full(
                engine.Lane(
                    lane_id=lane["lane_id"], symbol=lane["symbol"], base_amount=Decimal(lane["base_amount"]),
                    current_amount=Decimal(lane["current_amount"]), multiplier=Decimal(lane["multiplier"]),
                    max_level=lane["max_level"], created_at=NOW, total_invested=Decimal(lane["total_invested"]),
                    total_potential_payout=Decimal(lane["total_potential_payout"]), trade_ids=lane["trade_ids"],
                ),
                rates[item["account"]["worker_name"]],
            )
            for lane in item["active_lanes"]
        )
        assert any(w["kind"] == "full-lanes" for w in item["warnings"]) == bool(full)
