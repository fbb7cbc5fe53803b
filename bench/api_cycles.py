#!/usr/bin/env python
"""Request+result cycles per second through gunicorn, for 1 and 8 concurrent bots.

usage: .venv/bin/python bench/api_cycles.py [--database-url URL] [--seconds 10] [--workers 4]

Starts gunicorn on a free port against DATABASE_URL (default: $MYSQL_DATABASE_URL, else
$DATABASE_URL), creates bench accounts and a token, and drives it with bot processes that each
loop: POST /api/v1/trades, then POST /api/v1/trades/{id}/result (win or loss at random).
Prints one line per scenario. Stops gunicorn when done, also on failure.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env, *args) -> str:
    out = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0 and "already exists" not in (out.stderr + out.stdout):
        raise SystemExit(f"manage.py {' '.join(args)} failed: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout


def bot(port, token, account, seconds, results):
    try:
        results.put(_bot(port, token, account, seconds))
    except BaseException as exc:  # the parent reports it instead of waiting forever
        results.put(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))


def _bot(port, token, account, seconds):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    rng = random.Random()
    cycles, latencies = 0, []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        trade_id = "b-" + uuid.uuid4().hex
        body = json.dumps({"account": account, "symbol": "EURUSD", "trade_id": trade_id, "max_wait_seconds": 30})
        conn.request("POST", "/api/v1/trades", body, headers)
        answer = conn.getresponse()
        trade = json.loads(answer.read())
        if answer.status != 201:
            raise RuntimeError(f"trade request answered {answer.status}: {trade}")
        while trade["status"] == "queued":
            conn.request("GET", f"/api/v1/trades/{trade_id}", headers=headers)
            answer = conn.getresponse()
            trade = json.loads(answer.read())
        result = json.dumps({"result": rng.choice(["win", "loss"])})
        conn.request("POST", f"/api/v1/trades/{trade_id}/result", result, headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"result answered {answer.status}: {answer.read()[:200]}")
        cycles += 1
        latencies.append(time.perf_counter() - started)
    return cycles, latencies


def scenario(port, token, accounts, seconds):
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=bot, args=(port, token, a, seconds, queue)) for a in accounts]
    for p in procs:
        p.start()
    gathered = [queue.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    failures = [g for g in gathered if isinstance(g, Exception)]
    if failures:
        raise SystemExit(f"a bot failed: {failures[0]}")
    cycles = sum(c for c, _ in gathered)
    latencies = sorted(l for _, ls in gathered for l in ls)
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else 0
    p95 = latencies[int(len(latencies) * 0.95)] * 1000 if latencies else 0
    return cycles / seconds, p50, p95


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("MYSQL_DATABASE_URL") or os.environ.get("DATABASE_URL"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    env = {**os.environ, "SECRET_KEY": "bench", "DEBUG": "false", "LOG_LEVEL": "WARNING"}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    manage(env, "migrate", "--noinput", "-v0")
    run = uuid.uuid4().hex[:6]
    solo = [f"bench-{run}-{i}" for i in range(8)]
    shared = f"bench-{run}-shared"
    for name in [*solo, shared]:
        manage(env, "martingale", "account", "add", name, "--base-amount", "1.00", "--multiplier", "2.00", "--max-level", "6")
    manage(env, "martingale", "configure", shared, "--concurrent", "true", "--max-lanes", "10", "--max-daily-lanes", "50")
    token = manage(env, "martingale", "token", "create", f"bench-{run}").strip().splitlines()[-1]

    port = free_port()
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "martingale_project.wsgi", "-b", f"127.0.0.1:{port}", "--workers", str(args.workers),
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        engine = "MariaDB/MySQL" if (args.database_url or "").startswith("mysql") else "SQLite"
        print(f"gunicorn {args.workers} workers, {engine}, {args.seconds} s per scenario, {os.cpu_count()} cores")
        for label, accounts in (
            ("1 bot, 1 account", solo[:1]),
            ("8 bots, 8 accounts", solo),
            ("8 bots, 1 account (concurrent, 10 slots)", [shared] * 8),
        ):
            rate, p50, p95 = scenario(port, token, accounts, args.seconds)
            print(f"{label:42s} {rate:8.1f} cycles/s   p50 {p50:6.1f} ms   p95 {p95:6.1f} ms per cycle")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
