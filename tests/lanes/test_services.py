"""The contract's rules through the services and the database (SPEC §3–8)."""
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.test import override_settings

from lanes import engine, services
from lanes.models import Account, Lane, LaneEvent, Trade
from settings_app.models import TradingSettings
from lanes.ranges import InvalidInput

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=dt_timezone.utc)
pytestmark = pytest.mark.django_db


def make_account(name="acc", **values):
    defaults = {"base_amount": "1.00", "martingale_multiplier": "1.50", "balance": "1000.00"}
    return services.account_create(name=name, values={**defaults, **values})


def ask(trade_id, *, account="acc", symbol="EURUSD", at=T0, **kwargs):
    request = engine.Request(trade_id=trade_id, symbol=symbol, **kwargs)
    return services.trade_open(account_name=account, request=request, actor="test", now=at)


def settle(trade_id, result, *, at=T0, payout=None):
    return services.trade_settle(trade_id=trade_id, result=result, payout=payout, actor="test", now=at)


def test_bot_flow_builds_the_ladder_and_recovers():
    make_account()
    first = ask("t1")
    assert (first.trade.status, first.trade.kind, first.trade.amount) == ("open", "base", Decimal("1.00"))
    lost = settle("t1", "loss")
    lane = lost.lane
    assert (lane.current_level, lane.current_amount, lane.trade_ids) == (1, Decimal("1.50"), ["t1"])
    second = ask("t2", at=T0 + timedelta(seconds=5))
    assert (second.trade.kind, second.trade.level, second.trade.amount) == ("lane", 1, Decimal("1.50"))
    assert second.trade.lane_id == lane.lane_id
    settle("t2", "loss", at=T0 + timedelta(seconds=10))
    third = ask("t3", at=T0 + timedelta(seconds=15))
    assert (third.trade.level, third.trade.amount) == (2, Decimal("2.25"))
    won = settle("t3", "win", at=T0 + timedelta(seconds=20))
    assert (won.lane.status, won.lane.outcome) == ("completed", "recovered")
    stored = Lane.objects.get(pk=lane.pk)
    assert stored.trade_ids == ["t1", "t2", "t3"]
    assert stored.total_invested == Decimal("4.75")
    assert stored.completed_at == T0 + timedelta(seconds=20)
    assert Trade.objects.get(trade_id="t3").profit == Decimal("1.91")  # payout round2(2.25 × 1.85) = 4.16, less the 2.25 stake
    assert list(LaneEvent.objects.filter(lane=stored).values_list("kind", flat=True)) == [
        "created", "trade_assigned", "advanced", "trade_assigned", "recovered",
    ]


def test_every_lane_event_names_its_actor_and_trade():
    make_account()
    ask("t1")
    settle("t1", "loss")
    event = LaneEvent.objects.get(kind="created")
    assert (event.actor, event.trade_id, event.account_name) == ("test", "t1", "acc")
    assert event.data == {
        "level": 1, "amount": "1.50", "base_amount": "1.00", "ladder_mode": "multiplier", "exposure": "48.26",
    }


def test_lane_events_are_append_only():
    make_account()
    ask("t1")
    settle("t1", "loss")
    event = LaneEvent.objects.get()
    event.actor = "someone else"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()
    assert LaneEvent.objects.get().actor == "test"


def test_queued_request_opens_on_the_lane_the_loss_created():
    make_account()
    ask("t1")
    queued = ask("t2", at=T0 + timedelta(seconds=1))
    assert (queued.trade.status, queued.queue_position, queued.trade.amount) == ("queued", 1, None)
    settle("t1", "loss", at=T0 + timedelta(seconds=2))
    t2 = Trade.objects.select_related("lane").get(trade_id="t2")
    assert (t2.status, t2.kind, t2.level, t2.amount) == ("open", "lane", 1, Decimal("1.50"))
    assert t2.lane.trade_ids == ["t1", "t2"]


def test_reading_a_trade_serves_the_queue_and_expires_old_requests():
    make_account()
    ask("t1")
    ask("t2", at=T0 + timedelta(seconds=1), max_wait_seconds=10)
    outcome = services.trade_refresh(trade_id="t2", actor="test", now=T0 + timedelta(seconds=11))
    assert outcome.trade.status == "expired"
    assert Trade.objects.get(trade_id="t2").settled_at == T0 + timedelta(seconds=11)


def test_repeated_request_returns_the_same_trade_and_differing_one_conflicts():
    make_account()
    ask("t1", direction="call")
    again = ask("t1", direction="call", at=T0 + timedelta(seconds=3))
    assert (again.created, again.trade.opened_at) == (False, T0)
    with pytest.raises(engine.Conflict):
        ask("t1", direction="put")
    assert Trade.objects.count() == 1


def test_trade_id_is_unique_across_accounts():
    make_account("a1")
    make_account("a2")
    ask("same", account="a1")
    with pytest.raises(engine.Conflict):
        ask("same", account="a2")
    assert list(Trade.objects.values_list("account__worker_name", flat=True)) == ["a1"]


def test_busy_refusal_stores_nothing():
    make_account()
    ask("t1")
    with pytest.raises(engine.Busy):
        ask("t2", max_wait_seconds=0)
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["t1"]


def test_unknown_and_disabled_accounts_are_refused():
    make_account(enabled=False)
    with pytest.raises(services.NotFound):
        ask("t1", account="nobody")
    with pytest.raises(engine.AccountDisabled):
        ask("t1")
    assert Trade.objects.count() == 0


def test_settings_row_is_created_on_first_write_and_bad_values_change_nothing():
    make_account()
    assert not TradingSettings.objects.exists()
    with pytest.raises(InvalidInput) as refused:
        services.settings_update(account_name="acc", values={"max_concurrent_lanes": 11}, actor="test")
    assert "max_concurrent_lanes" in refused.value.errors
    assert not TradingSettings.objects.exists()
    services.settings_update(account_name="acc", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 5}, actor="test")
    row = TradingSettings.objects.get(account_name="acc")
    assert (row.concurrent_trading_enabled, row.max_concurrent_lanes, row.cool_down_seconds) == (True, 5, 0)


def test_concurrency_setting_opens_several_trades_on_several_lanes():
    make_account()
    services.settings_update(account_name="acc", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 3}, actor="test")
    for i in range(3):
        assert ask(f"b{i}").trade.status == "open"
    assert ask("b3").trade.status == "queued"
    for i in range(3):
        settle(f"b{i}", "loss", at=T0 + timedelta(seconds=1))
    assert Lane.objects.filter(status="active").count() == 3
    # b3 opened on the first lane when b0's loss freed a slot.
    assert Trade.objects.get(trade_id="b3").lane.trade_ids == ["b0", "b3"]


def test_emergency_stop_turns_auto_create_off_and_losses_make_no_lane():
    make_account()
    services.account_emergency_stop(account_name="acc", actor="user:boss")
    assert TradingSettings.objects.get(account_name="acc").auto_create_lanes is False
    ask("t1")
    settle("t1", "loss")
    assert not Lane.objects.exists()
    event = LaneEvent.objects.get()
    assert (event.kind, event.lane, event.data["reason"]) == ("not_created", None, "auto_create_lanes is off")


def test_force_complete_ends_the_lane_and_refuses_a_second_time():
    make_account()
    ask("t1")
    lane = settle("t1", "loss").lane
    done = services.lane_force_complete(lane_id=lane.lane_id, status="cancelled", actor="user:boss", now=T0 + timedelta(seconds=1))
    assert (done.status, done.outcome, done.completed_at) == ("cancelled", "cancelled", T0 + timedelta(seconds=1))
    assert LaneEvent.objects.filter(kind="cancelled", actor="user:boss", lane=lane).count() == 1
    with pytest.raises(engine.Conflict):
        services.lane_force_complete(lane_id=lane.lane_id, actor="user:boss")
    with pytest.raises(services.NotFound):
        services.lane_force_complete(lane_id="no-such-lane", actor="user:boss")


def test_late_result_after_force_complete_touches_only_the_trade():
    make_account()
    ask("t1")
    lane = settle("t1", "loss").lane
    ask("t2", at=T0 + timedelta(seconds=1))
    services.lane_force_complete(lane_id=lane.lane_id, actor="user:boss", now=T0 + timedelta(seconds=2))
    outcome = settle("t2", "loss", at=T0 + timedelta(seconds=3))
    assert outcome.trade.status == "lost"
    stored = Lane.objects.get(pk=lane.pk)
    assert (stored.status, stored.outcome, stored.current_level) == ("completed", "force_completed", 1)


def test_reset_completes_every_active_lane_of_the_account_only():
    make_account()
    make_account("other")
    services.settings_update(account_name="acc", values={"concurrent_trading_enabled": True}, actor="test")
    for tid, account in (("a", "acc"), ("b", "acc"), ("c", "other")):
        ask(tid, account=account)
    for tid in ("a", "b", "c"):
        settle(tid, "loss")
    ended = services.account_reset(account_name="acc", actor="user:boss")
    assert len(ended) == 2
    assert set(Lane.objects.filter(status="active").values_list("account_name", flat=True)) == {"other"}
    assert LaneEvent.objects.filter(kind="force_completed").count() == 2


def test_daily_lane_limit_counts_the_time_zone_day():
    make_account()
    services.settings_update(account_name="acc", values={"max_daily_lanes": 1, "max_concurrent_lanes": 10}, actor="test")
    ask("t1")
    lane = settle("t1", "loss").lane
    services.lane_force_complete(lane_id=lane.lane_id, actor="test", now=T0)
    ask("t2", at=T0 + timedelta(minutes=1))
    settle("t2", "loss", at=T0 + timedelta(minutes=1))
    assert Lane.objects.count() == 1
    assert LaneEvent.objects.get(kind="not_created").data["reason"].startswith("max_daily_lanes reached")
    next_day = T0 + timedelta(days=1)
    ask("t3", at=next_day)
    settle("t3", "loss", at=next_day)
    assert Lane.objects.count() == 2


@override_settings(TIME_ZONE="Asia/Tokyo")
def test_daily_lane_limit_follows_the_configured_time_zone():
    make_account()
    services.settings_update(account_name="acc", values={"max_daily_lanes": 1}, actor="test")
    before_tokyo_midnight = datetime(2026, 11, 2, 14, 59, tzinfo=dt_timezone.utc)
    ask("t1", at=before_tokyo_midnight)
    lane = settle("t1", "loss", at=before_tokyo_midnight).lane
    services.lane_force_complete(lane_id=lane.lane_id, actor="test", now=before_tokyo_midnight)
    after = before_tokyo_midnight + timedelta(minutes=2)  # 00:01 in Tokyo: a new day
    ask("t2", at=after)
    settle("t2", "loss", at=after)
    assert Lane.objects.count() == 2


def test_legacy_account_uses_the_single_progression():
    make_account(enhanced_martingale_enabled=False, martingale_max_level=2)
    stakes = []
    for i in range(4):
        outcome = ask(f"t{i}", at=T0 + timedelta(seconds=i))
        stakes.append((outcome.trade.kind, outcome.trade.level, outcome.trade.amount))
        settle(f"t{i}", "loss", at=T0 + timedelta(seconds=i))
    assert stakes == [
        ("legacy", 0, Decimal("1.00")),
        ("legacy", 1, Decimal("1.50")),
        ("legacy", 2, Decimal("2.25")),
        ("legacy", 0, Decimal("1.00")),
    ]
    assert not Lane.objects.exists()
    assert Account.objects.get().legacy_consecutive_losses == 1


def _break_lane_logic(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("lane logic exploded")

    monkeypatch.setattr(engine, "choose_lane", broken)


def test_lane_logic_error_falls_back_to_legacy_rules(monkeypatch, caplog):
    make_account()
    _break_lane_logic(monkeypatch)
    outcome = ask("t1")
    assert (outcome.trade.kind, outcome.trade.status, outcome.trade.amount) == ("legacy", "open", Decimal("1.00"))
    assert "lane logic failed" in caplog.text and "RuntimeError" in caplog.text


@override_settings(MARTINGALE_LEGACY_FALLBACK=False)
def test_lane_logic_error_without_fallback_fails_and_writes_nothing(monkeypatch):
    make_account()
    _break_lane_logic(monkeypatch)
    with pytest.raises(RuntimeError):
        ask("t1")
    assert Trade.objects.count() == 0


def test_largest_stake_that_does_not_fit_is_refused():
    with pytest.raises(InvalidInput) as refused:
        make_account(base_amount="1000000.00", martingale_multiplier="3.00", martingale_max_level=20)
    assert "martingale_multiplier" in refused.value.errors
    assert not Account.objects.exists()


def test_account_update_refuses_out_of_range_values_and_changes_nothing():
    make_account()
    with pytest.raises(InvalidInput) as refused:
        services.account_update(name="acc", values={"martingale_multiplier": "1.00", "base_amount": "2.00"})
    assert set(refused.value.errors) == {"martingale_multiplier"}
    account = Account.objects.get()
    assert (account.base_amount, account.martingale_multiplier) == (Decimal("1.00"), Decimal("1.50"))


def test_cancel_takes_an_open_lane_trade_back_out_of_the_lane():
    make_account()
    ask("t1")
    settle("t1", "loss")
    ask("t2", at=T0 + timedelta(seconds=1))
    services.trade_cancel(trade_id="t2", actor="test", now=T0 + timedelta(seconds=2))
    lane = Lane.objects.get()
    assert (lane.trade_ids, lane.total_invested, lane.current_level) == (["t1"], Decimal("1.00"), 1)
    assert LaneEvent.objects.filter(kind="trade_cancelled", trade_id="t2").exists()


def test_a_ladder_whose_total_invested_would_not_fit_is_refused():
    with pytest.raises(InvalidInput) as refused:
        make_account(base_amount="50000000.00", martingale_multiplier="1.01", martingale_max_level=1)
    assert "would have invested 100,500,000.00" in refused.value.errors["martingale_multiplier"]
    assert not Account.objects.exists()


def test_a_ladder_whose_potential_payouts_would_not_fit_is_refused():
    with pytest.raises(InvalidInput) as refused:
        make_account(base_amount="10000000.00", martingale_multiplier="1.01", martingale_max_level=2, payout_rate="10.0000")
    assert set(refused.value.errors) == {"payout_rate"}
    make_account(base_amount="10000000.00", martingale_multiplier="1.01", martingale_max_level=2, payout_rate="0.8500")
    assert Account.objects.count() == 1
