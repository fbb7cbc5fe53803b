"""Helpers shared by the simulator's tests: a stream written as CSV text, run on one setting."""
import textwrap

import pytest


# Lose, lose in the lane (level 1, 2.00), win at level 2 (4.00 returns 7.40), a draw, a base win.
LADDER = """\
timestamp,symbol,result
2026-03-02T09:00:00+00:00,EURUSD,loss
2026-03-02T09:01:00+00:00,EURUSD,loss
2026-03-02T09:02:00+00:00,EURUSD,win
2026-03-02T09:03:00+00:00,EURUSD,draw
2026-03-02T09:04:00+00:00,EURUSD,win
"""


@pytest.fixture
def ladder():
    """The ladder stream's CSV text (hand-computed in test_simulator_metrics.py)."""
    return LADDER


@pytest.fixture
def csv_file(tmp_path):
    """A factory: CSV text (dedented) → the path of a file holding it."""

    def make(text, name="signals.csv"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return str(path)

    return make


@pytest.fixture
def run_csv(csv_file):
    """A factory: CSV text and settings (as --set gives them) → the simulation's result."""

    def run(text, **values):
        from lanes.simulator import configs, runner, streams

        setting = configs.build(configs.start_from(), {name: str(value) for name, value in values.items()})
        return runner.simulate(setting, streams.CsvSource(csv_file(text)).signals())

    return run
