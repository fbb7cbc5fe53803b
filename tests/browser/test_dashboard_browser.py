"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a live server:
log in, watch the overview update itself, fix a bad setting, read the risk panel the server
recomputes as the trader types, settle a trade by hand, switch martingale off with an active lane,
force-complete a lane, check that the pages fit 1280- and 1920-pixel windows, and see the
statistics charts drawn. Each page is saved as a screenshot artifact."""
import json
import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from lanes import engine, risk, services
from lanes.models import Account, AccountLock, Lane, LaneEvent, Trade
from settings_app.models import TradingSettings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TIMEOUT_S = 10  # as conftest's TIMEOUT_MS


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


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


def expected_panel(
    *, base="1.00", multiplier="2.00", max_level=3, lanes=3, concurrent=False, martingale=True, enhanced=True, balance="50.00"
):
    """The risk panel lanes.risk.report gives for these values, as the page shows it."""
    account = engine.Account(
        name="acc",
        base_amount=Decimal(base),
        multiplier=Decimal(multiplier),
        max_level=max_level,
        payout_rate=Decimal("0.85"),
        martingale_enabled=martingale,
        enhanced=enhanced,
    )
    settings = engine.Settings(concurrent_trading_enabled=concurrent, max_concurrent_lanes=lanes)
    report = risk.report(account, settings, Decimal(balance))
    return {
        "ladder": [
            f"{rung.level}\t{money(rung.stake)}\t{money(rung.lost_before)}\t{money(rung.returns)}\t"
            + (money(rung.net_if_win) if rung.level else "—")
            for rung in report.rungs
        ],
        "lane_worst": money(report.lane_worst),
        "worst_case": money(report.worst_case),
        "worst_label": report.worst_label,
        "slots": str(report.slots),
        "balance": money(report.balance),
        "warnings": [[warning.kind, warning.message] for warning in report.warnings],
    }


READ_PANEL = """() => {
    const text = id => { const element = document.getElementById(id); return element ? element.innerText.trim() : null; };
    return {
        ladder: Array.from(document.querySelectorAll("#risk-ladder tbody tr")).map(row => row.innerText.trim()),
        lane_worst: text("risk-lane-worst"),
        worst_case: text("risk-worst-case"),
        worst_label: text("risk-worst-label"),
        slots: text("risk-slots"),
        balance: text("risk-balance"),
        warnings: Array.from(document.querySelectorAll("#risk-warnings [data-warning]"))
            .map(alert => [alert.dataset.warning, alert.innerText.trim()]),
    };
}"""


def wait_for_panel(page, expected, timeout=TIMEOUT_S):
    """Wait until the risk panel (read in one go, never across a swap) shows `expected`."""
    deadline = time.monotonic() + timeout
    while True:
        shown = page.evaluate(READ_PANEL)
        if shown == expected:
            return
        if time.monotonic() > deadline:
            assert shown == expected, "the risk panel never showed lanes.risk.report's numbers"
        page.wait_for_timeout(50)


def is_risk_request(*params):
    return lambda request: "/account/acc/settings/risk/?" in request.url and all(p in request.url for p in params)


def test_the_risk_panel_is_the_servers_report_and_warns_as_the_trader_types(page, staff, account, log_in, screenshot):
    log_in(staff)
    page.goto("/account/acc/settings/")
    assert page.locator('script[src*="risk.js"]').count() == 0  # no copy of the rules in the browser
    wait_for_panel(page, expected_panel())
    assert page.inner_text("#risk-worst-case") == "45.00"  # 3 lanes × (1 + 2 + 4 + 8)
    expect(page.locator('[data-warning="balance"]')).to_have_count(0)

    # Typing asks the server: htmx GETs the form's values and swaps in the panel it renders.
    page.evaluate("document.getElementById('risk-panel').dataset.stale = 'yes'")
    with page.expect_request(is_risk_request("max_concurrent_lanes=4", "base_amount=1.00")) as sent:
        page.locator("#id_max_concurrent_lanes").fill("")
        page.locator("#id_max_concurrent_lanes").press_sequentially("4")
    assert sent.value.method == "GET" and sent.value.headers.get("hx-request") == "true"
    expect(page.locator("#risk-panel:not([data-stale])")).to_have_count(1)
    # More lanes: 4 × 15.00 = 60.00 > 50.00.
    wait_for_panel(page, expected_panel(lanes=4))
    expect(page.locator('[data-warning="balance"]')).to_have_text("The worst case (60.00) exceeds the balance (50.00).")
    page.fill("#id_max_concurrent_lanes", "3")
    wait_for_panel(page, expected_panel(lanes=3))
    expect(page.locator('[data-warning="balance"]')).to_have_count(0)

    # A higher multiplier: the ladder is the engine's, rounded half up to cents.
    page.locator("#id_martingale_multiplier").fill("")
    page.locator("#id_martingale_multiplier").press_sequentially("2.35")
    wait_for_panel(page, expected_panel(multiplier="2.35"))
    expect(page.locator("#risk-ladder tbody tr")).to_have_count(4)
    expect(page.locator('[data-warning="balance"]')).to_contain_text("exceeds the balance (50.00)")
    expect(page.locator('[data-warning="recovery"]')).to_have_count(0)  # 2.35 recovers at payout 0.85
    screenshot(page, "06-settings-risk-warning")

    page.fill("#id_martingale_multiplier", "2.00")
    wait_for_panel(page, expected_panel(multiplier="2.00"))
    expect(page.locator('[data-warning="recovery"]')).to_contain_text("a win at level 3 returns 14.80")
    page.fill("#id_base_amount", "abc")
    expect(page.locator('[data-warning="invalid"]')).to_be_visible()
    expect(page.locator("#risk-ladder")).to_have_count(0)
    page.fill("#id_base_amount", "1.00")
    wait_for_panel(page, expected_panel())

    # Concurrent trading: one open trade per lane …
    page.check("#id_concurrent_trading_enabled")
    wait_for_panel(page, expected_panel(concurrent=True))
    assert page.inner_text("#risk-slots") == "3"
    # … but without lanes (legacy mode) one progression and one slot.
    page.uncheck("#id_enhanced_martingale_enabled")
    wait_for_panel(page, expected_panel(concurrent=True, enhanced=False))
    assert page.inner_text("#risk-worst-case") == "15.00"
    assert page.inner_text("#risk-slots") == "1"
    assert page.inner_text("#risk-worst-label") == "one progression (legacy mode)"
    screenshot(page, "06b-settings-risk-legacy")
    # Without martingale: one base stake per slot.
    page.uncheck("#id_martingale_enabled")
    wait_for_panel(page, expected_panel(concurrent=True, enhanced=False, martingale=False))
    assert page.inner_text("#risk-worst-case") == "1.00"

    # The panel only shows: nothing was saved.
    saved = Account.objects.get(worker_name="acc")
    assert (saved.martingale_multiplier, saved.enhanced_martingale_enabled, saved.martingale_enabled) == (2, True, True)
    assert not TradingSettings.objects.exists()


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


def test_settle_an_overdue_trade_by_hand_from_the_account_page(page, staff, account, log_in, screenshot):
    opened = timezone.now() - timedelta(minutes=20)  # past MARTINGALE_TRADE_TIMEOUT_SECONDS (900)
    services.trade_open(account_name="acc", request=engine.Request(trade_id="t1", symbol="EURUSD"), actor="bot", now=opened)
    log_in(staff)
    page.goto("/account/acc/")
    row = page.locator('#open-trades tr[data-trade="t1"]')
    expect(row).to_contain_text("overdue")
    row.get_by_role("link", name="Settle by hand").click()
    expect(page).to_have_url(re.compile(r"/trade/t1/settle/\?next=/account/acc/$"))
    expect(page.locator(".card-header")).to_have_text("Settle trade t1 by hand")

    # A win must return more than the 1.00 stake: the error is shown at the payout, nothing is saved.
    page.check('input[name="result"][value="win"]')
    page.fill("#id_payout", "0.50")
    page.click("button[data-confirm]")
    expect(page.locator("#error_1_id_payout")).to_have_text("a win must return more than the stake (1.00), not 0.50")
    expect(page.locator("#id_payout")).to_have_class(re.compile(r"\bis-invalid\b"))
    screenshot(page, "11-settle-error")
    assert Trade.objects.get(trade_id="t1").status == "open"
    assert not Lane.objects.exists() and not LaneEvent.objects.filter(kind="settled_by_hand").exists()

    # A loss with no payout (0.00): settled as if the bot had said so, and a lane opens.
    page.check('input[name="result"][value="loss"]')
    page.fill("#id_payout", "")
    page.click("button[data-confirm]")
    expect(page).to_have_url(re.compile(r"/account/acc/$"))
    expect(page.locator(".alert-success")).to_have_text("Trade t1 settled by hand as loss.")
    expect(page.locator('#open-trades tr[data-trade="t1"]')).to_have_count(0)
    lane = Lane.objects.get(account_name="acc")
    expect(page.locator(f'#active-lanes tr[data-lane="{lane.lane_id}"]')).to_be_visible()
    screenshot(page, "12-settled-by-hand")
    trade = Trade.objects.get(trade_id="t1")
    assert (trade.status, trade.payout, trade.profit) == ("lost", Decimal("0.00"), Decimal("-1.00"))
    assert (lane.status, lane.current_level) == ("active", 1)
    event = LaneEvent.objects.get(kind="settled_by_hand")
    assert (event.actor, event.trade_id, event.account_name) == ("dashboard:boss", "t1", "acc")
    assert event.data["result"] == "loss"


def test_switching_martingale_off_warns_about_the_active_lane_then_completes_it(page, staff, lane, log_in, screenshot):
    log_in(staff)
    page.goto("/account/acc/settings/")
    expect(page.locator('label[for="id_complete_active_lanes"]')).to_have_text("Also complete the 1 active lane(s)")
    expect(page.locator("#id_martingale_enabled")).to_be_checked()
    expect(page.locator("#id_enhanced_martingale_enabled")).to_be_checked()
    page.uncheck("#id_martingale_enabled")
    page.click("#save-settings")
    expect(page).to_have_url(re.compile(r"/account/acc/$"))
    expect(page.locator(".alert-success")).to_have_text("Settings of acc saved.")
    expect(page.locator(".alert-warning")).to_contain_text("1 active lane(s) of acc take no trades while martingale is off")
    expect(page.locator('[data-warning="idle-lanes"]')).to_be_visible()
    expect(page.locator(f'#active-lanes tr[data-lane="{lane.lane_id}"]')).to_be_visible()
    screenshot(page, "13-martingale-off-warning")
    lane.refresh_from_db()
    assert lane.status == "active"
    assert Account.objects.get(worker_name="acc").martingale_enabled is False

    # Again, with "Also complete" ticked: the lane is force-completed in the same change.
    page.goto("/account/acc/settings/")
    expect(page.locator("#id_martingale_enabled")).not_to_be_checked()
    page.check("#id_complete_active_lanes")
    page.click("#save-settings")
    expect(page).to_have_url(re.compile(r"/account/acc/$"))
    expect(page.locator(".alert-info")).to_have_text("1 active lane(s) force-completed.")
    expect(page.locator(".alert-warning")).to_have_count(0)
    expect(page.locator('[data-warning="idle-lanes"]')).to_have_count(0)
    expect(page.locator(f'#finished-lanes tr[data-lane="{lane.lane_id}"]')).to_contain_text("force-completed")
    screenshot(page, "14-martingale-off-lane-completed")
    lane.refresh_from_db()
    assert (lane.status, lane.outcome) == ("completed", "force_completed")
    assert LaneEvent.objects.get(lane=lane, kind="force_completed").actor == "dashboard:boss"


def lose_base_trade(account_name, trade_id, *, at=None):
    """A lost base trade (opens a lane when the account's mode and limits allow)."""
    request = engine.Request(trade_id=trade_id, symbol="EURUSD")
    services.trade_open(account_name=account_name, request=request, actor="bot", now=at)
    services.trade_settle(trade_id=trade_id, result="loss", actor="bot", now=at)


LEGACY = "legacy-progression-bot-eu-west-frankfurt-01"
IDLE = "martingale-off-bot-with-an-idle-lane-02"
OVER = "worst-case-over-balance-bot-asia-tokyo-03"
DAILY = "daily-limit-reached-bot-us-east-virginia-04"


@pytest.fixture
def crowded_accounts():
    """Four accounts with long names and several warnings each; returns {name: warning kinds}."""
    now = timezone.now()
    stakes = {"base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": 3}
    # A legacy account (concurrent trading on, 5 lanes) whose old lane idles, with an overdue
    # lane trade and a worst case (15.00) above its balance.
    services.account_create(name=LEGACY, values={**stakes, "balance": "10.00"})
    lose_base_trade(LEGACY, "l1", at=now - timedelta(hours=2))
    services.trade_open(account_name=LEGACY, request=engine.Request(trade_id="l2", symbol="EURUSD"), actor="bot", now=now - timedelta(hours=1))
    services.settings_update(account_name=LEGACY, values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 5}, actor="t")
    services.account_update(name=LEGACY, values={"enhanced_martingale_enabled": False})
    # Martingale off with an active lane at its last level, the day's only lane.
    services.account_create(name=IDLE, values={**stakes, "martingale_max_level": 1, "balance": "100.00"})
    services.settings_update(account_name=IDLE, values={"max_daily_lanes": 1}, actor="t")
    lose_base_trade(IDLE, "i1")
    services.account_update(name=IDLE, values={"martingale_enabled": False})
    # A worst case (3 × 30.00) far above the balance, and a lane stuck for two days.
    services.account_create(name=OVER, values={**stakes, "base_amount": "2.00", "balance": "20.00"})
    lose_base_trade(OVER, "o1", at=now - timedelta(days=2))
    # The daily lane limit reached, and the worst case above the balance.
    services.account_create(name=DAILY, values={**stakes, "balance": "5.00"})
    services.settings_update(account_name=DAILY, values={"max_daily_lanes": 1}, actor="t")
    lose_base_trade(DAILY, "d1")
    return {
        LEGACY: ["idle-lanes", "overdue", "balance"],
        IDLE: ["idle-lanes", "last-level", "daily-limit"],
        OVER: ["stuck", "balance"],
        DAILY: ["daily-limit", "balance"],
    }


FITS = """() => {
    const scroll = document.getElementById("overview-scroll");
    const header = document.querySelector("#overview-table th.warnings");
    const cells = Array.from(document.querySelectorAll('#overview-table td[data-field="warnings"]'));
    return {
        viewport: window.innerWidth,
        page: document.documentElement.scrollWidth,
        scroll: scroll && {scrollWidth: scroll.scrollWidth, clientWidth: scroll.clientWidth},
        header: header && header.getBoundingClientRect().right,
        cells: cells.map(cell => cell.getBoundingClientRect().right),
    };
}"""


def misfits(page, what):
    """What does not fit the window on this page (an empty list when all fits)."""
    shown = page.evaluate(FITS)
    found = []
    if shown["page"] > shown["viewport"]:
        found.append(f"{what}: the page scrolls sideways ({shown})")
    if shown["scroll"] is not None:
        if shown["scroll"]["scrollWidth"] > shown["scroll"]["clientWidth"]:
            found.append(f"{what}: #overview-scroll scrolls sideways ({shown})")
        if shown["header"] > shown["viewport"]:
            found.append(f"{what}: the Warnings header is cut off ({shown})")
        if any(right > shown["viewport"] for right in shown["cells"]):
            found.append(f"{what}: a Warnings cell is cut off ({shown})")
    return found


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 1920, "height": 1080}], ids=["1280", "1920"])
def test_overview_account_and_settings_pages_fit_the_window(page, viewport, staff, crowded_accounts, log_in, screenshot):
    width = viewport["width"]
    log_in(staff)
    page.goto("/")
    for name, kinds in crowded_accounts.items():
        cell = page.locator(f'tr[data-account="{name}"] td[data-field="warnings"] [data-warning]')
        expect(cell).to_have_count(len(kinds))
        assert [cell.nth(i).get_attribute("data-warning") for i in range(len(kinds))] == kinds, name
    expect(page.locator("#overview-table th.warnings")).to_be_visible()
    problems = misfits(page, f"overview at {width}")
    screenshot(page, f"15-overview-{width}")
    # Every page is checked before failing, so the failure lists all that do not fit.
    for name in crowded_accounts:
        page.goto(f"/account/{name}/")
        expect(page.locator("h1")).to_have_text(name)
        problems += misfits(page, f"/account/{name}/ at {width}")
        if name == LEGACY:
            screenshot(page, f"16-account-{width}")
        page.goto(f"/account/{name}/settings/")
        expect(page.locator("#risk-panel")).to_be_visible()
        problems += misfits(page, f"/account/{name}/settings/ at {width}")
        if name == LEGACY:
            screenshot(page, f"17-settings-{width}")
    assert not problems, "\n".join(problems)


def test_a_legacy_account_has_one_slot_even_with_concurrent_trading(page, staff, log_in, screenshot):
    services.account_create(
        name="legacy", values={"base_amount": "1.00", "martingale_multiplier": "2.00", "balance": "500.00", "enhanced_martingale_enabled": False}
    )
    services.settings_update(account_name="legacy", values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 5}, actor="t")
    log_in(staff)
    page.goto("/")
    expect(page.locator('tr[data-account="legacy"] td[data-field="open_trades"]')).to_have_text("0 / 1")
    page.goto("/account/legacy/")
    expect(page.locator("#open-slots")).to_have_text("0 / 1")
    expect(page.locator('dd[data-setting="concurrent_trading_enabled"]')).to_have_text("on")
    expect(page.locator('dd[data-setting="max_concurrent_lanes"]')).to_have_text("5")
    page.goto("/account/legacy/settings/")
    expect(page.locator("#id_concurrent_trading_enabled")).to_be_checked()
    expect(page.locator("#id_enhanced_martingale_enabled")).not_to_be_checked()
    expect(page.locator("#risk-slots")).to_have_text("1")
    expect(page.locator("#risk-worst-label")).to_have_text("one progression (legacy mode)")
    screenshot(page, "18-legacy-slots")


def test_the_risk_panel_shows_both_ladder_modes_and_switches_them(page, staff, account, log_in, screenshot):
    log_in(staff)
    page.goto("/account/acc/settings/")
    expect(page.locator("#risk-ladder")).to_have_attribute("data-mode", "multiplier")
    expect(page.locator("#risk-ladder-other")).to_have_attribute("data-mode", "recover")
    # SPEC §11's example ladder, beside the multiplier one: b = 1.00, r = 0.85.
    stakes = page.locator("#risk-ladder-other tbody tr td:nth-child(2)").all_inner_texts()
    assert stakes == ["1.00", "2.18", "4.75", "10.33"]
    page.select_option("#id_ladder_mode", "recover")
    expect(page.locator("#risk-ladder")).to_have_attribute("data-mode", "recover")
    expect(page.locator("#risk-ladder tbody tr td:nth-child(2)")).to_have_text(["1.00", "2.18", "4.75", "10.33"])
    # A max stake cuts the chosen ladder; a max exposure shows its headroom.
    page.fill("#id_max_stake", "5.00")
    expect(page.locator("#risk-ladder tbody tr")).to_have_count(3)
    page.fill("#id_max_exposure", "12.50")
    expect(page.locator("#risk-headroom")).to_have_text("12.50 / 12.50")
    screenshot(page, "12-settings-risk-modes")
    page.click("#save-settings")
    expect(page).to_have_url(re.compile(r"/account/acc/$"))
    expect(page.locator('[data-setting="ladder_mode"]')).to_have_text("recover")
    expect(page.locator('[data-setting="max_stake"]')).to_have_text("5.00")


def test_a_lock_counts_down_on_the_account_page_and_is_released_after_confirming(page, staff, account, log_in, screenshot):
    lock = services.account_lock(account_name="acc", minutes=90, note="news at 14:30", actor="test")
    log_in(staff)
    page.goto("/")
    expect(page.locator(f'[data-lock="{lock.lock_id}"]')).to_contain_text("locked: Paused by hand")
    page.goto("/account/acc/")
    banner = page.locator(f'[data-lock="{lock.lock_id}"]')
    expect(banner).to_contain_text("news at 14:30")
    expect(banner.locator("[data-countdown-until]")).to_have_text(re.compile(r"^1h (29m|30m) \d\ds left$"))
    screenshot(page, "13-account-locked")
    banner.locator("[data-release]").click()
    expect(page.locator("h1, .card-header").first).to_be_visible()
    page.click("button[data-confirm]")
    expect(page).to_have_url(re.compile(r"/account/acc/$"))
    expect(page.locator("[data-lock]")).to_have_count(0)
    assert AccountLock.objects.get(pk=lock.pk).released_by == "dashboard:" + staff.username
