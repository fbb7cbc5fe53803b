"""The simulator page in a real browser: fill the form with a random stream and two settings, run
it through the task path (a thread stands in for the Celery worker, a second late), watch the
progress bar, then the comparison table, both charts drawn and a by-level table per setting."""
import re
import threading
import time

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from lanes import tasks
from lanes.simulator import web

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def viewer():
    return User.objects.create_user("viewer", password="pw-viewer-123")


@pytest.fixture
def late_worker(monkeypatch, tmp_path, settings):
    """Every run goes to the "worker": a thread that starts it after a second."""
    settings.SIMULATOR_FOLDER = str(tmp_path / "simulations")
    monkeypatch.setattr(web, "INLINE_ROWS", 0)
    started = []

    def delay(job):
        def work():
            time.sleep(1.5)
            tasks.run_simulation.apply(args=[job])

        thread = threading.Thread(target=work)
        thread.start()
        started.append(thread)

    monkeypatch.setattr(tasks.run_simulation, "delay", delay)
    yield started
    for thread in started:
        thread.join()


def test_a_random_stream_runs_shows_progress_then_the_table_and_charts(page, viewer, log_in, late_worker, screenshot):
    log_in(viewer)
    page.goto("/")
    page.click("nav >> text=Simulator")
    expect(page).to_have_url(re.compile(r"/simulate/$"))
    page.select_option("#id_kind", "random")
    page.fill("#id_random", "2000")
    page.fill("#id_win_rate", "0.5")
    page.fill("#id_seed", "3")
    page.fill("#id_sets", "martingale_multiplier=2.0\nmartingale_multiplier=2.5")
    screenshot(page, "simulator-01-form")
    page.click("#simulate-run")
    expect(page.locator("#simulate-progress")).to_be_visible()
    screenshot(page, "simulator-02-progress")
    expect(page.locator("#simulate-results")).to_be_visible()
    expect(page.locator("#simulate-progress")).to_have_count(0)
    expect(page.locator('#simulate-results tr[data-metric="trades"] td')).to_have_count(2)
    expect(page.locator('#simulate-results th[data-setting="2"]')).to_contain_text("martingale_multiplier=2.50")
    page.wait_for_function("() => window.dashboardCharts && window.dashboardCharts['chart-equity'] && window.dashboardCharts['chart-drawdown']")
    datasets = page.evaluate("window.dashboardCharts['chart-equity'].data.datasets.map(d => d.data.length)")
    assert len(datasets) == 2 and all(2 <= n <= web.CURVE_POINTS + 1 for n in datasets)
    box = page.locator("#chart-equity").bounding_box()
    assert box["width"] > 100 and box["height"] > 100
    levels = page.locator('#simulate-levels details[data-levels="2"]')
    expect(levels.locator("summary")).to_have_text("#2 martingale_multiplier=2.50")
    expect(levels.locator("tbody tr").first).to_be_visible()
    expect(levels.locator('tbody tr[data-level="0"] td').first).to_have_text("0")
    screenshot(page, "simulator-03-results")


def test_an_uploaded_csv_shows_each_settings_by_level_table(page, viewer, log_in, late_worker, tmp_path, screenshot):
    # Loss, loss, win, win, draw a minute apart: with max level 7 the lane recovers at level 2 (+3.40);
    # with max level 1 it is exhausted at level 1 and the rest are base trades.
    path = tmp_path / "levels.csv"
    path.write_text("timestamp,symbol,result\n" + "".join(
        f"2026-03-02T09:0{i}:00Z,EURUSD,{result}\n" for i, result in enumerate(["loss", "loss", "win", "win", "draw"])))
    log_in(viewer)
    page.goto("/simulate/")
    page.select_option("#id_kind", "csv")
    page.set_input_files("#id_csv", str(path))
    page.fill("#id_sets", "martingale_max_level=7\nmartingale_max_level=1")
    page.click("#simulate-run")
    first = page.locator('#simulate-levels details[data-levels="1"]')
    second = page.locator('#simulate-levels details[data-levels="2"]')
    expect(second.locator("summary")).to_have_text("#2 martingale_max_level=1")
    expect(first.locator("thead th")).to_have_text(
        ["level", "trades", "wins", "losses", "draws", "net profit", "lanes recovered", "lanes exhausted"])
    expect(first.locator('tr[data-level="2"] td')).to_have_text(["2", "1", "1", "0", "0", "3.40", "1", "0"])
    expect(second.locator("tbody tr")).to_have_count(2)
    expect(second.locator('tr[data-level="0"] td')).to_have_text(["0", "4", "2", "1", "1", "0.70", "0", "0"])
    expect(second.locator('tr[data-level="1"] td')).to_have_text(["1", "1", "0", "1", "0", "-2.00", "0", "1"])
    expect(second.locator("table")).to_be_visible()
    second.locator("summary").click()  # folds
    expect(second.locator("table")).to_be_hidden()
    screenshot(page, "simulator-04-by-level")


def test_a_bad_win_rate_shows_its_error_next_to_the_field(page, viewer, log_in, late_worker):
    log_in(viewer)
    page.goto("/simulate/")
    page.fill("#id_win_rate", "2")
    page.click("#simulate-run")
    expect(page.locator('[data-field="win_rate"] [data-error="win_rate"]')).to_contain_text("from 0 to 1")
    assert late_worker == []
