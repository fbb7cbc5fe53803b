"""The simulator page's task on a real `celery worker` through the default filesystem:// transport:
a run queued as the page queues it (``run_simulation.delay``) is picked up by the worker, which
writes the progress and the same results as the CLI's JSON into the run's folder."""
import io
import json
import time
import uuid

import pytest
from django.core.management import call_command
from test_celery_integration import environment, manage, start_worker, workers  # noqa: F401 (a fixture)

pytestmark = pytest.mark.sqlite_only

OPTIONS = {
    "csv": None, "account": None, "days": None, "random": "3000", "win_rate": "0.55", "draw_rate": "0", "symbols": "2",
    "streak": "0", "expiry_seconds": "60", "prices": None, "expiry_candles": "1", "seed": "11",
    "sets": ["martingale_multiplier=2.0", "martingale_multiplier=2.5"], "grids": [], "rank": None,
    "monte_carlo": None, "bankroll": None, "plot": "curves",
}


def test_a_simulation_queued_by_the_page_runs_on_the_worker(workers, tmp_path):  # noqa: F811
    env = {**environment(tmp_path, "filesystem://"), "SIMULATOR_FOLDER": str(tmp_path / "simulations")}
    manage(env, "migrate", "--noinput", "-v", "0")
    job = uuid.uuid4().hex
    run = tmp_path / "simulations" / job
    run.mkdir(parents=True)
    (run / "options.json").write_text(json.dumps(OPTIONS))
    manage(env, "shell", "-c", f"from lanes.tasks import run_simulation; run_simulation.delay({job!r})")
    process, log = start_worker(workers, env, tmp_path)
    deadline = time.monotonic() + 60
    while not (run / "result.json").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert (run / "result.json").exists(), log.read_text(errors="replace")[-4000:] if log.exists() else "no log"
    assert json.loads((run / "progress.json").read_text()) == {"state": "done", "percent": 100}
    document = json.loads((run / "result.json").read_text())
    # The CLI on the same input, in this process.
    out = io.StringIO()
    call_command("martingale", "simulate", "--random", "3000", "--win-rate", "0.55", "--symbols", "2", "--seed", "11",
                 "--set", OPTIONS["sets"][0], "--set", OPTIONS["sets"][1], "--json", stdout=out)
    assert document["results"] == json.loads(out.getvalue())["results"]
    assert [len(curve) > 2 for curve in document["curves"]] == [True, True]
