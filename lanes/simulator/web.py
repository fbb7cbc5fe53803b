"""The dashboard's simulator page (SPEC §12, issue 11 "Interfaces"): the CLI's inputs as a form,
read by the CLI's own ``cli.plan_from`` (no second copy of its rules), run by the Celery task
``lanes.tasks.run_simulation``.

A run is a folder ``.run/simulations/<id>/`` (the setting or environment variable ``SIMULATOR_FOLDER``): ``options.json`` (the CLI's
options), the upload (``signals.csv``, or the OHLC file under its own name: the name is the
symbol), ``progress.json`` and ``result.json``. Files, not the cache: the cache is per process
unless CACHE_URL is set, and the worker is another process. Short runs (at most ``INLINE_ROWS``
rows × jobs) run in the request; longer ones go to the worker and the page polls their progress
every second. ``prune`` (the beat's ``prune_simulations``) deletes runs untouched for
``SIMULATOR_KEEP_DAYS`` days.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from lanes.ranges import InvalidInput

from . import batch, cli, streams

logger = logging.getLogger("lanes.simulator")

INLINE_ROWS = 50_000
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
CURVE_POINTS = 300
KINDS = [("random", "Random stream"), ("csv", "CSV of signals"), ("account", "An account's history"), ("prices", "Price sample")]
# The CLI's option names → the form's fields.
FIELDS = {
    "--csv": "csv", "--account": "account", "--days": "days", "--random": "random", "--win-rate": "win_rate",
    "--draw-rate": "draw_rate", "--symbols": "symbols", "--streak": "streak", "--expiry-seconds": "expiry_seconds",
    "--seed": "seed", "--prices": "prices",
    "--expiry-candles": "expiry_candles", "--monte-carlo": "monte_carlo", "--bankroll": "bankroll", "--rank": "rank",
    "--set": "sets", "--grid": "grids", "stream": "kind",
}
UPLOADS = {"csv": "csv", "prices": "prices_file"}  # the stream → its upload field


def folder() -> Path:
    where = getattr(settings, "SIMULATOR_FOLDER", None) or os.environ.get("SIMULATOR_FOLDER")
    return Path(where or settings.BASE_DIR / ".run" / "simulations")


class SimulateForm(forms.Form):
    kind = forms.ChoiceField(choices=KINDS, initial="random", label="Stream")
    csv = forms.FileField(required=False, label="CSV file", help_text="timestamp,symbol,result[,payout][,expiry_seconds]; at most 20 MB")
    account = forms.CharField(required=False, label="Account", help_text="its history as the stream; also its settings as the start")
    start_from_account = forms.BooleanField(required=False, label="Start from the account's settings (otherwise the defaults)")
    days = forms.CharField(required=False, label="Days", help_text="the account's last N days (default: all)")
    random = forms.CharField(required=False, initial="1000", label="Signals")
    win_rate = forms.CharField(required=False, initial="0.55", label="Win rate")
    draw_rate = forms.CharField(required=False, initial="0", label="Draw rate")
    symbols = forms.CharField(required=False, initial="1", label="Symbols")
    streak = forms.CharField(required=False, initial="0", label="Streak", help_text="random stream: the chance a result repeats the previous one (0 to under 1)")
    expiry_seconds = forms.CharField(required=False, initial="60", label="Expiry seconds", help_text="random stream: seconds from each request to its result")
    prices = forms.ChoiceField(required=False, choices=[("eurusd", "EURUSD"), ("goog", "GOOG"), ("btcusd", "BTCUSD")], label="Prices")
    prices_file = forms.FileField(required=False, label="Own prices (OHLC CSV)",
                                  help_text="instead of the sample: a Date and a Close column, the file's name is the symbol; at most 20 MB")
    expiry_candles = forms.CharField(required=False, initial="1", label="Expiry candles")
    seed = forms.CharField(required=False, initial="0", label="Seed")
    sets = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Settings to compare",
                           help_text="one k=v,k=v per line (as --set); none: the start settings")
    grids = forms.CharField(required=False, label="Grid", help_text="k=v1|v2,k=v1|v2 (as --grid)")
    rank = forms.ChoiceField(required=False, choices=[("", "—")] + [(r, r) for r in batch.RANKS], label="Rank by")
    monte_carlo = forms.CharField(required=False, label="Monte Carlo runs")
    bankroll = forms.CharField(required=False, label="Bankroll")

    def _upload(self, name: str):
        upload = self.cleaned_data.get(name)
        if upload is not None and upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(f"the file has {upload.size:,} bytes; at most {MAX_UPLOAD_BYTES:,} (20 MB)")
        return upload

    def clean_csv(self):
        return self._upload("csv")

    def clean_prices_file(self):
        return self._upload("prices_file")

    def options(self, upload_path: Optional[str]) -> dict[str, Any]:
        """The CLI's options (``cli.plan_from``) for this form; ``upload_path``: the saved upload of
        the chosen stream, if any."""
        data = self.cleaned_data
        kind = data["kind"]
        text = lambda name: (data.get(name) or "").strip() or None  # noqa: E731
        account = text("account")
        return {
            "csv": upload_path if kind == "csv" else None,
            "account": account if kind == "account" or data.get("start_from_account") else None,
            "days": text("days") if kind == "account" else None,
            "random": text("random") if kind == "random" else None,
            "win_rate": text("win_rate"), "draw_rate": text("draw_rate") or "0", "symbols": text("symbols") or "1",
            "streak": text("streak") or "0", "expiry_seconds": text("expiry_seconds") or "60",
            "prices": (upload_path or data.get("prices")) if kind == "prices" else None,
            "expiry_candles": text("expiry_candles") or "1",
            "seed": text("seed") or "0",
            "sets": [line.strip() for line in (data.get("sets") or "").splitlines() if line.strip()],
            "grids": [text("grids")] if text("grids") else [],
            "rank": data.get("rank") or None, "monte_carlo": text("monte_carlo"), "bankroll": text("bankroll"),
            "plot": "curves",  # keep the equity curves
        }


def _add_errors(form: SimulateForm, errors: dict[str, str]) -> None:
    for name, message in errors.items():
        form.add_error(FIELDS.get(name, "sets"), f"{name}: {message}" if name not in FIELDS else message)


@login_required
def simulate_page(request):
    """The form; a valid one starts a run and redirects to its page. Running changes nothing in the
    database, so any logged-in user may run one."""
    form = SimulateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = uuid.uuid4().hex
        where = folder() / job
        where.mkdir(parents=True, exist_ok=True)
        if _start(form, job, where):
            return redirect(reverse("dashboard:simulate-run", args=[job]))
        shutil.rmtree(where, ignore_errors=True)  # a refused form leaves no run behind
    return render(request, "lanes/simulate.html", {"form": form, "ranks": batch.RANKS})


def _start(form: SimulateForm, job: str, where: Path) -> bool:
    """Save the stream's upload, read the options with the CLI's ``plan_from`` and run the job (or
    queue it); False, with the errors on the form, when the input is refused."""
    kind = form.cleaned_data["kind"]
    field = UPLOADS.get(kind)
    upload = form.cleaned_data.get(field) if field else None
    if kind == "csv" and upload is None:
        form.add_error("csv", "choose a CSV file")
        return False
    path = None
    if upload is not None:
        path = where / ("signals.csv" if kind == "csv" else f"{_file_stem(upload.name)}.csv")
        with open(path, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    options = form.options(None if path is None else str(path))
    try:
        plan, _ = cli.plan_from(options)
        rows = batch.rows_per_pass(plan)
        if path:  # read the whole upload now: a bad row is shown with its line number, next to the field
            rows = sum(1 for _signal in plan.source.signals())
    except streams.StreamError as exc:
        message = str(exc).replace(str(where) + os.sep, "")
        option = FIELDS.get(message.split(" ", 1)[0])  # a stream's own check names its option first
        form.add_error(option or (field if path else None) or ("account" if options["account"] else "kind"), message)
        return False
    except InvalidInput as exc:
        _add_errors(form, exc.errors)
        return False
    (where / "options.json").write_text(json.dumps(options))
    work = None if rows is None else rows * len(plan.settings) * (1 + plan.monte_carlo)
    from lanes import tasks

    if work is not None and work <= INLINE_ROWS:
        tasks.run_simulation(job)
    else:
        write_progress(job, {"state": "queued", "percent": 0})
        tasks.run_simulation.delay(job)
    return True


def _file_stem(name: str) -> str:
    """An uploaded file's name without its extension, safe as a file name (the price stream's
    symbol is the file's name)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", Path(name).stem)[:64] or "prices"


def _job_folder(job: str) -> Path:
    if not job.isalnum():
        raise Http404("no such run")
    where = folder() / job
    if not (where / "options.json").exists():
        raise Http404("no such run")
    return where


def prune(*, keep_days: float, now: Optional[datetime] = None) -> int:
    """Delete the runs whose newest file is more than ``keep_days`` days old (a queued or running
    run touches its progress, so it stays); returns how many. Only folders named as a run is
    (alphanumeric), never a link, never anything outside ``folder()``."""
    cutoff = (now or timezone.now()).timestamp() - keep_days * 86400
    try:
        entries = list(os.scandir(folder()))
    except FileNotFoundError:
        return 0
    removed = 0
    for entry in entries:
        if not (entry.name.isascii() and entry.name.isalnum()) or not entry.is_dir(follow_symlinks=False):
            continue
        if _newest(entry.path) >= cutoff:
            continue
        try:
            shutil.rmtree(entry.path)
        except OSError:
            logger.exception("martingale.simulations cannot remove run=%s", entry.name)
            continue
        removed += 1
    return removed


def _newest(path: str) -> float:
    """The latest modification time of a folder and of everything in it (links not followed); a
    file that vanishes meanwhile (a progress update) keeps the run."""
    try:
        newest = os.lstat(path).st_mtime
        for top, folders, files in os.walk(path):
            for name in folders + files:
                newest = max(newest, os.lstat(os.path.join(top, name)).st_mtime)
    except FileNotFoundError:
        return float("inf")
    return newest


def write_progress(job: str, progress: dict) -> None:
    path = folder() / job / "progress.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(progress))
    os.replace(temporary, path)


def read(job: str, name: str) -> Optional[dict]:
    try:
        return json.loads((folder() / job / name).read_text())
    except (OSError, ValueError):
        return None


def execute(job: str) -> None:
    """The task's body: run the plan, write progress while it runs, then the results (or the error)."""
    options = json.loads((folder() / job / "options.json").read_text())
    try:
        plan, rank = cli.plan_from(options)
        rows = batch.rows_per_pass(plan)
        total = None if rows is None else rows * len(plan.settings) * (1 + plan.monte_carlo)
        write_progress(job, {"state": "running", "percent": 0})

        def on_progress(count: int) -> None:
            percent = None if not total else min(99, int(100 * count / total))
            write_progress(job, {"state": "running", "percent": percent, "rows": count})

        results = batch.run_plan(plan, processes=1, on_progress=on_progress)
        if rank:
            results = batch.ranked(results, rank)
    except (streams.StreamError, InvalidInput) as exc:
        message = str(exc) if isinstance(exc, streams.StreamError) else "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
        write_progress(job, {"state": "failed", "percent": 100, "error": message})
        return
    except Exception:  # the page must stop polling; the traceback goes to the worker's log
        write_progress(job, {"state": "failed", "percent": 100, "error": "the run failed; the worker's log has the details"})
        raise
    document = {
        "stream": plan.source.describe(), "rank": rank,
        "results": [r.as_json() for r in results],
        "curves": [_thin(r.curve.points if r.curve else []) for r in results],
    }
    (folder() / job / "result.json").write_text(json.dumps(document))
    write_progress(job, {"state": "done", "percent": 100})


def _thin(points: list, limit: int = CURVE_POINTS) -> list:
    step = max(1, -(-len(points) // limit))
    thinned = points[::step]
    if points and thinned[-1] != points[-1]:
        thinned.append(points[-1])
    return [[int(at), round(value, 2), round(-drawdown, 2)] for at, value, drawdown in thinned]


def _context(job: str) -> dict:
    progress = read(job, "progress.json") or {"state": "queued", "percent": 0}
    document = read(job, "result.json") if progress.get("state") == "done" else None
    context: dict[str, Any] = {"job": job, "progress": progress, "document": document}
    if document:
        results = document["results"]
        keys = [(k, t) for k, t in cli.ROWS if k != "risk_of_ruin" or "risk_of_ruin" in results[0]]
        context["labels"] = [cli._label(r) for r in results]
        context["rows"] = [(k, t, [cli._cell(r, k) for r in results]) for k, t in keys]
        context["chart"] = {"labels": context["labels"], "curves": document["curves"]}
        context["levels"] = [_levels(result, label) for result, label in zip(results, context["labels"])]
        context["levels_open"] = len(results) <= cli.SIDE_BY_SIDE
    return context


def _levels(result: dict, label: str) -> dict:
    """A result's ``by_level`` as a table: the columns are its rows' keys, in ``as_json``'s order."""
    rows = result["by_level"]
    columns = list(rows[0]) if rows else []
    return {"label": label, "titles": [c.replace("_", " ") for c in columns], "rows": [[row[c] for c in columns] for row in rows]}


@login_required
def simulate_run(request, job: str):
    _job_folder(job)
    return render(request, "lanes/simulate_run.html", _context(job))


@login_required
def simulate_status(request, job: str):
    """The htmx poll: the progress bar while the run goes on, the results when it is done."""
    _job_folder(job)
    return render(request, "lanes/simulate_status.html", _context(job))
