"""The dashboard's side of the risk guard (SPEC §11): the settings form edits it with the messages
of every other interface, the account page and the overview show an active lock with its end and a
release button for staff, and releasing it there (after confirming) ends it at once."""
import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from lanes import engine, services
from lanes.models import AccountLock, LaneEvent, Trade
from settings_app.models import TradingSettings

from test_dashboard_settings import VALID, field_error

pytestmark = pytest.mark.django_db

URL = reverse("dashboard:settings", args=["acc"])
ACCOUNT_URL = reverse("dashboard:account", args=["acc"])


@pytest.fixture
def account():
    return services.account_create(
        name="acc", values={"base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": 3, "balance": "50.00"}
    )


def logged_in(account, *, staff: bool) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("boss" if staff else "viewer", is_staff=staff))
    return client


@pytest.fixture
def staff_client(account):
    return logged_in(account, staff=True)


@pytest.fixture
def lock(account):
    return services.account_lock(account_name="acc", minutes=30, note="lunch", actor="test")


def test_the_form_saves_the_risk_guard_and_an_empty_box_is_off(staff_client):
    TradingSettings.objects.filter(account_name="acc").update(max_exposure=Decimal("99.00"))
    risk = {
        "ladder_mode": "recover", "max_stake": "5.00", "max_exposure": "", "daily_stop_loss": "20.00",
        "daily_take_profit": "off", "max_exhausted_lanes": "3", "exhausted_window_hours": "12", "lock_minutes": "90",
    }
    response = staff_client.post(URL, {**VALID, "base_amount": "1.00", "martingale_max_level": "3", **risk})
    assert response.status_code == 302
    row = TradingSettings.objects.get(account_name="acc")
    assert (row.ladder_mode, row.max_stake, row.max_exposure, row.daily_stop_loss, row.daily_take_profit) == (
        "recover", Decimal("5.00"), None, Decimal("20.00"), None
    )
    assert (row.max_exhausted_lanes, row.exhausted_window_hours, row.lock_minutes) == (3, 12, 90)
    html = staff_client.get(URL).content.decode()
    assert '<option value="recover" selected>' in html and 'name="max_stake" value="5.00"' in html
    assert re.search(r'name="max_exposure"[^>]*placeholder="off"', html) and 'name="max_exposure" value=' not in html


def test_bad_risk_values_are_shown_next_to_their_fields_and_nothing_is_saved(staff_client):
    before = list(TradingSettings.objects.values())
    bad = {"ladder_mode": "double", "max_stake": "-1", "exhausted_window_hours": "0", "lock_minutes": "99999"}
    html = staff_client.post(URL, {**VALID, **bad}).content.decode()
    assert field_error(html, "ladder_mode").startswith("must be one of")
    assert "0.01 to 99999999.99" in field_error(html, "max_stake")
    assert field_error(html, "exhausted_window_hours") == "must be from 1 to 168"
    assert field_error(html, "lock_minutes") == "must be from 1 to 10080"
    assert list(TradingSettings.objects.values()) == before


def test_a_base_amount_above_max_stake_is_refused_next_to_the_field(staff_client):
    html = staff_client.post(URL, {**VALID, "base_amount": "6.00", "max_stake": "5.00"}).content.decode()
    assert "max_stake" in field_error(html, "base_amount")
    assert not TradingSettings.objects.filter(account_name="acc", max_stake__isnull=False).exists()


def test_the_risk_panel_shows_exposure_and_the_headroom_of_the_max_exposure_typed(staff_client):
    html = staff_client.get(reverse("dashboard:settings-risk", args=["acc"]), {
        "base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": "3", "payout_rate": "0.8500",
        "max_concurrent_lanes": "3", "martingale_enabled": "on", "enhanced_martingale_enabled": "on",
        "ladder_mode": "multiplier", "max_stake": "4.00", "max_exposure": "10.00",
    }).content.decode()
    assert 'id="risk-exposure">0.00<' in html
    assert re.search(r'id="risk-headroom">10.00 / <span[^>]*>10.00</span>', html)
    # max_stake 4.00 cuts the multiplier ladder after 4.00: levels 0, 1, 2 (1.00, 2.00, 4.00).
    body = html.split('id="risk-ladder"')[1].split("</tbody>")[0]
    assert re.findall(r"<tr[^>]*><td[^>]*>(\d)</td>", body) == ["0", "1", "2"]


def test_the_account_page_and_the_overview_show_the_active_lock(staff_client, lock):
    page = staff_client.get(ACCOUNT_URL).content.decode()
    block = page.split(f'data-lock="{lock.lock_id}"')[1].split("</div>")[0]
    assert 'data-reason="manual"' in block and "Paused by hand" in block and "lunch" in block
    until = re.search(r'data-countdown-until="([^"]+)"', block).group(1)
    assert datetime.fromisoformat(until) == lock.locked_until
    assert reverse("dashboard:lock-release", args=[lock.lock_id]) in block
    overview = staff_client.get(reverse("dashboard:overview")).content.decode()
    assert f'data-lock="{lock.lock_id}"' in overview and "locked: Paused by hand" in overview


def test_a_viewer_sees_the_lock_but_no_release_button_and_cannot_release(account, lock):
    viewer = logged_in(account, staff=False)
    page = viewer.get(ACCOUNT_URL).content.decode()
    assert f'data-lock="{lock.lock_id}"' in page and "data-release" not in page
    assert viewer.post(reverse("dashboard:lock-release", args=[lock.lock_id])).status_code == 403
    assert AccountLock.objects.get(pk=lock.pk).released_at is None


def test_releasing_a_lock_asks_first_then_ends_it_and_audits_it(staff_client, lock):
    url = reverse("dashboard:lock-release", args=[lock.lock_id])
    confirm = staff_client.get(url).content.decode()
    assert "Release the lock of acc" in confirm and AccountLock.objects.get(pk=lock.pk).released_at is None
    response = staff_client.post(url, {"next": ACCOUNT_URL})
    assert response.status_code == 302 and response["Location"] == ACCOUNT_URL
    released = AccountLock.objects.get(pk=lock.pk)
    assert released.released_at is not None and released.released_by == "dashboard:boss"
    assert "data-lock=" not in staff_client.get(ACCOUNT_URL).content.decode()
    assert list(LaneEvent.objects.filter(account_name="acc", kind__in=["locked", "unlocked"]).values_list("kind", "actor")) == [
        ("locked", "test"), ("unlocked", "dashboard:boss")
    ]
    # The account takes trades again.
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t1", symbol="EURUSD"), actor="bot")
    assert Trade.objects.get(trade_id="t1").status == "open"


def test_an_ended_lock_is_not_shown(staff_client, lock):
    AccountLock.objects.filter(pk=lock.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert "data-lock=" not in staff_client.get(ACCOUNT_URL).content.decode()


def test_an_unknown_lock_is_a_404(staff_client):
    assert staff_client.get(reverse("dashboard:lock-release", args=["nope"])).status_code == 404
