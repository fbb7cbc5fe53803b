#!/usr/bin/env python
"""The simulator's speed and memory (issue 11, SPEC §12): no database, only the engine.

1. Trades per second on one core: one setting over a random stream (``--single-rows``), in this
   process.
2. ``--rows`` trades × 3 settings compared (multiplier 2.0; 2.2 with 6 levels; recover with three
   concurrent lanes), spread over the cores as ``martingale simulate`` does: the wall time.
3. Peak memory (the child's maximum resident set) for streams of ``--memory-rows`` rows, each run in
   a fresh process: it should not grow with the stream.

Usage: ``.venv/bin/python bench/simulator.py [--rows 1000000] [--memory-rows 100000,10000000] [--json]``
(``--quick`` for a short check). Prints one table, with the load average: on a shared machine the
CPU seconds of the one-core run are the steadier figure.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "martingale_project.settings")
os.environ.setdefault("SECRET_KEY", "bench-simulator")

import django  # noqa: E402

django.setup()

from lanes.simulator import batch, configs, runner, streams  # noqa: E402

SETTINGS = [
    "martingale_multiplier=2.0",
    "martingale_multiplier=2.2,martingale_max_level=6",
    "ladder_mode=recover,concurrent_trading_enabled=true,max_concurrent_lanes=3",
]


def source(rows: int) -> streams.RandomSource:
    return streams.RandomSource(rows, win_rate=0.52, draw_rate=0.02, symbols=3, seed=1, expiry_seconds=60)


def single_core(rows: int) -> dict:
    setting = configs.build(configs.start_from(), {})
    started, cpu = time.perf_counter(), time.process_time()
    result = runner.simulate(setting, source(rows).signals())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"rows": rows, "trades": result.trades, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "trades_per_second": round(result.trades / seconds), "trades_per_cpu_second": round(result.trades / cpu)}


def three_settings(rows: int, processes: int) -> dict:
    settings = configs.settings_to_compare(configs.start_from(), SETTINGS, [])
    plan = batch.Plan(source=source(rows), settings=settings)
    started = time.perf_counter()
    processes = processes or batch.default_processes(len(settings))
    results = batch.run_plan(plan, processes=processes)
    seconds = time.perf_counter() - started
    trades = sum(r.trades for r in results)
    return {"rows": rows, "settings": len(settings), "processes": processes, "trades": trades,
            "seconds": round(seconds, 2), "trades_per_second": round(trades / seconds)}


def memory_child(rows: int) -> None:
    setting = configs.build(configs.start_from(), {"concurrent_trading_enabled": "true"})
    started = time.perf_counter()
    result = runner.simulate(setting, source(rows).signals(), curve=True)
    print(json.dumps({"rows": rows, "trades": result.trades, "seconds": round(time.perf_counter() - started, 1),
                      "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def memory(rows: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--memory-child", str(rows)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single-rows", type=int, default=300_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--processes", type=int, help="default: as martingale simulate (one per setting here)")
    parser.add_argument("--memory-rows", default="100000,10000000")
    parser.add_argument("--quick", action="store_true", help="small sizes: a check that it runs")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    if args.quick:
        args.single_rows, args.rows, args.memory_rows = 20_000, 20_000, "10000,50000"
    report = {
        "single_core": single_core(args.single_rows),
        "three_settings": three_settings(args.rows, args.processes),
        "memory": [memory(int(rows)) for rows in args.memory_rows.split(",")],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    one, three = report["single_core"], report["three_settings"]
    print(f"one core:   {one['trades']:>11,} trades in {one['seconds']:>7.2f} s = {one['trades_per_second']:>8,} trades/s "
          f"({one['trades_per_cpu_second']:,} per CPU second; target ≥ 100,000)")
    print(f"3 settings: {three['trades']:>11,} trades in {three['seconds']:>7.2f} s on {three['processes']} processes "
          f"= {three['trades_per_second']:,} trades/s (target: 3 × 1,000,000 in < 30 s)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for row in report["memory"]:
        print(f"memory:     {row['rows']:>11,} rows: peak RSS {row['max_rss_mib']:>6.1f} MiB ({row['seconds']} s)")


if __name__ == "__main__":
    main()
