"""Clients of the bot API against a live server (issue 9): a typed client generated with
openapi-python-client from the document as it was before the move to django-ninja runs unchanged,
so does one generated from today's document, and every request the project's own stdlib client
(lanes.client) sends is one the document describes."""
import importlib
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from lanes import services
from lanes.client import MartingaleClient

ROOT = Path(__file__).resolve().parent.parent.parent
BEFORE_NINJA = Path(__file__).parent / "fixtures" / "openapi-before-ninja.json"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(live_server):
    services.account_create(name="acc", values={"base_amount": "1.00", "martingale_multiplier": "2.00"})
    return services.token_create(name="bot", account_names=["acc"])[1]


def generate(document: Path, folder: Path, package: str):
    """Generate a client package from ``document`` into ``folder`` and import it."""
    config = folder / "config.yaml"
    config.write_text(f"post_hooks: []\npackage_name_override: {package}\nproject_name_override: {package}\n")
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(document), "--config", str(config), "--meta", "none",
         "--output-path", str(folder / package)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        return {
            name: importlib.import_module(f"{package}.{name}")
            for name in (
                "client", "models", "api.default.request_trade", "api.default.report_result",
                "api.default.get_trade", "api.default.list_lanes", "api.default.get_status",
                "api.default.update_settings", "api.default.cancel_trade",
            )
        }
    finally:
        sys.path.remove(str(folder))


def bot_cycle(live_server, token, generated):
    """A bot's day through the generated client: a base trade lost, the lane's trade, the list,
    the status, a setting, a cancel."""
    models = generated["models"]
    client = generated["client"].AuthenticatedClient(base_url=live_server.url, token=token, raise_on_unexpected_status=True)

    first = generated["api.default.request_trade"].sync(
        client=client, body=models.TradeRequest(account="acc", symbol="EURUSD", trade_id="gen-1")
    )
    assert (first.trade_id, first.status, first.amount, first.level) == ("gen-1", "open", "1.00", 0)
    lost = generated["api.default.report_result"].sync(
        trade_id="gen-1", client=client, body=models.ResultRequest(result=models.ResultRequestResult.LOSS)
    )
    assert lost.status == "lost" and lost.lane.current_amount == "2.00"

    second = generated["api.default.request_trade"].sync(
        client=client, body=models.TradeRequest(account="acc", symbol="EURUSD", trade_id="gen-2")
    )
    assert (second.kind, second.level, second.amount, second.lane_id) == ("lane", 1, "2.00", lost.lane.lane_id)
    assert generated["api.default.get_trade"].sync(trade_id="gen-2", client=client).status == "open"
    won = generated["api.default.report_result"].sync(
        trade_id="gen-2", client=client, body=models.ResultRequest(result=models.ResultRequestResult.WIN, payout="3.70")
    )
    assert (won.profit, won.lane.outcome) == ("1.70", "recovered")

    lanes = generated["api.default.list_lanes"].sync(client=client, account="acc", limit=10)
    assert [lane.lane_id for lane in lanes.lanes] == [lost.lane.lane_id]
    status = generated["api.default.get_status"].sync(client=client)
    assert [item.account.worker_name for item in status.accounts] == ["acc"]
    settings = generated["api.default.update_settings"].sync(
        account="acc", client=client, body=models.SettingsPatch(max_daily_lanes=12)
    )
    assert settings.max_daily_lanes == 12
    generated["api.default.request_trade"].sync(client=client, body=models.TradeRequest(account="acc", symbol="GBPUSD", trade_id="gen-3"))
    assert generated["api.default.cancel_trade"].sync(trade_id="gen-3", client=client).status == "cancelled"


def test_a_client_generated_from_the_document_before_ninja_runs_unchanged(live_server, token, tmp_path):
    bot_cycle(live_server, token, generate(BEFORE_NINJA, tmp_path, "client_before_ninja"))


def test_a_client_generated_from_todays_document_runs(live_server, token, tmp_path, client):
    document = tmp_path / "openapi.json"
    document.write_text(client.get("/api/v1/openapi.json").content.decode())
    bot_cycle(live_server, token, generate(document, tmp_path, "client_today"))


def test_every_request_of_the_stdlib_client_is_in_the_document(live_server, token, client, monkeypatch):
    document = client.get("/api/v1/openapi.json").json()
    sent = []
    real_once = MartingaleClient._once

    def recording(self, method, url, data, document_statuses):
        sent.append((method, url, None if data is None else json.loads(data)))
        return real_once(self, method, url, data, document_statuses)

    monkeypatch.setattr(MartingaleClient, "_once", recording)
    bot = MartingaleClient(live_server.url, token, retries=0)
    trade = bot.request_trade("acc", "EURUSD", direction="call", expected_payout=Decimal("1.90"), max_wait_seconds=30)
    bot.trade(trade["trade_id"])
    lane = bot.report_result(trade["trade_id"], "loss", payout=Decimal("0.10"))["lane"]
    bot.lane(lane["lane_id"])
    bot.lanes(account="acc", status="active")
    bot.request_trade("acc", "EURUSD", trade_id="c2")
    bot.cancel("c2")
    bot.complete_lane(lane["lane_id"], "cancelled")
    bot.status()
    bot.status("acc")
    bot.settings("acc")
    bot.update_settings("acc", max_daily_lanes=15)
    bot.account("acc")
    bot.update_account("acc", martingale_enabled=True)
    bot.stats("acc", days=1)
    bot.stats(days=1)
    bot.health()

    operations = []
    for path, item in document["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")) + "$")
        for method, operation in item.items():
            operations.append((pattern, method.upper(), operation))
    schemas = document["components"]["schemas"]
    for method, url, body in sent:
        path, _, query = url.partition(live_server.url)[2].partition("?")
        matches = [op for pattern, verb, op in operations if verb == method and pattern.match(path)]
        assert len(matches) == 1, (method, path)
        operation = matches[0]
        parameters = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert {pair.split("=")[0] for pair in query.split("&") if pair} <= parameters, (method, path, query)
        if body:
            reference = operation["requestBody"]["content"]["application/json"]["schema"]
            reference = next(part for part in reference.get("anyOf", [reference]) if "$ref" in part)["$ref"]
            properties = schemas[reference.rsplit("/", 1)[1]]["properties"]
            assert set(body) <= set(properties), (method, path, set(body) - set(properties))
    assert len(sent) >= 17
