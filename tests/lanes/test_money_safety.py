"""Defects that cost a trader money or lock an account, each through the interface where a user
meets it (issue 7): the legacy stake past the max level, overflowing columns, payout bounds, the
fallback, slots in legacy mode, lost results settled by hand, and lanes left idle by a switch."""
import json
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from lanes import engine, loading, services
from lanes.models import Account, Lane, LaneEvent, Trade

pytestmark = pytest.mark.django_db

D = Decimal
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def account():
    return services.account_create(
        name="acc", values={"base_amount": "1.00", "martingale_multiplier": "2.00", "balance": "1000.00"}
    )


@pytest.fixture
def api(account, bearer_api):
    return bearer_api(services.token_create(name="bot")[1])


def ask(trade_id, *, account="acc", at=None, **fields):
    request = engine.Request(trade_id=trade_id, symbol=fields.pop("symbol", "EURUSD"), **fields)
    return services.trade_open(account_name=account, request=request, actor="bot", now=at)


def settle(trade_id, result, *, at=None, payout=None):
    return services.trade_settle(trade_id=trade_id, result=result, payout=payout, actor="bot", now=at)


def database():
    """Everything a refused call must leave as it was."""
    return (
        list(Account.objects.order_by("pk").values()),
        list(Lane.objects.order_by("pk").values()),
        list(Trade.objects.order_by("pk").values()),
        list(LaneEvent.objects.order_by("pk").values()),
    )


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("martingale", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def staff_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("boss", is_staff=True))
    return client


# --- 1. Legacy stake above the max level (SPEC §6) ------------------------------------------------


def test_a_legacy_k_above_a_lowered_max_level_restarts_at_the_base(api):
    services.account_update(name="acc", values={"enhanced_martingale_enabled": False})
    for k in range(6):
        status, trade = api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": f"t{k}"})
        assert (status, trade["kind"], trade["level"]) == (201, "legacy", k)
        assert api("POST", f"/trades/t{k}/result", {"result": "loss"})[0] == 200
    assert Account.objects.get(worker_name="acc").legacy_consecutive_losses == 6

    status, _ = api("PATCH", "/accounts/acc", {"martingale_max_level": 2})
    assert status == 200
    status, trade = api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "after"})
    assert (status, trade["level"], trade["amount"]) == (201, 0, "1.00")  # not level 6 at 64.00
    assert Account.objects.get(worker_name="acc").legacy_consecutive_losses == 0
    api("POST", "/trades/after/result", {"result": "loss"})
    _, trade = api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "next"})
    assert (trade["level"], trade["amount"]) == (1, "2.00")


# --- 2. No input may overflow a column; the account keeps working (SPEC §5) -------------------------


def test_an_expected_payout_that_would_overflow_its_lane_is_refused_and_the_account_keeps_working(api):
    huge = "99999999.99"
    assert api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t1", "expected_payout": huge})[0] == 201
    status, lost = api("POST", "/trades/t1/result", {"result": "loss"})
    assert status == 200 and lost["lane"]["total_potential_payout"] == huge
    before = database()

    status, body = api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t2", "expected_payout": huge})
    assert status == 400 and set(body["error"]["fields"]) == {"expected_payout"}
    assert "99,999,999.99" in body["error"]["fields"]["expected_payout"]
    assert database() == before

    # The account keeps working: reads, a new trade (the full lane is passed over), its result.
    assert api("GET", "/accounts/acc/status")[0] == 200
    assert api("GET", "/lanes?account=acc")[0] == 200
    status, trade = api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t3"})
    assert (status, trade["kind"], trade["amount"]) == (201, "base", "1.00")
    assert api("POST", "/trades/t3/result", {"result": "win"})[0] == 200
    assert api("GET", "/accounts/acc/stats")[0] == 200
    lane = Lane.objects.get()
    assert (lane.total_potential_payout, lane.trade_ids) == (D(huge), ["t1"])
    page = staff_client().get(reverse("dashboard:account", args=["acc"]))
    assert page.status_code == 200 and b"full lane(s)" in page.content


def test_a_lane_holding_its_last_trade_id_is_passed_over_rather_than_overflow_its_list(account):
    ask("t0")
    lane = settle("t0", "loss").lane
    Lane.objects.filter(pk=lane.pk).update(trade_ids=[f"x{n}" for n in range(engine.MAX_LANE_TRADES)])
    trade = ask("t1").trade
    assert (trade.kind, trade.lane_id) == ("base", None)
    assert len(Lane.objects.get(pk=lane.pk).trade_ids) == engine.MAX_LANE_TRADES


def test_a_lane_whose_ladder_no_longer_fits_after_a_settings_change_is_not_created(account):
    services.account_update(
        name="acc",
        values={"base_amount": "40000000.00", "martingale_multiplier": "1.01", "martingale_max_level": 1, "payout_rate": "0.0100"},
    )
    ask("big")
    services.account_update(
        name="acc", values={"base_amount": "1.00", "martingale_multiplier": "999.99", "martingale_max_level": 2}
    )
    outcome = settle("big", "loss")
    assert outcome.lane is None and not Lane.objects.exists()
    event = LaneEvent.objects.get(kind="not_created")
    assert "the stake at level 2 would be" in event.data["reason"]
    assert ask("next").trade.amount == D("1.00")


# --- 3. Payouts are bounded by the result; profit is payout − stake (SPEC §5) -------------------------


@pytest.mark.parametrize(
    "result, payout",
    [("win", "0"), ("win", "0.00"), ("win", "1.00"), ("loss", "1.00"), ("loss", "5.00"), ("draw", "0.99"), ("draw", "1.01")],
)
def test_a_payout_outside_its_result_s_bounds_is_refused_and_changes_nothing(api, result, payout):
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t1"})
    before = database()
    status, body = api("POST", "/trades/t1/result", {"result": result, "payout": payout})
    assert status == 400 and set(body["error"]["fields"]) == {"payout"}
    assert database() == before
    assert Trade.objects.get(trade_id="t1").status == "open"


def test_a_win_with_payout_zero_no_longer_recovers_a_lane(api):
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t1"})
    api("POST", "/trades/t1/result", {"result": "loss"})
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t2"})
    status, _ = api("POST", "/trades/t2/result", {"result": "win", "payout": "0"})
    assert status == 400
    assert Lane.objects.get().status == "active"
    assert not LaneEvent.objects.filter(kind="recovered").exists()


def test_a_loss_with_a_partial_refund_counts_the_refund_in_its_profit(api):
    api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t1"})
    status, trade = api("POST", "/trades/t1/result", {"result": "loss", "payout": "0.40"})
    assert (status, trade["payout"], trade["profit"]) == (200, "0.40", "-0.60")
    assert trade["lane"]["current_amount"] == "2.00"  # the lane still starts from the lost stake
    _, stats = api("GET", "/accounts/acc/stats")
    assert (stats["losses"], stats["net_profit"]) == (1, "-0.60")


def test_payouts_at_their_bounds_are_accepted(api):
    for trade_id, result, payout, profit in (("w", "win", "1.01", "0.01"), ("l", "loss", "0.99", "-0.01"), ("d", "draw", "1.00", "0.00")):
        api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": trade_id})
        status, trade = api("POST", f"/trades/{trade_id}/result", {"result": result, "payout": payout})
        assert (status, trade["profit"]) == (200, profit)
        if result == "loss":
            services.lane_force_complete(lane_id=trade["lane"]["lane_id"], actor="test")


# --- 4. The fallback serves openings only (SPEC §6) -------------------------------------------------


def _explode(*args, **kwargs):
    raise RuntimeError("lane logic exploded")


@pytest.fixture
def lane_with_open_trade(account):
    ask("t0", at=T0)
    settle("t0", "loss", at=T0 + timedelta(seconds=1))
    ask("t1", at=T0 + timedelta(seconds=2))
    return Lane.objects.get()


def test_a_result_whose_lane_logic_fails_is_answered_503_and_writes_nothing(api, lane_with_open_trade, monkeypatch, caplog):
    before = database()
    monkeypatch.setattr(engine, "_settle_lane", _explode)
    response_status, body = api("POST", "/trades/t1/result", {"result": "loss"})
    assert (response_status, body["error"]["code"]) == (503, "engine_error")
    assert database() == before  # the trade is still open, the lane and its events untouched
    assert "lane logic failed" in caplog.text and "RuntimeError" in caplog.text
    monkeypatch.undo()
    status, trade = api("POST", "/trades/t1/result", {"result": "loss"})  # the bot's retry is safe
    assert (status, trade["lane"]["current_level"]) == (200, 2)


def test_the_engine_error_answer_says_when_to_retry(client, lane_with_open_trade, monkeypatch):
    monkeypatch.setattr(engine, "_settle_lane", _explode)
    raw = services.token_create(name="bot")[1]
    response = client.post(
        "/api/v1/trades/t1/result", json.dumps({"result": "win"}), content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )
    assert response.status_code == 503 and int(response["Retry-After"]) >= 1


def test_a_cancel_whose_lane_logic_fails_is_answered_503_and_writes_nothing(api, lane_with_open_trade, monkeypatch):
    before = database()
    monkeypatch.setattr(engine, "serve_queue", _explode)
    status, body = api("POST", "/trades/t1/cancel")
    assert (status, body["error"]["code"]) == (503, "engine_error")
    assert database() == before


def test_force_complete_and_reset_whose_lane_logic_fails_write_nothing(api, lane_with_open_trade, monkeypatch):
    before = database()
    monkeypatch.setattr(engine, "serve_queue", _explode)
    status, body = api("POST", f"/lanes/{lane_with_open_trade.lane_id}/complete")
    assert (status, body["error"]["code"]) == (503, "engine_error")
    with pytest.raises(CommandError, match="nothing was written"):
        run("reset", "acc")
    response = staff_client().post(reverse("dashboard:reset", args=["acc"]), follow=True)
    assert b"nothing was written" in response.content
    assert database() == before


def test_an_opening_whose_lane_logic_fails_is_served_by_the_legacy_rules_and_moves_no_lane(api, lane_with_open_trade, monkeypatch):
    settle("t1", "loss", at=T0 + timedelta(seconds=3))  # the lane is idle at level 2
    lane_before = list(Lane.objects.values())
    events_before = LaneEvent.objects.count()
    monkeypatch.setattr(engine, "choose_lane", _explode)
    status, trade = api("POST", "/trades", {"account": "acc", "symbol": "EURUSD", "trade_id": "t2"})
    assert (status, trade["kind"], trade["lane_id"]) == (201, "legacy", None)
    assert list(Lane.objects.values()) == lane_before
    assert LaneEvent.objects.count() == events_before


def test_the_fallback_starts_from_the_state_before_the_failed_attempt(account, monkeypatch):
    """Two queued trades open in one call; the lane logic fails on the second after the first was
    placed on a lane: the legacy rules serve the call, and the lane keeps nothing of the attempt."""
    services.settings_update(account_name="acc", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 3}, actor="t")
    for trade_id in ("b1", "b2", "b3"):
        ask(trade_id, at=T0)
    for trade_id, result in (("b1", "loss"), ("b2", "loss"), ("b3", "win")):
        settle(trade_id, result, at=T0 + timedelta(seconds=1))  # two idle lanes, no open trade
    services.settings_update(account_name="acc", values={"cool_down_seconds": 60}, actor="t")
    ask("w1", at=T0 + timedelta(seconds=4), max_wait_seconds=600)
    ask("w2", at=T0 + timedelta(seconds=5), max_wait_seconds=600)
    assert set(Trade.objects.filter(status="queued").values_list("trade_id", flat=True)) == {"w1", "w2"}
    services.settings_update(account_name="acc", values={"cool_down_seconds": 0}, actor="t")
    lanes_before = list(Lane.objects.order_by("pk").values("lane_id", "trade_ids", "total_invested", "total_potential_payout"))
    events_before = LaneEvent.objects.count()

    calls = {"n": 0}
    real = engine.choose_lane

    def fails_on_the_second(state, trade):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("lane logic exploded")
        return real(state, trade)

    monkeypatch.setattr(engine, "choose_lane", fails_on_the_second)
    services.queue_serve(account_name="acc", now=T0 + timedelta(seconds=70))
    # The legacy rules allow one open trade: w1 opens by them, w2 waits.
    assert [(t.trade_id, t.status, t.kind) for t in Trade.objects.filter(trade_id__in=["w1", "w2"]).order_by("trade_id")] == [
        ("w1", "open", "legacy"), ("w2", "queued", None),
    ]
    assert list(Lane.objects.order_by("pk").values("lane_id", "trade_ids", "total_invested", "total_potential_payout")) == lanes_before
    assert LaneEvent.objects.count() == events_before


def test_an_error_after_the_events_were_written_rolls_them_back_with_the_change(account, monkeypatch):
    ask("t0")
    before = database()
    monkeypatch.setattr(services, "_outcome", _explode)  # runs after trades, lanes and events were written
    with pytest.raises(RuntimeError):
        settle("t0", "loss")
    assert database() == before
    assert not LaneEvent.objects.exists() and not Lane.objects.exists()


# --- 5. Slots follow legacy mode everywhere ---------------------------------------------------------


def test_a_legacy_account_has_one_slot_on_every_screen(api):
    services.settings_update(account_name="acc", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 5}, actor="t")
    services.account_update(name="acc", values={"enhanced_martingale_enabled": False, "martingale_max_level": 3})
    client = staff_client()
    overview = client.get(reverse("dashboard:overview")).content.decode()
    assert 'data-field="open_trades">0 / 1<' in overview
    assert 'data-field="worst_case">15.00 / 1,000.00<' in overview  # one ladder, not five
    page = client.get(reverse("dashboard:account", args=["acc"])).content.decode()
    assert 'id="open-slots">0 / 1<' in page and 'id="worst-case">15.00<' in page
    panel = client.get(reverse("dashboard:settings", args=["acc"])).content.decode()
    assert 'id="risk-slots">1<' in panel and 'id="risk-worst-case">15.00<' in panel
    _, status = api("GET", "/accounts/acc/status")
    assert (status["slots"], status["worst_case_exposure"]) == (1, "15.00")
    out, _ = run("status")
    assert "slots 0/1 busy" in out and "worst-case exposure 15.00" in out


# --- 6. Lane lists are paged, never cut silently -----------------------------------------------------


def _many_lanes(count, *, status="active"):
    Lane.objects.bulk_create(
        Lane(
            lane_id=f"lane{n:04d}", account_name="acc", symbol="EURUSD", status=status, base_amount=D("1.00"),
            current_amount=D("2.00"), multiplier=D("2.00"), total_invested=D("1.00"), created_at=T0 + timedelta(seconds=n),
        )
        for n in range(count)
    )


def test_the_lane_list_api_pages_through_every_lane(api):
    _many_lanes(250)
    status, first = api("GET", "/lanes")
    assert status == 200 and len(first["lanes"]) == 100 and first["next"]
    seen, cursor = [], None
    while True:
        status, page = api("GET", "/lanes?limit=70" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200
        seen += [lane["lane_id"] for lane in page["lanes"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"lane{n:04d}" for n in range(250)]
    status, one = api("GET", "/lanes?limit=1000")
    assert len(one["lanes"]) == 250 and one["next"] is None


def test_the_cli_lists_every_active_lane(account):
    _many_lanes(600)
    out, _ = run("list")
    assert "Active lanes (600)" in out
    assert all(f"lane{n:04d}" in out for n in (0, 499, 500, 599))
    data = json.loads(run("list", "--json")[0])
    assert len(data["active_lanes"]) == 600


# --- 7. A lost result is settled by hand, through the same service ------------------------------------


def test_the_cli_settles_an_open_trade_by_hand_with_the_person_in_the_audit_trail(account):
    ask("lost-track")
    out, _ = run("settle", "lost-track", "loss")
    assert "settled by hand: lost" in out
    trade = Trade.objects.get(trade_id="lost-track")
    assert (trade.status, trade.profit) == ("lost", D("-1.00"))
    lane = Lane.objects.get()
    assert lane.trade_ids == ["lost-track"]
    event = LaneEvent.objects.get(kind="settled_by_hand")
    assert (event.trade_id, event.actor.startswith("cli:"), event.data["result"]) == ("lost-track", True, "loss")
    assert LaneEvent.objects.get(kind="created").actor == event.actor
    # The slot is free again: with concurrency off the account trades on.
    assert ask("next").trade.status == "open"


def test_the_cli_refuses_a_bad_manual_result_and_changes_nothing(account):
    ask("t1")
    before = database()
    with pytest.raises(CommandError, match=r"payout \(--payout\)|payout: a win must return more than the stake"):
        run("settle", "t1", "win", "--payout", "0.50")
    with pytest.raises(CommandError, match="result"):
        run("settle", "t1", "maybe")
    with pytest.raises(CommandError, match="trade nope not found"):
        run("settle", "nope", "win")
    assert database() == before


def test_the_dashboard_settles_an_open_trade_by_hand(account):
    ask("t1")
    client = staff_client()
    url = reverse("dashboard:trade-settle", args=["t1"])
    assert 'href="' + url in client.get(reverse("dashboard:account", args=["acc"])).content.decode()
    refused = client.post(url, {"result": "win", "payout": "0.50"})
    assert refused.status_code == 200 and b"a win must return more than the stake" in refused.content
    assert Trade.objects.get(trade_id="t1").status == "open"
    response = client.post(url, {"result": "win"})
    assert response.status_code == 302
    assert Trade.objects.get(trade_id="t1").status == "won"
    assert LaneEvent.objects.get(kind="settled_by_hand").actor == "dashboard:boss"
    viewer = Client()
    viewer.force_login(User.objects.create_user("viewer"))
    ask("t2")
    assert viewer.post(reverse("dashboard:trade-settle", args=["t2"]), {"result": "loss"}).status_code == 403
    assert Trade.objects.get(trade_id="t2").status == "open"


# --- 8. Switching martingale or lanes off says what happens to the active lanes ----------------------


@pytest.fixture
def active_lane(account):
    ask("t0")
    return settle("t0", "loss").lane


def test_the_api_answers_a_warning_and_can_complete_the_lanes(api, active_lane):
    status, body = api("PATCH", "/accounts/acc", {"martingale_enabled": False})
    assert status == 200 and body["martingale_enabled"] is False
    assert [(w["code"], w["active_lanes"]) for w in body["warnings"]] == [("lanes_take_no_trades", 1)]
    assert Lane.objects.get().status == "active"
    status, body = api("PATCH", "/accounts/acc", {"enhanced_martingale_enabled": False, "complete_active_lanes": True})
    assert (status, body["warnings"], body["completed_lanes"]) == (200, [], [active_lane.lane_id])
    assert Lane.objects.get().outcome == "force_completed"
    assert LaneEvent.objects.get(kind="force_completed").actor == "token:bot"


def test_the_cli_warns_and_can_complete_the_lanes(active_lane):
    out, err = run("account", "set", "acc", "--martingale", "false")
    assert "1 active lane(s) of acc take no trades while martingale is off" in err
    assert "--complete-lanes" in err
    assert Lane.objects.get().status == "active"
    out, err = run("account", "set", "acc", "--complete-lanes")
    assert f"1 active lane(s) force-completed: {active_lane.lane_id}" in out and err == ""
    assert Lane.objects.get().status == "completed"


def test_the_form_warns_and_can_complete_the_lanes(active_lane):
    client = staff_client()
    url = reverse("dashboard:settings", args=["acc"])
    form = client.get(url).content.decode()
    assert 'name="complete_active_lanes"' in form and "Also complete the 1 active lane(s)" in form
    values = {
        "max_concurrent_lanes": "3", "lane_assignment_strategy": "fifo", "auto_create_lanes": "on", "cool_down_seconds": "0",
        "max_daily_lanes": "10", "base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": "7",
        "payout_rate": "0.8500", "enhanced_martingale_enabled": "on",
    }
    page = client.post(url, values, follow=True).content.decode()
    assert "1 active lane(s) of acc take no trades while martingale is off" in page
    assert "idle-lanes" in client.get(reverse("dashboard:overview")).content.decode()
    assert Lane.objects.get().status == "active"
    page = client.post(url, {**values, "complete_active_lanes": "on"}, follow=True).content.decode()
    assert "1 active lane(s) force-completed" in page
    assert Lane.objects.get().outcome == "force_completed"


# --- 9. Smaller ones -----------------------------------------------------------------------------------


def test_the_settings_form_saves_the_account_and_its_settings_in_one_transaction(account, monkeypatch):
    from settings_app.models import TradingSettings

    def refuse(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(TradingSettings, "save", refuse)
    values = {
        "max_concurrent_lanes": "4", "lane_assignment_strategy": "fifo", "cool_down_seconds": "0", "max_daily_lanes": "10",
        "base_amount": "5.00", "martingale_multiplier": "2.00", "martingale_max_level": "7", "payout_rate": "0.8500",
        "martingale_enabled": "on", "enhanced_martingale_enabled": "on",
    }
    client = staff_client()
    client.raise_request_exception = False
    assert client.post(reverse("dashboard:settings", args=["acc"]), values).status_code == 500
    assert Account.objects.get(worker_name="acc").base_amount == D("1.00")  # not half-saved


def test_lane_not_created_is_logged_only_once_the_change_is_committed(account, caplog, monkeypatch, django_capture_on_commit_callbacks):
    services.settings_update(account_name="acc", values={"auto_create_lanes": False}, actor="t")
    ask("t1")
    monkeypatch.setattr(services, "_outcome", _explode)
    with pytest.raises(RuntimeError):
        settle("t1", "loss")
    assert "lane not created" not in caplog.text  # rolled back: nothing to report
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        settle("t1", "loss")
        assert "lane not created" not in caplog.text
    assert callbacks and "lane not created account=acc trade=t1 reason=auto_create_lanes is off" in caplog.text


@pytest.mark.sqlite_only  # on MariaDB the clock is the database's, read with the lock (test_clock.py)
def test_the_day_of_max_daily_lanes_is_read_after_the_lock(account, monkeypatch):
    """A result that waits for the account's lock across midnight counts the new day's lanes."""
    services.settings_update(account_name="acc", values={"max_daily_lanes": 1, "max_concurrent_lanes": 3}, actor="t")
    yesterday = datetime(2025, 3, 3, 23, 59, 59, 900000, tzinfo=dt_timezone.utc)
    ask("a", at=yesterday - timedelta(minutes=1))
    first = settle("a", "loss", at=yesterday - timedelta(seconds=30)).lane  # the day's one lane
    services.lane_force_complete(lane_id=first.lane_id, actor="t", now=yesterday - timedelta(seconds=25))
    ask("b", at=yesterday - timedelta(seconds=20))
    clock = {"now": yesterday}
    monkeypatch.setattr(loading.timezone, "now", lambda: clock["now"])
    real_run = loading.LOCK_BY_TRADE.run

    def lock_then_midnight(**arguments):
        rows = real_run(**arguments)
        clock["now"] = yesterday + timedelta(seconds=0.2)  # the lock was granted after midnight
        return rows

    monkeypatch.setattr(loading.LOCK_BY_TRADE, "run", lock_then_midnight)
    assert settle("b", "loss").lane is not None  # a new day: its first lane
    assert Lane.objects.count() == 2


def test_completing_the_lanes_with_a_switch_serves_the_queue_by_the_new_settings(account):
    services.settings_update(account_name="acc", values={"cool_down_seconds": 60}, actor="t")
    ask("t0", at=T0)
    lane = settle("t0", "loss", at=T0 + timedelta(seconds=1)).lane
    ask("t1", at=T0 + timedelta(seconds=2), max_wait_seconds=600)  # queued by the cool-down
    services.account_configure(
        account_name="acc",
        account_values={"base_amount": "2.00", "enhanced_martingale_enabled": False},
        settings_values={"cool_down_seconds": 0},
        actor="t",
        complete_active_lanes=True,
        now=T0 + timedelta(seconds=3),
    )
    waiting = Trade.objects.get(trade_id="t1")
    assert (waiting.status, waiting.kind, waiting.amount) == ("open", "legacy", D("2.00"))
    assert Lane.objects.get(lane_id=lane.lane_id).outcome == "force_completed"
