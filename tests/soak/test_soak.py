"""The soak of issue 8 at a reduced size: 16 bots on 2 accounts through two app servers while the
settings change, gunicorn workers are killed and the database dies for a while; then on a 3-node
Galera cluster with an app server on each node. `make soak` runs the full size (scripts/soak.sh).

Each test starts its own servers under a temporary folder (the single MariaDB durable: the test
counts what its commits kept after a kill -9) and stops them, also when it fails.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.mysql  # needs mariadbd and galera-4 (`make test` installs them)


def run_soak(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--json", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    figures = json.loads(lines[-1])
    print(json.dumps(figures, indent=1))
    return figures


def assert_nothing_lost(figures: dict) -> None:
    assert figures["server_errors"] == []  # no 5xx but 503
    assert figures["results_lost"] == []  # every 2xx result is in the database
    assert figures["check_ok"], figures["violations"]
    assert figures["results_confirmed"] > 50
    assert figures["ok"]


@pytest.fixture
def durable_mariadb(tmp_path):
    folder = tmp_path / "db"
    script = str(ROOT / "scripts" / "dbservers.sh")
    try:
        subprocess.run(["bash", script, "start", str(folder)], check=True, env={**os.environ, "DURABLE": "1"}, capture_output=True)
        env = dict(line.removeprefix("export ").split("=", 1) for line in (folder / "env.sh").read_text().splitlines())
        yield folder, env["MYSQL_DATABASE_URL"]
    finally:
        subprocess.run(["bash", script, "stop", str(folder)])


@pytest.fixture
def galera(tmp_path):
    folder = tmp_path / "galera"
    script = str(ROOT / "scripts" / "galera.sh")
    try:
        subprocess.run(["bash", script, "start", str(folder)], check=True, capture_output=True)
        env = dict(line.removeprefix("export ").split("=", 1) for line in (folder / "env.sh").read_text().splitlines())
        yield [env[f"GALERA_URL_{n}"] for n in (1, 2, 3)]
    finally:
        subprocess.run(["bash", script, "stop", str(folder)])


def test_bots_lose_nothing_through_worker_kills_a_database_outage_and_two_app_servers(durable_mariadb, tmp_path):
    folder, url = durable_mariadb
    figures = run_soak(
        "--database-url", url, "--bots", "16", "--accounts", "2", "--servers", "2", "--seconds", "20",
        "--kill-every", "2", "--kill-for", "16", "--outage-dir", str(folder), "--outage-at", "7", "--outage-seconds", "4",
        "--log-dir", str(tmp_path / "logs"),
    )
    assert_nothing_lost(figures)
    assert figures["workers_killed"] >= 5
    assert figures["outage_seconds"] >= 4
    assert figures["errors_by_code"].get("database_unavailable", 0) > 0  # the outage was answered 503, not 500
    assert figures["settings_changes"] > 10


def test_bots_lose_nothing_on_a_galera_cluster_with_app_servers_on_different_nodes(galera, tmp_path):
    args = [part for url in galera for part in ("--database-url", url)]
    figures = run_soak(
        *args, "--bots", "16", "--accounts", "2", "--servers", "3", "--seconds", "15", "--kill-every", "3",
        "--kill-for", "10", "--log-dir", str(tmp_path / "logs"),
    )
    assert_nothing_lost(figures)
    assert figures["database_nodes"] == 3 and figures["app_servers"] == 3
