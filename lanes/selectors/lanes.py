"""Reads of lanes: a page of a list, one lane with its trades and events."""
from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Iterator, Optional

from django.db.models import OuterRef, Q, QuerySet, Subquery

from settings_app.models import TradingSettings

from ..models import Lane, LaneEvent, LaneStatus, Trade, TradeStatus
from ..ranges import LANE_LIST_LIMIT, InvalidInput
from ..services import Forbidden, NotFound
from ..validation import clean


def with_open_trade(lanes: QuerySet) -> QuerySet:
    """The lanes, each with ``open_trade_id`` (None when idle) and its account's max_stake as
    ``account_max_stake`` (what its remaining risk is bounded by, SPEC §11)."""
    open_trade = Trade.objects.filter(lane=OuterRef("lane_id"), status=TradeStatus.OPEN).values("trade_id")[:1]
    max_stake = TradingSettings.objects.filter(account_name=OuterRef("account_name")).values("max_stake")[:1]
    return lanes.annotate(open_trade_id=Subquery(open_trade), account_max_stake=Subquery(max_stake))


def check_scope(account: Optional[str], account_names: Optional[list[str]]) -> None:
    if account is not None and account_names is not None and account not in account_names:
        raise Forbidden(f"this token may not read account {account}")


def _cursor(lane: Lane) -> str:
    return base64.urlsafe_b64encode(f"{lane.created_at.isoformat()}|{lane.pk}".encode()).decode().rstrip("=")


def _after(cursor: str) -> Q:
    """The lanes after the one a cursor names, in the list's order (oldest first)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, pk = raw.rsplit("|", 1)
        created_at, pk = datetime.fromisoformat(stamp), int(pk)
        if created_at.tzinfo is None:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput({"cursor": "is not a cursor from this list's `next`"}) from None
    return Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk)


def _lanes(account: Optional[str], status: Optional[str], account_names: Optional[list[str]]) -> QuerySet:
    if status is not None and status not in LaneStatus.values:
        raise InvalidInput({"status": "must be one of " + ", ".join(LaneStatus.values)})
    check_scope(account, account_names)
    lanes = with_open_trade(Lane.objects.all())
    if account is not None:
        lanes = lanes.filter(account_name=account)
    if account_names is not None:
        lanes = lanes.filter(account_name__in=account_names)
    if status is not None:
        lanes = lanes.filter(status=status)
    return lanes.order_by("created_at", "id")


def lane_page(
    *,
    account: str | None = None,
    status: str | None = None,
    account_names: list[str] | None = None,
    limit: int | str = LANE_LIST_LIMIT.default,
    cursor: str | None = None,
) -> tuple[list[Lane], Optional[str]]:
    """One page of lanes, oldest first, each with ``open_trade_id``, and the cursor of the next
    page (None on the last). ``account_names`` (None = every account) is the caller's scope."""
    limit = clean(LANE_LIST_LIMIT, limit, "limit", from_text=True)
    lanes = _lanes(account, status, account_names)
    if cursor is not None:
        lanes = lanes.filter(_after(cursor))
    page = list(lanes[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return page, (_cursor(page[-1]) if more else None)


def lane_iter(*, account: str | None = None, status: str | None = None, batch: int = 500) -> Iterator[Lane]:
    """Every lane, oldest first, a page at a time (for the command line's complete lists)."""
    cursor = None
    while True:
        page, cursor = lane_page(account=account, status=status, limit=batch, cursor=cursor)
        yield from page
        if cursor is None:
            return


def active_lane_count(*, account_name: str) -> int:
    return Lane.objects.filter(account_name=account_name, status=LaneStatus.ACTIVE).count()


def lane_get(*, lane_id: str) -> Lane:
    lane = with_open_trade(Lane.objects.filter(lane_id=lane_id)).first()
    if lane is None:
        raise NotFound(f"lane {lane_id} not found")
    return lane


def lane_events(*, lane: Lane) -> list[LaneEvent]:
    return list(LaneEvent.objects.filter(lane=lane).order_by("created_at", "id"))


def lane_trades(*, lane: Lane) -> list[Trade]:
    """The lane's trades in request order."""
    return list(Trade.objects.filter(lane=lane).order_by("requested_at", "id"))


def lane_trades_with_base(*, lane: Lane) -> list[Trade]:
    """The lane's trades preceded by the base trade whose loss created it (first in trade_ids)."""
    wanted = Q(lane=lane)
    if lane.trade_ids:
        wanted |= Q(trade_id=lane.trade_ids[0])
    return list(Trade.objects.filter(wanted).order_by("requested_at", "id"))
