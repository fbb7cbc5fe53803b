"""The risk guard of SPEC §11: ladder modes, max stake, exposure and max exposure, the lanes' net
profit, circuit breakers and locks. Hand-computed scenarios on the engine and through the
services, the API and the command line, and properties of the engine under random play."""
import itertools
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from django.core.management import CommandError, call_command
from hypothesis import given, settings as hypothesis_settings, strategies as st

from lanes import engine, selectors, services
from lanes.engine import Account, AccountState, Request, Settings
from lanes.models import AccountLock, Lane, LaneEvent, Trade
from lanes.ranges import InvalidInput

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- The engine, by hand -------------------------------------------------------------------------


def book(*, base="1.00", multiplier="2.00", max_level=7, payout_rate="0.85", **settings) -> AccountState:
    settings.setdefault("concurrent_trading_enabled", True)
    settings.setdefault("max_concurrent_lanes", 10)
    settings.setdefault("max_daily_lanes", 50)
    return AccountState(
        account=Account("acc", D(base), D(multiplier), max_level=max_level, payout_rate=D(payout_rate)),
        settings=Settings(**settings),
        lanes={},
        trades={},
        day_end=datetime(2026, 3, 3, tzinfo=timezone.utc),
    )


def ids():
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


def play(state, trade_id, result, now, new_id, **kwargs) -> engine.Trade:
    trade = engine.request_trade(state, Request(trade_id=trade_id, symbol="EURUSD"), now)
    engine.settle_trade(state, trade_id, result, kwargs.get("payout"), now, new_id)
    return trade


def test_the_recover_ladder_of_the_spec_example():
    assert engine.mode_ladder("recover", D("1.00"), D("2.00"), D("0.85"), 4) == [
        D("1.00"), D("2.18"), D("4.75"), D("10.33"), D("22.49"),
    ]
    assert engine.recover_target(D("1.00"), D("0.85")) == D("0.85")


def test_a_recover_lane_climbs_its_ladder_and_nets_the_base_profit_when_it_wins():
    state, new_id = book(ladder_mode="recover"), ids()
    play(state, "b", "loss", at(0), new_id)
    (lane,) = state.lanes.values()
    assert (lane.ladder_mode, lane.payout_rate, lane.current_amount, lane.net_profit) == ("recover", D("0.85"), D("2.18"), D("-1.00"))
    assert [play(state, f"t{i}", "loss", at(i), new_id).amount for i in (1, 2)] == [D("2.18"), D("4.75")]
    assert lane.current_amount == D("10.33")
    won = play(state, "t3", "win", at(3), new_id)
    # 10.33 × 1.85 = 19.1105 → 19.11 returned, 8.78 profit, against 1.00 + 2.18 + 4.75 lost.
    assert (won.amount, won.payout, won.profit) == (D("10.33"), D("19.11"), D("8.78"))
    assert (lane.outcome, lane.net_profit) == ("recovered", D("0.85"))


def test_a_multiplier_lane_that_wins_below_the_payout_can_recover_at_a_loss():
    """The issue's demo account: 1.00, 1.50, 2.25 lost, 3.38 won at 0.85 — recovered, net -1.88."""
    state, new_id = book(multiplier="1.50"), ids()
    for i, result in enumerate(["loss", "loss", "loss", "win"]):
        play(state, f"t{i}", result, at(i), new_id)
    (lane,) = state.lanes.values()
    assert (lane.outcome, lane.net_profit) == ("recovered", D("-1.88"))


def test_max_stake_exhausts_a_lane_before_its_max_level():
    state, new_id = book(max_stake=D("5.00")), ids()  # 1, 2, 4 | 8: the last level is 2
    play(state, "b", "loss", at(0), new_id)
    (lane,) = state.lanes.values()
    assert engine.remaining_risk(lane, D("5.00")) == D("6.00")
    play(state, "t1", "loss", at(1), new_id)
    assert (lane.current_level, lane.current_amount, lane.status) == (2, D("4.00"), "active")
    assert engine.lane_at_last_level(lane, D("5.00"))
    play(state, "t2", "loss", at(2), new_id)
    assert (lane.status, lane.outcome, lane.current_level) == ("completed", "exhausted", 2)
    exhausted = [e for e in state.events if e.kind == "exhausted"]
    assert exhausted[0].data["reason"] == "max_stake" and exhausted[0].data["next_amount"] == "8.00"
    assert max(t.amount for t in state.trades.values()) == D("4.00")


def test_no_lane_when_its_first_stake_would_pass_max_stake():
    state, new_id = book(max_stake=D("1.50")), ids()
    play(state, "b", "loss", at(0), new_id)
    assert state.lanes == {}
    (event,) = [e for e in state.events if e.kind == "not_created"]
    assert event.data["reason"] == "max_stake"
    assert "2.00" in event.data["message"]


def test_max_exposure_refuses_a_lane_past_it_and_takes_one_exactly_at_it():
    # Levels 1–3 of 1.00 × 2: 2 + 4 + 8 = 14.00 at risk once the lane exists.
    refused, new_id = book(max_level=3, max_exposure=D("13.99")), ids()
    play(refused, "b", "loss", at(0), new_id)
    assert refused.lanes == {}
    (event,) = [e for e in refused.events if e.kind == "not_created"]
    assert (event.data["reason"], event.data["exposure"]) == ("max_exposure", "14.00")
    taken = book(max_level=3, max_exposure=D("14.00"))
    play(taken, "b", "loss", at(0), new_id)
    (lane,) = taken.lanes.values()
    assert taken.exposure() == D("14.00")
    assert engine.headroom(taken.settings, taken.exposure()) == D("0.00")


def test_exposure_counts_open_base_trades_and_the_lanes_remaining_risk():
    state, new_id = book(max_level=3), ids()
    play(state, "b", "loss", at(0), new_id)  # a lane: 2 + 4 + 8
    engine.request_trade(state, Request(trade_id="lane-trade", symbol="EURUSD"), at(1))  # joins the lane
    engine.request_trade(state, Request(trade_id="base", symbol="EURUSD"), at(2))  # a base trade, 1.00
    assert [state.trades[t].kind for t in ("lane-trade", "base")] == ["lane", "base"]
    assert state.exposure() == D("15.00")


def test_a_draw_and_a_partial_refund_count_in_the_lanes_net_profit():
    state, new_id = book(), ids()
    play(state, "b", "loss", at(0), new_id, payout=D("0.25"))
    (lane,) = state.lanes.values()
    assert lane.net_profit == D("-0.75")
    play(state, "t1", "draw", at(1), new_id)
    play(state, "t2", "loss", at(2), new_id, payout=D("0.50"))  # stake 2.00, 1.50 lost
    assert lane.net_profit == D("-2.25")


def test_the_exhausted_lanes_breaker_locks_at_exactly_n_in_the_window_not_before():
    state, new_id = book(max_level=1, max_exhausted_lanes=2, lock_minutes=30), ids()
    play(state, "b1", "loss", at(0), new_id)
    play(state, "t1", "loss", at(1), new_id)  # the first lane exhausted
    assert state.exhausted_in_window == 1 and state.active_lock(at(1)) is None
    play(state, "b2", "loss", at(2), new_id)
    play(state, "t2", "loss", at(3), new_id)  # the second
    lock = state.active_lock(at(3))
    assert (lock.reason, lock.locked_until) == ("exhausted_lanes", at(3) + timedelta(minutes=30))
    with pytest.raises(engine.AccountLocked) as refused:
        engine.request_trade(state, Request(trade_id="next", symbol="EURUSD"), at(4))
    assert refused.value.retry_after == 30 * 60 - 1
    assert "next" not in state.trades


def test_the_daily_breakers_come_first_and_lock_until_the_next_midnight():
    state, new_id = book(max_level=1, daily_stop_loss=D("3.00"), max_exhausted_lanes=1), ids()
    play(state, "b1", "loss", at(0), new_id)
    play(state, "t1", "loss", at(1), new_id)  # -1.00 - 2.00: both breakers trip, the stop-loss is first
    (lock,) = state.locks
    assert (lock.reason, lock.locked_until) == ("daily_stop_loss", datetime(2026, 3, 3, tzinfo=timezone.utc))
    take, new_id = book(daily_take_profit=D("0.85")), ids()
    play(take, "w", "win", at(0), new_id)
    assert take.locks[0].reason == "daily_take_profit"


def test_a_breaker_does_not_lock_an_account_already_locked():
    state, new_id = book(daily_stop_loss=D("1.00"), auto_create_lanes=False), ids()
    engine.request_trade(state, Request(trade_id="a", symbol="X"), at(0))
    engine.request_trade(state, Request(trade_id="b", symbol="X"), at(0))
    engine.settle_trade(state, "a", "loss", None, at(1), new_id)
    engine.settle_trade(state, "b", "loss", None, at(2), new_id)  # the result lands; no second lock
    assert [lock.reason for lock in state.locks] == ["daily_stop_loss"]
    assert state.trades["b"].status == "lost"


def test_queued_trades_wait_while_locked_and_open_once_released():
    state, new_id = book(daily_stop_loss=D("1.00"), concurrent_trading_enabled=False, auto_create_lanes=False), ids()
    engine.request_trade(state, Request(trade_id="a", symbol="X"), at(0))
    engine.request_trade(state, Request(trade_id="q", symbol="X", max_wait_seconds=600), at(1))
    engine.settle_trade(state, "a", "loss", None, at(2), new_id)
    assert state.trades["q"].status == "queued"
    engine.serve_queue(state, at(60))
    assert state.trades["q"].status == "queued"
    (released,) = engine.release_locks(state, at(120), "cli:ops")
    assert (released.released_at, released.released_by) == (at(120), "cli:ops")
    assert (state.trades["q"].status, state.trades["q"].opened_at) == ("open", at(120))
    assert [e.kind for e in state.events if e.lane_id is None][-2:] == ["locked", "unlocked"]


# --- Properties of the engine under random play -------------------------------------------------------


@st.composite
def plays(draw):
    settings = Settings(
        concurrent_trading_enabled=draw(st.booleans()),
        max_concurrent_lanes=draw(st.integers(1, 4)),
        max_daily_lanes=50,
        ladder_mode=draw(st.sampled_from(["multiplier", "recover"])),
        max_stake=draw(st.one_of(st.none(), st.sampled_from([D("1.50"), D("5.00"), D("12.00"), D("40.00")]))),
        max_exposure=draw(st.one_of(st.none(), st.sampled_from([D("3.00"), D("10.00"), D("30.00"), D("100.00")]))),
        daily_stop_loss=draw(st.one_of(st.none(), st.sampled_from([D("5.00"), D("20.00")]))),
        daily_take_profit=draw(st.one_of(st.none(), st.sampled_from([D("2.00"), D("8.00")]))),
        max_exhausted_lanes=draw(st.one_of(st.none(), st.integers(1, 3))),
        lock_minutes=draw(st.integers(1, 30)),
    )
    account = Account(
        "acc", D("1.00"), draw(st.sampled_from([D("1.50"), D("2.00"), D("2.20")])),
        max_level=draw(st.integers(1, 6)), payout_rate=draw(st.sampled_from([D("0.70"), D("0.85"), D("0.92")])),
    )
    steps = draw(st.lists(st.tuples(st.sampled_from(["ask", "win", "loss", "draw", "release"]), st.integers(0, 5)), max_size=80))
    return account, settings, steps


@hypothesis_settings(max_examples=300, deadline=None, database=None)
@given(plays())
def test_the_risk_guard_holds_under_random_play(case):
    account, settings, steps = case
    state = AccountState(account=account, settings=settings, lanes={}, trades={}, day_end=at(10**7))
    new_id, lanes = ids(), {}
    target = engine.recover_target(account.base_amount, account.payout_rate)
    for i, (action, pick) in enumerate(steps):
        now = at(i * 30)
        was_locked = state.active_lock(now) is not None
        open_before = {t.trade_id for t in state.open_trades()}
        events_before = len(state.events)
        if action == "ask":
            try:
                engine.request_trade(state, Request(trade_id=f"r{i}", symbol="EURUSD", max_wait_seconds=90), now)
            except engine.AccountLocked:
                assert was_locked
                assert f"r{i}" not in state.trades
            except engine.Busy:
                pass
        elif action == "release":
            engine.release_locks(state, now, "test")
            was_locked = False
        else:
            trades = sorted(state.open_trades(), key=lambda t: t.trade_id)
            if trades:
                engine.settle_trade(state, trades[pick % len(trades)].trade_id, action, None, now, new_id)
        opened = {t.trade_id for t in state.open_trades()} - open_before
        # No trade opens while a lock is active (one that a result just set included).
        if was_locked or any(e.kind == "locked" for e in state.events[events_before:]):
            assert not opened
        for trade in state.trades.values():
            if trade.amount is not None and trade.kind == "lane" and settings.max_stake is not None:
                assert trade.amount <= settings.max_stake
        # Exposure by its definition (SPEC §11), from the ladders themselves.
        by_definition = sum(
            (
                lane.current_amount + sum(lane.stakes()[lane.current_level + 1 : engine.lane_last_level(lane, settings.max_stake) + 1], D("0"))
                for lane in state.lanes.values() if lane.status == "active"
            ),
            D("0"),
        ) + sum((t.amount for t in state.open_trades() if t.kind in ("base", "legacy")), D("0"))
        assert state.exposure() == by_definition
        opened_unlaned = sum((state.trades[t].amount for t in opened if state.trades[t].kind in ("base", "legacy")), D("0"))
        for event in state.events[events_before:]:
            if event.kind == "created":
                # The exposure with the new lane, before the queue was served after the result.
                assert D(event.data["exposure"]) == state.exposure() - opened_unlaned
                if settings.max_exposure is not None:
                    assert D(event.data["exposure"]) <= settings.max_exposure
        lanes.update(state.lanes)
    for lane in lanes.values():
        if lane.ladder_mode == "recover" and lane.outcome == "recovered":
            assert lane.net_profit >= target


# --- Through the services and the API (locks on MariaDB: django_db(transaction=True)) -----------------


@pytest.fixture
def api(bearer_api):
    services.account_create(name="acc", values={"base_amount": "1.00", "martingale_multiplier": "2.00"})
    services.account_create(name="other", values={})
    _, raw = services.token_create(name="bot", account_names=["acc"])
    return bearer_api(raw)


def trade(api, trade_id, **body):
    return api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": trade_id, **body})


@pytest.mark.django_db(transaction=True)
def test_settings_of_the_risk_guard_through_the_api(api):
    status, body = api(
        "PATCH", "/accounts/acc/settings",
        {"ladder_mode": "recover", "max_stake": "25.00", "max_exposure": 60, "daily_stop_loss": "10.00",
         "max_exhausted_lanes": 3, "exhausted_window_hours": 12, "lock_minutes": 90},
    )
    assert status == 200
    assert {k: body[k] for k in ("ladder_mode", "max_stake", "max_exposure", "daily_stop_loss", "daily_take_profit",
                                 "max_exhausted_lanes", "exhausted_window_hours", "lock_minutes")} == {
        "ladder_mode": "recover", "max_stake": "25.00", "max_exposure": "60.00", "daily_stop_loss": "10.00",
        "daily_take_profit": None, "max_exhausted_lanes": 3, "exhausted_window_hours": 12, "lock_minutes": 90,
    }
    status, body = api("PATCH", "/accounts/acc/settings", {"max_stake": None})
    assert (status, body["max_stake"]) == (200, None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"ladder_mode": "fibonacci"}, "ladder_mode", "must be one of multiplier, recover"),
        ({"max_stake": "0.00"}, "max_stake", "must be from 0.01 to 99999999.99, or off (null)"),
        ({"max_exhausted_lanes": 51}, "max_exhausted_lanes", "must be from 1 to 50, or off (null)"),
        ({"exhausted_window_hours": 169}, "exhausted_window_hours", "must be from 1 to 168"),
        ({"lock_minutes": 0}, "lock_minutes", "must be from 1 to 10080"),
        ({"max_stake": "0.50"}, "base_amount", "1.00 is more than max_stake (0.50): lower it or raise max_stake"),
    ],
)
def test_bad_risk_settings_are_refused_naming_the_field_in_the_api_and_the_cli(api, body, field, message):
    status, answer = api("PATCH", "/accounts/acc/settings", body)
    assert (status, answer["error"]["fields"]) == (400, {field: message})
    (name, value), = body.items()
    option = "--" + name.replace("_", "-")
    with pytest.raises(CommandError) as refused:
        call_command("martingale", "account", "set", "acc", option, str(value))
    assert message in str(refused.value)
    assert Trade.objects.count() == 0
    assert selectors.settings_get(account_name="acc")["max_stake"] is None


@pytest.mark.django_db(transaction=True)
def test_a_recover_ladder_too_large_for_the_columns_is_refused():
    services.account_create(name="acc", values={"base_amount": "1000000.00", "payout_rate": "0.0100", "martingale_max_level": 3})
    with pytest.raises(InvalidInput) as refused:
        services.settings_update(account_name="acc", values={"ladder_mode": "recover"}, actor="test")
    assert set(refused.value.errors) == {"martingale_multiplier"}
    services.settings_update(account_name="acc", values={"ladder_mode": "recover", "max_stake": "5000000.00"}, actor="test")


@pytest.mark.django_db(transaction=True)
def test_a_lane_shows_its_mode_net_profit_and_remaining_risk(api):
    api("PATCH", "/accounts/acc/settings", {"ladder_mode": "recover", "max_stake": "10.00"})
    trade(api, "b")
    status, body = api("POST", "/trades/b/result", {"result": "loss"})
    lane = body["lane"]
    # 2.18 + 4.75 within max_stake 10.00 (10.33 would pass it)
    assert (lane["ladder_mode"], lane["payout_rate"], lane["net_profit"], lane["remaining_risk"]) == (
        "recover", "0.8500", "-1.00", "6.93",
    )
    status, page = api("GET", "/lanes?account=acc")
    assert page["lanes"][0]["remaining_risk"] == "6.93"
    status, detail = api("GET", f"/lanes/{lane['lane_id']}")
    assert (detail["net_profit"], detail["ladder_mode"]) == ("-1.00", "recover")
    status, account = api("GET", "/accounts/acc/status")
    assert (account["exposure"], account["max_exposure"], account["exposure_headroom"], account["active_lock"]) == (
        "6.93", None, None, None,
    )
    assert account["active_lanes"][0]["remaining_risk"] == "6.93"
    status, everyone = api("GET", "/status")
    assert everyone["accounts"][0]["exposure"] == "6.93"
    assert everyone["accounts"][0]["active_lanes"][0]["net_profit"] == "-1.00"


@pytest.mark.django_db(transaction=True)
def test_max_exposure_refuses_the_lane_with_its_event(api):
    api("PATCH", "/accounts/acc/settings", {"max_exposure": "100.00"})
    services.account_update(name="acc", values={"martingale_max_level": 7})  # 2 + 4 + … + 128 = 254
    trade(api, "b")
    status, body = api("POST", "/trades/b/result", {"result": "loss"})
    assert (status, body["lane"]) == (200, None)
    event = LaneEvent.objects.get(kind="not_created")
    assert (event.trade_id, event.lane_id, event.data["reason"], event.data["exposure"]) == ("b", None, "max_exposure", "254.00")
    status, account = api("GET", "/accounts/acc/status")
    assert (account["exposure"], account["exposure_headroom"]) == ("0.00", "100.00")


@pytest.mark.django_db(transaction=True)
def test_a_stop_loss_lock_refuses_the_next_request_and_lets_the_open_trade_land(api):
    api("PATCH", "/accounts/acc/settings", {"concurrent_trading_enabled": True, "daily_stop_loss": "1.00", "auto_create_lanes": False})
    assert trade(api, "a")[0] == 201 and trade(api, "b")[0] == 201
    status, body = api("POST", "/trades/a/result", {"result": "loss"})
    assert (status, body["status"]) == (200, "lost")
    lock = AccountLock.objects.get()
    assert (lock.reason, lock.released_at) == ("daily_stop_loss", None)

    trades_before = Trade.objects.count()
    response = services_client_post(api, "c")
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["reason"], error["lock_id"]) == ("account_locked", "daily_stop_loss", lock.lock_id)
    assert error["locked_until"] == lock.locked_until.isoformat()
    assert int(response["Retry-After"]) == error["retry_after"] >= 1
    assert "daily_stop_loss" in error["message"]
    assert Trade.objects.count() == trades_before

    status, body = api("POST", "/trades/b/result", {"result": "win"})  # the open trade still lands
    assert (status, body["status"], body["profit"]) == (200, "won", "0.85")
    assert AccountLock.objects.count() == 1
    status, account = api("GET", "/accounts/acc/status")
    assert account["active_lock"]["lock_id"] == lock.lock_id
    event = LaneEvent.objects.get(kind="locked")
    assert (event.lane_id, event.trade_id, event.data["reason"]) == (None, "a", "daily_stop_loss")


def services_client_post(api, trade_id):
    """The raw response of a trade request (for its headers)."""
    from django.test import Client

    token = services.token_create(name=f"raw-{trade_id}", account_names=["acc"])[1]
    return Client().post(
        "/api/v1/trades", json.dumps({"account": "acc", "symbol": "EURUSD", "trade_id": trade_id}),
        content_type="application/json", headers={"Authorization": f"Bearer {token}"},
    )


@pytest.mark.django_db(transaction=True)
def test_a_lock_set_and_released_by_hand_through_the_api(api):
    status, lock = api("POST", "/accounts/acc/locks", {"minutes": 15, "note": "news"})
    assert status == 201
    assert (lock["reason"], lock["note"], lock["active"], lock["released_at"]) == ("manual", "news", True, None)
    assert trade(api, "a")[0] == 409
    status, listed = api("GET", "/accounts/acc/locks")
    assert [item["lock_id"] for item in listed["locks"]] == [lock["lock_id"]]
    status, released = api("POST", f"/locks/{lock['lock_id']}/release")
    assert (status, released["active"], released["released_by"]) == (200, False, "token:bot")
    assert released["released_at"] is not None
    assert trade(api, "a")[0] == 201
    status, again = api("POST", f"/locks/{lock['lock_id']}/release")  # harmless
    assert (status, again["released_at"]) == (200, released["released_at"])
    assert [(e.kind, e.lane_id, e.actor) for e in LaneEvent.objects.filter(kind__in=["locked", "unlocked"])] == [
        ("locked", None, "token:bot"), ("unlocked", None, "token:bot"),
    ]


@pytest.mark.django_db(transaction=True)
def test_locks_of_another_account_are_out_of_scope(api):
    other = services.account_lock(account_name="other", minutes=5, actor="test")
    assert api("POST", "/accounts/other/locks", {"minutes": 5})[0] == 403
    assert api("GET", "/accounts/other/locks")[0] == 403
    assert api("POST", f"/locks/{other.lock_id}/release")[0] == 404
    assert api("POST", "/accounts/acc/locks", {"minutes": 10081})[1]["error"]["fields"] == {"minutes": "must be from 1 to 10080"}


@pytest.mark.django_db(transaction=True)
def test_the_exhausted_lanes_breaker_through_the_services_counts_the_window():
    services.account_create(name="acc", values={"martingale_max_level": 1})
    services.settings_update(
        account_name="acc", values={"max_exhausted_lanes": 2, "exhausted_window_hours": 1, "lock_minutes": 45}, actor="t"
    )

    def bust(prefix, now):
        for trade_id in (f"{prefix}-base", f"{prefix}-lane"):
            services.trade_open(account_name="acc", request=Request(trade_id=trade_id, symbol="EURUSD"), actor="t", now=now)
            services.trade_settle(trade_id=trade_id, result="loss", actor="t", now=now)

    bust("old", T0)
    bust("one", T0 + timedelta(hours=2))  # the first is out of the window: 1 of 2
    assert not AccountLock.objects.exists()
    bust("two", T0 + timedelta(hours=2, minutes=30))
    lock = AccountLock.objects.get()
    assert (lock.reason, lock.locked_until) == ("exhausted_lanes", T0 + timedelta(hours=3, minutes=15))
    assert Lane.objects.filter(outcome="exhausted").count() == 3
    with pytest.raises(engine.AccountLocked):
        services.trade_open(
            account_name="acc", request=Request(trade_id="x", symbol="EURUSD"), actor="t", now=T0 + timedelta(hours=3)
        )
    services.trade_open(account_name="acc", request=Request(trade_id="y", symbol="EURUSD"), actor="t", now=T0 + timedelta(hours=4))


@pytest.mark.django_db(transaction=True)
def test_lock_unlock_and_locks_on_the_command_line(capsys):
    services.account_create(name="acc", values={})
    call_command("martingale", "lock", "acc", "--minutes", "30", "--note", "news")
    assert "locked until" in capsys.readouterr().out
    lock = AccountLock.objects.get()
    assert (lock.reason, lock.note, lock.released_at) == ("manual", "news", None)
    call_command("martingale", "locks", "acc", "--json")
    assert json.loads(capsys.readouterr().out)["locks"][0]["active"] is True
    call_command("martingale", "unlock", "acc")
    assert "1 lock(s) of acc released" in capsys.readouterr().out
    lock.refresh_from_db()
    assert lock.released_by.startswith("cli:")
    call_command("martingale", "unlock", "acc")
    assert "no active lock" in capsys.readouterr().out
    with pytest.raises(CommandError, match=r"minutes \(--minutes\): must be from 1 to 10080"):
        call_command("martingale", "lock", "acc", "--minutes", "0")


@pytest.mark.django_db(transaction=True)
def test_account_set_takes_the_risk_settings_and_off(capsys):
    services.account_create(name="acc", values={})
    call_command("martingale", "account", "set", "acc", "--ladder-mode", "recover", "--max-stake", "20.00", "--daily-take-profit", "5")
    settings = selectors.settings_get(account_name="acc")
    assert (settings["ladder_mode"], settings["max_stake"], settings["daily_take_profit"]) == ("recover", "20.00", "5.00")
    call_command("martingale", "account", "set", "acc", "--max-stake", "off")
    assert selectors.settings_get(account_name="acc")["max_stake"] is None
    assert "recover" in capsys.readouterr().out


# --- Admin, the status log, the lanes' CSV export ------------------------------------------------------


@pytest.fixture
def boss(client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


@pytest.mark.django_db(transaction=True)
def test_the_admin_shows_the_lanes_risk_and_releases_a_lock(boss):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.urls import reverse

    services.account_create(name="acc", values={})
    services.settings_update(account_name="acc", values={"max_stake": "3.00"}, actor="t")
    services.trade_open(account_name="acc", request=Request(trade_id="b", symbol="EURUSD"), actor="t")
    services.trade_settle(trade_id="b", result="loss", actor="t")  # 2.00, then 4.00 passes max_stake
    page = boss.get(reverse("admin:lanes_lane_changelist")).content.decode()
    assert "multiplier" in page and "-1.00" in page and ">2.00<" in page
    lock = services.account_lock(account_name="acc", minutes=10, actor="t")
    url = reverse("admin:lanes_accountlock_changelist")
    data = {"action": "release", ACTION_CHECKBOX_NAME: [lock.pk]}
    assert b"Yes, I'm sure" in boss.post(url, data).content
    boss.post(url, {**data, "post": "yes"})
    lock.refresh_from_db()
    assert (lock.released_by, lock.released_at is not None) == ("admin:boss", True)


@pytest.mark.django_db(transaction=True)
def test_the_status_log_and_the_export_show_exposure_locks_and_net_profit():
    from lanes import status_log

    services.account_create(name="acc", values={})
    services.settings_update(account_name="acc", values={"max_exposure": "500.00"}, actor="t")
    services.trade_open(account_name="acc", request=Request(trade_id="b", symbol="EURUSD"), actor="t")
    lane = services.trade_settle(trade_id="b", result="loss", actor="t").lane
    services.account_lock(account_name="acc", minutes=10, note="cpi", actor="t")
    status = selectors.status_all()["accounts"][0]
    line = status_log.account_line(status)
    # 2 + 4 + … + 128 = 254.00 at risk, 246.00 left
    assert "exposure=254.00" in line and "max_exposure=500.00" in line and "headroom=246.00" in line
    assert "lock_reason=manual" in line
    lane_line = status_log.lane_line(status["active_lanes"][0], now=datetime.now(timezone.utc))
    assert "net_profit=-1.00" in lane_line and "remaining_risk=254.00" in lane_line and "ladder_mode=multiplier" in lane_line
    rows = list(selectors.lanes_export(days=1))
    columns = dict(zip(selectors.exports.LANE_EXPORT_COLUMNS, rows[0]))
    assert (columns["lane_id"], columns["net_profit"], columns["remaining_risk"], columns["ladder_mode"]) == (
        lane.lane_id, D("-1.00"), D("254.00"), "multiplier",
    )


def test_the_risk_report_shows_the_ladder_of_each_mode_side_by_side():
    from lanes import risk

    account = Account("acc", D("1.00"), D("1.50"), max_level=4, payout_rate=D("0.85"))
    report = risk.report(account, Settings(ladder_mode="recover", max_stake=D("12.00")), D("100.00"))
    assert (report.mode, report.other_mode) == ("recover", "multiplier")
    assert [(r.level, r.stake, r.lost_before, r.net_if_win) for r in report.rungs] == [
        (0, D("1.00"), D("0.00"), D("0.85")),
        (1, D("2.18"), D("1.00"), D("0.85")),  # 4.03 returned for 2.18 + 1.00 staked
        (2, D("4.75"), D("3.18"), D("0.86")),
        (3, D("10.33"), D("7.93"), D("0.85")),
    ]  # 22.49 would pass max_stake 12.00
    assert report.lane_worst == D("18.26")
    assert [r.stake for r in report.other_rungs] == [D("1.00"), D("1.50"), D("2.25"), D("3.38"), D("5.06")]
    # 2.78 for 2.50, 4.16 for 4.75, 6.25 for 8.13 (the demo: -1.88), 9.36 for 13.19
    assert [r.net_if_win for r in report.other_rungs][1:] == [D("0.28"), D("-0.59"), D("-1.88"), D("-3.83")]
    assert not any(w.kind == "recovery" for w in report.warnings)
    multiplier = risk.report(account, Settings(), D("100.00"))
    assert [w.kind for w in multiplier.warnings if w.kind == "recovery"] == ["recovery"]


@pytest.mark.django_db(transaction=True)
def test_the_risk_statistics_of_a_window_by_hand():
    services.account_create(name="acc", values={"martingale_multiplier": "1.50", "martingale_max_level": 2})
    for trade_id, result in [
        ("a0", "loss"), ("a1", "loss"), ("a2", "win"),  # lane A recovered: -1.00 - 1.50 + 1.91 = -0.59
        ("b0", "loss"), ("b1", "loss"), ("b2", "loss"),  # lane B exhausted: -4.75
        ("w", "win"),  # a base win: +0.85
        ("c0", "loss"),  # lane C, active at level 1: 1.50 + 2.25 still at risk
    ]:
        services.trade_open(account_name="acc", request=Request(trade_id=trade_id, symbol="EURUSD"), actor="t")
        services.trade_settle(trade_id=trade_id, result=result, actor="t")
    services.trade_open(account_name="acc", request=Request(trade_id="c1", symbol="EURUSD"), actor="t")  # joins lane C
    stats = selectors.risk_stats_get(account="acc", days=1)
    assert stats["lanes_recovered_at_loss"] == 1
    assert stats["net_profit_by_outcome"] == {
        "recovered": "-0.59", "exhausted": "-4.75", "force_completed": "0.00", "cancelled": "0.00", "active": "-1.00",
    }
    assert stats["exposure"] == "3.75"
    # Cumulative: -1.00, -2.50, -0.59, -1.59, -3.09, -5.34, -4.49, -5.49: 5.49 below the start.
    assert (stats["max_drawdown"], stats["max_consecutive_losses"]) == ("5.49", 3)
    assert selectors.risk_stats_get(days=1)["max_drawdown"] == "5.49"


def test_drawdown_and_losing_runs_of_the_engine():
    assert engine.max_drawdown([D("2.00"), D("-3.00"), D("1.00"), D("-1.50")]) == D("3.50")
    assert engine.max_drawdown([]) == D("0.00")
    assert engine.longest_losing_run(["lost", "draw", "lost", "won", "lost"]) == 2


@pytest.mark.django_db(transaction=True)
def test_a_bot_pauses_and_resumes_its_account_through_the_python_client(live_server):
    from lanes.client import ApiError, MartingaleClient

    services.account_create(name="acc", values={})
    bot = MartingaleClient(live_server.url, services.token_create(name="bot", account_names=["acc"])[1], retries=0)
    lock = bot.lock("acc", 20, note="news")
    assert (lock["reason"], lock["note"], lock["active"]) == ("manual", "news", True)
    with pytest.raises(ApiError) as refused:
        bot.request_trade("acc", "EURUSD")
    assert (refused.value.status, refused.value.code) == (409, "account_locked")
    assert 1 <= refused.value.retry_after <= 20 * 60
    assert [item["lock_id"] for item in bot.locks("acc")] == [lock["lock_id"]]
    assert bot.release_lock(lock["lock_id"])["active"] is False
    assert bot.request_trade("acc", "EURUSD")["status"] == "open"


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_the_lanes_already_there_their_net_profit_and_keeps_the_triggers():
    from lanes import summary

    services.account_create(name="acc", values={"martingale_multiplier": "1.50", "martingale_max_level": 2})
    for trade_id, result, payout in [("a0", "loss", "0.40"), ("a1", "loss", None), ("a2", "win", None), ("b0", "loss", None), ("b1", "draw", None)]:
        services.trade_open(account_name="acc", request=Request(trade_id=trade_id, symbol="EURUSD"), actor="t")
        services.trade_settle(trade_id=trade_id, result=result, payout=None if payout is None else D(payout), actor="t")
    before = dict(Lane.objects.values_list("lane_id", "net_profit"))
    assert sorted(before.values()) == [D("-1.00"), D("-0.19")]  # -0.60 - 1.50 + 1.91; -1.00 and a draw
    call_command("migrate", "lanes", "0005", verbosity=0)
    call_command("migrate", verbosity=0)
    assert dict(Lane.objects.values_list("lane_id", "net_profit")) == before
    assert summary.installed_triggers() == set(summary.TRIGGERS)
    assert summary.differences() == {}
