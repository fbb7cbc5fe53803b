"""Health checks of what the lane engine depends on (the database and the Celery broker) and of
what it watches (stuck lanes, overdue trades).

Used by GET /api/v1/health and the status log; each check answers a dict and never raises.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Optional

from django.conf import settings
from django.db import connection
from kombu import Connection

from . import selectors

logger = logging.getLogger("lanes")

BROKER_TIMEOUT_SECONDS = 2


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def database_health() -> dict[str, Any]:
    start = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("health: database unreachable: %s", exc)
        return {"status": "error", "error": type(exc).__name__, "latency_ms": _ms_since(start)}
    return {"status": "ok", "latency_ms": _ms_since(start)}


def broker_health() -> dict[str, Any]:
    start = time.perf_counter()
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
            connect_timeout=BROKER_TIMEOUT_SECONDS,
        ) as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:
        # The class name only: the message may carry the broker's address.
        logger.warning("health: broker unreachable: %s", exc)
        return {"status": "unreachable", "error": type(exc).__name__, "latency_ms": _ms_since(start)}
    return {"status": "ok", "latency_ms": _ms_since(start)}


def alarms_health(*, now: Optional[datetime] = None, database_ok: bool = True) -> dict[str, Any]:
    """How many lanes are stuck and trades overdue, with the thresholds; the counts are None
    when the database cannot be read."""
    stuck = {"count": None, "after_hours": settings.MARTINGALE_STUCK_LANE_HOURS}
    overdue = {"count": None, "after_seconds": settings.MARTINGALE_TRADE_TIMEOUT_SECONDS}
    if database_ok:
        try:
            counts = selectors.health_counts(now=now)
        except Exception as exc:
            logger.warning("health: cannot count stuck lanes and overdue trades: %s", exc)
        else:
            stuck["count"], overdue["count"] = counts["stuck_lanes"], counts["overdue_trades"]
    return {"stuck_lanes": stuck, "overdue_trades": overdue}


def health(*, now: Optional[datetime] = None) -> tuple[dict[str, Any], bool]:
    """(the health document, whether the service can work); a broker outage, stuck lanes and
    overdue trades are reported but do not stop trading."""
    database = database_health()
    healthy = database["status"] == "ok"
    document = {"status": "ok" if healthy else "error", "database": database, "broker": broker_health()}
    return {**document, **alarms_health(now=now, database_ok=healthy)}, healthy
