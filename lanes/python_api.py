"""The description's Python functions (SPEC §9), for scripts in the bot's own process.

They call the same services and selectors as the API and the command line, so they refuse the
same values with the same ``InvalidInput`` and answer with the same JSON-ready dictionaries::

    import django, os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "martingale_project.settings")
    django.setup()

    from lanes.python_api import (
        configure_enhanced_martingale_settings,
        force_complete_martingale_lane,
        get_current_martingale_status,
        get_enhanced_martingale_manager,
        get_enhanced_martingale_statistics,
    )

    status = get_current_martingale_status()
    configure_enhanced_martingale_settings("pelly_demo", concurrent_trading_enabled=True, max_concurrent_lanes=5)
    stats = get_enhanced_martingale_statistics("pelly_demo", days=7)
    force_complete_martingale_lane("lane_id_here")

    mgr = get_enhanced_martingale_manager()
    print(mgr.get_current_status())

A bot in another process uses the HTTP API instead (``lanes.client``).
"""
from __future__ import annotations

from typing import Any, Optional

from . import selectors, services
from .serializers import lane_json

ACTOR = "python"


def get_current_martingale_status() -> dict[str, Any]:
    """The status of every enabled account: settings, slots, active lanes, open and queued trades."""
    return selectors.status_all()


def configure_enhanced_martingale_settings(account: str, **settings: Any) -> dict[str, Any]:
    """Change any of the six trading settings with typed values; returns the account's settings.

    Raises ``InvalidInput`` (nothing changed) for an unknown setting or a value out of range, and
    ``services.NotFound`` for an unknown account.
    """
    services.settings_update(account_name=account, values=settings, actor=ACTOR)
    return selectors.settings_get(account_name=account)


def get_enhanced_martingale_statistics(account: Optional[str] = None, days: int = 7) -> dict[str, Any]:
    """Statistics of the last ``days`` × 24 hours, for one account or all of them."""
    return selectors.stats_with_risk_get(account=account, days=days)


def force_complete_martingale_lane(lane_id: str, status: str = "completed") -> dict[str, Any]:
    """End an active lane as ``completed`` or ``cancelled``; returns the lane."""
    lane = services.lane_force_complete(lane_id=lane_id, status=status, actor=ACTOR)
    return lane_json(selectors.lane_get(lane_id=lane.lane_id))


class EnhancedMartingaleManager:
    """The description's manager object; every method delegates to the functions above."""

    def get_current_status(self) -> dict[str, Any]:
        return get_current_martingale_status()

    def configure(self, account: str, **settings: Any) -> dict[str, Any]:
        return configure_enhanced_martingale_settings(account, **settings)

    def get_statistics(self, account: Optional[str] = None, days: int = 7) -> dict[str, Any]:
        return get_enhanced_martingale_statistics(account, days)

    def force_complete_lane(self, lane_id: str, status: str = "completed") -> dict[str, Any]:
        return force_complete_martingale_lane(lane_id, status)


def get_enhanced_martingale_manager() -> EnhancedMartingaleManager:
    return EnhancedMartingaleManager()
