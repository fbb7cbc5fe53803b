"""Health checks of what the lane engine depends on: the database and the Celery broker.

Used by GET /api/v1/health; each check answers a dict and never raises.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import connection
from kombu import Connection

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


def health() -> tuple[dict[str, Any], bool]:
    """(the health document, whether the service can work); a broker outage does not stop trading."""
    database = database_health()
    healthy = database["status"] == "ok"
    return {"status": "ok" if healthy else "error", "database": database, "broker": broker_health()}, healthy
