"""Celery tasks: the beat's status log, queue upkeep and statistics roll-up (schedule: CELERY_BEAT_SCHEDULE
in settings), and the simulator page's long runs (run_simulation) and their clean-up (prune_simulations).

A task loads its input and calls selectors or services; the rules live in ``lanes.engine`` and
the line format in ``lanes.status_log``. ``now`` is for tests; beat sends no arguments. A failure
is logged with its traceback and the next run comes on schedule.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Optional

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from . import risk_blocks, selectors, services, status_log, summary
from .health import health
from .serializers import lane_json, trade_json

logger = logging.getLogger("lanes.tasks")
status_logger = logging.getLogger("lanes.status")

UPKEEP_ACTOR = "system:upkeep"


@shared_task
def log_status(now: Optional[datetime] = None) -> None:
    """One line per enabled account and per active lane, a warning per stuck lane and overdue
    trade, then one health line (SPEC §9 "Status log")."""
    now = now or timezone.now()
    document, _ = health(now=now)
    try:
        accounts = selectors.status_all(now=now)["accounts"]
        stuck = selectors.stuck_lanes(now=now)
        overdue = selectors.overdue_trades(now=now)
    except DatabaseError:
        logger.exception("martingale.status: cannot read the accounts")
        accounts, stuck, overdue = None, [], []
    for item in accounts or []:
        status_logger.info(status_log.account_line(item))
        for lane in item["active_lanes"]:
            status_logger.info(status_log.lane_line(lane, now=now))
    for lane in stuck:
        status_logger.warning(
            status_log.stuck_lane_line(lane_json(lane), now=now, after_hours=settings.MARTINGALE_STUCK_LANE_HOURS)
        )
    for trade in overdue:
        status_logger.warning(
            status_log.overdue_trade_line(
                trade_json(trade, account_name=trade.account_name),
                now=now,
                after_seconds=settings.MARTINGALE_TRADE_TIMEOUT_SECONDS,
            )
        )
    status_logger.info(
        status_log.health_line(
            document,
            accounts=None if accounts is None else len(accounts),
            active_lanes=None if accounts is None else sum(len(item["active_lanes"]) for item in accounts),
        )
    )


@shared_task
def serve_queues(now: Optional[datetime] = None) -> dict[str, int]:
    """Serve the queue of every account that has queued trades (expire, open), through the same
    service as the API, so queued trades move even when no bot calls in.

    One account's failure is logged with its traceback and does not stop the others; returns
    how many trades changed state, per account."""
    changed: dict[str, int] = {}
    for name in selectors.queued_account_names():
        try:
            changed[name] = services.queue_serve(account_name=name, actor=UPKEEP_ACTOR, now=now)
        except Exception:
            logger.exception("martingale.upkeep account=%s failed", name)
            continue
        if changed[name]:
            logger.info("martingale.upkeep account=%s changed_trades=%d", name, changed[name])
    return changed


@shared_task
def roll_up_stats() -> int:
    """Fold the statistics' pending changes into their running totals (lanes.summary) and the
    risk guard's blocks (lanes.risk_blocks), so that a statistics read meets few of them; returns
    how many were folded."""
    moved = summary.roll_up_all()
    risk = risk_blocks.roll_up_all()
    if moved or risk:
        logger.info("martingale.stats rolled_up_changes=%d risk_changes=%d", moved, risk)
    return moved + risk


@shared_task
def run_simulation(job: str) -> None:
    """A run of the simulator page (``lanes.simulator.web``): its options, progress and results are
    files in the run's folder, which the page polls."""
    from .simulator import web

    web.execute(job)


@shared_task
def prune_simulations(now: Optional[datetime] = None) -> int:
    """Delete the simulator page's runs untouched for SIMULATOR_KEEP_DAYS days (their folders);
    returns how many."""
    from .simulator import web

    removed = web.prune(keep_days=settings.SIMULATOR_KEEP_DAYS, now=now)
    if removed:
        logger.info("martingale.simulations pruned_runs=%d", removed)
    return removed
