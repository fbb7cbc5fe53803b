"""The bot API's docs page (/api/v1/docs, Swagger UI from ninja's own static files) in a real
browser: it loads with nothing fetched from outside the server, lists the operations of the
document, and "Try it out" with a bot token answers from the live API."""
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from lanes import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_page_loads_offline_and_tries_an_operation(page, live_server, screenshot):
    services.account_create(name="acc", values={"base_amount": "1.00"})
    token = services.token_create(name="bot", account_names=["acc"])[1]
    ours = urlsplit(live_server.url).netloc
    outside = []

    def only_ours(route):
        if urlsplit(route.request.url).netloc == ours:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_ours)
    page.goto("/api/v1/docs")
    expect(page.locator(".info .title")).to_contain_text("Martingale Lanes bot API")
    for operation in ("requestTrade", "reportResult", "cancelTrade", "listLanes", "getStatus", "updateSettings"):
        expect(page.locator(f'[id^="operations-default-{operation}"]')).to_have_count(1)

    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".auth-container input").fill(token)
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator(".btn-done").click()

    status = page.locator('[id^="operations-default-getStatus"]')
    status.locator(".opblock-summary").click()
    status.get_by_role("button", name="Try it out").click()
    status.get_by_role("button", name="Execute").click()
    expect(status.locator(".live-responses-table .response .response-col_status").first).to_have_text("200")
    expect(status.locator(".live-responses-table .microlight").first).to_contain_text('"worker_name": "acc"')
    screenshot(page, "api-docs")
    assert outside == []
