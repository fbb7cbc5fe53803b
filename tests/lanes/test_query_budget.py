"""At most 8 SQL statements per trade request and per result, however many lanes and trades
exist (issue #2's performance rule); the count includes the token look-up and BEGIN/COMMIT."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from lanes import engine, services

pytestmark = pytest.mark.django_db(transaction=True)
BUDGET = 8


@pytest.fixture
def bearer():
    services.account_create(name="acc", values={"base_amount": "1.00", "martingale_multiplier": "1.50"})
    services.settings_update(
        account_name="acc", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 10, "max_daily_lanes": 50},
        actor="test",
    )
    _, raw = services.token_create(name="bot", account_names=["acc"])
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _history(lanes: int, settled: int):
    """Other accounts' and this account's past: `lanes` lanes and `settled` settled trades."""
    start = timezone.now() - timedelta(days=2)
    services.account_create(name="other", values={})
    for i in range(settled):
        at = start + timedelta(seconds=i)
        name = "acc" if i % 2 else "other"
        services.trade_open(account_name=name, request=engine.Request(trade_id=f"h{i}", symbol="EURUSD"), actor="t", now=at)
        services.trade_settle(trade_id=f"h{i}", result="win", actor="t", now=at)
    for i in range(lanes):
        at = start + timedelta(hours=1, seconds=i)
        services.trade_open(account_name="acc", request=engine.Request(trade_id=f"l{i}", symbol="EURUSD"), actor="t", now=at)
        services.trade_settle(trade_id=f"l{i}", result="loss", actor="t", now=at)


def _post(client, headers, path, body):
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


@pytest.mark.parametrize("lanes,settled", [(0, 0), (3, 40), (9, 400)])
def test_request_and_result_stay_within_the_statement_budget(client, bearer, django_assert_max_num_queries, lanes, settled):
    _history(lanes, settled)
    with django_assert_max_num_queries(BUDGET):
        answer = _post(client, bearer, "/api/v1/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "q1"})
    assert answer.status_code == 201
    assert answer.json()["kind"] == ("lane" if lanes else "base")
    with django_assert_max_num_queries(BUDGET):
        answer = _post(client, bearer, "/api/v1/trades/q1/result", {"result": "loss"})
    assert answer.status_code == 200
    assert answer.json()["status"] == "lost"
