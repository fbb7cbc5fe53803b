"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a live server:
log in, watch the overview update itself, fix a bad setting, read the risk panel, force-complete
a lane, and see the statistics charts drawn. Each page is saved as a screenshot artifact."""
import json
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from lanes import engine, services
from lanes.models import Lane, LaneEvent
from lanes.risk import lane_ladder
from settings_app.models import TradingSettings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def staff():
    return User.objects.create_user("boss", password="pw-boss-123", is_staff=True)


@pytest.fixture
def account():
    return services.account_create(
        name="acc",
        values={"base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": 3, "balance": "50.00"},
    )


@pytest.fixture
def lane(account):
    """An active lane at level 1, made by a lost base trade."""
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t1", symbol="EURUSD"), actor="bot")
    return services.trade_settle(trade_id="t1", result="loss", actor="bot").lane


def overview_cell(page, field):
    return page.locator(f'tr[data-account="acc"] td[data-field="{field}"]')


def test_log_in_and_see_the_account_with_its_active_lane(page, staff, lane, screenshot):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    screenshot(page, "01-login")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-boss-123")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator('tr[data-account="acc"]')).to_be_visible()
    expect(overview_cell(page, "active_lanes")).to_have_text("1 / 3")
    expect(overview_cell(page, "net_profit_today")).to_have_text("-1.00")
    screenshot(page, "02-overview")


def test_overview_updates_after_a_result_is_posted_without_reloading(page, staff, lane, log_in, live_server, screenshot, settings):
    settings.MARTINGALE_DASHBOARD_REFRESH_SECONDS = 1
    _, raw = services.token_create(name="bot")
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t2", symbol="EURUSD"), actor="bot")
    log_in(staff)
    page.goto("/")
    expect(overview_cell(page, "open_trades")).to_have_text("1 / 1")
    page.evaluate("window.loadedOnce = true")
    # The bot reports the win over HTTP, as it would in production.
    answer = page.request.post(
        live_server.url + "/api/v1/trades/t2/result",
        data=json.dumps({"result": "win"}),
        headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
    )
    assert answer.status == 200 and answer.json()["lane"]["outcome"] == "recovered"
    expect(overview_cell(page, "active_lanes")).to_have_text("0 / 3")
    expect(overview_cell(page, "open_trades")).to_have_text("0 / 1")
    expect(overview_cell(page, "net_profit_today")).to_have_text("0.70")  # -1.00 + 2.00 × 0.85
    assert page.evaluate("window.loadedOnce") is True  # swapped in place, not reloaded
    screenshot(page, "03-overview-updated")


def test_an_out_of_range_setting_shows_its_error_then_a_valid_one_is_saved(page, staff, account, log_in, screenshot):
    log_in(staff)
    page.goto("/account/acc/settings/")
    page.fill("#id_max_concurrent_lanes", "11")
    page.click("#save-settings")
    expect(page.locator("#error_1_id_max_concurrent_lanes")).to_have_text("must be from 1 to 10")
    expect(page.locator("#form-errors")).to_contain_text("Nothing was saved")
    assert not TradingSettings.objects.exists()
    screenshot(page, "04-settings-error")
    page.fill("#id_max_concurrent_lanes", "2")
    page.click("#save-settings")
    expect(page).to_have_url(re.compile(r"/account/acc/$"))
    expect(page.locator('dd[data-setting="max_concurrent_lanes"]')).to_have_text("2")
    assert TradingSettings.objects.get(account_name="acc").max_concurrent_lanes == 2
    screenshot(page, "05-account-after-save")


def ladder_text(page):
    return page.locator("#risk-ladder tbody tr").all_inner_texts()


def test_the_risk_panel_matches_the_server_and_warns_as_the_trader_types(
    browser, page, staff, account, log_in, live_server, screenshot
):
    log_in(staff)
    page.goto("/account/acc/settings/")
    # The server's rendering (JavaScript off) and the script's agree, number for number.
    plain = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        plain.add_cookies(page.context.cookies())
        server_page = plain.new_page()
        server_page.goto("/account/acc/settings/")
        server = {
            "ladder": ladder_text(server_page),
            "worst": server_page.inner_text("#risk-worst-case"),
            "warnings": server_page.locator("#risk-warnings [data-warning]").all_inner_texts(),
        }
    finally:
        plain.close()
    assert server["ladder"] == ladder_text(page)
    assert server["worst"] == page.inner_text("#risk-worst-case") == "45.00"
    assert server["warnings"] == page.locator("#risk-warnings [data-warning]").all_inner_texts()
    expect(page.locator('[data-warning="balance"]')).to_have_count(0)

    # More lanes: 4 × 15.00 = 60.00 > 50.00.
    page.fill("#id_max_concurrent_lanes", "4")
    expect(page.locator('[data-warning="balance"]')).to_have_text("The worst case (60.00) exceeds the balance (50.00).")
    page.fill("#id_max_concurrent_lanes", "3")
    expect(page.locator('[data-warning="balance"]')).to_have_count(0)

    # A higher multiplier: the ladder follows lanes.risk, rounded half up to cents.
    page.fill("#id_martingale_multiplier", "2.35")
    expected = [
        f"{level}\t{stake:,.2f}\t{total:,.2f}" for level, stake, total in lane_ladder(Decimal("1.00"), Decimal("2.35"), 3)
    ]
    expect(page.locator("#risk-ladder tbody tr")).to_have_count(4)
    assert [row.rsplit("\t", 1)[0] for row in ladder_text(page)] == expected
    expect(page.locator('[data-warning="balance"]')).to_contain_text("exceeds the balance (50.00)")
    expect(page.locator('[data-warning="recovery"]')).to_have_count(0)  # 2.35 recovers at payout 0.85
    screenshot(page, "06-settings-risk-warning")

    page.fill("#id_martingale_multiplier", "2.00")
    expect(page.locator('[data-warning="recovery"]')).to_contain_text("a win at level 3 returns 14.80")
    page.fill("#id_base_amount", "abc")
    expect(page.locator('[data-warning="invalid"]')).to_be_visible()


def test_force_complete_a_lane_after_confirming(page, staff, lane, log_in, screenshot):
    log_in(staff)
    page.goto("/account/acc/")
    screenshot(page, "07-account")
    page.locator(f'#active-lanes tr[data-lane="{lane.lane_id}"] a', has_text="Force-complete").click()
    expect(page.locator(".card-header")).to_have_text(f"Force-complete lane {lane.lane_id}")
    screenshot(page, "08-confirm-force-complete")
    assert Lane.objects.get(pk=lane.pk).status == "active"  # nothing happens before the confirmation
    page.click("button[data-confirm]")
    expect(page).to_have_url(re.compile(r"/account/acc/$"))
    expect(page.locator(".alert-success")).to_have_text(f"Lane {lane.lane_id} force-completed.")
    expect(page.locator(f'#finished-lanes tr[data-lane="{lane.lane_id}"]')).to_contain_text("force-completed")
    lane.refresh_from_db()
    assert (lane.status, lane.outcome) == ("completed", "force_completed")
    assert LaneEvent.objects.get(lane=lane, kind="force_completed").actor == "dashboard:boss"
    page.goto(f"/lane/{lane.lane_id}/")
    expect(page.locator('#lane-events li[data-kind="force_completed"] .actor')).to_have_text("dashboard:boss")
    screenshot(page, "09-lane")


def test_statistics_page_draws_its_charts(page, staff, lane, log_in, screenshot):
    for trade_id, result in (("t2", "loss"), ("t3", "win"), ("t4", "win")):
        services.trade_open(account_name="acc", request=engine.Request(trade_id=trade_id, symbol="EURUSD"), actor="bot")
        services.trade_settle(trade_id=trade_id, result=result, actor="bot")
    log_in(staff)
    page.goto("/stats/?days=7")
    expect(page.locator('[data-stat="lanes_created"]')).to_contain_text("1 / 0")
    page.wait_for_function("window.dashboardCharts && Object.keys(window.dashboardCharts).length === 4")
    drawn = page.evaluate(
        """() => Array.from(document.querySelectorAll("canvas")).map(canvas => {
            const blank = document.createElement("canvas");
            blank.width = canvas.width; blank.height = canvas.height;
            return {id: canvas.id, chart: !!Chart.getChart(canvas), width: canvas.width,
                    drawn: canvas.toDataURL().length, blank: blank.toDataURL().length};
        })"""
    )
    assert [chart["id"] for chart in drawn] == ["chart-daily-profit", "chart-daily-lanes", "chart-by-level", "chart-by-symbol"]
    for chart in drawn:
        assert chart["chart"] and chart["width"] > 100, chart
        assert chart["drawn"] > chart["blank"] + 1000, chart  # pixels were painted
    screenshot(page, "10-statistics")
