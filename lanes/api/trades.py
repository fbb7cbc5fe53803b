"""Trades (SPEC §3–5, §9): ask for a stake, read a trade, report its result, cancel it."""
from __future__ import annotations

import uuid
from typing import Optional

from django.http import JsonResponse
from django.urls import reverse
from ninja import Router

from .. import engine, services
from ..serializers import lane_json, trade_json
from .auth import actor, check_account
from .params import known_query
from .schemas import CancelRequest, ResultRequest, Trade, TradeId, TradeRequest, TradeWithLane

router = Router()


def _trade(outcome: services.TradeOutcome) -> dict:
    return trade_json(outcome.trade, account_name=outcome.trade.account.worker_name, queue_position=outcome.queue_position)


@router.post(
    "/trades",
    response={201: Trade, 200: Trade},
    operation_id="requestTrade",
    summary="Ask for a stake: open a trade now, queue it, or refuse it",
)
def request_trade(request, body: TradeRequest):
    check_account(request, body.account)
    trade_request = engine.Request(
        trade_id=body.trade_id or uuid.uuid4().hex,
        symbol=body.symbol,
        direction=body.direction,
        expected_payout=body.expected_payout,
        max_wait_seconds=body.max_wait_seconds,
    )
    outcome = services.trade_open(
        account_name=body.account, request=trade_request, actor=actor(request), authorize=request.auth.covers
    )
    response = JsonResponse(_trade(outcome), status=201 if outcome.created else 200)
    response["Location"] = reverse("api:trade", args=[trade_request.trade_id])
    return response


@router.get(
    "/trades/{trade_id}",
    response=Trade,
    operation_id="getTrade",
    url_name="trade",
    summary="Read one trade (serves the account's queue first)",
)
def get_trade(request, trade_id: TradeId):
    known_query(request)
    outcome = services.trade_refresh(trade_id=trade_id, actor=actor(request), authorize=request.auth.covers)
    return JsonResponse(_trade(outcome))


@router.post(
    "/trades/{trade_id}/result",
    response=TradeWithLane,
    operation_id="reportResult",
    summary="Report win, loss or draw; repeating the same result is harmless",
)
def report_result(request, trade_id: TradeId, body: ResultRequest):
    outcome = services.trade_settle(
        trade_id=trade_id, result=body.result, payout=body.payout, actor=actor(request), authorize=request.auth.covers
    )
    lane = lane_json(outcome.lane, open_trade_id=outcome.lane_open_trade_id) if outcome.lane else None
    return JsonResponse({**_trade(outcome), "lane": lane})


@router.post(
    "/trades/{trade_id}/cancel",
    response=Trade,
    operation_id="cancelTrade",
    summary="Cancel a queued or open trade; cancelling twice is harmless",
)
def cancel_trade(request, trade_id: TradeId, body: Optional[CancelRequest] = None):
    outcome = services.trade_cancel(trade_id=trade_id, actor=actor(request), authorize=request.auth.covers)
    return JsonResponse(_trade(outcome))
