"""The simulator page (issue 11 "Interfaces", SPEC §12): the CLI's inputs as a form, errors next
to their field, the CLI's numbers in the table, and the run through the Celery task."""
import io
import json
import re
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from lanes import tasks
from lanes.simulator import web

pytestmark = pytest.mark.django_db

# Two symbols, a loss ladder on each, the payout column empty (the payout rate) (SPEC §12 "a row of a stream").
SIGNALS = """\
timestamp,symbol,result,payout
2026-03-02T09:00:00Z,EURUSD,loss,
2026-03-02T09:00:30Z,GBPUSD,loss,
2026-03-02T09:01:00Z,EURUSD,win,
2026-03-02T09:01:30Z,GBPUSD,loss,
2026-03-02T09:02:00Z,GBPUSD,win,
"""
# One symbol, a minute apart, settled at once. From the defaults (base 1.00, × 2.00, payout 0.85): a
# base loss opens a lane (level 0: -1.00), its level-1 loss (-2.00), then with martingale_max_level
# 7 a level-2 win (+3.40, recovered); with 1 the level-1 loss exhausts the lane and the two wins
# and the draw are base trades (level 0: -1.00 + 0.85 + 0.85 + 0 = 0.70).
LEVELS = """\
timestamp,symbol,result
2026-03-02T09:00:00Z,EURUSD,loss
2026-03-02T09:01:00Z,EURUSD,loss
2026-03-02T09:02:00Z,EURUSD,win
2026-03-02T09:03:00Z,EURUSD,win
2026-03-02T09:04:00Z,EURUSD,draw
"""
LEVEL_COLUMNS = ["level", "trades", "wins", "losses", "draws", "net profit", "lanes recovered", "lanes exhausted"]


def candles(closes):
    """An OHLC file as the samples are written (Date first, a Close column), an hour a candle."""
    lines = ["Date,Open,High,Low,Close,Volume"]
    for hour, close in enumerate(closes):
        lines.append(f"2025-01-{1 + hour // 24:02d} {hour % 24:02d}:00:00,{close},{close},{close},{close},100")
    return "\n".join(lines) + "\n"


# Rising, falling and rising again: the averages cross both ways, so calls and puts, wins and losses.
CLOSES = [f"{100 + (i % 30 if i % 60 < 30 else 30 - i % 30) + (i % 7) / 10:.2f}" for i in range(120)]


@pytest.fixture(autouse=True)
def runs_folder(tmp_path, settings):
    settings.SIMULATOR_FOLDER = str(tmp_path / "simulations")
    return tmp_path / "simulations"


@pytest.fixture
def viewer_client():
    client = Client()
    client.force_login(User.objects.create_user("viewer", password="pw-viewer-123"))
    return client


def post(client, **fields):
    data = {"kind": "random", "random": "200", "win_rate": "0.55", "draw_rate": "0", "symbols": "1", "seed": "7",
            "expiry_candles": "1", "sets": "", "grids": "", "rank": "", "monte_carlo": "", "bankroll": ""}
    data.update(fields)
    return client.post(reverse("dashboard:simulate"), data)


def errors(response):
    return {name: [str(e) for e in errs] for name, errs in response.context["form"].errors.items()}


def cli_json(*args):
    out = io.StringIO()
    call_command("martingale", "simulate", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_the_page_needs_a_login_and_is_in_the_nav(client, viewer_client):
    assert client.get(reverse("dashboard:simulate")).status_code == 302
    page = viewer_client.get(reverse("dashboard:simulate"))
    assert page.status_code == 200
    assert f'href="{reverse("dashboard:simulate")}"' in page.content.decode()


@pytest.mark.parametrize("fields, field, text", [
    ({"win_rate": "1.5"}, "win_rate", "from 0 to 1"),
    ({"win_rate": ""}, "win_rate", "required with --random"),
    ({"random": "abc"}, "random", ""),
    ({"draw_rate": "x"}, "draw_rate", "not a number"),
    ({"sets": "martingale_multiplier=abc"}, "sets", "martingale_multiplier"),
    ({"sets": "no_such_field=1"}, "sets", "no_such_field"),
    ({"monte_carlo": "10"}, "bankroll", "required with --monte-carlo"),
    ({"rank": "risk_of_ruin"}, "rank", "needs --monte-carlo"),
    ({"streak": "1"}, "streak", "less than 1"),
    ({"streak": "-0.1"}, "streak", "from 0 to 1"),
    ({"expiry_seconds": "-5"}, "expiry_seconds", "from 0 to 31536000"),
    ({"expiry_seconds": "soon"}, "expiry_seconds", "whole number"),
    ({"kind": "prices", "prices": "eurusd", "expiry_candles": "0"}, "expiry_candles", ""),
    ({"kind": "csv"}, "csv", "choose a CSV file"),
    ({"kind": "account", "account": "nobody"}, None, "nobody"),
])
def test_bad_input_is_an_error_next_to_its_field(viewer_client, fields, field, text):
    response = post(viewer_client, **fields)
    assert response.status_code == 200
    found = errors(response)
    messages = found.get(field, []) if field else sum(found.values(), [])
    assert messages and any(text in m for m in messages), found
    assert "invalid-feedback" in response.content.decode()


def test_a_bad_csv_row_shows_its_line_number(viewer_client):
    text = SIGNALS + "2026-03-02T09:05:00+00:00,EURUSD,maybe\n"
    response = post(viewer_client, kind="csv", csv=SimpleUploadedFile("s.csv", text.encode(), "text/csv"))
    assert response.status_code == 200
    (message,) = errors(response)["csv"]
    assert "line 7" in message


def test_an_upload_over_the_limit_is_refused(viewer_client, monkeypatch):
    monkeypatch.setattr(web, "MAX_UPLOAD_BYTES", 10)
    response = post(viewer_client, kind="csv", csv=SimpleUploadedFile("s.csv", SIGNALS.encode(), "text/csv"))
    assert "at most 10" in errors(response)["csv"][0]


def test_the_table_has_the_clis_numbers_for_the_same_csv(viewer_client, tmp_path):
    path = tmp_path / "ladder.csv"
    path.write_text(SIGNALS)
    sets = ["martingale_multiplier=2.0", "martingale_multiplier=2.5"]
    response = post(viewer_client, kind="csv", csv=SimpleUploadedFile("s.csv", SIGNALS.encode(), "text/csv"),
                    sets="\n".join(sets))
    assert response.status_code == 302
    page = viewer_client.get(response["Location"])
    expected = cli_json("--csv", str(path), *sum((["--set", s] for s in sets), []))["results"]
    rows = {key: cells for key, _title, cells in page.context["rows"]}
    for i, result in enumerate(expected):
        assert rows["net_profit"][i] == result["net_profit"]
        assert rows["max_drawdown"][i] == result["max_drawdown"]
        assert rows["trades"][i] == str(result["trades"])
        assert rows["lanes_created"][i] == str(result["lanes_created"])
    html = page.content.decode()
    assert 'id="simulate-results"' in html and 'id="simulate-data"' in html
    assert page.context["labels"] == ["martingale_multiplier=2.00", "martingale_multiplier=2.50"]
    assert all(2 <= len(curve) <= web.CURVE_POINTS + 1 for curve in page.context["chart"]["curves"])


def test_the_random_stream_matches_the_cli_with_monte_carlo(viewer_client):
    response = post(viewer_client, random="300", monte_carlo="20", bankroll="100")
    page = viewer_client.get(response["Location"])
    (expected,) = cli_json("--random", "300", "--win-rate", "0.55", "--seed", "7", "--monte-carlo", "20", "--bankroll", "100")["results"]
    rows = {key: cells for key, _title, cells in page.context["rows"]}
    assert rows["net_profit"] == [expected["net_profit"]]
    assert rows["risk_of_ruin"][0].startswith(f"{expected['risk_of_ruin']:.2%}")


def test_a_long_run_goes_to_the_worker_and_the_page_polls_its_progress(viewer_client, monkeypatch):
    monkeypatch.setattr(web, "INLINE_ROWS", 10)
    with mock.patch.object(tasks.run_simulation, "delay") as delay:
        response = post(viewer_client, random="500")
    assert response.status_code == 302
    (job,), _ = delay.call_args
    page = viewer_client.get(response["Location"])
    html = page.content.decode()
    assert 'id="simulate-progress"' in html and 'hx-trigger="every 1s"' in html and "Waiting for the worker" in html
    # The worker's side: the task as Celery runs it, then the poll shows the results and stops.
    tasks.run_simulation.apply(args=[job]).get()
    status = viewer_client.get(reverse("dashboard:simulate-status", args=[job]))
    html = status.content.decode()
    assert 'id="simulate-results"' in html and "hx-trigger" not in html
    assert status.context["progress"] == {"state": "done", "percent": 100}


def test_the_progress_bar_shows_the_percent_written_by_the_task(viewer_client, monkeypatch):
    monkeypatch.setattr(web, "INLINE_ROWS", 10)
    with mock.patch.object(tasks.run_simulation, "delay") as delay:
        post(viewer_client, random="500")
    (job,), _ = delay.call_args
    web.write_progress(job, {"state": "running", "percent": 42})
    html = viewer_client.get(reverse("dashboard:simulate-status", args=[job])).content.decode()
    assert "width: 42%" in html and "42%</div>" in html


def test_an_unknown_run_is_404(viewer_client):
    assert viewer_client.get(reverse("dashboard:simulate-run", args=["abc123"])).status_code == 404
    assert viewer_client.get(reverse("dashboard:simulate-status", args=["abc123"])).status_code == 404


def test_a_row_the_engine_refuses_during_the_run_is_shown_instead_of_the_results(viewer_client):
    text = SIGNALS.replace("09:01:00Z,EURUSD,win,", "09:01:00Z,EURUSD,win,1.80")
    response = post(viewer_client, kind="csv", csv=SimpleUploadedFile("s.csv", text.encode(), "text/csv"),
                    sets="martingale_multiplier=2.5")
    page = viewer_client.get(response["Location"])
    html = page.content.decode()
    assert 'id="simulate-error"' in html and "a win must return more than the stake" in html
    assert 'id="simulate-results"' not in html and "hx-trigger" not in html


def level_tables(html):
    """The by-level tables on the page: {summary text: [[cell, ...] per row]}, the header first."""
    tables = {}
    for block in re.findall(r"<details[^>]*data-levels=[^>]*>(.*?)</details>", html, re.S):
        summary = re.search(r"<summary[^>]*>(.*?)</summary>", block, re.S).group(1).strip()
        rows = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", block, re.S)]
        tables[summary] = rows
    return tables


def test_each_setting_has_its_by_level_table_with_the_hand_counted_rows(viewer_client, runs_folder):
    response = post(viewer_client, kind="csv", csv=SimpleUploadedFile("s.csv", LEVELS.encode(), "text/csv"),
                    sets="martingale_max_level=7\nmartingale_max_level=1")
    assert response.status_code == 302
    html = viewer_client.get(response["Location"]).content.decode()
    assert level_tables(html) == {
        "#1 martingale_max_level=7": [
            LEVEL_COLUMNS,
            ["0", "3", "1", "1", "1", "-0.15", "0", "0"],
            ["1", "1", "0", "1", "0", "-2.00", "0", "0"],
            ["2", "1", "1", "0", "0", "3.40", "1", "0"],
        ],
        "#2 martingale_max_level=1": [
            LEVEL_COLUMNS,
            ["0", "4", "2", "1", "1", "0.70", "0", "0"],
            ["1", "1", "0", "1", "0", "-2.00", "0", "1"],
        ],
    }
    assert html.count("<details class=\"mb-2\" data-levels=") == 2 and html.count(" open>") == 2  # few settings: open


def test_a_grid_has_a_by_level_table_per_setting_folded(viewer_client):
    response = post(viewer_client, kind="csv", csv=SimpleUploadedFile("s.csv", LEVELS.encode(), "text/csv"),
                    grids="martingale_max_level=1|2|3|4|5")
    page = viewer_client.get(response["Location"])
    html = page.content.decode()
    tables = level_tables(html)
    assert list(tables) == [f"#{i} {label}" for i, label in enumerate(page.context["labels"], 1)] and len(tables) == 5
    assert " open>" not in html


def test_a_setting_without_trades_says_so_in_its_level_table(viewer_client):
    response = post(viewer_client, kind="csv", csv=SimpleUploadedFile("s.csv", LEVELS.encode(), "text/csv"),
                    sets="enabled=false")
    html = viewer_client.get(response["Location"]).content.decode()
    (rows,) = level_tables(html).values()
    assert rows == [] and "no trades" in html


def test_streak_and_expiry_seconds_reach_the_run(viewer_client, runs_folder):
    response = post(viewer_client, random="300", streak="0.6", expiry_seconds="300")
    job = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    options = json.loads((runs_folder / job / "options.json").read_text())
    assert (options["streak"], options["expiry_seconds"]) == ("0.6", "300")
    page = viewer_client.get(response["Location"])
    rows = {key: cells for key, _title, cells in page.context["rows"]}
    (expected,) = cli_json("--random", "300", "--win-rate", "0.55", "--seed", "7", "--streak", "0.6", "--expiry-seconds", "300")["results"]
    (plain,) = cli_json("--random", "300", "--win-rate", "0.55", "--seed", "7")["results"]
    assert rows["net_profit"] == [expected["net_profit"]] and rows["skipped"][0].startswith(str(expected["skipped"]))
    assert (expected["net_profit"], expected["skipped"]) != (plain["net_profit"], plain["skipped"])


def test_the_defaults_of_streak_and_expiry_seconds_are_the_clis(viewer_client, runs_folder):
    response = post(viewer_client, random="300")
    page = viewer_client.get(response["Location"])
    (plain,) = cli_json("--random", "300", "--win-rate", "0.55", "--seed", "7")["results"]
    assert {key: cells for key, _title, cells in page.context["rows"]}["net_profit"] == [plain["net_profit"]]


def test_an_own_ohlc_file_is_the_price_stream(viewer_client, tmp_path):
    text = candles(CLOSES)
    path = tmp_path / "MYFX.csv"
    path.write_text(text)
    response = post(viewer_client, kind="prices", prices="goog", expiry_candles="2",
                    prices_file=SimpleUploadedFile("MYFX.csv", text.encode(), "text/csv"))
    assert response.status_code == 302
    page = viewer_client.get(response["Location"])
    (expected,) = cli_json("--prices", str(path), "--expiry-candles", "2")["results"]
    rows = {key: cells for key, _title, cells in page.context["rows"]}
    assert expected["trades"] > 10
    assert rows["trades"] == [str(expected["trades"])] and rows["net_profit"] == [expected["net_profit"]]
    assert page.context["document"]["stream"] == "prices MYFX, expiry 2 candle(s)"


def test_a_bad_ohlc_row_shows_its_line_number_next_to_the_field(viewer_client, runs_folder):
    closes = list(CLOSES)
    closes[40] = "abc"  # the 41st candle: line 42, after the header
    response = post(viewer_client, kind="prices", prices_file=SimpleUploadedFile("mine.csv", candles(closes).encode(), "text/csv"))
    assert response.status_code == 200
    (message,) = errors(response)["prices_file"]
    assert message.startswith("mine.csv line 42:") and "'abc'" in message
    assert 'data-error="prices_file"' in response.content.decode()
    assert not any(runs_folder.iterdir())  # a refused form leaves no run behind


def test_an_ohlc_upload_over_the_limit_is_refused(viewer_client, monkeypatch):
    monkeypatch.setattr(web, "MAX_UPLOAD_BYTES", 10)
    response = post(viewer_client, kind="prices", prices_file=SimpleUploadedFile("m.csv", candles(CLOSES).encode(), "text/csv"))
    assert "at most 10" in errors(response)["prices_file"][0]
