"""Reads of account locks (SPEC §11)."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from django.db.models import Case, IntegerField, Q, Value, When

from ..models import AccountLock
from .accounts import account_get


def _active(now: datetime) -> Q:
    return Q(released_at__isnull=True, locked_until__gt=now)


def lock_list(*, account_name: str, now: datetime, limit: int = 100) -> list[AccountLock]:
    """The account's latest ``limit`` locks: the active ones first (the one ending last first),
    then the others, newest first."""
    account = account_get(account_name=account_name)
    return list(
        AccountLock.objects.filter(account=account)
        .annotate(is_active=Case(When(_active(now), then=Value(1)), default=Value(0), output_field=IntegerField()))
        .order_by("-is_active", "-locked_until", "-created_at", "-id")[:limit]
    )


def active_locks(*, account_name: str, now: datetime) -> list[AccountLock]:
    """The account's active locks, the one ending last first."""
    return list(
        AccountLock.objects.filter(_active(now), account__worker_name=account_name).order_by("-locked_until", "-id")
    )


def lock_get(*, lock_id: str) -> Optional[AccountLock]:
    """One lock with its account, or None."""
    return AccountLock.objects.select_related("account").filter(lock_id=lock_id).first()
