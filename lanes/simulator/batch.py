"""Run several settings, and their Monte Carlo runs, over one stream, spread over the CPU cores
(SPEC §12): each job reads the stream afresh in its own process, so memory stays flat. A few
jobs get a process each, many share one process per core (``default_processes``).

Monte Carlo (``--monte-carlo RUNS --bankroll X``): each run is a stream of the same shape with
other outcomes: for a random stream, the same generator with the run's own seed; for any other
stream, its rows in their order with each row's outcome (result and payout) drawn at random, with
replacement, from the stream's outcomes. A run is ruined when its balance (the bankroll, less the
stakes of open trades, plus what settled trades paid) cannot cover a stake that should open;
``risk_of_ruin`` is the share of ruined runs, with its 95% Wilson interval. Seeds are strings
(``"S:mc:R"``), so every run is the same on every machine and in every process.
"""
from __future__ import annotations

import multiprocessing
import os
import random
import threading
from array import array
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterator, Optional

from .configs import Setting
from .runner import Result, simulate, wilson_interval
from .streams import RandomSource, Signal

RANKS = ("net_profit", "max_drawdown", "risk_of_ruin", "profit_per_drawdown")


@dataclass
class Plan:
    source: Any  # a stream source of lanes.simulator.streams
    settings: list[Setting]
    monte_carlo: int = 0
    bankroll: Optional[Decimal] = None
    seed: int = 0
    curve: bool = False


class Outcomes:
    """The outcomes (result, payout, payout per stake) of a stream's rows, as indexes into its
    distinct outcomes: one int per row."""

    def __init__(self, signals: Iterator[Signal]):
        self.kinds: list[tuple] = []
        index: dict[tuple, int] = {}
        self.rows = array("I")
        for signal in signals:
            kind = (signal.result, signal.payout, signal.payout_per_stake)
            number = index.get(kind)
            if number is None:
                number = index[kind] = len(self.kinds)
                self.kinds.append(kind)
            self.rows.append(number)

    def resampled(self, signals: Iterator[Signal], seed: str) -> Iterator[Signal]:
        draw = random.Random(seed).random
        rows, kinds, count = self.rows, self.kinds, len(self.rows)
        for signal in signals:
            result, payout, ratio = kinds[rows[int(draw() * count)]]
            yield signal._replace(result=result, payout=payout, payout_per_stake=ratio)


# Set in the parent before the workers fork; read by them.
_PLAN: Optional[Plan] = None
_OUTCOMES: Optional[Outcomes] = None
_COUNTER = None


def _progress(count: int) -> None:
    if _COUNTER is not None:
        with _COUNTER.get_lock():
            _COUNTER.value += count


def _init(counter) -> None:
    global _COUNTER
    _COUNTER = counter


def _job(job: tuple[int, Optional[int]]) -> tuple[tuple[int, Optional[int]], Any]:
    index, run = job
    plan = _PLAN
    setting = plan.settings[index]
    if run is None:
        return job, simulate(setting, plan.source.signals(), curve=plan.curve, progress=_progress)
    seed = f"{plan.seed}:mc:{run}"
    if isinstance(plan.source, RandomSource):
        signals = plan.source.signals(seed=seed)
    else:
        signals = _OUTCOMES.resampled(plan.source.signals(), seed)
    ruined = simulate(setting, signals, bankroll=plan.bankroll, stop_at_ruin=True, progress=_progress).ruined
    return job, ruined


class _Watcher:
    """While entered, tells ``on_progress`` the rows read so far by every job, five times a second."""

    def __init__(self, on_progress: Optional[Callable[[int], None]], counter):
        self.on_progress, self.counter = on_progress, counter
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def __enter__(self):
        if self.on_progress is not None:
            self.thread = threading.Thread(target=self._watch, daemon=True)
            self.thread.start()
        return self

    def _watch(self) -> None:
        while not self.stop.wait(0.2):
            self.on_progress(self.counter.value)

    def __exit__(self, *exc) -> None:
        if self.thread is not None:
            self.stop.set()
            self.thread.join()
            self.on_progress(self.counter.value)


def default_processes(jobs: int) -> int:
    """One process per job while there are few (up to four per core): jobs of one stream take
    about as long each, so three settings on two cores finish together in 1.5 runs' time instead
    of two runs' time when one core runs two of them in turn. More jobs (Monte Carlo runs): one
    process per core."""
    cores = os.cpu_count() or 1
    return jobs if jobs <= 4 * cores else cores


def rows_per_pass(plan: Plan) -> Optional[int]:
    try:
        return len(plan.source)
    except TypeError:
        return None


def run_plan(
    plan: Plan, *, processes: Optional[int] = None, on_progress: Optional[Callable[[int], None]] = None
) -> list[Result]:
    """Every setting's result, in the order of ``plan.settings``; ``on_progress(rows)`` is called
    from a thread with the rows read so far by every job."""
    global _PLAN, _OUTCOMES, _COUNTER
    jobs: list[tuple[int, Optional[int]]] = [(i, None) for i in range(len(plan.settings))]
    jobs += [(i, run) for i in range(len(plan.settings)) for run in range(plan.monte_carlo)]
    _PLAN = plan
    _OUTCOMES = None
    if plan.monte_carlo and not isinstance(plan.source, RandomSource):
        _OUTCOMES = Outcomes(plan.source.signals())
    processes = max(1, min(processes or default_processes(len(jobs)), len(jobs)))
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    _COUNTER = counter
    watching = _Watcher(on_progress, counter)
    try:
        if processes == 1:
            with watching:
                answers = [_job(job) for job in jobs]
        else:
            # The pool forks its workers before the watcher's thread starts.
            with context.Pool(processes, initializer=_init, initargs=(counter,)) as pool, watching:
                answers = list(pool.imap_unordered(_job, jobs, chunksize=max(1, len(jobs) // (processes * 8))))
    finally:
        _PLAN = _OUTCOMES = _COUNTER = None
    results: list[Result] = [None] * len(plan.settings)  # type: ignore[list-item]
    ruined = [0] * len(plan.settings)
    for (index, run), answer in answers:
        if run is None:
            results[index] = answer
        elif answer:
            ruined[index] += 1
    if plan.monte_carlo:
        for index, result in enumerate(results):
            low, high = wilson_interval(ruined[index], plan.monte_carlo)
            result.monte_carlo = {
                "risk_of_ruin": round(ruined[index] / plan.monte_carlo, 4),
                "risk_of_ruin_interval": [round(low, 4), round(high, 4)],
                "monte_carlo_runs": plan.monte_carlo,
                "ruined_runs": ruined[index],
                "bankroll": f"{plan.bankroll:.2f}",
            }
    return results


def ranked(results: list[Result], rank: str) -> list[Result]:
    """Best first by ``rank``: net_profit highest, max_drawdown lowest, risk_of_ruin lowest,
    profit_per_drawdown highest (a profit without any drawdown first of all); ties keep their
    order."""
    if rank == "net_profit":
        return sorted(results, key=lambda r: -r.net_profit)
    if rank == "max_drawdown":
        return sorted(results, key=lambda r: r.max_drawdown)
    if rank == "risk_of_ruin":
        return sorted(results, key=lambda r: (r.monte_carlo or {}).get("risk_of_ruin", 1.0))

    def per_drawdown(result: Result):
        ratio = result.profit_per_drawdown
        if ratio is None:
            return (0, -result.net_profit) if result.net_profit > 0 else (2, -result.net_profit)
        return (1, -ratio)

    return sorted(results, key=per_drawdown)
