"""Database faults the service names and retries (lanes.faults): a table whose trigger the server
failed to load is retried on a new connection, then refused 503, never answered 500."""
import json

import pytest
from django.db import ProgrammingError, connection
from django.db.backends import utils as db_utils

from lanes import faults, services
from lanes.models import Trade

BROKEN = (1064, "Unknown trigger has an error in its body: 'Query was empty'")


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr(faults.time, "sleep", lambda seconds: None)


def broken_trigger_error() -> ProgrammingError:
    return ProgrammingError(*BROKEN)


def test_a_broken_trigger_is_a_busy_database_and_a_plain_syntax_error_a_bug():
    assert faults.classify(broken_trigger_error()) == faults.BUSY
    wrapped = ProgrammingError("wrapped")
    wrapped.__cause__ = broken_trigger_error()  # as Django raises it over MySQLdb's
    assert faults.classify(wrapped) == faults.BUSY
    assert faults.classify(ProgrammingError(1064, "You have an error in your SQL syntax near 'x'")) is None
    assert faults.classify(ProgrammingError(1146, "Unknown trigger has an error in its body")) is None


@pytest.mark.mysql  # SQLite's in-memory test database keeps its one connection
@pytest.mark.django_db(transaction=True)
def test_the_attempt_is_retried_on_a_new_connection(no_backoff):
    seen = []

    @faults.retried
    def work():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        seen.append(connection.connection)
        if len(seen) == 1:
            raise broken_trigger_error()
        return "done"

    assert work() == "done"
    assert len(seen) == 2 and seen[0] is not seen[1]  # the first connection was closed


@pytest.fixture
def bot(client):
    services.account_create(name="acc", values={"base_amount": "1.00", "balance": "1000.00"})
    token = services.token_create(name="bot")[1]

    def post(trade_id):
        response = client.post(
            "/api/v1/trades", json.dumps({"account": "acc", "symbol": "EURUSD", "trade_id": trade_id}),
            content_type="application/json", headers={"Authorization": f"Bearer {token}"},
        )
        return response.status_code, response.json()

    return post


def fail_trade_inserts(monkeypatch, times: int) -> list:
    failures = []
    execute = db_utils.CursorWrapper.execute

    def failing(self, sql, params=None):
        if sql.lstrip().upper().startswith("INSERT INTO") and "martingale_trades" in sql and len(failures) < times:
            failures.append(sql)
            raise broken_trigger_error()
        return execute(self, sql, params)

    monkeypatch.setattr(db_utils.CursorWrapper, "execute", failing)
    return failures


@pytest.mark.django_db(transaction=True)
def test_a_trade_request_that_meets_a_broken_trigger_once_opens_the_trade_once(bot, monkeypatch, no_backoff):
    failures = fail_trade_inserts(monkeypatch, times=1)
    status, body = bot("t1")
    assert status == 201, body
    assert (body["status"], body["amount"]) == ("open", "1.00")
    assert len(failures) == 1
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["t1"]


@pytest.mark.django_db(transaction=True)
def test_a_trigger_that_stays_broken_is_refused_503_and_writes_nothing(bot, monkeypatch, no_backoff):
    failures = fail_trade_inserts(monkeypatch, times=faults.ATTEMPTS)
    status, body = bot("t1")
    assert status == 503, body
    assert body["error"]["code"] == "database_busy"
    assert len(failures) == faults.ATTEMPTS
    assert not Trade.objects.exists()
