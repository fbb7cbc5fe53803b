"""The lines of the status log (SPEC §9 "Status log"): one record per line, ``key=value`` pairs.

Pure formatting: each function takes the JSON shapes of ``lanes.serializers`` / ``lanes.selectors``
(and the time to measure ages against) and returns one line. Every line starts with
``martingale.status <kind>``; the README documents each kind field by field.

Values: numbers and money as written (``1.50``), booleans ``true``/``false``, a missing value
``-``; a text value that is empty, is ``-`` or holds a space, ``"``, ``=`` or ``\\`` is written in
double quotes with JSON escapes, so ``key=value`` splits on spaces outside quotes.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Iterable, Optional

PREFIX = "martingale.status"
MISSING = "-"
_NEEDS_QUOTES = re.compile(r'[\s"=\\]')


def value_text(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if not text or text == MISSING or _NEEDS_QUOTES.search(text):
        return json.dumps(text, ensure_ascii=False)
    return text


def line(kind: str, pairs: Iterable[tuple[str, Any]]) -> str:
    return " ".join([PREFIX, kind, *(f"{key}={value_text(value)}" for key, value in pairs)])


def seconds_since(when: Optional[str | datetime], now: datetime) -> Optional[int]:
    """Whole seconds from ``when`` (an ISO time or a datetime) to ``now``; never negative."""
    if when is None:
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return max(0, int((now - when).total_seconds()))


def account_line(status: dict[str, Any]) -> str:
    """One enabled account, from one item of ``selectors.status_all()["accounts"]``."""
    account, settings = status["account"], status["settings"]
    return line(
        "account",
        [
            ("account", account["worker_name"]),
            ("mode", status["mode"]),
            ("martingale", account["martingale_enabled"]),
            ("active_lanes", len(status["active_lanes"])),
            ("max_lanes", settings["max_concurrent_lanes"]),
            ("open_trades", len(status["open_trades"])),
            ("queued_trades", len(status["queued_trades"])),
            ("slots", status["slots"]),
            ("free_slots", status["free_slots"]),
            ("concurrent", settings["concurrent_trading_enabled"]),
            ("strategy", settings["lane_assignment_strategy"]),
            ("auto_create", settings["auto_create_lanes"]),
            ("cool_down_seconds", settings["cool_down_seconds"]),
            ("lanes_today", status["lanes_created_today"]),
            ("max_daily_lanes", settings["max_daily_lanes"]),
            ("net_profit_today", status["net_profit_today"]),
            ("balance", account["balance"]),
            ("base_amount", account["base_amount"]),
            ("multiplier", account["martingale_multiplier"]),
            ("max_level", account["martingale_max_level"]),
            ("worst_case_exposure", status["worst_case_exposure"]),
            ("ladder_mode", settings["ladder_mode"]),
            ("exposure", status["exposure"]),
            ("max_exposure", status["max_exposure"]),
            ("headroom", status["exposure_headroom"]),
            ("locked_until", status["active_lock"]["locked_until"] if status["active_lock"] else None),
            ("lock_reason", status["active_lock"]["reason"] if status["active_lock"] else None),
        ],
    )


def lane_line(lane: dict[str, Any], *, now: datetime) -> str:
    """One active lane, from ``serializers.lane_json``."""
    return line(
        "lane",
        [
            ("lane", lane["lane_id"]),
            ("account", lane["account_name"]),
            ("symbol", lane["symbol"]),
            ("level", lane["current_level"]),
            ("max_level", lane["max_level"]),
            ("stake", lane["current_amount"]),
            ("invested", lane["total_invested"]),
            ("potential_payout", lane["total_potential_payout"]),
            ("trades", len(lane["trade_ids"])),
            ("open_trade", lane["open_trade_id"]),
            ("age_seconds", seconds_since(lane["created_at"], now)),
            ("unchanged_seconds", seconds_since(lane["updated_at"], now)),
            ("ladder_mode", lane["ladder_mode"]),
            ("net_profit", lane["net_profit"]),
            ("remaining_risk", lane["remaining_risk"]),
        ],
    )


def stuck_lane_line(lane: dict[str, Any], *, now: datetime, after_hours: float) -> str:
    """A warning: an active lane with no change for ``after_hours``."""
    return line(
        "stuck_lane",
        [
            ("lane", lane["lane_id"]),
            ("account", lane["account_name"]),
            ("symbol", lane["symbol"]),
            ("level", lane["current_level"]),
            ("stake", lane["current_amount"]),
            ("open_trade", lane["open_trade_id"]),
            ("unchanged_seconds", seconds_since(lane["updated_at"], now)),
            ("after_hours", after_hours),
        ],
    )


def overdue_trade_line(trade: dict[str, Any], *, now: datetime, after_seconds: int) -> str:
    """A warning: a trade open for longer than ``after_seconds`` (its result never came)."""
    return line(
        "overdue_trade",
        [
            ("trade", trade["trade_id"]),
            ("account", trade["account"]),
            ("symbol", trade["symbol"]),
            ("kind", trade["kind"]),
            ("lane", trade["lane_id"]),
            ("level", trade["level"]),
            ("stake", trade["amount"]),
            ("open_seconds", seconds_since(trade["opened_at"], now)),
            ("after_seconds", after_seconds),
        ],
    )


def health_line(health: dict[str, Any], *, accounts: Optional[int], active_lanes: Optional[int]) -> str:
    """The health of the system, from ``lanes.health.health()``; counts are ``-`` when the
    database could not be read."""
    database, broker = health["database"], health["broker"]
    stuck, overdue = health["stuck_lanes"], health["overdue_trades"]
    pairs: list[tuple[str, Any]] = [
        ("database", database["status"]),
        ("database_latency_ms", database["latency_ms"]),
        ("broker", broker["status"]),
        ("broker_latency_ms", broker["latency_ms"]),
        ("stuck_lanes", stuck["count"]),
        ("overdue_trades", overdue["count"]),
        ("accounts", accounts),
        ("active_lanes", active_lanes),
        ("stuck_after_hours", stuck["after_hours"]),
        ("overdue_after_seconds", overdue["after_seconds"]),
    ]
    if "error" in database:
        pairs.append(("database_error", database["error"]))
    if "error" in broker:
        pairs.append(("broker_error", broker["error"]))
    return line("health", pairs)
