"""Database faults the service names and retries (lanes.faults): a statement that meets a trigger the
database server failed to load clears the server's cached tables and is retried, then refused 503,
never answered 500."""
import json
import logging
from pathlib import Path

import pytest
from django.db import ProgrammingError, connection
from django.db.backends import utils as db_utils

from lanes import faults, services
from lanes.models import Trade

UNKNOWN = (1064, "Unknown trigger has an error in its body: 'Query was empty'")  # as seen on Galera
NAMED = (1064, "Trigger 'probe_insert' has an error in its body: 'You have an error in your SQL syntax'")


@pytest.fixture(autouse=True)
def fresh_flushes(monkeypatch):
    monkeypatch.setattr(faults._Flushes, "at", float("-inf"))
    monkeypatch.setattr(faults._Flushes, "denied", False)


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr(faults.time, "sleep", lambda seconds: None)


def test_a_broken_trigger_is_a_busy_database_and_a_plain_syntax_error_a_bug():
    assert faults.classify(ProgrammingError(*UNKNOWN)) == faults.BUSY
    assert faults.classify(ProgrammingError(*NAMED)) == faults.BUSY
    wrapped = ProgrammingError("wrapped")
    wrapped.__cause__ = ProgrammingError(*UNKNOWN)  # as Django raises it over MySQLdb's
    assert faults.classify(wrapped) == faults.BUSY
    assert faults.classify(ProgrammingError(1064, "You have an error in your SQL syntax near 'x'")) is None
    assert faults.classify(ProgrammingError(1146, "Unknown trigger has an error in its body")) is None


@pytest.fixture
def probe_table(transactional_db):
    """A table with a trigger, and its .TRG file on the test server's disk (`make test` runs it here)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE faults_probe (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
        cursor.execute("CREATE TABLE faults_probe_log (id INT PRIMARY KEY AUTO_INCREMENT, v INT)")
        cursor.execute(
            "CREATE TRIGGER probe_insert AFTER INSERT ON faults_probe FOR EACH ROW "
            "BEGIN INSERT INTO faults_probe_log (v) VALUES (NEW.v); END"
        )
        cursor.execute("SELECT @@datadir, DATABASE()")
        datadir, name = cursor.fetchone()
    trg = Path(datadir) / name / "faults_probe.TRG"
    assert trg.exists(), f"the test database server keeps its files elsewhere than {trg}"
    yield trg
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS faults_probe, faults_probe_log")


def insert(v):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO faults_probe (v) VALUES (%s)", [v])


def cache_a_broken_trigger(trg: Path) -> None:
    """Leave in the server's table cache an instance of faults_probe whose trigger failed to parse,
    with the trigger on disk sound again: what the Galera node kept."""
    sound = trg.read_text()
    trg.write_text(sound.replace("INSERT INTO faults_probe_log", "INSERT INTO INTO faults_probe_log"))
    with connection.cursor() as cursor:
        cursor.execute("FLUSH LOCAL TABLES faults_probe")
    with pytest.raises(ProgrammingError, match="has an error in its body"):
        insert(1)
    trg.write_text(sound)
    connection.close()
    with pytest.raises(ProgrammingError, match="has an error in its body"):  # on a new connection too
        insert(2)


@pytest.mark.mysql
def test_a_cached_broken_trigger_is_flushed_and_the_statement_retried(probe_table, no_backoff, caplog):
    cache_a_broken_trigger(probe_table)
    attempts = []

    @faults.retried
    def work():
        attempts.append(1)
        insert(3)
        return "done"

    with caplog.at_level(logging.WARNING, logger="lanes.faults"):
        assert work() == "done"
    assert len(attempts) == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT v FROM faults_probe_log")
        assert cursor.fetchall() == ((3,),)  # the trigger ran, once
    assert "`faults_probe`" in caplog.text.split("flushed")[1]


@pytest.mark.mysql
def test_without_the_reload_privilege_it_says_so_once_and_retries_on_new_connections(
    probe_table, no_backoff, monkeypatch, caplog
):
    cache_a_broken_trigger(probe_table)
    execute = db_utils.CursorWrapper.execute

    def no_reload(self, sql, params=None):
        if sql.startswith("FLUSH"):
            raise ProgrammingError(1227, "Access denied; you need (at least one of) the RELOAD privilege(s)")
        return execute(self, sql, params)

    monkeypatch.setattr(db_utils.CursorWrapper, "execute", no_reload)
    connections = []

    @faults.retried
    def work():
        connection.ensure_connection()
        connections.append(connection.connection)
        insert(3)
        return "done"

    with caplog.at_level(logging.WARNING, logger="lanes.faults"):
        try:
            outcome = work()
        except faults.DatabaseBusy:  # every new connection met the cached instance
            outcome = "busy"
    assert caplog.text.count("grant it RELOAD") == 1
    assert faults._Flushes.denied
    assert len(connections) >= 2 and len({id(c) for c in connections}) == len(connections)  # a new one each time
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM faults_probe_log")
        assert cursor.fetchone() == ((1,) if outcome == "done" else (0,))


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
            raise ProgrammingError(*UNKNOWN)
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
