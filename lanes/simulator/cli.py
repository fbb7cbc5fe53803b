"""``python manage.py martingale simulate``: parse the stream, the settings and the outputs, run
them (``batch.run_plan``) and print the results side by side, or as JSON (SPEC §12)."""
from __future__ import annotations

import json
import sys
from typing import Any, Optional

from django.core.management.base import CommandError

from lanes.ranges import InvalidInput, Whole, money as money_field
from lanes.validation import clean

from . import batch, configs, streams

RUNS = Whole(1, 100_000, None, "Monte Carlo runs.")
DAYS = Whole(1, 3650, None, "The account's last N days.")
BANKROLL = money_field("0.01", None, "The balance each Monte Carlo run starts with.")
SIDE_BY_SIDE = 4  # more settings than this are printed one row each
EXAMPLES = """\
examples:
  martingale simulate --random 100000 --win-rate 0.55 --seed 7 --set martingale_multiplier=2.0 --set martingale_multiplier=2.2
  martingale simulate --csv signals.csv --grid "lane_assignment_strategy=fifo|round_robin,max_concurrent_lanes=3|5" --rank max_drawdown
  martingale simulate --account pelly_demo --days 30 --set ladder_mode=recover --monte-carlo 1000 --bankroll 500
  martingale simulate --prices eurusd --expiry-candles 2 --set daily_stop_loss=off --set daily_stop_loss=50 --plot eq.png
"""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser(
        "simulate",
        help="run the engine on a stream of signals for one or more settings (no database writes)",
        epilog=EXAMPLES + "\nprice rule: " + streams.PRICE_RULE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stream = p.add_argument_group("stream (one of)")
    stream.add_argument("--csv", metavar="FILE", help="timestamp,symbol,result[,payout][,expiry_seconds]")
    stream.add_argument("--account", metavar="NAME", help="start from this account's settings; alone, also replay its settled trades")
    stream.add_argument("--days", metavar="N", help="with --account as the stream: its last N days (default: all)")
    stream.add_argument("--random", metavar="N", help="N random signals one minute apart")
    stream.add_argument("--win-rate", metavar="P", help="with --random: the chance of a win")
    stream.add_argument("--draw-rate", metavar="Q", default="0", help="with --random: the chance of a draw (default 0)")
    stream.add_argument("--symbols", metavar="K", default="1", help="with --random: how many symbols (default 1)")
    stream.add_argument("--streak", metavar="S", default="0", help="with --random: the chance a result repeats the previous one (default 0)")
    stream.add_argument("--expiry-seconds", metavar="N", default="60", help="with --random: seconds to each result (default 60)")
    stream.add_argument("--prices", metavar="FILE|eurusd|goog|btcusd", help="OHLC candles turned into signals (see the price rule)")
    stream.add_argument("--expiry-candles", metavar="N", default="1", help="with --prices: candles to each result (default 1)")
    p.add_argument("--seed", metavar="S", default="0", help="the seed of --random and of the Monte Carlo runs (default 0)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="k=v,…", help="one setting to compare (repeat for more)")
    p.add_argument("--grid", dest="grids", action="append", default=[], metavar="k=v1|v2,…", help="compare every combination")
    p.add_argument("--rank", choices=batch.RANKS, help="order the results by this (default with --grid: net_profit)")
    p.add_argument("--monte-carlo", metavar="RUNS", help="also estimate the risk of ruin over RUNS resampled streams")
    p.add_argument("--bankroll", metavar="X", help="with --monte-carlo: the balance each run starts with")
    p.add_argument("--processes", metavar="N", help="worker processes (default: one per setting up to four per core, else one per core)")
    p.add_argument("--plot", metavar="FILE.png", help="draw the equity curves and drawdowns")
    p.add_argument("--json", action="store_true", help="print JSON")


def _whole(text: Optional[str], option: str, low: int, high: int) -> Optional[int]:
    return None if text is None else clean(Whole(low, high, None), text, option, from_text=True)


def _share(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput({option: f"{text!r} is not a number from 0 to 1"}) from None
    if not 0 <= value <= 1:
        raise InvalidInput({option: f"must be from 0 to 1, not {text}"})
    return value


def source_from(options: dict) -> Any:
    given = [name for name in ("csv", "random", "prices") if options.get(name)]
    if len(given) > 1:
        raise InvalidInput({"stream": "give one of --csv, --random, --prices (or --account alone)"})
    if given and options.get("days") is not None:
        raise InvalidInput({"--days": "goes with --account as the stream (no --csv, --random or --prices)"})
    if options.get("csv"):
        return streams.CsvSource(options["csv"])
    if options.get("random"):
        if options.get("win_rate") is None:
            raise InvalidInput({"--win-rate": "is required with --random"})
        return streams.RandomSource(
            count=_whole(options["random"], "--random", 1, 10**10),
            win_rate=_share(options["win_rate"], "--win-rate"),
            draw_rate=_share(options["draw_rate"], "--draw-rate"),
            symbols=_whole(options["symbols"], "--symbols", 1, 100),
            seed=_whole(options["seed"], "--seed", 0, 2**63),
            streak=_share(options["streak"], "--streak"),
            expiry_seconds=clean(streams.EXPIRY_SECONDS, options["expiry_seconds"], "--expiry-seconds", from_text=True),
        )
    if options.get("prices"):
        return streams.PriceSource(options["prices"], _whole(options["expiry_candles"], "--expiry-candles", 1, 10_000))
    if options.get("account"):
        days = None if options.get("days") is None else clean(DAYS, options["days"], "--days", from_text=True)
        return streams.AccountSource.load(options["account"], days)
    raise InvalidInput({"stream": "give a stream: --csv FILE, --account NAME, --random N --win-rate P, or --prices SOURCE"})


def plan_from(options: dict) -> tuple[batch.Plan, Optional[str]]:
    start = configs.start_from(options.get("account"))
    source = source_from(options)
    settings = configs.settings_to_compare(start, options["sets"], options["grids"])
    runs = None if options.get("monte_carlo") is None else clean(RUNS, options["monte_carlo"], "--monte-carlo", from_text=True)
    bankroll = None if options.get("bankroll") is None else clean(BANKROLL, options["bankroll"], "--bankroll")
    if runs and bankroll is None:
        raise InvalidInput({"--bankroll": "is required with --monte-carlo"})
    rank = options.get("rank") or ("net_profit" if options["grids"] else None)
    if rank == "risk_of_ruin" and not runs:
        raise InvalidInput({"--rank": "risk_of_ruin needs --monte-carlo RUNS --bankroll X"})
    plan = batch.Plan(
        source=source, settings=settings, monte_carlo=runs or 0, bankroll=bankroll,
        seed=_whole(options["seed"], "--seed", 0, 2**63), curve=bool(options.get("plot")),
    )
    return plan, rank


def run(command, options: dict) -> None:
    """The subcommand's body: ``command`` is the management command (its stdout)."""
    try:
        plan, rank = plan_from(options)
        processes = _whole(options.get("processes"), "--processes", 1, 64)
        bar = _progress_bar(plan, quiet=options["json"])
        try:
            results = batch.run_plan(plan, processes=processes, on_progress=bar.update_to if bar else None)
        finally:
            if bar is not None:
                bar.close()
    except streams.StreamError as exc:
        raise CommandError(str(exc)) from None
    except InvalidInput as exc:  # the keys of --set name the fields, not the options of `account set`
        raise CommandError("; ".join(f"{name}: {message}" for name, message in exc.errors.items())) from None
    if rank:
        results = batch.ranked(results, rank)
    if options.get("plot"):
        from .plot import plot

        plot(results, options["plot"], title=plan.source.describe())
    if options["json"]:
        command.stdout.write(json.dumps({"stream": plan.source.describe(), "rank": rank, "results": [r.as_json() for r in results]}, indent=2))
        return
    command.stdout.write(f"stream: {plan.source.describe()}" + (f"; ranked by {rank}" if rank else ""))
    for line in table([r.as_json() for r in results]):
        command.stdout.write(line)
    if options.get("plot"):
        command.stdout.write(f"plot: {options['plot']}")


def _progress_bar(plan: batch.Plan, *, quiet: bool):
    """A tqdm bar on stderr for runs of more than a second or so, and only on a terminal."""
    rows = batch.rows_per_pass(plan)
    jobs = len(plan.settings) * (1 + plan.monte_carlo)
    if quiet or not sys.stderr.isatty() or (rows is not None and rows * jobs < 50_000):
        return None
    from tqdm import tqdm

    bar = tqdm(total=None if rows is None else rows * jobs, unit="row", unit_scale=True, file=sys.stderr, desc="simulating")

    def update_to(count: int) -> None:
        bar.update(count - bar.n)

    bar.update_to = update_to
    return bar


# --- The table ------------------------------------------------------------------------------------

ROWS = [
    ("trades", "trades"), ("wins", "wins"), ("losses", "losses"), ("draws", "draws"), ("skipped", "skipped"),
    ("net_profit", "net profit"), ("max_drawdown", "max drawdown"), ("profit_per_drawdown", "profit / drawdown"),
    ("longest_under_water_seconds", "longest under water"), ("lanes_created", "lanes created"),
    ("lanes_recovered", "lanes recovered"), ("lanes_recovered_at_loss", "recovered at a loss"),
    ("lanes_exhausted", "lanes exhausted"), ("lanes_not_created", "lanes not created"), ("locks", "locks"),
    ("longest_losing_run", "longest losing run"), ("peak_at_risk", "peak at risk"),
    ("bankroll_needed", "bankroll needed"), ("risk_of_ruin", "risk of ruin"),
]


def duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def _cell(result: dict, key: str) -> str:
    value = result.get(key)
    if key == "longest_under_water_seconds":
        return duration(value)
    if key == "risk_of_ruin":
        if value is None:
            return "-"
        low, high = result["risk_of_ruin_interval"]
        return f"{value:.2%} ({low:.1%}–{high:.1%})"
    if key == "skipped" and result.get("skipped_by"):
        return f"{value} ({', '.join(f'{code} {n}' for code, n in result['skipped_by'].items())})"
    return "-" if value is None else str(value)


def _aligned(rows: list[list[str]], right_from: int = 1) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) if i < right_from else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    ]


def _label(result: dict) -> str:
    return ",".join(f"{k}={'off' if v is None else str(v).lower() if isinstance(v, bool) else v}" for k, v in result["setting"].items()) or "(start)"


def table(results: list[dict]) -> list[str]:
    """The results side by side (one column per setting), or one row per setting when there are
    more than a few; then the levels."""
    keys = [(key, title) for key, title in ROWS if key != "risk_of_ruin" or "risk_of_ruin" in results[0]]
    lines: list[str] = []
    if len(results) <= SIDE_BY_SIDE:
        lines += [f"#{i} {_label(r)}" for i, r in enumerate(results, 1)] + [""]
        header = [""] + [f"#{i}" for i in range(1, len(results) + 1)]
        lines += _aligned([header] + [[title] + [_cell(r, key) for r in results] for key, title in keys])
        for i, result in enumerate(results, 1):
            if result["by_level"]:
                lines += ["", f"by level, #{i} {_label(result)}"]
                columns = ["level", "trades", "wins", "losses", "draws", "net_profit", "lanes_recovered", "lanes_exhausted"]
                lines += _aligned([columns] + [[str(row[c]) for c in columns] for row in result["by_level"]], right_from=0)
        return lines
    short = ["net_profit", "max_drawdown", "profit_per_drawdown", "trades", "skipped", "lanes_exhausted", "locks",
             "peak_at_risk", "bankroll_needed"] + (["risk_of_ruin"] if "risk_of_ruin" in results[0] else [])
    titles = dict(ROWS)
    rows = [["#", "setting"] + [titles[key] for key in short]]
    rows += [[str(i), _label(r)] + [_cell(r, key) for key in short] for i, r in enumerate(results, 1)]
    return _aligned(rows, right_from=2)
