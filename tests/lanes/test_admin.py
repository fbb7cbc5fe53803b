"""Django admin (SPEC §8, §9): every model registered; lanes, trades and lane events read-only;
force-complete and cancel actions through the services (audit log names the admin user);
settings and accounts checked by settings_app.validation."""
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from lanes import engine, services
from lanes.models import Account, ApiToken, Lane, LaneEvent, Trade
from settings_app.models import TradingSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(client):
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


@pytest.fixture
def account():
    return services.account_create(name="acc", values={"base_amount": "1.00", "martingale_multiplier": "2.00"})


def lose_base_trade(trade_id):
    services.trade_open(account_name="acc", request=engine.Request(trade_id=trade_id, symbol="EURUSD"), actor="bot")
    return services.trade_settle(trade_id=trade_id, result="loss", actor="bot").lane


@pytest.fixture
def lane(account):
    return lose_base_trade("t1")


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_every_model_is_registered_with_list_filters_search_and_dates():
    for model in (Account, Lane, Trade, LaneEvent, ApiToken, TradingSettings):
        model_admin = admin.site._registry[model]
        assert len(model_admin.list_display) > 3, model
        assert model_admin.list_filter and model_admin.search_fields and model_admin.date_hierarchy, model


def test_every_changelist_answers_with_search_filters_and_date_drilldown(boss, lane):
    _, raw = services.token_create(name="bot")
    services.settings_update(account_name="acc", values={"max_concurrent_lanes": 4}, actor="t")
    for model in (Account, Lane, Trade, LaneEvent, ApiToken, TradingSettings):
        url = changelist(model)
        assert boss.get(url).status_code == 200, url
        assert boss.get(url + "?q=acc").status_code == 200, url
    assert "t1" in boss.get(changelist(Trade) + "?status__exact=lost").content.decode()
    assert lane.lane_id in boss.get(changelist(Lane) + "?q=EURUSD&status__exact=active").content.decode()
    assert boss.get(reverse("admin:lanes_lane_change", args=[lane.pk])).status_code == 200
    assert 'value="force_complete"' in boss.get(changelist(Lane)).content.decode()
    assert 'value="cancel"' in boss.get(changelist(Trade)).content.decode()


def test_lanes_trades_and_events_cannot_be_added_changed_or_deleted(boss, lane):
    event = LaneEvent.objects.first()
    trade = Trade.objects.get(trade_id="t1")
    for model, obj in ((Lane, lane), (Trade, trade), (LaneEvent, event)):
        name = f"admin:lanes_{model._meta.model_name}"
        assert boss.get(reverse(f"{name}_add")).status_code == 403
        assert boss.get(reverse(f"{name}_delete", args=[obj.pk])).status_code == 403
        page = boss.get(reverse(f"{name}_change", args=[obj.pk])).content.decode()
        assert 'name="_save"' not in page  # view only
        assert boss.post(reverse(f"{name}_change", args=[obj.pk]), {}).status_code == 403
    lane.refresh_from_db()
    assert lane.status == "active"


def test_lane_events_have_no_actions(boss, lane):
    response = boss.post(changelist(LaneEvent), {"action": "delete_selected", ACTION_CHECKBOX_NAME: [LaneEvent.objects.first().pk]})
    assert response.status_code in (200, 302)
    assert LaneEvent.objects.count() == 1
    assert 'name="action"' not in boss.get(changelist(LaneEvent)).content.decode()


def test_force_complete_action_asks_then_goes_through_the_service(boss, lane):
    data = {"action": "force_complete", ACTION_CHECKBOX_NAME: [lane.pk]}
    confirm = boss.post(changelist(Lane), data)
    assert confirm.status_code == 200 and b"Yes, I'm sure" in confirm.content
    lane.refresh_from_db()
    assert lane.status == "active"
    done = boss.post(changelist(Lane), {**data, "post": "yes"})
    assert done.status_code == 302
    lane.refresh_from_db()
    assert (lane.status, lane.outcome) == ("completed", "force_completed")
    assert LaneEvent.objects.get(lane=lane, kind="force_completed").actor == "admin:boss"


def test_cancel_action_cancels_only_active_lanes(boss, account):
    services.settings_update(account_name="acc", values={"concurrent_trading_enabled": True}, actor="t")
    for trade_id in ("t1", "t2"):
        services.trade_open(account_name="acc", request=engine.Request(trade_id=trade_id, symbol="EURUSD"), actor="bot")
    first, second = (services.trade_settle(trade_id=t, result="loss", actor="bot").lane for t in ("t1", "t2"))
    services.lane_force_complete(lane_id=second.lane_id, actor="bot")
    boss.post(changelist(Lane), {"action": "cancel", ACTION_CHECKBOX_NAME: [first.pk, second.pk], "post": "yes"})
    first.refresh_from_db(), second.refresh_from_db()
    assert first.outcome == "cancelled" and second.outcome == "force_completed"
    assert list(LaneEvent.objects.filter(actor="admin:boss").values_list("lane_id", "kind")) == [(first.lane_id, "cancelled")]


def test_trade_cancel_action_goes_through_the_service(boss, lane):
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t2", symbol="EURUSD"), actor="bot")
    trade = Trade.objects.get(trade_id="t2")
    data = {"action": "cancel", ACTION_CHECKBOX_NAME: [trade.pk]}
    assert b"Yes, I'm sure" in boss.post(changelist(Trade), data).content
    boss.post(changelist(Trade), {**data, "post": "yes"})
    trade.refresh_from_db()
    lane.refresh_from_db()
    assert trade.status == "cancelled"
    assert lane.trade_ids == ["t1"] and lane.total_invested == Decimal("1.00")
    assert LaneEvent.objects.get(kind="trade_cancelled").actor == "admin:boss"


def test_staff_without_the_change_permission_gets_no_actions(client, lane):
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_lane"))
    client.force_login(user)
    page = client.get(changelist(Lane)).content.decode()
    assert 'value="force_complete"' not in page
    client.post(changelist(Lane), {"action": "force_complete", ACTION_CHECKBOX_NAME: [lane.pk], "post": "yes"})
    lane.refresh_from_db()
    assert lane.status == "active"


# --- Settings and accounts ----------------------------------------------------------------------

SETTINGS_FORM = {
    "concurrent_trading_enabled": "on", "max_concurrent_lanes": "5", "lane_assignment_strategy": "symbol_priority",
    "auto_create_lanes": "on", "cool_down_seconds": "10", "max_daily_lanes": "20",
}


def test_settings_are_added_through_the_service_after_validation(boss, account):
    response = boss.post(reverse("admin:settings_app_tradingsettings_add"), {"account_name": "acc", **SETTINGS_FORM})
    assert response.status_code == 302
    row = TradingSettings.objects.get(account_name="acc")
    assert (row.max_concurrent_lanes, row.lane_assignment_strategy, row.cool_down_seconds) == (5, "symbol_priority", 10)


def test_bad_settings_show_the_validation_message_and_change_nothing(boss, account):
    response = boss.post(reverse("admin:settings_app_tradingsettings_add"), {"account_name": "acc", **SETTINGS_FORM, "max_concurrent_lanes": "11"})
    assert response.status_code == 200
    assert "must be from 1 to 10" in response.content.decode()
    assert not TradingSettings.objects.exists()
    services.settings_update(account_name="acc", values={"cool_down_seconds": 5}, actor="t")
    row = TradingSettings.objects.get()
    url = reverse("admin:settings_app_tradingsettings_change", args=[row.pk])
    response = boss.post(url, {**SETTINGS_FORM, "cool_down_seconds": "3601"})
    assert "must be from 0 to 3600" in response.content.decode()
    row.refresh_from_db()
    assert row.cool_down_seconds == 5


def test_the_risk_guard_is_edited_in_the_admin_with_the_same_rules(boss, account):
    risk = {"ladder_mode": "recover", "max_stake": "8.00", "max_exposure": "", "daily_stop_loss": "off",
            "daily_take_profit": "25.00", "max_exhausted_lanes": "2", "exhausted_window_hours": "6", "lock_minutes": "15"}
    response = boss.post(reverse("admin:settings_app_tradingsettings_add"), {"account_name": "acc", **SETTINGS_FORM, **risk})
    assert response.status_code == 302
    row = TradingSettings.objects.get(account_name="acc")
    assert (row.ladder_mode, row.max_stake, row.max_exposure, row.daily_stop_loss, row.daily_take_profit) == (
        "recover", Decimal("8.00"), None, None, Decimal("25.00")
    )
    assert (row.max_exhausted_lanes, row.exhausted_window_hours, row.lock_minutes) == (2, 6, 15)
    url = reverse("admin:settings_app_tradingsettings_change", args=[row.pk])
    page = boss.get(url).content.decode()
    assert 'name="max_stake" value="8.00"' in page and 'name="daily_stop_loss" value=' not in page
    response = boss.post(url, {**SETTINGS_FORM, **risk, "max_exhausted_lanes": "51"})
    assert "must be from 1 to 50" in response.content.decode()
    row.refresh_from_db()
    assert row.max_exhausted_lanes == 2


def test_settings_for_an_unknown_account_are_refused(boss):
    response = boss.post(reverse("admin:settings_app_tradingsettings_add"), {"account_name": "ghost", **SETTINGS_FORM})
    assert "account ghost not found" in response.content.decode()
    assert not TradingSettings.objects.exists()


ACCOUNT_FORM = {
    "is_demo": "on", "enabled": "on", "martingale_enabled": "on", "enhanced_martingale_enabled": "on",
    "balance": "250.00", "base_amount": "2.00", "martingale_multiplier": "2.20", "martingale_max_level": "6",
    "payout_rate": "0.9000",
}


def test_an_account_is_changed_after_validation(boss, account):
    response = boss.post(reverse("admin:lanes_account_change", args=[account.pk]), {**ACCOUNT_FORM, "worker_name": "renamed"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.worker_name == "acc"  # a name is never changed: lanes refer to it
    assert (account.balance, account.base_amount, account.martingale_multiplier) == (Decimal("250.00"), Decimal("2.00"), Decimal("2.20"))
    assert (account.martingale_max_level, account.payout_rate) == (6, Decimal("0.9000"))


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("martingale_multiplier", "1.00", "must be from 1.01 to 999.99"),
        ("balance", "-1", "must be a decimal number from 0.00 to 99999999.99"),
        ("martingale_max_level", "0", "must be from 1 to 20"),
        ("payout_rate", "0.5", None),
    ],
)
def test_bad_account_values_show_the_validation_message_and_change_nothing(boss, account, field, value, message):
    response = boss.post(reverse("admin:lanes_account_change", args=[account.pk]), {**ACCOUNT_FORM, field: value})
    account.refresh_from_db()
    if message is None:  # a valid value, for contrast
        assert response.status_code == 302 and account.payout_rate == Decimal("0.5000")
        return
    assert response.status_code == 200
    assert message in response.content.decode()
    assert account.base_amount == Decimal("1.00") and account.balance == Decimal("0.00")


def test_an_account_whose_largest_stake_would_not_fit_is_refused(boss, account):
    response = boss.post(
        reverse("admin:lanes_account_change", args=[account.pk]),
        {**ACCOUNT_FORM, "martingale_multiplier": "999.99", "martingale_max_level": "20"},
    )
    assert "the stake at level 20 would be" in response.content.decode()
    account.refresh_from_db()
    assert account.martingale_max_level == 7


def test_an_account_is_added_through_the_service(boss):
    response = boss.post(reverse("admin:lanes_account_add"), {**ACCOUNT_FORM, "worker_name": "fresh"})
    assert response.status_code == 302
    assert Account.objects.get(worker_name="fresh").base_amount == Decimal("2.00")
    bad = boss.post(reverse("admin:lanes_account_add"), {**ACCOUNT_FORM, "worker_name": "bad name!"})
    assert "must be 1–100 characters" in bad.content.decode()


def test_tokens_are_revoked_not_added_or_deleted(boss, account):
    token, _ = services.token_create(name="bot")
    assert boss.get(reverse("admin:lanes_apitoken_add")).status_code == 403
    assert boss.get(reverse("admin:lanes_apitoken_delete", args=[token.pk])).status_code == 403
    boss.post(changelist(ApiToken), {"action": "revoke", ACTION_CHECKBOX_NAME: [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.token_hash not in boss.get(reverse("admin:lanes_apitoken_change", args=[token.pk])).content.decode()
