"""The hot path's compiled statements (lanes/statements.py) write and read what the ORM would."""
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import DatabaseError

from lanes import services
from lanes.models import ApiToken, Lane, LaneEvent
from lanes.services import EVENT_WRITES, LANE_WRITES, token_for

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=dt_timezone.utc)


def lane(**overrides) -> Lane:
    values = dict(
        lane_id="L1", account_name="acc", symbol="EURUSD", status="active", current_level=2,
        base_amount=Decimal("1.00"), current_amount=Decimal("2.20"), multiplier=Decimal("2.20"), max_level=5,
        total_invested=Decimal("1.00"), total_potential_payout=Decimal("1.85"), trade_ids=["t1"],
        created_at=AT, updated_at=AT, completed_at=None, outcome=None, last_assigned_at=None,
    )
    return Lane(**{**values, **overrides})


def test_an_inserted_and_updated_lane_reads_back_as_the_orm_saves_it():
    row = lane()
    LANE_WRITES.insert(row)
    assert row.pk is not None and row._state.adding is False
    stored = Lane.objects.get(pk=row.pk)
    assert (stored.lane_id, stored.current_amount, stored.trade_ids, stored.created_at) == ("L1", Decimal("2.20"), ["t1"], AT)
    row.status, row.outcome, row.trade_ids, row.total_invested = "completed", "recovered", ["t1", "t2"], Decimal("3.20")
    row.lane_id = "changed"  # not an update field: stays as stored
    LANE_WRITES.update(row)
    stored = Lane.objects.get(pk=row.pk)
    assert (stored.lane_id, stored.status, stored.outcome, stored.trade_ids, stored.total_invested) == (
        "L1", "completed", "recovered", ["t1", "t2"], Decimal("3.20")
    )


def test_updating_a_row_that_is_not_there_is_an_error_not_a_silent_no_op():
    with pytest.raises(DatabaseError, match="no row"):
        LANE_WRITES.update(lane(pk=987654))


def test_events_are_inserted_in_one_statement(django_assert_num_queries):
    LANE_WRITES.insert(lane())
    events = [
        LaneEvent(lane_id="L1", account_name="acc", kind="lane_advanced", trade_id=f"t{i}", actor="t", data={"i": i}, created_at=AT)
        for i in range(3)
    ]
    with django_assert_num_queries(1):
        EVENT_WRITES.insert_all(events)
    assert sorted(LaneEvent.objects.values_list("trade_id", "data")) == [("t0", {"i": 0}), ("t1", {"i": 1}), ("t2", {"i": 2})]


def test_a_token_is_found_by_its_hash_and_not_once_revoked():
    token, raw = services.token_create(name="bot", account_names=[])
    found = token_for(raw)
    assert isinstance(found, ApiToken) and (found.pk, found.name, found.all_accounts, found.account_names) == (
        token.pk, "bot", True, []
    )
    assert token_for(raw + "x") is None
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=AT)
    assert token_for(raw) is None
