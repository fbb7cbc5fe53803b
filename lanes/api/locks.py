"""Locks (SPEC §11): an account's locks, a pause by hand, releasing one."""
from __future__ import annotations

from typing import Optional

from django.http import JsonResponse
from django.utils import timezone
from ninja import Router

from .. import selectors, services
from ..serializers import lock_json
from .auth import actor, check_account
from .params import known_query
from .schemas import AccountName, CancelRequest, Lock, LockId, LockList, LockRequest

router = Router()


@router.get(
    "/accounts/{account}/locks",
    response=LockList,
    operation_id="listLocks",
    summary="The account's locks, active first",
)
def list_locks(request, account: AccountName):
    check_account(request, account)
    known_query(request)
    now = timezone.now()
    locks = selectors.lock_list(account_name=account, now=now)
    return JsonResponse({"locks": [lock_json(lock, account_name=account, now=now) for lock in locks]})


@router.post(
    "/accounts/{account}/locks",
    response={201: Lock},
    operation_id="lockAccount",
    summary="Pause the account by hand: trade requests are refused (409 account_locked) for `minutes`",
    description="Queued trades wait (and expire); open trades still take results, cancels and force-completes.",
)
def lock_account(request, account: AccountName, body: LockRequest):
    check_account(request, account)
    lock = services.account_lock(
        account_name=account, minutes=body.minutes, note=body.note or "", actor=actor(request), authorize=request.auth.covers
    )
    return JsonResponse(lock_json(lock, account_name=account, now=timezone.now()), status=201)


@router.post(
    "/locks/{lock_id}/release",
    response=Lock,
    operation_id="releaseLock",
    summary="End a lock at once (a lock already released or ended is answered as it is)",
)
def release_lock(request, lock_id: LockId, body: Optional[CancelRequest] = None):
    lock = services.lock_release(lock_id=lock_id, actor=actor(request), authorize=request.auth.covers)
    return JsonResponse(lock_json(lock, account_name=lock.account.worker_name, now=timezone.now()))
