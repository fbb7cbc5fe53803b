"""The dashboard's pages and buttons through Django's test client (SPEC §7, §9 "Dashboard"):
logins, staff-only changes, CSRF, confirmation pages, and each action's effect on the lanes
and the audit log."""
import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from lanes import engine, services
from lanes.adapters import engine_lane
from lanes.models import Lane, LaneEvent
from settings_app.models import TradingSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    return services.account_create(
        name="acc", values={"base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": 3, "balance": "50.00"}
    )


def lose_base_trade(trade_id, account="acc", symbol="EURUSD", now=None):
    """A base trade lost: returns the lane it created."""
    services.trade_open(account_name=account, request=engine.Request(trade_id=trade_id, symbol=symbol), actor="bot", now=now)
    return services.trade_settle(trade_id=trade_id, result="loss", actor="bot", now=now).lane


def lose_base_trades(*trade_ids, account="acc"):
    """Base trades opened side by side (concurrency on), then lost: one lane each."""
    for trade_id in trade_ids:
        services.trade_open(account_name=account, request=engine.Request(trade_id=trade_id, symbol="EURUSD"), actor="bot")
    return [services.trade_settle(trade_id=trade_id, result="loss", actor="bot").lane for trade_id in trade_ids]


@pytest.fixture
def lane(account):
    return lose_base_trade("t1")


@pytest.fixture
def staff():
    return User.objects.create_user("boss", password="pw-boss-123", is_staff=True)


@pytest.fixture
def viewer():
    return User.objects.create_user("viewer", password="pw-viewer-123")


@pytest.fixture
def staff_client(staff):
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def viewer_client(viewer):
    client = Client()
    client.force_login(viewer)
    return client


def page_urls(lane):
    return [
        reverse("dashboard:overview"),
        reverse("dashboard:overview-partial"),
        reverse("dashboard:account", args=["acc"]),
        reverse("dashboard:settings", args=["acc"]),
        reverse("dashboard:lane", args=[lane.lane_id]),
        reverse("dashboard:stats"),
        reverse("dashboard:export-trades"),
        reverse("dashboard:export-events"),
    ]


def action_urls(lane):
    return [
        reverse("dashboard:reset", args=["acc"]),
        reverse("dashboard:emergency-stop", args=["acc"]),
        reverse("dashboard:lane-complete", args=[lane.lane_id]),
        reverse("dashboard:settings", args=["acc"]),
    ]


# --- Who may see and do what --------------------------------------------------------------------


def test_anonymous_users_are_sent_to_the_login_page(client, lane):
    requests = [(client.get, url) for url in page_urls(lane) + action_urls(lane)]
    requests += [(client.post, url) for url in action_urls(lane)]
    for method, url in requests:
        response = method(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url
    lane.refresh_from_db()
    assert lane.status == "active"


def test_a_poll_without_a_session_sends_the_browser_to_the_login_page(client, lane):
    response = client.get(reverse("dashboard:overview-partial"), headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("login") + "?next=/"


def test_forbidden_pages_say_why(viewer_client, lane):
    response = viewer_client.post(reverse("dashboard:reset", args=["acc"]))
    assert response.status_code == 403
    assert b"changes need a staff user" in response.content


def test_read_only_pages_refuse_a_post(staff_client, lane):
    assert staff_client.post(reverse("dashboard:overview")).status_code == 405


def test_the_login_page_logs_a_user_in(client, staff, lane):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="password"' in page.content
    response = client.post(reverse("login"), {"username": "boss", "password": "pw-boss-123", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_wrong_password_is_refused(client, staff):
    response = client.post(reverse("login"), {"username": "boss", "password": "wrong"})
    assert response.status_code == 200
    assert b"password didn't match" in response.content


def test_any_logged_in_user_can_read_every_page(viewer_client, lane):
    for url in page_urls(lane):
        assert viewer_client.get(url).status_code == 200, url


def test_a_user_who_is_not_staff_cannot_change_anything(viewer_client, lane):
    for url in action_urls(lane):
        assert viewer_client.post(url, {"status": "completed", "max_concurrent_lanes": "5"}).status_code == 403, url
    for url in action_urls(lane)[:3]:
        assert viewer_client.get(url).status_code == 403, url  # not even the confirmation page
    lane.refresh_from_db()
    assert lane.status == "active"
    assert not TradingSettings.objects.filter(account_name="acc").exists()
    assert not LaneEvent.objects.filter(actor__startswith="dashboard:").exists()


def test_a_post_without_the_csrf_token_is_refused(staff, lane):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    for url in action_urls(lane):
        assert client.post(url, {"status": "completed", "max_concurrent_lanes": "5"}).status_code == 403, url
    lane.refresh_from_db()
    assert lane.status == "active"
    assert not TradingSettings.objects.filter(account_name="acc").exists()


def test_a_post_with_the_csrf_token_goes_through(staff, lane):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    url = reverse("dashboard:lane-complete", args=[lane.lane_id])
    confirm = client.get(url + "?status=completed")
    token = confirm.cookies["csrftoken"].value if "csrftoken" in confirm.cookies else client.cookies["csrftoken"].value
    response = client.post(url, {"status": "completed", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    lane.refresh_from_db()
    assert lane.outcome == "force_completed"


def test_read_only_users_see_no_action_buttons(viewer_client, staff_client, lane):
    account_url = reverse("dashboard:account", args=["acc"])
    assert b"Force-complete" not in viewer_client.get(account_url).content
    assert b"Force-complete" in staff_client.get(account_url).content
    assert b"save-settings" not in viewer_client.get(reverse("dashboard:settings", args=["acc"])).content


def test_unknown_accounts_and_lanes_are_404(staff_client, account):
    for url in (
        reverse("dashboard:account", args=["nobody"]),
        reverse("dashboard:settings", args=["nobody"]),
        reverse("dashboard:reset", args=["nobody"]),
        reverse("dashboard:lane", args=["nolane"]),
        reverse("dashboard:lane-complete", args=["nolane"]),
    ):
        assert staff_client.get(url).status_code == 404, url


# --- Pages --------------------------------------------------------------------------------------


def test_overview_lists_each_account_with_its_lanes_trades_and_settings(staff_client, lane):
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t2", symbol="EURUSD"), actor="bot")
    services.account_create(name="other", values={})
    html = staff_client.get("/").content.decode()
    assert 'data-account="acc"' in html and 'data-account="other"' in html
    row = html.split('data-account="acc"')[1].split("</tr>")[0]
    assert '<td class="text-end" data-field="active_lanes">1 / 3</td>' in row
    assert '<td class="text-end" data-field="open_trades">1 / 1</td>' in row
    assert "-1.00" in row  # today's net profit: the lost base trade
    assert "fifo" in row and "one at a time" in row
    assert 'hx-trigger="every' in html and "htmx.min.js" in html


def test_overview_warns_about_last_level_stuck_lanes_daily_limit_exposure_and_emergency_stop(staff_client, account):
    services.settings_update(
        account_name="acc", values={"concurrent_trading_enabled": True, "max_daily_lanes": 1}, actor="t"
    )
    services.account_update(name="acc", values={"balance": "40.00"})  # worst case 3 × 15.00 = 45.00
    old = timezone.now() - timedelta(hours=30)
    lane = lose_base_trade("t1", now=old)
    for i in range(3):
        at = old + timedelta(minutes=i + 1)
        services.trade_open(account_name="acc", request=engine.Request(trade_id=f"x{i}", symbol="EURUSD"), actor="bot", now=at)
        if i < 2:
            services.trade_settle(trade_id=f"x{i}", result="loss", actor="bot", now=at)
    lane.refresh_from_db()
    assert lane.current_level == lane.max_level == 3  # busy with x2, unchanged for 30 hours: stuck, x2 overdue
    lose_base_trade("t2")  # a second lane, today's first: the daily limit of 1 is reached
    services.account_emergency_stop(account_name="acc", actor="t")
    row = staff_client.get("/overview/live/").content.decode().split('data-account="acc"')[1].split("</tr>")[0]
    assert "1 lane(s) at the last level" in row
    assert "1 stuck lane(s)" in row
    assert "1 overdue trade(s)" in row
    assert "daily lane limit reached" in row
    assert "worst case exceeds balance" in row
    assert "emergency stop" in row


def test_overview_shows_no_warning_for_a_quiet_account(staff_client, lane):
    row = staff_client.get("/").content.decode().split('data-account="acc"')[1].split("</tr>")[0]
    assert "badge text-bg-warning" not in row  # worst case 45.00 within the balance of 50.00


def test_overview_partial_is_the_polled_fragment_only(staff_client, lane):
    html = staff_client.get(reverse("dashboard:overview-partial")).content.decode()
    assert html.lstrip().startswith('<div id="overview"')
    assert "<html" not in html


def test_overview_paginates_and_searches(staff_client, account):
    for i in range(60):
        services.account_create(name=f"bulk{i:02d}", values={})
    first = staff_client.get("/").content.decode()
    assert first.count("data-account=") == 50 and "Page 1 of 2" in first
    second = staff_client.get("/?page=2").content.decode()
    assert second.count("data-account=") == 11
    found = staff_client.get("/?q=bulk0").content.decode()
    assert found.count("data-account=") == 10


def test_account_page_shows_lanes_trades_and_outcomes(staff_client, lane):
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t2", symbol="EURUSD"), actor="bot")
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t3", symbol="GBPUSD"), actor="bot")
    html = staff_client.get(reverse("dashboard:account", args=["acc"])).content.decode()
    active = html.split('id="active-lanes"')[1].split("</table>")[0]
    assert f'data-lane="{lane.lane_id}"' in active
    assert "1 of 3" in active and "2.00" in active and "t2" in active
    assert "t3" in html.split('id="queued-trades"')[1].split("</table>")[0]
    assert "t2" in html.split('id="open-trades"')[1].split("</table>")[0]
    services.trade_settle(trade_id="t2", result="win", actor="bot")
    html = staff_client.get(reverse("dashboard:account", args=["acc"])).content.decode()
    finished = html.split('id="finished-lanes"')[1].split("</table>")[0]
    assert f'data-lane="{lane.lane_id}"' in finished and "recovered" in finished


def test_lane_page_lists_every_trade_and_the_event_timeline(staff_client, lane):
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t2", symbol="EURUSD"), actor="bot")
    services.trade_settle(trade_id="t2", result="loss", actor="bot")
    services.lane_force_complete(lane_id=lane.lane_id, actor="dashboard:boss")
    html = staff_client.get(reverse("dashboard:lane", args=[lane.lane_id])).content.decode()
    trades = html.split('id="lane-trades"')[1].split("</table>")[0]
    assert trades.index('data-trade="t1"') < trades.index('data-trade="t2"')
    assert "-2.00" in trades and "lost" in trades
    events = html.split('id="lane-events"')[1].split("</ol>")[0]
    kinds = [chunk.split('"')[0] for chunk in events.split('data-kind="')[1:]]
    assert kinds == ["created", "trade_assigned", "advanced", "force_completed"]
    assert "dashboard:boss" in events and "bot" in events


def test_stats_page_shows_the_stats_selector_numbers_and_chart_data(staff_client, lane):
    html = staff_client.get(reverse("dashboard:stats") + "?days=30").content.decode()
    assert 'id="stats-data"' in html and "chart.umd.min.js" in html
    assert 'data-stat="net_profit">-1.00<' in html
    for canvas in ("chart-daily-profit", "chart-daily-lanes", "chart-by-level", "chart-by-symbol"):
        assert f'id="{canvas}"' in html
    per_account = staff_client.get(reverse("dashboard:stats") + "?days=1&account=acc")
    assert per_account.status_code == 200 and b"Statistics of acc" in per_account.content


def test_stats_page_refuses_a_bad_period_with_a_message(staff_client, lane):
    html = staff_client.get(reverse("dashboard:stats") + "?days=999").content.decode()
    assert "days: must be from 1 to 365" in html
    assert staff_client.get(reverse("dashboard:stats") + "?account=nobody").status_code == 404


# --- CSV exports --------------------------------------------------------------------------------


def _csv(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_trades_csv_streams_the_trades_of_the_period(staff_client, lane):
    services.account_create(name="other", values={})
    lose_base_trade("o1", account="other")
    rows = _csv(staff_client.get(reverse("dashboard:export-trades") + "?days=7&account=acc"))
    assert rows[0][:3] == ["trade_id", "account", "symbol"]
    assert [row[0] for row in rows[1:]] == ["t1"]
    assert rows[1][4] == "lost" and rows[1][11] == "-1.00"
    everything = _csv(staff_client.get(reverse("dashboard:export-trades")))
    assert {row[0] for row in everything[1:]} == {"t1", "o1"}


def test_lane_events_csv_streams_the_audit_log(staff_client, lane):
    services.lane_force_complete(lane_id=lane.lane_id, actor="dashboard:boss")
    rows = _csv(staff_client.get(reverse("dashboard:export-events") + "?days=1"))
    assert rows[0] == ["id", "created_at", "account", "lane_id", "kind", "trade_id", "actor", "data"]
    assert [row[4] for row in rows[1:]] == ["created", "force_completed"]
    assert rows[2][6] == "dashboard:boss" and rows[2][3] == lane.lane_id


def test_lanes_csv_has_the_mode_the_net_profit_and_what_is_still_at_risk(staff_client, lane):
    rows = _csv(staff_client.get(reverse("dashboard:export-lanes") + "?days=1&account=acc"))
    header = rows[0]
    assert header[:2] == ["lane_id", "account"] and {"ladder_mode", "net_profit", "remaining_risk"} <= set(header)
    assert len(rows) == 2 and rows[1][0] == lane.lane_id
    row = dict(zip(header, rows[1]))
    # The lost base trade (1.00) opened it; at level 1 it can still lose 2.00 + 4.00 + … to its last level.
    assert (row["ladder_mode"], row["net_profit"], row["status"]) == ("multiplier", "-1.00", "active")
    expected = engine.remaining_risk(engine_lane(Lane.objects.get(lane_id=lane.lane_id)), None)
    assert row["remaining_risk"] == f"{expected:.2f}" and expected > 0


def test_export_refuses_a_bad_period(staff_client, account):
    response = staff_client.get(reverse("dashboard:export-trades") + "?days=0")
    assert response.status_code == 400
    assert b"days: must be from 1 to 365" in response.content


# --- Actions ------------------------------------------------------------------------------------


def test_force_complete_asks_for_confirmation_first(staff_client, lane):
    url = reverse("dashboard:lane-complete", args=[lane.lane_id])
    page = staff_client.get(url + "?status=completed")
    assert page.status_code == 200
    assert b"Force-complete lane" in page.content and b'name="status" value="completed"' in page.content
    lane.refresh_from_db()
    assert lane.status == "active"


def test_force_complete_ends_the_lane_and_writes_the_audit_log(staff_client, lane):
    url = reverse("dashboard:lane-complete", args=[lane.lane_id])
    response = staff_client.post(url, {"status": "completed", "next": "/account/acc/"})
    assert response.status_code == 302 and response["Location"] == "/account/acc/"
    lane.refresh_from_db()
    assert (lane.status, lane.outcome) == ("completed", "force_completed")
    event = LaneEvent.objects.get(lane=lane, kind="force_completed")
    assert event.actor == "dashboard:boss"


def test_cancel_ends_the_lane_as_cancelled(staff_client, lane):
    staff_client.post(reverse("dashboard:lane-complete", args=[lane.lane_id]), {"status": "cancelled"})
    lane.refresh_from_db()
    assert (lane.status, lane.outcome) == ("cancelled", "cancelled")
    assert LaneEvent.objects.get(lane=lane, kind="cancelled").actor == "dashboard:boss"


def test_completing_a_finished_lane_is_refused_with_a_message(staff_client, lane):
    url = reverse("dashboard:lane-complete", args=[lane.lane_id])
    staff_client.post(url, {"status": "completed"})
    response = staff_client.post(url, {"status": "cancelled"}, follow=True)
    assert b"is already finished" in response.content
    lane.refresh_from_db()
    assert lane.outcome == "force_completed"
    assert LaneEvent.objects.filter(lane=lane, actor="dashboard:boss").count() == 1


def test_the_confirmation_of_a_finished_lane_leads_back_to_the_lane(staff_client, lane):
    services.lane_force_complete(lane_id=lane.lane_id, actor="t")
    response = staff_client.get(reverse("dashboard:lane-complete", args=[lane.lane_id]) + "?status=cancelled", follow=True)
    assert response.redirect_chain[-1][0] == reverse("dashboard:lane", args=[lane.lane_id])
    assert b"is already finished (force_completed)" in response.content


def test_a_bad_status_changes_nothing(staff_client, lane):
    staff_client.post(reverse("dashboard:lane-complete", args=[lane.lane_id]), {"status": "exhausted"})
    lane.refresh_from_db()
    assert lane.status == "active"


def test_an_offsite_next_url_is_ignored(staff_client, lane):
    url = reverse("dashboard:lane-complete", args=[lane.lane_id])
    response = staff_client.post(url, {"status": "completed", "next": "https://evil.example/"})
    assert response["Location"] == reverse("dashboard:account", args=["acc"])


def test_reset_completes_every_active_lane_of_the_account(staff_client, account):
    services.settings_update(account_name="acc", values={"concurrent_trading_enabled": True}, actor="t")
    first, second = lose_base_trades("t1", "t2")
    services.account_create(name="other", values={})
    untouched = lose_base_trade("o1", account="other")
    url = reverse("dashboard:reset", args=["acc"])
    assert b"Complete every active lane of acc" in staff_client.get(url).content
    assert Lane.objects.filter(account_name="acc", status="active").count() == 2
    response = staff_client.post(url)
    assert response.status_code == 302
    assert set(Lane.objects.filter(account_name="acc").values_list("outcome", flat=True)) == {"force_completed"}
    assert set(LaneEvent.objects.filter(kind="force_completed").values_list("lane_id", "actor")) == {
        (first.lane_id, "dashboard:boss"), (second.lane_id, "dashboard:boss"),
    }
    untouched.refresh_from_db()
    assert untouched.status == "active"


def test_emergency_stop_turns_auto_create_off(staff_client, account):
    url = reverse("dashboard:emergency-stop", args=["acc"])
    assert b"Turn auto-create lanes off" in staff_client.get(url).content
    assert not TradingSettings.objects.filter(account_name="acc").exists()
    staff_client.post(url)
    assert TradingSettings.objects.get(account_name="acc").auto_create_lanes is False
    html = staff_client.get(reverse("dashboard:account", args=["acc"])).content.decode()
    assert "emergency stop: auto-create off" in html
    lose_base_trade("t9")
    assert LaneEvent.objects.get(kind="not_created").data["reason"]
