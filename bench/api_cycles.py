#!/usr/bin/env python
"""Bot API vs the SQL floor: request+result cycles per second and latency per call, side by side.

usage: .venv/bin/python bench/api_cycles.py [--database-url mysql://…] [--seconds 10] [--warmup 2]
           [--rounds 1] [--json] [--config 1x1,8x8,8x1] [--side both|floor|api] [--workers N] [--threads N]

``make bench`` (scripts/bench.sh) runs it against a throwaway durable MariaDB (a flush to disk per
commit, as in production) and removes that server afterwards, also on failure.

On the database of DATABASE_URL (default: $MYSQL_DATABASE_URL, else $DATABASE_URL) it runs
``manage.py migrate``, creates two sets of bench accounts with ``manage.py martingale account add``
and ``configure`` (``api-…`` for the API, ``floor-…`` for the floor; base 1.00, multiplier 2.00,
max level 6) and one token (``token create``), then starts the project's gunicorn
(``.venv/bin/gunicorn martingale_project.wsgi -c gunicorn.conf.py``: gthread, WEB_CONCURRENCY
workers × GUNICORN_THREADS threads, 4 × 2 unless set) with DEBUG=false on a free port. gunicorn's
output goes to a log file (``--log-dir``; the access log is on, as configured).

Each configuration — 1 bot / 1 account, 8 bots / 8 accounts, 8 bots / 1 account (concurrency on,
10 lanes) — runs ``--rounds`` times, alternating the floor (bench/floor.py: the same transactions in
hand-written SQL, no Django, no HTTP) and the API. A bot is a separate process: on the API side it
keeps one keep-alive HTTP connection (reconnecting once on a failure, a repeated call being
idempotent), on the floor side one database connection. A cycle = a trade request, then its result,
win or loss at random. Bots start together, warm up ``--warmup`` s, then cycles and calls that end
within the next ``--seconds`` s are counted. Latency is per call: request and result pooled in the
table (separately in the JSON). The table shows medians over the rounds; each ratio (API / floor)
is the median of the rounds' own ratios, since a round's API phase runs right after its floor phase
and the machine's load drifts. ``--json`` prints the same figures, every round's too, as JSON
(``make -s bench BENCH_ARGS=--json``, or ``bash scripts/bench.sh --json``, keeps make's echo out).

A bench account may open at most 50 lanes a day (max_daily_lanes), which bots reach within seconds;
after that every lost base trade would only log ``not_created`` and the lane paths would fall out of
the measurement, at a different moment for the faster side. So while the bench runs, a helper
thread moves the bench accounts' finished lanes' ``created_at`` three days back every 0.1 s (one
UPDATE; its statements are subtracted from the server's counts). The mix of each phase (lane trades
per cycle, lanes created per cycle) is printed so that the two sides can be seen doing the same work.

Server-side counts per cycle (``SHOW GLOBAL STATUS``: Questions = statements, Connections) are
printed for both sides, as is the floor's own count of statements per call.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import queue as queue_module
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import floor as floor_module

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
SYMBOL = "EURUSD"
MAX_WAIT = 30

# key, label, bots, account name per bot (index into the side's accounts; "shared" = the concurrent one)
CONFIGS = {
    "1x1": ("1 bot / 1 account", [0]),
    "8x8": ("8 bots / 8 accounts", list(range(8))),
    "8x1": ("8 bots / 1 account (concurrency, 10 lanes)", ["shared"] * 8),
}
SIDES = ("floor", "api")


# --- Setup ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env, *args) -> str:
    out = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed: {(out.stderr.strip() or out.stdout.strip())[-2000:]}")
    return out.stdout


def setup_accounts(env, run: str) -> tuple[dict, str]:
    """Two sets of accounts (one per side) and one all-accounts token; returns names and the token."""
    names = {side: {**{i: f"{side}-{run}-{i}" for i in range(8)}, "shared": f"{side}-{run}-shared"} for side in SIDES}

    def one(name):
        manage(env, "martingale", "account", "add", name, "--base-amount", "1.00", "--multiplier", "2.00", "--max-level", "6")
        extra = ["--concurrent", "true", "--max-lanes", "10"] if name.endswith("-shared") else []
        manage(env, "martingale", "configure", name, "--max-daily-lanes", "50", *extra)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, [n for side in SIDES for n in names[side].values()]))
    token = manage(env, "martingale", "token", "create", f"bench-{run}").strip().splitlines()[-1].strip()
    return names, token


class Gunicorn:
    """The project's gunicorn on a free port, stopped by its PID."""

    def __init__(self, env: dict, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "DEBUG": "false",
            "SECURE_HTTPS": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "MARTINGALE_AUTH_FAILURES": "0",
        }
        command = [str(GUNICORN), "martingale_project.wsgi", "-c", "gunicorn.conf.py"]
        if not GUNICORN.exists():
            command = [PYTHON, "-m", "gunicorn", "martingale_project.wsgi", "-c", "gunicorn.conf.py"]
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.workers = env.get("WEB_CONCURRENCY", "4")
        self.threads = env.get("GUNICORN_THREADS", "2")

    def wait_ready(self, token: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/v1/health", headers={"Authorization": f"Bearer {token}"})
                answer = conn.getresponse()
                answer.read()
                conn.close()
                if answer.status == 200:
                    return
                last = f"HTTP {answer.status}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer /api/v1/health ({last}); end of {self.log_path}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Ager(threading.Thread):
    """Every 0.1 s, moves the bench accounts' finished lanes three days back, so that
    max_daily_lanes (at most 50) never stops lanes from being created during the bench."""

    SQL = (
        "UPDATE martingale_lanes SET created_at = created_at - INTERVAL 3 DAY WHERE account_name IN ({})"
        " AND created_at >= UTC_TIMESTAMP(6) - INTERVAL 1 DAY AND status <> 'active'"
    )

    def __init__(self, url: str, accounts: list[str]):
        super().__init__(daemon=True)
        self.conn = floor_module.connect(url, autocommit=True)
        self.sql = self.SQL.format(", ".join(["%s"] * len(accounts)))
        self.accounts = accounts
        self.statements = 0
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.error = None

    def run(self):
        cursor = self.conn.cursor()
        try:
            while not self.stopping.wait(0.1):
                with self.lock:
                    cursor.execute(self.sql, self.accounts)
                    self.statements += 1
        except Exception as exc:  # reported by the phase that follows
            self.error = exc

    def count(self) -> int:
        with self.lock:
            return self.statements

    def stop(self):
        self.stopping.set()
        self.join(timeout=5)
        self.conn.close()


# --- The bots ---------------------------------------------------------------------------------


class ApiBot:
    """One keep-alive HTTP connection; on a failure, reconnects and repeats the call once (a
    repeated request or result with the same trade_id is idempotent)."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.reconnects = 0

    def _post(self, path: str, body: dict) -> tuple[int, dict]:
        data = json.dumps(body)
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, data, self.headers)
                answer = self.conn.getresponse()
                return answer.status, json.loads(answer.read() or b"null")
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.reconnects += 1
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def request(self, account: str, trade_id: str):
        status, trade = self._post(
            "/api/v1/trades", {"account": account, "symbol": SYMBOL, "trade_id": trade_id, "max_wait_seconds": MAX_WAIT}
        )
        if status not in (200, 201) or trade.get("status") != "open":
            raise RuntimeError(f"trade request answered {status}: {str(trade)[:300]}")

    def result(self, trade_id: str, result: str):
        status, body = self._post(f"/api/v1/trades/{trade_id}/result", {"result": result})
        if status != 200:
            raise RuntimeError(f"result answered {status}: {str(body)[:300]}")

    def stats(self) -> dict:
        return {"reconnects": self.reconnects}

    def close(self):
        self.conn.close()


class FloorBot:
    def __init__(self, url: str, token: str):
        self.floor = floor_module.Floor(url, token, lane_prefix="floor-")

    def request(self, account: str, trade_id: str):
        self.floor.request(account, trade_id, SYMBOL, MAX_WAIT)

    def result(self, trade_id: str, result: str):
        self.floor.result(trade_id, result)

    def stats(self) -> dict:
        return {"statements": self.floor.statements, "calls": self.floor.calls, "retries": self.floor.retries}

    def close(self):
        self.floor.close()


def bot_main(side, target, token, account, ready, go, times, out):
    """One bot process: connect, wait for the start, then cycle until the end of the window."""
    try:
        bot = FloorBot(target, token) if side == "floor" else ApiBot(target, token)
        ready.put(None)
        go.wait()
        window_start, window_end = times[0], times[1]
        rng = random.Random()
        prefix = f"{side}-{uuid.uuid4().hex[:8]}-"
        requests, results = [], []  # ms, calls that ended within the window
        cycles = total = 0
        while time.monotonic() < window_end:
            trade_id = prefix + uuid.uuid4().hex[:16]
            t0 = time.monotonic()
            bot.request(account, trade_id)
            t1 = time.monotonic()
            bot.result(trade_id, rng.choice(("win", "loss")))
            t2 = time.monotonic()
            total += 1
            if window_start <= t1 < window_end:
                requests.append((t1 - t0) * 1000)
            if window_start <= t2 < window_end:
                results.append((t2 - t1) * 1000)
                cycles += 1
        out.put({"cycles": cycles, "total": total, "request_ms": requests, "result_ms": results, **bot.stats()})
        bot.close()
    except BaseException as exc:  # the parent reports it instead of waiting
        message = f"{side} bot on {account}: {type(exc).__name__}: {exc}"
        try:
            ready.put(message)
        finally:
            out.put(message)


# --- Measuring --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def server_status(cursor) -> dict:
    cursor.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Connections')")
    return {name.lower(): int(value) for name, value in cursor.fetchall()}


def last_ids(cursor) -> dict:
    cursor.execute(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM martingale_trades), (SELECT COALESCE(MAX(id), 0) FROM martingale_lane_events)"
    )
    trades, events = cursor.fetchone()
    return {"trades": trades, "events": events}


def mix(cursor, since: dict) -> dict:
    cursor.execute("SELECT kind, COUNT(*) FROM martingale_trades WHERE id > %s GROUP BY kind", (since["trades"],))
    trades = dict(cursor.fetchall())
    cursor.execute("SELECT kind, COUNT(*) FROM martingale_lane_events WHERE id > %s GROUP BY kind", (since["events"],))
    events = dict(cursor.fetchall())
    return {"trades": trades, "events": events}


def phase(side: str, accounts: list[str], target, token: str, args, monitor, ager) -> dict:
    """One measurement: len(accounts) bots on ``side`` for warm-up + window; figures of the window."""
    ctx = multiprocessing.get_context("spawn")  # bots inherit nothing of this process
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    times = ctx.Array("d", 2)
    procs = [
        ctx.Process(target=bot_main, args=(side, target, token, account, ready, go, times, out), daemon=True)
        for account in accounts
    ]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            message = ready.get(timeout=60)
            if message is not None:
                raise SystemExit(f"a bot failed to start: {message}")
        cursor = monitor.cursor()
        since = last_ids(cursor)
        before, ager_before = server_status(cursor), ager.count()
        start = time.monotonic() + 0.05
        times[0], times[1] = start + args.warmup, start + args.warmup + args.seconds
        go.set()
        gathered = []
        deadline = time.monotonic() + args.warmup + args.seconds + 120
        while len(gathered) < len(procs):
            try:
                gathered.append(out.get(timeout=1))
            except queue_module.Empty:
                if time.monotonic() > deadline or not any(p.is_alive() for p in procs) and out.empty():
                    raise SystemExit(f"{side} bots did not report (got {len(gathered)} of {len(procs)})")
        ager_statements = ager.count() - ager_before
        after = server_status(cursor)
        work = mix(cursor, since)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
    failures = [g for g in gathered if isinstance(g, str)]
    if failures:
        raise SystemExit(f"a bot failed: {failures[0]}")
    if ager.error is not None:
        raise SystemExit(f"the lane-ageing helper failed: {ager.error}")
    requests = [ms for g in gathered for ms in g["request_ms"]]
    results = [ms for g in gathered for ms in g["result_ms"]]
    calls = requests + results
    total = sum(g["total"] for g in gathered)
    questions = after["questions"] - before["questions"] - ager_statements - 1  # the second SHOW STATUS
    figures = {
        "cycles_per_s": sum(g["cycles"] for g in gathered) / args.seconds,
        "p50_ms": percentile(calls, 50),
        "p99_ms": percentile(calls, 99),
        "request_p50_ms": percentile(requests, 50),
        "request_p99_ms": percentile(requests, 99),
        "result_p50_ms": percentile(results, 50),
        "result_p99_ms": percentile(results, 99),
        "cycles_in_phase": total,
        "server_statements_per_cycle": questions / total if total else 0.0,
        "server_connections_per_cycle": (after["connections"] - before["connections"]) / total if total else 0.0,
        "lane_trades_per_cycle": work["trades"].get("lane", 0) / total if total else 0.0,
        "lanes_created_per_cycle": work["events"].get("created", 0) / total if total else 0.0,
        "lanes_not_created": work["events"].get("not_created", 0),
    }
    if side == "floor":
        statements = {k: sum(g["statements"][k] for g in gathered) for k in ("request", "result")}
        count = {k: sum(g["calls"][k] for g in gathered) for k in ("request", "result")}
        figures["statements"], figures["calls"] = statements, count
        figures["retries"] = sum(g["retries"] for g in gathered)
    else:
        figures["reconnects"] = sum(g["reconnects"] for g in gathered)
    return figures


def summarize(rounds: list[dict]) -> dict:
    keys = [k for k, v in rounds[0].items() if isinstance(v, (int, float))]
    summary = {k: statistics.median(r[k] for r in rounds) for k in keys}
    summary["rounds"] = rounds
    return summary


# --- Output -----------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    lines = [
        "| configuration | floor cycles/s | API cycles/s | ratio | floor p50/p99 ms | API p50/p99 ms | p99 ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f, a = r.get("floor"), r.get("api")
        fc = f"{f['cycles_per_s']:.1f}" if f else "–"
        ac = f"{a['cycles_per_s']:.1f}" if a else "–"
        fl = f"{f['p50_ms']:.1f} / {f['p99_ms']:.1f}" if f else "–"
        al = f"{a['p50_ms']:.1f} / {a['p99_ms']:.1f}" if a else "–"
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else "–"
        p99 = f"{r['p99_ratio']:.1f}" if r.get("p99_ratio") is not None else "–"
        lines.append(f"| {r['label']} | {fc} | {ac} | {ratio} | {fl} | {al} | {p99} |")
    return "\n".join(lines)


def notes(results: list[dict], info: dict) -> str:
    out = [
        "",
        (
            f"Latency per call, request and result pooled. Medians of {info['rounds']} round(s) (floor then API, each "
            f"{info['warmup']:g} s warm-up + {info['seconds']:g} s measured); ratio = API / floor cycles/s and p99 "
            "ratio = API p99 / floor p99, each the median of the rounds' own ratios."
        ),
    ]
    floor_runs = [run for r in results if r.get("floor") for run in r["floor"]["rounds"]]
    if floor_runs:
        s = {k: sum(run["statements"][k] for run in floor_runs) for k in ("request", "result")}
        c = {k: sum(run["calls"][k] for run in floor_runs) for k in ("request", "result")}
        out.append(
            f"floor SQL statements per call: request {s['request'] / c['request']:.2f}, result {s['result'] / c['result']:.2f} "
            "(each a round trip; token look-up and COMMIT included; 6–8 and 6–9 by path)"
        )
    out.append("per cycle, counted by the server (Questions, Connections) | lane trades / lanes created per cycle:")
    for r in results:
        parts = []
        for side in SIDES:
            s = r.get(side)
            if s:
                parts.append(
                    f"{side} {s['server_statements_per_cycle']:.1f} statements, {s['server_connections_per_cycle']:.2f} "
                    f"connections | {s['lane_trades_per_cycle']:.2f} / {s['lanes_created_per_cycle']:.2f}"
                )
        out.append(f"  {r['label']}: " + "; ".join(parts))
    retries = sum(run.get("retries", 0) for r in results if r.get("floor") for run in r["floor"]["rounds"])
    reconnects = sum(run.get("reconnects", 0) for r in results if r.get("api") for run in r["api"]["rounds"])
    if retries or reconnects:
        out.append(f"floor transactions retried after a deadlock or lock timeout: {retries}; API reconnections: {reconnects}")
    out.append(
        f"gunicorn {info['workers']} workers × {info['threads']} threads (gthread); {info['engine']}; "
        f"{os.cpu_count()} cores, load average before {info['load_before']}, after {info['load_after']}"
    )
    return "\n".join(out)


def tidy(value):
    """Floats rounded to 3 places, for the JSON output."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tidy(v) for v in value]
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("MYSQL_DATABASE_URL") or os.environ.get("DATABASE_URL"))
    parser.add_argument("--seconds", type=float, default=10, help="measured window per phase (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up before the window (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="floor, API alternations per configuration (default 1)")
    parser.add_argument("--config", default="1x1,8x8,8x1", help="configurations to run: 1x1, 8x8, 8x1 (comma-separated)")
    parser.add_argument("--side", choices=("both", "floor", "api"), default="both")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--workers", type=int, help="gunicorn workers (sets WEB_CONCURRENCY; default: as configured, 4)")
    parser.add_argument("--threads", type=int, help="threads per worker (sets GUNICORN_THREADS; default: as configured, 2)")
    parser.add_argument("--log-dir", help="where gunicorn's log goes (default: a temporary folder, kept on failure)")
    args = parser.parse_args()
    if not args.database_url or not args.database_url.startswith("mysql"):
        raise SystemExit("a mysql:// database URL is needed (--database-url, MYSQL_DATABASE_URL or DATABASE_URL)")
    configs = [c.strip() for c in args.config.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown or args.rounds < 1 or args.seconds <= 0 or args.warmup < 0:
        raise SystemExit(f"bad arguments: unknown configuration {unknown}" if unknown else "bad --rounds/--seconds/--warmup")
    sides = SIDES if args.side == "both" else (args.side,)

    env = {**os.environ, "DATABASE_URL": args.database_url, "SECRET_KEY": "bench-" + uuid.uuid4().hex, "DEBUG": "false"}
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    if args.threads:
        env["GUNICORN_THREADS"] = str(args.threads)
    began = time.monotonic()

    def log(message: str):
        print(f"[{time.monotonic() - began:5.1f} s] {message}", file=sys.stderr, flush=True)

    log("bench: migrate, accounts, token …")
    manage(env, "migrate", "--noinput", "-v0")
    run = uuid.uuid4().hex[:6]
    names, token = setup_accounts(env, run)
    log_dir = Path(args.log_dir) if args.log_dir else Path(tempfile.mkdtemp(prefix="bench-api-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    server = Gunicorn(env, log_dir / "gunicorn.log") if "api" in sides else None
    ager = Ager(args.database_url, sorted(n for side in SIDES for n in names[side].values()))
    monitor = floor_module.connect(args.database_url, autocommit=True)
    info = {
        "seconds": args.seconds, "warmup": args.warmup, "rounds": args.rounds,
        "workers": server.workers if server else "-", "threads": server.threads if server else "-",
        "engine": "MariaDB " + monitor.get_server_info(),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    results = []
    try:
        if server:
            log(f"bench: accounts ready; waiting for gunicorn on 127.0.0.1:{server.port} …")
            server.wait_ready(token)
        ager.start()
        for key in configs:
            label, slots = CONFIGS[key]
            measured = {side: [] for side in sides}
            for round_no in range(args.rounds):
                for side in sides:
                    accounts = [names[side][slot] for slot in slots]
                    target = args.database_url if side == "floor" else server.port
                    log(f"bench: {label}, round {round_no + 1} of {args.rounds}, {side} …")
                    try:
                        measured[side].append(phase(side, accounts, target, token, args, monitor, ager))
                    except SystemExit:
                        if server and side == "api":
                            log(f"end of {server.log_path}:\n{server.tail()}")
                        raise
            entry = {"key": key, "label": label, "bots": len(slots), "accounts": len(set(slots))}
            for side in sides:
                entry[side] = summarize(measured[side])
            if "floor" in entry and "api" in entry:
                # Each round's API phase ran right after its floor phase: the ratio of each pair, then
                # the median, follows the machine's load better than the ratio of the two medians.
                pairs = list(zip(measured["floor"], measured["api"]))
                entry["round_ratios"] = [a["cycles_per_s"] / f["cycles_per_s"] for f, a in pairs if f["cycles_per_s"]]
                entry["round_p99_ratios"] = [a["p99_ms"] / f["p99_ms"] for f, a in pairs if f["p99_ms"]]
                entry["ratio"] = statistics.median(entry["round_ratios"]) if entry["round_ratios"] else None
                entry["p99_ratio"] = statistics.median(entry["round_p99_ratios"]) if entry["round_p99_ratios"] else None
            results.append(entry)
    finally:
        ager.stop()
        monitor.close()
        if server:
            server.stop()
    info["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.json:
        print(json.dumps(tidy({"settings": info, "configurations": results}), indent=2))
    else:
        print(table(results))
        print(notes(results, info))
        if server and not args.log_dir:
            print(f"gunicorn log: {server.log_path}")


if __name__ == "__main__":
    main()
