"""A real `celery worker -B` (worker with embedded beat) in its own process group, on its own SQLite
file, through Redis and through the default filesystem:// transport (issue 4): within a time bound
its log shows the status line of a known account and its lane, and the queue upkeep has opened a
request that waited for the cool-down. Every process a test starts is stopped, also when it fails.

The worker never sees the pytest database, so these tests run in the SQLite suite only."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LINE_TIMEOUT_SECONDS = 40
COOL_DOWN_SECONDS = 3

pytestmark = pytest.mark.sqlite_only

# Through the services, as a bot would: a loss makes a lane, then a request waits for the cool-down.
MAKE_TRADES = """
from lanes import engine, services
services.trade_open(account_name="itest", request=engine.Request(trade_id="it-1", symbol="GBPUSD"), actor="itest")
services.trade_settle(trade_id="it-1", result="loss", actor="itest")
queued = services.trade_open(
    account_name="itest", request=engine.Request(trade_id="it-2", symbol="GBPUSD", max_wait_seconds=600), actor="itest"
)
assert queued.trade.status == "queued", queued.trade.status
"""


def fields(line: str) -> dict[str, str]:
    words = line.split("martingale.status ", 1)[1].split()
    return dict(word.split("=", 1) for word in words[1:])


def stop(process: subprocess.Popen) -> None:
    """TERM the worker (a warm shutdown stops its pool and beat), then KILL whatever is left of its
    process group."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@pytest.fixture
def workers():
    """Start workers with ``workers.append(Popen(..., start_new_session=True))``; all are stopped."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for process in started:
            stop(process)


def environment(tmp_path: Path, broker_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "martingale_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SECRET_KEY": "celery-integration-test",
        "DEBUG": "false",
        "CELERY_BROKER_URL": broker_url,
        "CELERY_BROKER_FOLDER": str(tmp_path / "broker"),
        "MARTINGALE_STATUS_INTERVAL_SECONDS": "1",
        "MARTINGALE_QUEUE_UPKEEP_SECONDS": "1",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}"


def prepare_database(env: dict[str, str]) -> None:
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "martingale", "account", "add", "itest", "--base-amount", "2.00", "--multiplier", "1.50", "--balance", "321.00")
    manage(
        env, "martingale", "configure", "itest",
        "--concurrent", "true", "--max-lanes", "4", "--strategy", "symbol_priority", "--cool-down", str(COOL_DOWN_SECONDS),
    )
    manage(env, "shell", "-c", MAKE_TRADES)


def start_worker(workers: list, env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "worker.log"
    output = open(tmp_path / "worker.out", "wb")
    process = subprocess.Popen(
        [
            str(BIN / "celery"), "-A", "martingale_project", "worker", "-B",
            "-l", "info", "--concurrency", "1",
            "--hostname", f"itest-{uuid.uuid4().hex[:8]}@%h",
            "--schedule", str(tmp_path / "celerybeat-schedule"),
            "--logfile", str(log),
        ],
        cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
    )
    output.close()
    workers.append(process)
    return process, log


def wait_for_line(process: subprocess.Popen, log: Path, tmp_path: Path, *needles: str) -> str:
    """The first line of the worker's log holding every needle, within LINE_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + LINE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        for line in text.splitlines():
            if all(needle in line for needle in needles):
                return line
        if process.poll() is not None:
            break
        time.sleep(0.2)
    output = (tmp_path / "worker.out").read_text(errors="replace")
    text = log.read_text(errors="replace") if log.exists() else "(no log file)"
    pytest.fail(
        f"no line with {needles} within {LINE_TIMEOUT_SECONDS} s (worker exit code {process.poll()}):\n"
        f"--- log ---\n{text[-6000:]}\n--- output ---\n{output[-3000:]}"
    )


def assert_status_logged_and_queue_served(process, log: Path, tmp_path: Path) -> None:
    # The upkeep opens it-2 on the lane once the cool-down has passed: no queued trade is left.
    account = fields(wait_for_line(process, log, tmp_path, "martingale.status account account=itest ", "queued_trades=0"))
    assert {key: account[key] for key in (
        "mode", "active_lanes", "max_lanes", "open_trades", "queued_trades", "slots", "concurrent", "strategy",
        "cool_down_seconds", "balance", "base_amount", "multiplier", "max_level",
    )} == {
        "mode": "enhanced", "active_lanes": "1", "max_lanes": "4", "open_trades": "1", "queued_trades": "0", "slots": "4",
        "concurrent": "true", "strategy": "symbol_priority", "cool_down_seconds": str(COOL_DOWN_SECONDS),
        "balance": "321.00", "base_amount": "2.00", "multiplier": "1.50", "max_level": "7",
    }
    lane = fields(wait_for_line(process, log, tmp_path, "martingale.status lane ", "account=itest", "open_trade=it-2"))
    assert (lane["symbol"], lane["level"], lane["stake"], lane["invested"], lane["trades"]) == ("GBPUSD", "1", "3.00", "5.00", "2")
    health = fields(wait_for_line(process, log, tmp_path, "martingale.status health "))
    assert (health["database"], health["broker"], health["stuck_lanes"], health["overdue_trades"]) == ("ok", "ok", "0", "0")

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        (actor,) = db.execute(
            "SELECT actor FROM martingale_lane_events WHERE kind = 'trade_assigned' AND trade_id = 'it-2'"
        ).fetchone()
    assert actor == "system:upkeep"


def test_worker_with_beat_logs_the_status_through_redis(workers, tmp_path, redis_url):
    env = environment(tmp_path, redis_url)
    prepare_database(env)
    process, log = start_worker(workers, env, tmp_path)
    assert_status_logged_and_queue_served(process, log, tmp_path)
    assert "Connected to redis://" in log.read_text()


def test_worker_with_beat_logs_the_status_through_the_filesystem_transport(workers, tmp_path):
    env = environment(tmp_path, "filesystem://")
    prepare_database(env)
    process, log = start_worker(workers, env, tmp_path)
    assert_status_logged_and_queue_served(process, log, tmp_path)
    assert "Connected to filesystem://" in log.read_text()
    # The transport's folders were made at start-up, its exchange table in tmp_path, not ./control.
    assert (tmp_path / "broker").is_dir()
    assert (tmp_path / "broker-control" / "celery.exchange").is_file()
