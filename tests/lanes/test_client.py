"""lanes.client.MartingaleClient against a real server (pytest-django's live_server), and its
retries against a scripted local HTTP server."""
import json
import socket
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from lanes import client as client_module
from lanes import services
from lanes.client import ApiError, MartingaleClient
from lanes.models import Lane, Trade


@pytest.fixture
def bot(live_server):
    services.account_create(name="acc", values={"base_amount": "1.00", "martingale_multiplier": "1.50"})
    services.account_create(name="other", values={})
    _, raw = services.token_create(name="bot", account_names=["acc"])
    return MartingaleClient(live_server.url, raw, timeout=5, retries=1, backoff=0.01)


@pytest.mark.django_db(transaction=True)
def test_bot_flow_through_the_client(bot):
    first = bot.request_trade("acc", "EURUSD", direction="call")
    assert (first["status"], first["kind"], first["amount"]) == ("open", "base", "1.00")
    lost = bot.report_result(first["trade_id"], "loss")
    assert (lost["status"], lost["lane"]["current_amount"]) == ("lost", "1.50")

    second = bot.request_trade("acc", "EURUSD", expected_payout=Decimal("2.80"))
    assert (second["kind"], second["level"], second["amount"], second["expected_payout"]) == (
        "lane", 1, "1.50", "2.80"
    )
    assert bot.trade(second["trade_id"]) == second
    won = bot.report_result(second["trade_id"], "win", payout="2.80")
    assert (won["profit"], won["lane"]["outcome"]) == ("1.30", "recovered")

    assert bot.lanes(account="acc", status="completed")[0]["lane_id"] == lost["lane"]["lane_id"]
    assert bot.stats("acc", days=1)["lanes_recovered"] == 1
    assert bot.stats(days=1)["trades"] == 2
    assert [entry["account"]["worker_name"] for entry in bot.status()["accounts"]] == ["acc"]
    assert bot.status("acc")["free_slots"] == 1
    assert bot.health()["database"]["status"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_the_client_follows_the_lane_pages_and_switches_an_account_with_its_warning(bot):
    services.settings_update(account_name="acc", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 3}, actor="t")
    trades = [bot.request_trade("acc", "EURUSD") for _ in range(3)]
    lanes = [bot.report_result(trade["trade_id"], "loss")["lane"]["lane_id"] for trade in trades]
    assert [lane["lane_id"] for lane in bot.lanes(account="acc", page_size=1)] == lanes  # three pages of one
    changed = bot.update_account("acc", martingale_enabled=False)
    assert [(w["code"], w["active_lanes"]) for w in changed["warnings"]] == [("lanes_take_no_trades", 3)]
    done = bot.update_account("acc", martingale_enabled=True, complete_active_lanes=True)
    assert (done["warnings"], sorted(done["completed_lanes"])) == ([], sorted(lanes))
    assert bot.account("acc")["martingale_enabled"] is True


@pytest.mark.django_db(transaction=True)
def test_generated_trade_ids_make_a_repeated_request_idempotent(bot):
    first = bot.request_trade("acc", "EURUSD", trade_id="fixed-1")
    again = bot.request_trade("acc", "EURUSD", trade_id="fixed-1")
    assert again == first
    other = bot.request_trade("acc", "EURUSD")
    assert other["trade_id"] not in ("fixed-1", "") and Trade.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_cancel_and_wait_until_open_follow_the_queue(bot):
    first = bot.request_trade("acc", "EURUSD")
    queued = bot.request_trade("acc", "EURUSD")
    behind = bot.request_trade("acc", "EURUSD")
    assert (queued["status"], queued["queue_position"], behind["queue_position"]) == ("queued", 1, 2)
    with pytest.raises(TimeoutError):
        bot.wait_until_open(queued["trade_id"], timeout=0.2, interval=0.05)
    assert bot.cancel(queued["trade_id"])["status"] == "cancelled"
    bot.report_result(first["trade_id"], "win")
    opened = bot.wait_until_open(behind["trade_id"], timeout=2, interval=0.05)
    assert (opened["status"], opened["kind"]) == ("open", "base")


@pytest.mark.django_db(transaction=True)
def test_settings_and_complete_lane_through_the_client(bot):
    assert bot.settings("acc")["max_concurrent_lanes"] == 3
    changed = bot.update_settings("acc", concurrent_trading_enabled=True, max_concurrent_lanes=2)
    assert (changed["concurrent_trading_enabled"], changed["max_concurrent_lanes"]) == (True, 2)
    trade = bot.request_trade("acc", "EURUSD")
    lane = bot.report_result(trade["trade_id"], "loss")["lane"]
    assert bot.lane(lane["lane_id"])["events"][0]["kind"] == "created"
    done = bot.complete_lane(lane["lane_id"], status="cancelled")
    assert (done["status"], Lane.objects.get().outcome) == ("cancelled", "cancelled")


@pytest.mark.django_db(transaction=True)
def test_error_answers_raise_api_error_with_code_fields_and_retry_after(bot):
    with pytest.raises(ApiError) as invalid:
        bot.request_trade("acc", "EUR USD")
    assert (invalid.value.status, invalid.value.code, set(invalid.value.fields)) == (400, "invalid", {"symbol"})
    with pytest.raises(ApiError) as forbidden:
        bot.request_trade("other", "EURUSD")
    assert (forbidden.value.status, forbidden.value.code) == (403, "forbidden")
    with pytest.raises(ApiError) as missing:
        bot.trade("nope")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    bot.request_trade("acc", "EURUSD")
    with pytest.raises(ApiError) as busy:
        bot.request_trade("acc", "EURUSD", max_wait_seconds=0)
    assert (busy.value.status, busy.value.code, busy.value.retry_after) == (409, "busy", 1)
    with pytest.raises(ApiError) as bad_path:
        bot.trade("a b c")
    assert (bad_path.value.status, set(bad_path.value.fields)) == (400, {"trade_id"})


def test_float_money_is_refused_before_sending():
    bot = MartingaleClient("http://127.0.0.1:9", "token")
    with pytest.raises(TypeError):
        bot.request_trade("acc", "EURUSD", expected_payout=1.85)
    with pytest.raises(TypeError):
        bot.report_result("t1", "win", payout=2.5)


# --- Retries against a scripted server ----------------------------------------------------------


class Scripted:
    """A local HTTP server answering the scripted (status, body, headers) in turn, the last one
    for ever after; it records each request's method, path and body."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.requests.append((self.command, self.path, body, self.headers.get("Authorization")))
                status, payload, headers, *delay = owner.answers.pop(0) if len(owner.answers) > 1 else owner.answers[0]
                if delay:
                    time.sleep(delay[0])
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = handle_one

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda request, address: None  # a client that timed out and left
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sleeps(monkeypatch):
    waited = []
    monkeypatch.setattr(client_module, "time", SimpleNamespace(sleep=waited.append, monotonic=time.monotonic))
    return waited


UNAVAILABLE = (503, {"error": {"code": "internal_error", "message": "down"}}, {})
OK_TRADE = (201, {"trade_id": "x", "status": "open"}, {})


def test_a_503_is_retried_with_the_same_trade_id_and_backoff(sleeps):
    server = Scripted(UNAVAILABLE, UNAVAILABLE, OK_TRADE)
    try:
        bot = MartingaleClient(server.url, "tok", retries=3, backoff=0.5)
        assert bot.request_trade("acc", "EURUSD") == {"trade_id": "x", "status": "open"}
    finally:
        server.close()
    bodies = [json.loads(body) for _, _, body, _ in server.requests]
    assert len(bodies) == 3
    assert len({body["trade_id"] for body in bodies}) == 1
    assert sleeps == [0.5, 1.0]
    assert server.requests[0][:2] == ("POST", "/api/v1/trades")
    assert server.requests[0][3] == "Bearer tok"


def test_a_retry_after_header_lengthens_the_wait(sleeps):
    server = Scripted((503, b"<html>busy</html>", {"Retry-After": "3"}), OK_TRADE)
    try:
        MartingaleClient(server.url, "tok", retries=2, backoff=0.1).request_trade("acc", "EURUSD")
    finally:
        server.close()
    assert sleeps == [3.0]


def test_a_read_timeout_is_retried(sleeps):
    server = Scripted((200, {"late": True}, {}, 1.0), (200, {"trade_id": "t1", "status": "open"}, {}))
    try:
        trade = MartingaleClient(server.url, "tok", timeout=0.2, retries=1, backoff=0.01).trade("t1")
    finally:
        server.close()
    assert trade == {"trade_id": "t1", "status": "open"}
    assert len(server.requests) == 2 and sleeps == [0.01]


def test_5xx_answers_raise_after_the_last_retry(sleeps):
    server = Scripted((502, b"Bad Gateway", {}))
    try:
        with pytest.raises(ApiError) as failed:
            MartingaleClient(server.url, "tok", retries=2, backoff=0.01).trade("t1")
    finally:
        server.close()
    assert (failed.value.status, failed.value.code) == (502, "http_502")
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_4xx_answers_are_never_retried(sleeps, status):
    server = Scripted((status, {"error": {"code": "x", "message": "no", "fields": {"symbol": "bad"}}}, {}))
    try:
        with pytest.raises(ApiError) as failed:
            MartingaleClient(server.url, "tok", retries=3, backoff=0.01).report_result("t1", "win")
    finally:
        server.close()
    assert (failed.value.status, failed.value.fields) == (status, {"symbol": "bad"})
    assert len(server.requests) == 1 and sleeps == []


def test_complete_lane_is_not_retried_once_the_server_has_it(sleeps):
    server = Scripted(UNAVAILABLE, (200, {"lane_id": "l1"}, {}))
    try:
        with pytest.raises(ApiError):
            MartingaleClient(server.url, "tok", retries=3, backoff=0.01).complete_lane("l1")
    finally:
        server.close()
    assert len(server.requests) == 1


def test_a_refused_connection_raises_unreachable_after_every_retry(sleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bot = MartingaleClient(f"http://127.0.0.1:{port}", "tok", retries=3, backoff=0.01)
    with pytest.raises(ApiError) as failed:
        bot.status()
    assert (failed.value.status, failed.value.code) == (None, "unreachable")
    assert sleeps == [0.01, 0.02, 0.04]


def test_a_health_503_answers_the_document():
    server = Scripted((503, {"status": "error", "database": {"status": "error"}, "broker": {"status": "ok"}}, {}))
    try:
        health = MartingaleClient(server.url, "tok", retries=0).health()
    finally:
        server.close()
    assert health["status"] == "error"


def test_a_base_url_may_already_end_with_the_api_prefix():
    assert MartingaleClient("http://h:1/api/v1/", "t").base_url == "http://h:1/api/v1"
    assert MartingaleClient("http://h:1/", "t").base_url == "http://h:1/api/v1"
