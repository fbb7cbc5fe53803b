#!/usr/bin/env python
"""Where one bot API call spends the app server's time, in-process (issue 9).

Calls the WSGI application directly (no gunicorn, no socket) for request+result cycles on one
account of the database at DATABASE_URL (migrated, the account and a token made here), and prints
per call: the app's CPU time (this process only, so the database's own work is left out and a busy
machine disturbs it little), the wall time, and the SQL statements the server counted. With
``--profile`` it also prints cProfile's top functions by cumulative time.

    DATABASE_URL=mysql://… .venv/bin/python bench/api_profile.py [--cycles 500] [--profile]

The figures are for comparing two versions of the code in one sitting, not absolute.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "martingale_project.settings")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_HTTPS", "false")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
os.environ.setdefault("MARTINGALE_AUTH_FAILURES", "0")


def environ(method: str, path: str, token: str, body: bytes = b"") -> dict:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions by CPU time")
    parser.add_argument("--sort", default="cumulative", help="cProfile's sort key (cumulative, tottime)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--statements", action="store_true", help="print the wall time of each kind of SQL statement")
    parser.add_argument("--pyinstrument", action="store_true", help="a sampling profile instead (pip install pyinstrument)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.db import connection

    from lanes import services

    call_command("migrate", verbosity=0)
    name = f"prof-{uuid.uuid4().hex[:8]}"
    services.account_create(name=name, values={"base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": 6})
    services.settings_update(account_name=name, values={"max_daily_lanes": 50}, actor="bench")
    token = services.token_create(name=name, account_names=[name])[1]
    connection.close()
    app = get_wsgi_application()

    def call(method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        status = []
        chunks = app(environ(method, path, token, data), lambda s, h: status.append(s))
        out = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
        if not status[0].startswith(("200", "201")):
            raise SystemExit(f"{method} {path}: {status[0]} {out[:300]!r}")

    def cycle(i):
        trade_id = f"{name}-{i}"
        call("POST", "/api/v1/trades", {"account": name, "symbol": "EURUSD", "trade_id": trade_id})
        call("POST", f"/api/v1/trades/{trade_id}/result", {"result": "loss" if i % 2 else "win"})

    def age():
        from django.db.models import F
        from datetime import timedelta

        from lanes.models import Lane

        Lane.objects.filter(account_name=name).exclude(status="active").update(created_at=F("created_at") - timedelta(days=3))

    def questions():
        with connection.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Questions'") if connection.vendor == "mysql" else None
            return int(cursor.fetchone()[1]) if connection.vendor == "mysql" else 0

    timings: dict[str, list[float]] = {}

    def timed(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = " ".join(sql.split()[:3])[:60]
            timings.setdefault(key, []).append(time.perf_counter() - start)

    if args.statements:
        connection.execute_wrappers.append(timed)
    for i in range(50):  # warm-up: imports, the connection, caches
        cycle(-1 - i)
    before = questions()
    timings.clear()
    profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU time, not waits
    if args.pyinstrument:
        try:
            from pyinstrument import Profiler
        except ImportError:
            sys.exit("api_profile.py: --pyinstrument needs pyinstrument (.venv/bin/pip install pyinstrument)")

        profiler = Profiler(interval=0.0002)
        profiler.enable, profiler.disable = profiler.start, profiler.stop
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    aged = [0.0, 0.0, 0]
    for i in range(args.cycles):
        cycle(i)
        if i % 20 == 19:  # the daily lane limit (50) must not turn losses into `not_created`
            if profiler:
                profiler.disable()
            c, w = time.process_time(), time.perf_counter()
            age()
            aged[0] += time.process_time() - c
            aged[1] += time.perf_counter() - w
            aged[2] += 1
            if profiler:
                profiler.enable()
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu - aged[0], time.perf_counter() - wall - aged[1]
    calls = 2 * args.cycles
    statements = (questions() - before - 1 - aged[2]) / calls if connection.vendor == "mysql" else float("nan")
    print(f"{connection.vendor}: {calls} calls, app CPU {1000 * cpu / calls:.2f} ms/call, "
          f"wall {1000 * wall / calls:.2f} ms/call, {statements:.2f} statements/call")
    for key, spent in sorted(timings.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {1000 * sum(spent) / calls:6.3f} ms/call  {len(spent) / calls:5.2f}/call  {1000 * sum(spent) / len(spent):6.3f} ms each  {key}")
    if args.pyinstrument:
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    elif profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
