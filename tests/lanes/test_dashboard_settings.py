"""The dashboard's settings form and its risk panel (SPEC §2, §9): the same validation and
messages as the API and the CLI, nothing saved on bad input, and the risk numbers of lanes.risk."""
import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from lanes import engine, services
from lanes.models import Account
from lanes.ranges import InvalidInput
from settings_app.models import TradingSettings
from settings_app.validation import clean_trading_settings

pytestmark = pytest.mark.django_db

URL = reverse("dashboard:settings", args=["acc"])
VALID = {
    "concurrent_trading_enabled": "on",
    "max_concurrent_lanes": "4",
    "lane_assignment_strategy": "round_robin",
    "auto_create_lanes": "on",
    "cool_down_seconds": "30",
    "max_daily_lanes": "12",
    "base_amount": "2.00",
    "martingale_multiplier": "2.50",
    "martingale_max_level": "5",
    "payout_rate": "0.9000",
    "martingale_enabled": "on",
    "enhanced_martingale_enabled": "on",
}
RISK_URL = reverse("dashboard:settings-risk", args=["acc"])


@pytest.fixture
def account():
    return services.account_create(
        name="acc", values={"base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": 3, "balance": "50.00"}
    )


@pytest.fixture
def staff_client(account):
    client = Client()
    client.force_login(User.objects.create_user("boss", is_staff=True))
    return client


def field_error(html: str, field: str) -> str:
    """The message crispy shows under one field."""
    match = re.search(rf'id="error_\d+_id_{field}"[^>]*>\s*<strong>(.*?)</strong>', html, re.S)
    return match.group(1).strip() if match else ""


def snapshot():
    account = Account.objects.values().get(worker_name="acc")
    account.pop("last_updated")
    return account, list(TradingSettings.objects.values())


def test_the_form_shows_the_current_values_and_defaults(staff_client):
    html = staff_client.get(URL).content.decode()
    assert 'name="max_concurrent_lanes" value="3"' in html
    assert 'name="base_amount" value="1.00"' in html
    assert 'name="payout_rate" value="0.8500"' in html
    assert '<option value="fifo" selected>' in html
    assert "novalidate" in html  # the server's messages, not the browser's, are shown


def test_valid_values_are_saved_in_the_settings_row_and_the_account(staff_client, account):
    response = staff_client.post(URL, VALID)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard:account", args=["acc"])
    row = TradingSettings.objects.get(account_name="acc")
    assert (row.concurrent_trading_enabled, row.max_concurrent_lanes, row.lane_assignment_strategy) == (True, 4, "round_robin")
    assert (row.auto_create_lanes, row.cool_down_seconds, row.max_daily_lanes) == (True, 30, 12)
    account.refresh_from_db()
    assert account.base_amount == Decimal("2.00") and account.martingale_multiplier == Decimal("2.50")
    assert account.martingale_max_level == 5 and account.payout_rate == Decimal("0.9000")
    assert account.balance == Decimal("50.00")


def test_unchecked_boxes_turn_the_flags_off(staff_client):
    values = {**VALID}
    del values["concurrent_trading_enabled"], values["auto_create_lanes"]
    staff_client.post(URL, values)
    row = TradingSettings.objects.get(account_name="acc")
    assert row.concurrent_trading_enabled is False and row.auto_create_lanes is False


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("max_concurrent_lanes", "11", "must be from 1 to 10"),
        ("max_concurrent_lanes", "three", "must be a whole number from 1 to 10"),
        ("cool_down_seconds", "-1", "must be from 0 to 3600"),
        ("max_daily_lanes", "51", "must be from 1 to 50"),
        ("lane_assignment_strategy", "martingale", "must be one of fifo, round_robin, symbol_priority"),
        ("base_amount", "0", "must be from 0.01 to 99999999.99"),
        ("base_amount", "1.005", "must have at most 2 decimal places"),
        ("martingale_multiplier", "1.00", "must be from 1.01 to 999.99"),
        ("martingale_max_level", "21", "must be from 1 to 20"),
        ("payout_rate", "abc", "must be a decimal number from 0.0100 to 10.0000"),
    ],
)
def test_bad_input_shows_the_validation_message_beside_the_field_and_changes_nothing(staff_client, field, value, message):
    before = snapshot()
    response = staff_client.post(URL, {**VALID, field: value})
    assert response.status_code == 200
    html = response.content.decode()
    assert field_error(html, field) == message
    assert "Nothing was saved" in html
    assert snapshot() == before


def test_a_stake_that_would_not_fit_the_column_is_refused(staff_client):
    before = snapshot()
    html = staff_client.post(URL, {**VALID, "martingale_multiplier": "999.99", "martingale_max_level": "20"}).content.decode()
    assert field_error(html, "martingale_multiplier").startswith("the stake at level 20 would be")
    assert snapshot() == before


def test_the_messages_are_those_of_the_api(staff_client, client):
    _, raw = services.token_create(name="bot")
    api = client.patch(
        "/api/v1/accounts/acc/settings", json.dumps({"max_concurrent_lanes": 11}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}",
    ).json()
    html = staff_client.post(URL, {**VALID, "max_concurrent_lanes": "11"}).content.decode()
    assert field_error(html, "max_concurrent_lanes") == api["error"]["fields"]["max_concurrent_lanes"]
    with pytest.raises(InvalidInput) as refused:
        clean_trading_settings({"max_concurrent_lanes": "11"}, from_text=True)  # what the CLI calls
    assert refused.value.errors["max_concurrent_lanes"] == field_error(html, "max_concurrent_lanes")


def test_every_bad_field_is_reported_at_once(staff_client):
    html = staff_client.post(URL, {**VALID, "max_daily_lanes": "0", "base_amount": "-1"}).content.decode()
    assert field_error(html, "max_daily_lanes") == "must be from 1 to 50"
    assert field_error(html, "base_amount") == "must be a decimal number from 0.01 to 99999999.99"  # "-1": no sign


# --- The risk panel -----------------------------------------------------------------------------


def ladder_rows(html: str, table: str = "risk-ladder") -> list[list[str]]:
    body = html.split(f'id="{table}"')[1].split("</tbody>")[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in body.split("<tr")[2:]]


def test_the_panel_renders_the_ladder_of_the_engine(staff_client):
    html = staff_client.get(URL).content.decode()
    stakes = engine.ladder(Decimal("1.00"), Decimal("2.00"), 3)
    lost_before = [sum(stakes[:level]) for level in range(4)]
    expected = [[str(level), f"{stake:,.2f}", f"{lost:,.2f}"] for level, (stake, lost) in enumerate(zip(stakes, lost_before))]
    assert [row[:3] for row in ladder_rows(html)] == expected
    assert ladder_rows(html)[3][3:] == ["14.80", "-0.20"]  # 8.00 × 1.85; the lane invested 15.00 by then
    # Beside it, the recover ladder of SPEC §11 for the same base and payout: each win returns the
    # losses and the base trade's profit (0.85), so the lane's net is at least 0.85 at every level.
    assert 'data-mode="recover"' in html
    recover = ladder_rows(html, "risk-ladder-other")
    assert [row[1] for row in recover] == ["1.00", "2.18", "4.75", "10.33"]
    assert all(Decimal(row[4]) >= Decimal("0.85") for row in recover[1:])
    assert 'id="risk-lane-worst">15.00<' in html
    assert 'id="risk-worst-case">45.00<' in html  # 3 lanes × 15.00
    assert 'id="risk-balance">50.00<' in html
    assert "risk.js" not in html  # no copy of the rules in the browser: htmx asks the server
    assert f'hx-get="{RISK_URL}"' in html


def test_the_panel_warns_when_the_worst_case_exceeds_the_balance(staff_client, account):
    assert 'data-warning="balance"' not in staff_client.get(URL).content.decode()
    services.settings_update(account_name="acc", values={"max_concurrent_lanes": 4}, actor="t")
    html = staff_client.get(URL).content.decode()
    assert 'data-warning="balance">The worst case (60.00) exceeds the balance (50.00).<' in html


def test_the_panel_warns_when_a_win_cannot_recover_the_lane(staff_client, account):
    html = staff_client.get(URL).content.decode()
    assert (
        'data-warning="recovery">The multiplier is too low for the payout rate: a win at level 3 returns 14.80, '
        "not more than the 15.00 the lane has invested by then.<"
    ) in html
    services.account_update(name="acc", values={"martingale_multiplier": "2.25"})
    assert 'data-warning="recovery"' not in staff_client.get(URL).content.decode()


def test_the_live_panel_is_computed_on_the_server_from_the_values_typed(staff_client):
    typed = {**VALID, "max_concurrent_lanes": "4", "base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": "3"}
    html = staff_client.get(RISK_URL, typed).content.decode()
    assert 'id="risk-worst-case">60.00<' in html and 'id="risk-slots">4<' in html  # 4 lanes × 15.00, concurrent
    assert 'data-warning="balance"' in html
    legacy = {key: value for key, value in typed.items() if key != "enhanced_martingale_enabled"}
    html = staff_client.get(RISK_URL, legacy).content.decode()
    assert 'id="risk-worst-case">15.00<' in html and 'id="risk-slots">1<' in html  # one progression, one slot
    off = {key: value for key, value in typed.items() if key != "martingale_enabled"}
    assert 'id="risk-worst-case">4.00<' in staff_client.get(RISK_URL, off).content.decode()
    assert 'data-warning="invalid"' in staff_client.get(RISK_URL, {**typed, "base_amount": "x"}).content.decode()
    assert Account.objects.get(worker_name="acc").base_amount == Decimal("1.00")  # nothing saved


def test_the_panel_shows_a_ladder_too_large_for_the_columns(staff_client):
    html = staff_client.get(RISK_URL, {**VALID, "martingale_multiplier": "999.99", "martingale_max_level": "20"}).content.decode()
    assert 'data-warning="too-large"' in html


def test_non_staff_users_see_the_form_but_cannot_save(account):
    client = Client()
    client.force_login(User.objects.create_user("viewer"))
    assert client.get(URL).status_code == 200
    before = snapshot()
    assert client.post(URL, VALID).status_code == 403
    assert snapshot() == before
