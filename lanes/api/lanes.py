"""Lanes (SPEC §4–7, §9): a page of them, one with its events and trades, completing one by hand."""
from __future__ import annotations

from typing import Optional

from django.http import JsonResponse
from ninja import Query, Router

from .. import selectors, services
from ..models import LaneStatus
from ..ranges import LANE_LIST_LIMIT, Choice
from ..serializers import event_json, lane_json, trade_json
from .auth import actor, scope
from .params import known_query
from .schemas import LIST_LIMIT, AccountName, CompleteRequest, Lane, LaneDetail, LaneId, LaneList, queried

router = Router()

LaneStatusQuery = queried(Choice(tuple(LaneStatus.values), None), str, "only the lanes in this status")


@router.get(
    "/lanes",
    response=LaneList,
    operation_id="listLanes",
    summary="Lanes of the accounts in the token's scope, oldest first, a page at a time",
)
def list_lanes(
    request,
    account: Query[Optional[AccountName]] = None,
    status: Query[Optional[LaneStatusQuery]] = None,
    limit: LIST_LIMIT = Query(LANE_LIST_LIMIT.default),
    cursor: Query[Optional[str]] = None,
):
    known_query(request, "account", "status", "limit", "cursor")
    lanes, next_cursor = selectors.lane_page(
        account=account, status=status, account_names=scope(request), limit=limit, cursor=cursor
    )
    return JsonResponse({"lanes": [lane_json(lane) for lane in lanes], "next": next_cursor})


@router.get("/lanes/{lane_id}", response=LaneDetail, operation_id="getLane", summary="One lane with its event timeline and its trades")
def get_lane(request, lane_id: LaneId):
    known_query(request)
    lane = selectors.lane_get(lane_id=lane_id)
    if not request.auth.covers(lane.account_name):
        raise services.NotFound(f"lane {lane.lane_id} not found")  # as an unknown one: ids cannot be probed
    return JsonResponse(
        {
            **lane_json(lane),
            "events": [event_json(event) for event in selectors.lane_events(lane=lane)],
            "trades": [trade_json(trade, account_name=lane.account_name) for trade in selectors.lane_trades(lane=lane)],
        }
    )


@router.post(
    "/lanes/{lane_id}/complete",
    response=Lane,
    operation_id="completeLane",
    summary="End an active lane by hand as completed (force_completed) or cancelled",
)
def complete_lane(request, lane_id: LaneId, body: Optional[CompleteRequest] = None):
    status = body.status if body is not None else CompleteRequest().status
    services.lane_force_complete(lane_id=lane_id, status=status, actor=actor(request), authorize=request.auth.covers)
    # Read back for open_trade_id: a trade open in the lane stays open and takes its result later.
    return JsonResponse(lane_json(selectors.lane_get(lane_id=lane_id)))
