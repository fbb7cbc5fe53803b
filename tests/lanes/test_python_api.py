"""The description's Python functions (SPEC §9): the same services and selectors as the API."""
from decimal import Decimal

import pytest

from lanes import engine, python_api, selectors, services
from lanes.models import Lane, LaneEvent
from settings_app.models import TradingSettings
from lanes.ranges import InvalidInput

pytestmark = pytest.mark.django_db


@pytest.fixture
def pelly():
    return services.account_create(name="pelly_demo", values={"base_amount": "1.00", "martingale_multiplier": "2.00"})


def lost_base_trade(trade_id):
    services.trade_open(account_name="pelly_demo", request=engine.Request(trade_id=trade_id, symbol="EURUSD"), actor="bot")
    return services.trade_settle(trade_id=trade_id, result="loss", actor="bot").lane


def test_current_status_covers_every_enabled_account(pelly):
    services.account_create(name="off", values={"enabled": False})
    lane = lost_base_trade("t1")
    status = python_api.get_current_martingale_status()
    assert [item["account"]["worker_name"] for item in status["accounts"]] == ["pelly_demo"]
    assert [l["lane_id"] for l in status["accounts"][0]["active_lanes"]] == [lane.lane_id]
    assert status["accounts"][0]["settings"]["concurrent_trading_enabled"] is False


def test_configure_takes_typed_settings_and_returns_them(pelly):
    settings = python_api.configure_enhanced_martingale_settings(
        "pelly_demo", concurrent_trading_enabled=True, max_concurrent_lanes=5
    )
    assert settings == {
        "account": "pelly_demo", "concurrent_trading_enabled": True, "max_concurrent_lanes": 5,
        "lane_assignment_strategy": "fifo", "auto_create_lanes": True, "cool_down_seconds": 0, "max_daily_lanes": 10,
        "ladder_mode": "multiplier", "max_stake": None, "max_exposure": None, "daily_stop_loss": None,
        "daily_take_profit": None, "max_exhausted_lanes": None, "exhausted_window_hours": 24, "lock_minutes": 60,
    }
    row = TradingSettings.objects.get(account_name="pelly_demo")
    assert (row.concurrent_trading_enabled, row.max_concurrent_lanes) == (True, 5)


@pytest.mark.parametrize(
    "values, field",
    [
        ({"max_concurrent_lanes": 11}, "max_concurrent_lanes"),
        ({"max_concurrent_lanes": "5"}, "max_concurrent_lanes"),  # typed values: text is not a number here
        ({"concurrent_trading_enabled": "true"}, "concurrent_trading_enabled"),
        ({"max_lanes": 5}, "max_lanes"),
    ],
)
def test_configure_refuses_bad_settings_and_changes_nothing(pelly, values, field):
    with pytest.raises(InvalidInput) as caught:
        python_api.configure_enhanced_martingale_settings("pelly_demo", **values)
    assert list(caught.value.errors) == [field]
    assert not TradingSettings.objects.exists()


def test_configure_of_an_unknown_account_is_not_found(db):
    with pytest.raises(services.NotFound):
        python_api.configure_enhanced_martingale_settings("ghost", max_daily_lanes=5)


def test_statistics_of_one_account_or_all(pelly):
    lost_base_trade("t1")
    services.account_create(name="other", values={})
    stats = python_api.get_enhanced_martingale_statistics("pelly_demo", days=7)
    assert (stats["account"], stats["days"], stats["lanes_created"], stats["losses"], stats["net_profit"]) == (
        "pelly_demo", 7, 1, 1, "-1.00",
    )
    everyone = python_api.get_enhanced_martingale_statistics()
    assert (everyone["account"], everyone["days"], everyone["trades"]) == (None, 7, 1)
    with pytest.raises(InvalidInput):
        python_api.get_enhanced_martingale_statistics(days=400)


def test_force_complete_returns_the_lane_and_logs_python_as_the_actor(pelly):
    lane = lost_base_trade("t1")
    answer = python_api.force_complete_martingale_lane(lane.lane_id)
    assert (answer["lane_id"], answer["status"], answer["outcome"], answer["open_trade_id"]) == (
        lane.lane_id, "completed", "force_completed", None,
    )
    assert answer["total_invested"] == "1.00"
    assert LaneEvent.objects.get(kind="force_completed").actor == "python"
    with pytest.raises(engine.Conflict):
        python_api.force_complete_martingale_lane(lane.lane_id)


def test_force_complete_can_cancel_and_keeps_the_open_trade_visible(pelly):
    lane = lost_base_trade("t1")
    services.trade_open(account_name="pelly_demo", request=engine.Request(trade_id="t2", symbol="EURUSD"), actor="bot")
    answer = python_api.force_complete_martingale_lane(lane.lane_id, status="cancelled")
    assert (answer["status"], answer["outcome"], answer["open_trade_id"]) == ("cancelled", "cancelled", "t2")
    assert Lane.objects.get(pk=lane.pk).status == "cancelled"


def test_manager_delegates_to_the_functions(pelly):
    lane = lost_base_trade("t1")
    manager = python_api.get_enhanced_martingale_manager()
    status = manager.get_current_status()
    assert status["accounts"][0]["active_lanes"][0]["lane_id"] == lane.lane_id
    assert set(status["accounts"][0]) == set(selectors.account_status_get(account_name="pelly_demo"))
    assert manager.configure("pelly_demo", cool_down_seconds=15)["cool_down_seconds"] == 15
    assert manager.get_statistics("pelly_demo", days=1)["lanes_created"] == 1
    assert manager.force_complete_lane(lane.lane_id)["outcome"] == "force_completed"
    assert manager.get_current_status()["accounts"][0]["active_lanes"] == []
    assert Lane.objects.get(pk=lane.pk).current_amount == Decimal("2.00")
