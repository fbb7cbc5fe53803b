"""`python manage.py martingale simulate` (SPEC §12): streams, settings, grids, ranking, Monte Carlo,
JSON, the table and the plot."""
import json
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from lanes import engine, services
from lanes.simulator import batch, configs, streams

pytestmark = pytest.mark.django_db

def simulate(*args):
    out = StringIO()
    call_command("martingale", "simulate", *args, stdout=out)
    return out.getvalue()


def simulate_json(*args):
    return json.loads(simulate(*args, "--json"))


@pytest.fixture
def signals(csv_file, ladder):
    return csv_file(ladder)


def test_json_has_one_result_per_setting_with_money_as_strings(signals):
    answer = simulate_json("--csv", signals, "--set", "martingale_multiplier=2.0", "--set", "martingale_multiplier=1.5")
    first, second = answer["results"]
    assert first["setting"] == {"martingale_multiplier": "2.00"}
    assert (first["net_profit"], second["net_profit"]) == ("1.25", "0.26")
    assert (first["lanes_recovered_at_loss"], second["lanes_recovered_at_loss"]) == (0, 1)
    for name in (
        "trades", "wins", "losses", "draws", "skipped", "net_profit", "max_drawdown", "lanes_created",
        "lanes_recovered", "lanes_recovered_at_loss", "lanes_exhausted", "lanes_not_created", "locks",
        "longest_losing_run", "peak_at_risk", "bankroll_needed", "by_level", "longest_under_water_seconds",
    ):
        assert name in first
    assert "risk_of_ruin" not in first


def test_without_set_the_starting_settings_run_alone(signals):
    (result,) = simulate_json("--csv", signals)["results"]
    assert (result["setting"], result["net_profit"]) == ({}, "1.25")


def test_the_table_shows_the_settings_side_by_side(signals):
    out = simulate("--csv", signals, "--set", "martingale_multiplier=2.0", "--set", "martingale_multiplier=1.5")
    lines = out.splitlines()
    assert lines[0].startswith("stream: csv ")
    assert "#1 martingale_multiplier=2.00" in out and "#2 martingale_multiplier=1.50" in out
    net = next(line for line in lines if line.startswith("net profit"))
    assert net.split()[-2:] == ["1.25", "0.26"]
    assert "by level, #1" in out


def test_a_grid_compares_every_combination_ranked(signals):
    answer = simulate_json(
        "--csv", signals, "--grid", "martingale_multiplier=1.5|2.0|3.0,auto_create_lanes=true|false", "--rank", "net_profit"
    )
    results = answer["results"]
    assert len(results) == 6 and answer["rank"] == "net_profit"
    profits = [Decimal(r["net_profit"]) for r in results]
    assert profits == sorted(profits, reverse=True)
    assert results[0]["setting"] == {"martingale_multiplier": "3.00", "auto_create_lanes": True}  # 9.00 wins 7.65 back
    by_drawdown = simulate_json("--csv", signals, "--grid", "auto_create_lanes=true|false", "--rank", "max_drawdown")["results"]
    assert [r["max_drawdown"] for r in by_drawdown] == ["2.00", "3.00"]


def test_a_many_setting_table_has_one_row_per_setting(signals):
    out = simulate("--csv", signals, "--grid", "martingale_multiplier=1.5|2.0|2.5|3.0|3.5")
    assert "ranked by net_profit" in out.splitlines()[0]
    assert sum(1 for line in out.splitlines() if "martingale_multiplier=" in line) == 5


def test_monte_carlo_gives_the_risk_of_ruin_with_its_interval_and_repeats_for_a_seed(signals):
    args = ("--random", "300", "--win-rate", "0.5", "--seed", "5", "--monte-carlo", "40", "--bankroll", "30")
    first = simulate_json(*args, "--set", "martingale_max_level=7", "--set", "martingale_max_level=2", "--processes", "2")
    again = simulate_json(*args, "--set", "martingale_max_level=7", "--set", "martingale_max_level=2", "--processes", "1")
    assert first == again
    deep, shallow = first["results"]
    assert 0 < deep["risk_of_ruin"] <= 1 and deep["monte_carlo_runs"] == 40 and deep["bankroll"] == "30.00"
    low, high = deep["risk_of_ruin_interval"]
    assert low <= deep["risk_of_ruin"] <= high
    assert shallow["risk_of_ruin"] < deep["risk_of_ruin"]  # a two-level ladder needs at most 1 + 2 + 4
    other = simulate_json(*args[:5], "6", *args[6:])
    assert other != simulate_json(*args)


def test_a_bankroll_below_the_base_stake_is_always_ruined_and_a_large_one_never(signals):
    tiny = simulate_json("--csv", signals, "--monte-carlo", "20", "--bankroll", "0.50")["results"][0]
    assert (tiny["risk_of_ruin"], tiny["ruined_runs"]) == (1.0, 20)
    assert tiny["risk_of_ruin_interval"][1] == 1.0
    large = simulate_json("--csv", signals, "--monte-carlo", "20", "--bankroll", "10000")["results"][0]
    assert large["risk_of_ruin"] == 0.0


def test_rank_by_risk_of_ruin_needs_monte_carlo(signals):
    with pytest.raises(CommandError, match="--rank: risk_of_ruin needs --monte-carlo"):
        simulate("--csv", signals, "--rank", "risk_of_ruin")
    with pytest.raises(CommandError, match="--bankroll: is required with --monte-carlo"):
        simulate("--csv", signals, "--monte-carlo", "10")


def test_the_account_gives_its_settings_and_alone_its_trades(signals):
    services.account_create(name="acc", values={"base_amount": "2.00", "martingale_multiplier": "3.00"})
    (result,) = simulate_json("--csv", signals, "--account", "acc")["results"]
    assert result["net_profit"] == str(Decimal("-2.00") - Decimal("6.00") + Decimal("15.30") + Decimal("1.70"))
    (replay,) = simulate_json("--account", "acc")["results"]
    assert replay["trades"] == 0


def test_an_account_replay_keeps_the_brokers_payout_rate_with_another_base():
    services.account_create(name="acc", values={"base_amount": "1.00"})
    start = datetime(2026, 3, 2, 9, tzinfo=dt_timezone.utc)
    for trade_id, minute, result, payout in (("a", 0, "loss", None), ("b", 5, "win", Decimal("3.60")), ("c", 9, "win", None)):
        at = start + timedelta(minutes=minute)
        services.trade_open(account_name="acc", request=engine.Request(trade_id=trade_id, symbol="EURUSD"), actor="t", now=at)
        services.trade_settle(trade_id=trade_id, result=result, payout=payout, actor="t", now=at + timedelta(seconds=30))
    # "b", a 2.00 lane trade, was paid 1.80×: replayed with a base of 2.00 its 4.00 returns 7.20.
    (result,) = simulate_json("--account", "acc", "--set", "base_amount=2.00")["results"]
    assert result["net_profit"] == str(Decimal("-2.00") + Decimal("3.20") + Decimal("1.70"))


def test_prices_from_a_sample(signals):
    (result,) = simulate_json("--prices", "goog", "--expiry-candles", "3")["results"]
    assert result["trades"] > 500


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "martingale_multiplier=0.5"], "martingale_multiplier: must be from 1.01 to 999.99"),
        (["--set", "max_lanes=3"], "max_lanes: is not a setting"),
        (["--set", "martingale_multiplier"], "--set: 'martingale_multiplier' is not key=value"),
        (["--set", "martingale_multiplier=999,martingale_max_level=20"], "martingale_multiplier: the stake at level 20"),
    ],
)
def test_bad_settings_are_refused_with_the_message_of_every_interface(signals, args, message):
    with pytest.raises(CommandError) as error:
        simulate("--csv", signals, *args)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_bad_csv_row_is_a_one_line_error_with_its_line(csv_file, ladder):
    path = csv_file(ladder + "2026-03-02T09:05:00+00:00,EURUSD,lose\n")
    with pytest.raises(CommandError, match="line 7: result 'lose' must be win, loss or draw"):
        simulate("--csv", path)


def test_no_stream_or_two_streams_are_refused(signals):
    with pytest.raises(CommandError, match="give a stream"):
        simulate()
    with pytest.raises(CommandError, match="give one of"):
        simulate("--csv", signals, "--prices", "goog")
    with pytest.raises(CommandError, match="--win-rate: is required"):
        simulate("--random", "10")


def test_plot_draws_a_png(signals, tmp_path):
    path = tmp_path / "equity.png"
    out = simulate("--csv", signals, "--set", "martingale_multiplier=2.0", "--set", "martingale_multiplier=1.5", "--plot", str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {path}" in out


def test_settings_parse_into_every_combination_once():
    start = configs.start_from()
    settings = configs.settings_to_compare(
        start, ["payout_rate=0.9", "payout_rate=0.8"], ["martingale_max_level=3|4", "cool_down_seconds=0|0"]
    )
    assert [s.label() for s in settings] == [
        "payout_rate=0.9000,martingale_max_level=3,cool_down_seconds=0",
        "payout_rate=0.9000,martingale_max_level=4,cool_down_seconds=0",
        "payout_rate=0.8000,martingale_max_level=3,cool_down_seconds=0",
        "payout_rate=0.8000,martingale_max_level=4,cool_down_seconds=0",
    ]


def test_runs_spread_over_processes_give_the_same_results_as_one():
    source = streams.RandomSource(2000, 0.52, 0.02, symbols=2, seed=11, expiry_seconds=90)
    settings = configs.settings_to_compare(configs.start_from(), [], ["concurrent_trading_enabled=true|false,lane_assignment_strategy=fifo|round_robin"])
    plan = batch.Plan(source=source, settings=settings, monte_carlo=3, bankroll=Decimal("100"), seed=2)
    one = [r.as_json() for r in batch.run_plan(plan, processes=1)]
    two = [r.as_json() for r in batch.run_plan(plan, processes=2)]
    assert one == two


def test_a_few_runs_get_a_process_each_and_many_one_per_core(monkeypatch):
    # Three settings on two cores: three processes sharing the cores finish in 1.5 runs' time,
    # two (one of them running two settings in turn) in two runs' time.
    monkeypatch.setattr(batch.os, "cpu_count", lambda: 2)
    assert [batch.default_processes(jobs) for jobs in (1, 3, 8)] == [1, 3, 8]
    assert [batch.default_processes(jobs) for jobs in (9, 303)] == [2, 2]
    monkeypatch.setattr(batch.os, "cpu_count", lambda: None)
    assert [batch.default_processes(jobs) for jobs in (3, 5)] == [3, 1]


def test_rank_by_risk_of_ruin_and_by_profit_per_drawdown():
    # A winning stream and a small bankroll: the long ladder's deep stakes ruin it more often.
    args = ("--random", "400", "--win-rate", "0.6", "--seed", "3", "--grid", "martingale_max_level=7|2")
    by_ruin = simulate_json(*args, "--monte-carlo", "30", "--bankroll", "12", "--rank", "risk_of_ruin")["results"]
    assert [r["setting"]["martingale_max_level"] for r in by_ruin] == [2, 7]
    assert by_ruin[0]["risk_of_ruin"] < by_ruin[1]["risk_of_ruin"]
    by_ratio = simulate_json(*args, "--rank", "profit_per_drawdown")["results"]
    ratios = [Decimal(r["profit_per_drawdown"]) for r in by_ratio]
    assert ratios == sorted(ratios, reverse=True)


def test_the_progress_bar_is_off_with_json_or_without_a_terminal(monkeypatch):
    from lanes.simulator import cli

    plan = batch.Plan(source=streams.RandomSource(1_000_000, 0.5), settings=[configs.build(configs.start_from(), {})])
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert cli._progress_bar(plan, quiet=True) is None
    bar = cli._progress_bar(plan, quiet=False)
    assert bar is not None and bar.total == 1_000_000
    bar.close()
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert cli._progress_bar(plan, quiet=False) is None
