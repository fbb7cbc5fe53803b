"""The soak: many bots on a few accounts through real app servers, while settings change and faults
are injected, then proof that nothing was lost and every invariant holds (issue 8).

    .venv/bin/python bench/soak.py --database-url mysql://… [--database-url mysql://… (another node)]
        [--bots 16] [--accounts 2] [--seconds 60] [--kill-every 2] [--kill-for 40]
        [--outage-dir DIR --outage-at 20 --outage-seconds 10] [--servers 2] [--json]

Each ``--database-url`` gets its own app server(s) (``--servers`` in all, spread over the URLs:
several URLs = app servers writing to different nodes of a Galera cluster). Every app server is
gunicorn with 2 sync workers. The bots are threads, each on its own keep-alive connection to one
app server; each loop asks for a trade (sometimes twice with the same trade_id), waits while it is
queued, then reports a random win, loss or draw (sometimes with a payout, sometimes twice) or
cancels it. A settings thread changes the accounts' settings through the API all along. Faults:
``--kill-every S``: one gunicorn worker is killed with SIGKILL every S seconds (the master starts
another); ``--outage-dir``: the MariaDB server of scripts/dbservers.sh under that folder is killed
at ``--outage-at`` and started again ``--outage-seconds`` later.

A bot retries what got no answer, a 503 or a connection error, as a real bot does (the same
trade_id, so retries are safe). At the end: every result the API confirmed (2xx) is in the
database as confirmed, ``martingale check`` finds no violation, and no answer was a 5xx other than
503. Exit status 0 when all holds; the figures are printed (``--json``: one JSON object).
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "soak-" + "k" * 60),
        "SECURE_HTTPS": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
        # Throttling is per client address and every bot is 127.0.0.1: no bot sends a bad token.
        "MARTINGALE_AUTH_FAILURES": "100000",
    }


def manage(database_url: str, *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=server_env(database_url), capture_output=True, text=True
    )
    if done.returncode != 0 and args[:2] != ("martingale", "check"):
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class AppServer:
    """One gunicorn (2 sync workers) on a free port, stopped by its PID."""

    def __init__(self, database_url: str, log: Path):
        self.port = free_port()
        self.log = open(log, "ab")
        self.process = subprocess.Popen(
            [GUNICORN, "martingale_project.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "2", "-k", "sync",
             "--timeout", "30", "--graceful-timeout", "5", "--keep-alive", "5"],
            cwd=ROOT, env=server_env(database_url), stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"gunicorn on {self.port} did not start; see {log}")

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Tally:
    """What the bots saw, shared by every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: collections.Counter = collections.Counter()
        self.codes: collections.Counter = collections.Counter()
        self.unanswered = 0
        self.confirmed: dict[str, tuple[str, str]] = {}  # trade_id -> (status, payout) of a 2xx result
        self.cancelled: set[str] = set()
        self.server_errors: list[str] = []

    def answer(self, method: str, path: str, status: int, body: dict) -> None:
        with self.lock:
            self.statuses[status] += 1
            if status >= 400:
                self.codes[(body.get("error") or {}).get("code", f"http_{status}")] += 1
            if status >= 500 and status != 503:
                self.server_errors.append(f"{method} {path} -> {status} {json.dumps(body)[:200]}")


class Bot:
    """One bot on one keep-alive connection; every call retried until answered or the deadline."""

    def __init__(
        self, number: int, port: int, token: str, accounts: list[str], tally: Tally, stop: threading.Event, seed: int,
        prefix: str = "",
    ):
        self.number, self.port, self.token, self.accounts, self.prefix = number, port, token, accounts, prefix
        self.tally, self.stop = tally, stop
        self.rng = random.Random(seed)
        self.connection: http.client.HTTPConnection | None = None
        self.loops = 0

    def call(self, method: str, path: str, body: dict | None = None, *, give_up_at: float) -> tuple[int, dict] | None:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        delay = 0.05
        while time.monotonic() < give_up_at:
            try:
                if self.connection is None:
                    self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.connection.request(method, "/api/v1" + path, body=payload, headers=headers)
                response = self.connection.getresponse()
                raw = response.read()
                try:
                    answer = json.loads(raw or b"{}")
                except ValueError:
                    answer = {"error": {"code": "not_json", "message": raw[:100].decode(errors="replace")}}
                self.tally.answer(method, path, response.status, answer)
                if response.status != 503:
                    return response.status, answer
                retry_after = float(response.getheader("Retry-After") or delay)
                time.sleep(min(retry_after, 2) * self.rng.uniform(0.5, 1.0))
            except (OSError, http.client.HTTPException):
                with self.tally.lock:
                    self.tally.unanswered += 1
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        return None

    def run(self) -> None:
        while not self.stop.is_set():
            self.loops += 1
            self.one_trade(f"{self.prefix}b{self.number}-{self.loops}")
        if self.connection is not None:
            self.connection.close()

    def one_trade(self, trade_id: str) -> None:
        rng = self.rng
        give_up = time.monotonic() + 60
        request = {
            "account": rng.choice(self.accounts),
            "symbol": rng.choice(SYMBOLS),
            "trade_id": trade_id,
            "max_wait_seconds": rng.choice((0, 2, 5, 30)),
        }
        answered = self.call("POST", "/trades", request, give_up_at=give_up)
        if answered is None or answered[0] not in (200, 201):
            return
        if rng.random() < 0.1:  # the bot did not see the answer: the same request again
            again = self.call("POST", "/trades", request, give_up_at=give_up)
            if again and again[0] not in (200, 201):
                self.tally.server_errors.append(f"repeated request {trade_id} -> {again}")
        trade = answered[1]
        while trade.get("status") == "queued" and not self.stop.is_set():
            time.sleep(0.05)
            polled = self.call("GET", f"/trades/{trade_id}", give_up_at=give_up)
            if polled is None or polled[0] != 200:
                return
            trade = polled[1]
        if trade.get("status") != "open":
            return
        time.sleep(rng.uniform(0, 0.05))
        if rng.random() < 0.08:
            done = self.call("POST", f"/trades/{trade_id}/cancel", {}, give_up_at=give_up)
            if done and done[0] == 200:
                with self.tally.lock:
                    self.tally.cancelled.add(trade_id)
            return
        result = rng.choices(("win", "loss", "draw"), (45, 45, 10))[0]
        body: dict = {"result": result}
        stake = Decimal(trade["amount"])
        if rng.random() < 0.3:
            body["payout"] = str({"win": stake * Decimal("1.80"), "loss": stake / 4, "draw": stake}[result].quantize(Decimal("0.01")))
        for _ in range(2 if rng.random() < 0.1 else 1):  # sometimes the result twice
            done = self.call("POST", f"/trades/{trade_id}/result", body, give_up_at=give_up)
            if done and done[0] == 200:
                with self.tally.lock:
                    self.tally.confirmed[trade_id] = (done[1]["status"], done[1]["payout"])


def change_settings(port: int, token: str, accounts: list[str], stop: threading.Event, tally: Tally) -> int:
    """Another process's work: the accounts' settings change all the time."""
    rng = random.Random(99)
    bot = Bot(-1, port, token, accounts, tally, stop, 99)
    changes = 0
    while not stop.wait(rng.uniform(0.2, 0.6)):
        values = rng.choice(
            [
                {"concurrent_trading_enabled": rng.random() < 0.8, "max_concurrent_lanes": rng.randint(1, 6)},
                {"lane_assignment_strategy": rng.choice(("fifo", "round_robin", "symbol_priority"))},
                {"cool_down_seconds": rng.choice((0, 0, 0, 1))},
                {"auto_create_lanes": rng.random() < 0.9, "max_daily_lanes": rng.randint(20, 50)},
            ]
        )
        answered = bot.call("PATCH", f"/accounts/{rng.choice(accounts)}/settings", values, give_up_at=time.monotonic() + 30)
        changes += bool(answered and answered[0] == 200)
    return changes


def kill_workers(servers: list[AppServer], every: float, until: float, stop: threading.Event, killed: list[int]) -> None:
    rng = random.Random(7)
    while not stop.wait(every) and time.monotonic() < until:
        server = rng.choice(servers)
        workers = server.workers()
        if workers:
            pid = rng.choice(workers)
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass


def database_outage(folder: str, at: float, seconds: float, stop: threading.Event, record: dict) -> None:
    if stop.wait(at):
        return
    script = str(ROOT / "scripts" / "dbservers.sh")
    subprocess.run(["bash", script, "kill-mariadb", folder], check=True)
    record["killed_at"] = time.monotonic()
    stop.wait(seconds)
    subprocess.run(["bash", script, "start-mariadb", folder], check=True, capture_output=True)
    record["back_at"] = time.monotonic()


def verify(database_url: str, tally: Tally) -> dict:
    """Every confirmed result is in the database as confirmed; and the invariants hold."""
    script = """
import json, sys
from lanes.models import Trade
wanted = json.load(sys.stdin)
rows = {t: (s, None if p is None else f"{p:.2f}") for t, s, p in Trade.objects.filter(trade_id__in=list(wanted)).values_list("trade_id", "status", "payout")}
print(json.dumps({t: rows.get(t) for t in wanted}))
"""
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=server_env(database_url),
        input=json.dumps(sorted(tally.confirmed)), capture_output=True, text=True, check=True,
    )
    stored = json.loads(done.stdout.strip().splitlines()[-1])
    lost = [t for t, answer in tally.confirmed.items() if tuple(stored.get(t) or ()) != tuple(answer)]
    check = subprocess.run(
        [PYTHON, "manage.py", "martingale", "check", "--json", "--days", "1"], cwd=ROOT, env=server_env(database_url),
        capture_output=True, text=True,
    )
    try:
        report = json.loads(check.stdout)
    except ValueError:
        report = {"ok": False, "violations": [check.stdout[-500:] + check.stderr[-500:]]}
    counts = json.loads(
        subprocess.run(
            [PYTHON, "manage.py", "shell", "-c",
             "import json; from lanes.models import Trade, Lane; print(json.dumps({'trades': Trade.objects.count(), 'lanes': Lane.objects.count()}))"],
            cwd=ROOT, env=server_env(database_url), capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
    )
    return {"lost": lost, "check_ok": bool(report.get("ok")) and check.returncode == 0,
            "violations": report.get("violations", []), **counts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", action="append", required=True, help="repeat for other cluster nodes")
    parser.add_argument("--bots", type=int, default=16)
    parser.add_argument("--accounts", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--servers", type=int, default=2, help="app servers, spread over the database URLs")
    parser.add_argument("--kill-every", type=float, default=2.0, help="seconds between worker kills; 0 = none")
    parser.add_argument("--kill-for", type=float, default=40.0, help="kill workers during the first S seconds")
    parser.add_argument("--outage-dir", help="the scripts/dbservers.sh folder whose MariaDB dies for a while")
    parser.add_argument("--outage-at", type=float, default=20)
    parser.add_argument("--outage-seconds", type=float, default=10)
    parser.add_argument("--log-dir", default=str(ROOT / "test-artifacts" / "soak"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    urls = args.database_url
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("gunicorn-*.log"):
        old.unlink()
    manage(urls[0], "migrate", "--noinput", "-v", "0")
    run = f"{os.getpid() % 10000}{int(time.time()) % 100000}"
    accounts = [f"soak{run}-{n}" for n in range(args.accounts)]
    for name in accounts:
        manage(urls[0], "martingale", "account", "add", name, "--base-amount", "1.00", "--multiplier", "2.00",
               "--max-level", "4", "--balance", "100000")
        manage(urls[0], "martingale", "configure", name, "--concurrent", "true", "--max-lanes", "4", "--max-daily-lanes", "50")
    token = manage(urls[0], "martingale", "token", "create", f"soak{run}").strip().splitlines()[-1]

    servers = [AppServer(urls[n % len(urls)], log_dir / f"gunicorn-{n}.log") for n in range(args.servers)]
    tally, stop = Tally(), threading.Event()
    killed: list[int] = []
    outage: dict = {}
    started = time.monotonic()
    try:
        bots = [
            Bot(n, servers[n % len(servers)].port, token, accounts, tally, stop, n, prefix=f"s{run}-")
            for n in range(args.bots)
        ]
        threads = [threading.Thread(target=bot.run, name=f"bot{bot.number}") for bot in bots]
        settings_result: list[int] = []
        threads.append(threading.Thread(
            target=lambda: settings_result.append(change_settings(servers[-1].port, token, accounts, stop, tally))
        ))
        if args.kill_every > 0:
            threads.append(threading.Thread(
                target=kill_workers, args=(servers, args.kill_every, started + args.kill_for, stop, killed)
            ))
        if args.outage_dir:
            threads.append(threading.Thread(
                target=database_outage, args=(args.outage_dir, args.outage_at, args.outage_seconds, stop, outage)
            ))
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join(120)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for server in servers:
            server.stop()
    outcome = verify(urls[0], tally)
    logs = "".join(path.read_text(errors="replace") for path in log_dir.glob("gunicorn-*.log"))
    figures = {
        "seconds": round(elapsed, 1),
        "bots": args.bots,
        "accounts": args.accounts,
        "app_servers": len(servers),
        "database_nodes": len(urls),
        "bot_loops": sum(bot.loops for bot in bots),
        "answers": sum(tally.statuses.values()),
        "answers_by_status": dict(sorted(tally.statuses.items())),
        "errors_by_code": dict(sorted(tally.codes.items())),
        "connection_failures": tally.unanswered,
        "results_confirmed": len(tally.confirmed),
        "cancels_confirmed": len(tally.cancelled),
        "settings_changes": (settings_result or [0])[0],
        "workers_killed": len(killed),
        "outage_seconds": round(outage["back_at"] - outage["killed_at"], 1) if "back_at" in outage else 0,
        "server_errors": tally.server_errors[:20],
        # An outage is logged once per process that meets it (lanes.faults), not a traceback per request.
        "log_tracebacks": logs.count("Traceback (most recent call last)"),
        "outage_log_lines": logs.count("database unreachable"),
        "results_lost": outcome["lost"][:20],
        "check_ok": outcome["check_ok"],
        "violations": outcome["violations"][:20],
        "trades": outcome["trades"],
        "lanes": outcome["lanes"],
    }
    ok = not tally.server_errors and not outcome["lost"] and outcome["check_ok"] and tally.confirmed
    figures["ok"] = bool(ok)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>22}: {value}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
