"""The simulator page's clean-up (``lanes.tasks.prune_simulations``, hourly on the beat): a run's
folder goes once its newest file is SIMULATOR_KEEP_DAYS days old; newer runs, queued or running
ones that are younger, entries not named as a run and anything outside the folder stay."""
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from django.conf import settings

from lanes import tasks

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def runs(tmp_path, settings):
    settings.SIMULATOR_FOLDER = str(tmp_path / "simulations")
    settings.SIMULATOR_KEEP_DAYS = 7
    (tmp_path / "simulations").mkdir()
    return tmp_path / "simulations"


def touch(path, days_ago):
    moment = (NOW - timedelta(days=days_ago)).timestamp()
    os.utime(path, (moment, moment), follow_symlinks=False)


def make_run(runs, name, days_ago, **files):
    """A run folder with ``files`` (name → days ago; default options.json and result.json as old
    as the folder), every time set, the folder's last."""
    where = runs / name
    where.mkdir()
    for file, age in (files or {"options.json": days_ago, "result.json": days_ago}).items():
        (where / file).write_text("{}")
        touch(where / file, age)
    touch(where, days_ago)
    return where


def test_old_runs_go_and_new_ones_stay(runs):
    old = make_run(runs, "a" * 32, 10)
    older = make_run(runs, "0123abcd", 30)
    new = make_run(runs, "b" * 32, 2)
    assert tasks.prune_simulations(now=NOW) == 2
    assert not old.exists() and not older.exists()
    assert sorted(p.name for p in new.iterdir()) == ["options.json", "result.json"]


def test_the_newest_file_decides_so_a_young_queued_or_running_run_stays(runs):
    queued = make_run(runs, "c" * 32, 10, **{"options.json": 10, "progress.json": 1})
    running = make_run(runs, "d" * 32, 10, **{"options.json": 10, "progress.json": 6.9})
    stale = make_run(runs, "e" * 32, 10, **{"options.json": 10, "progress.json": 8})  # a worker that never came
    nested = make_run(runs, "f" * 32, 10)
    (nested / "upload").mkdir()
    (nested / "upload" / "fresh.csv").write_text("x")
    touch(nested / "upload", 10)
    assert tasks.prune_simulations(now=NOW) == 1
    assert queued.exists() and running.exists() and nested.exists() and not stale.exists()


def test_the_keep_days_setting_is_the_limit(runs, settings):
    run = make_run(runs, "a" * 32, 10)
    settings.SIMULATOR_KEEP_DAYS = 30
    assert tasks.prune_simulations(now=NOW) == 0 and run.exists()
    settings.SIMULATOR_KEEP_DAYS = 9
    assert tasks.prune_simulations(now=NOW) == 1 and not run.exists()


def test_entries_not_named_as_runs_and_links_stay(runs, tmp_path):
    not_a_run = make_run(runs, "not-a-run", 30)
    accented = make_run(runs, "caf\u00e9", 30)
    (runs / "notes").write_text("old")  # a file, not a folder
    touch(runs / "notes", 30)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    touch(outside / "keep.txt", 30)
    touch(outside, 30)
    os.symlink(outside, runs / ("9" * 32))  # named as a run, but a link out of the folder
    inner = make_run(runs, "a" * 32, 30)
    os.symlink(outside / "keep.txt", inner / "link.csv")
    touch(inner / "link.csv", 30)
    touch(inner, 30)
    assert tasks.prune_simulations(now=NOW) == 1
    assert not inner.exists()
    assert not_a_run.exists() and accented.exists() and (runs / "notes").exists()
    assert (runs / ("9" * 32)).is_symlink() and (outside / "keep.txt").read_text() == "mine"


def test_no_folder_yet_is_nothing_to_prune(tmp_path, settings):
    settings.SIMULATOR_FOLDER = str(tmp_path / "never-made")
    assert tasks.prune_simulations(now=NOW) == 0


def test_beat_prunes_hourly_with_an_expiry():
    entry = settings.CELERY_BEAT_SCHEDULE["martingale-simulations-prune"]
    assert entry["task"] == "lanes.tasks.prune_simulations"
    assert entry["schedule"] == 3600 and entry["options"]["expires"] == 3600
    assert tasks.prune_simulations.name == entry["task"]


@pytest.mark.parametrize("value, expected", [(None, "7"), ("3", "3")])
def test_keep_days_comes_from_the_environment_with_a_default_of_seven(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "SIMULATOR_KEEP_DAYS"}
    if value is not None:
        env["SIMULATOR_KEEP_DAYS"] = value
    done = subprocess.run(
        [sys.executable, "-c", "from martingale_project import settings; print(settings.SIMULATOR_KEEP_DAYS)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    assert done.stdout.strip() == expected
