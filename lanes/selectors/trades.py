"""Reads of single trades."""
from __future__ import annotations

from ..models import Trade
from ..services import NotFound


def trade_get(*, trade_id: str) -> Trade:
    """The trade with its account."""
    trade = Trade.objects.select_related("account").filter(trade_id=trade_id).first()
    if trade is None:
        raise NotFound(f"trade {trade_id} not found")
    return trade
