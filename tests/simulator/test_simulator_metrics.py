"""Each result of SPEC §12, hand-computed on small streams (the defaults: base 1.00, ×2.00, 7 levels,
payout rate 0.85, one trade at a time, 3 lanes, 10 lanes a day)."""
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest

from lanes.simulator import configs, runner, streams

# The ladder stream (conftest): loss, loss in the lane (level 1, 2.00), win at level 2 (4.00
# returns 7.40), a draw, a base win.


def test_counts_profit_and_lanes_of_a_recovered_ladder(run_csv, ladder):
    result = run_csv(ladder)
    assert (result.trades, result.wins, result.losses, result.draws, result.skipped) == (5, 2, 2, 1, 0)
    assert result.net_profit == Decimal("1.25")  # -1.00 - 2.00 + 3.40 + 0 + 0.85
    assert (result.lanes_created, result.lanes_recovered, result.lanes_recovered_at_loss) == (1, 1, 0)
    assert (result.lanes_exhausted, result.lanes_not_created, result.locks) == (0, 0, 0)


def test_max_drawdown_is_the_largest_fall_below_the_peak_from_zero(run_csv, ladder):
    # Cumulative profit -1.00, -3.00, 0.40, 0.40, 1.25: 3.00 below the starting 0.
    assert run_csv(ladder).max_drawdown == Decimal("3.00")


def test_longest_time_under_water_runs_from_the_peak_to_the_recovery(run_csv, ladder):
    # Below the starting 0 from the stream's start (09:00) until the recovery at 09:02.
    assert run_csv(ladder).longest_under_water_seconds == 120


def test_time_still_under_water_at_the_end_counts_up_to_the_last_result(run_csv):
    result = run_csv(
        """\
        timestamp,symbol,result
        2026-03-02T09:00:00+00:00,EURUSD,win
        2026-03-02T09:10:00+00:00,EURUSD,draw
        2026-03-02T09:20:00+00:00,EURUSD,loss
        2026-03-02T09:50:00+00:00,EURUSD,draw
        """,
        auto_create_lanes="false",
    )
    # At the peak (0.85) until the draw at 09:10, below it from the loss at 09:20 to the end (09:50).
    assert result.longest_under_water_seconds == 40 * 60


def test_bankroll_needed_is_the_lowest_balance_with_open_stakes_taken_out(run_csv, ladder):
    # Balance: -1.00 (open), -1.00 (lost), -3.00, -3.00, -7.00 (4.00 staked), then 0.40 …
    assert run_csv(ladder).bankroll_needed == Decimal("7.00")


def test_peak_at_risk_is_the_largest_exposure_after_any_event(run_csv, ladder):
    # The lane at level 1 can still lose 2 + 4 + 8 + 16 + 32 + 64 + 128.
    assert run_csv(ladder).peak_at_risk == Decimal("254.00")


def test_by_level_counts_trades_profit_and_lane_endings_per_level(run_csv, ladder):
    rows = {row["level"]: row for row in run_csv(ladder).as_json()["by_level"]}
    assert rows[0] == {
        "level": 0, "trades": 3, "wins": 1, "losses": 1, "draws": 1, "net_profit": "-0.15",
        "lanes_recovered": 0, "lanes_exhausted": 0,
    }
    assert (rows[1]["trades"], rows[1]["losses"], rows[1]["net_profit"]) == (1, 1, "-2.00")
    assert (rows[2]["wins"], rows[2]["net_profit"], rows[2]["lanes_recovered"]) == (1, "3.40", 1)


def test_a_lane_that_wins_back_less_than_it_lost_is_recovered_at_a_loss(run_csv, ladder):
    # ×1.50: -1.00, -1.50, then 2.25 returns 4.16 (+1.91): the lane nets -0.59.
    result = run_csv(ladder, martingale_multiplier="1.50")
    assert (result.lanes_recovered, result.lanes_recovered_at_loss) == (1, 1)
    assert result.net_profit == Decimal("0.26")  # -0.59 + 0 + 0.85


def test_a_loss_at_the_last_level_exhausts_the_lane(run_csv, ladder):
    result = run_csv(ladder, martingale_max_level=1)
    # The lane's level-1 trade (2.00) loses: exhausted; the win after it is a base trade.
    assert (result.lanes_created, result.lanes_exhausted, result.lanes_recovered) == (1, 1, 0)
    rows = {row["level"]: row for row in result.as_json()["by_level"]}
    assert rows[1]["lanes_exhausted"] == 1


def test_base_losses_that_make_no_lane_are_counted(run_csv, ladder):
    result = run_csv(ladder, auto_create_lanes="false")
    assert (result.lanes_created, result.lanes_not_created) == (0, 2)
    assert result.net_profit == Decimal("-0.30")  # every trade at the base 1.00: -1 -1 +0.85 +0 +0.85


def test_longest_losing_run_ignores_draws(run_csv):
    result = run_csv(
        """\
        timestamp,symbol,result
        2026-03-02T09:00:00+00:00,A,loss
        2026-03-02T09:01:00+00:00,A,draw
        2026-03-02T09:02:00+00:00,A,loss
        2026-03-02T09:03:00+00:00,A,win
        2026-03-02T09:04:00+00:00,A,loss
        """
    )
    assert result.longest_losing_run == 2


def test_a_request_while_the_only_slot_is_busy_is_skipped(run_csv):
    text = """\
        timestamp,symbol,result,expiry_seconds
        2026-03-02T09:00:00+00:00,A,win,60
        2026-03-02T09:00:30+00:00,B,win,60
        2026-03-02T09:01:00+00:00,C,win,60
    """
    result = run_csv(text)
    # 09:01:00: the first trade's result (due then) comes before the third request.
    assert (result.trades, result.skipped, result.skipped_by) == (2, 1, {"busy": 1})
    both = run_csv(text, concurrent_trading_enabled="true")
    assert (both.trades, both.skipped) == (3, 0)


def test_cool_down_refusals_are_skipped(run_csv):
    result = run_csv(
        """\
        timestamp,symbol,result
        2026-03-02T09:00:00+00:00,A,win
        2026-03-02T09:00:05+00:00,A,win
        2026-03-02T09:00:10+00:00,A,win
        """,
        cool_down_seconds=10,
    )
    assert (result.trades, result.skipped) == (2, 1)


def test_the_daily_lane_limit_counts_the_days_of_the_stream_clock(run_csv):
    # Each day: a lane (its first loss), exhausted at once (max_level 1), then two base losses that
    # make none (max_daily_lanes 1); the next day makes one again.
    rows = ["timestamp,symbol,result"]
    for day in (2, 3):
        for hour in (9, 10):
            rows += [f"2026-03-0{day}T{hour:02d}:00:00+00:00,A,loss", f"2026-03-0{day}T{hour:02d}:01:00+00:00,A,loss"]
    result = run_csv("\n".join(rows) + "\n", max_daily_lanes=1, martingale_max_level=1)
    assert (result.lanes_created, result.lanes_exhausted, result.lanes_not_created) == (2, 2, 4)


def test_a_payout_given_by_the_stream_is_the_profit(run_csv):
    result = run_csv(
        """\
        timestamp,symbol,result,payout
        2026-03-02T09:00:00+00:00,A,win,1.70
        2026-03-02T09:01:00+00:00,A,loss,0.25
        """,
        auto_create_lanes="false",
    )
    assert result.net_profit == Decimal("-0.05")  # +0.70 - 0.75


def test_a_payout_out_of_bounds_for_the_stake_stops_the_run_naming_its_line(run_csv):
    with pytest.raises(streams.StreamError, match="row 3: payout: a win must return more than the stake"):
        run_csv("timestamp,symbol,result,payout\n2026-03-02T09:00:00Z,A,win,\n2026-03-02T09:01:00Z,A,win,0.90\n")


def test_legacy_mode_runs_the_old_progression(run_csv, ladder):
    result = run_csv(ladder, enhanced_martingale_enabled="false")
    # Stakes 1, 2, 4 (k = 0, 1, 2), then 1 (draw, after the win), 1.
    assert result.net_profit == Decimal("1.25")
    assert result.lanes_created == 0
    assert [row["level"] for row in result.as_json()["by_level"]] == [0, 1, 2]


def test_money_is_strings_in_json(run_csv, ladder):
    answer = run_csv(ladder).as_json()
    assert (answer["net_profit"], answer["max_drawdown"], answer["peak_at_risk"], answer["bankroll_needed"]) == (
        "1.25", "3.00", "254.00", "7.00"
    )
    assert answer["setting"] == {}


def test_the_same_seed_gives_the_same_results_and_another_seed_others():
    setting = configs.build(configs.start_from(), {"concurrent_trading_enabled": "true"})

    def run(seed):
        source = streams.RandomSource(3000, 0.5, 0.05, symbols=3, seed=seed, expiry_seconds=150)
        return runner.simulate(setting, source.signals()).as_json()

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_results_settle_in_time_order_then_row_order():
    setting = configs.build(configs.start_from(), {"concurrent_trading_enabled": "true", "max_concurrent_lanes": "3"})
    t0 = datetime(2026, 3, 2, 9, tzinfo=dt_timezone.utc)
    signals = [
        streams.Signal(t0, "A", "loss", expiry_seconds=120, line=1),
        streams.Signal(t0 + timedelta(seconds=10), "B", "loss", expiry_seconds=60, line=2),
        streams.Signal(t0 + timedelta(seconds=130), "C", "win", expiry_seconds=0, line=3),
    ]
    simulation = runner.Simulation(setting, record=True)
    for signal in signals:
        simulation.feed(signal)
    simulation.finish()
    # B (due 09:01:10) settles before A (due 09:02:00); both made lanes; C joins the older one (B's).
    assert [t.trade_id for t in simulation.trades_settled] == ["r2", "r1", "r3"]
    assert [lane.trade_ids for lane in simulation.lanes_seen] == [["r2", "r3"], ["r1"]]


def test_peak_at_risk_is_the_largest_exposure_after_every_change(monkeypatch):
    """The runner asks for the exposure only where it can rise (a trade opened, a lane created);
    checked here against asking after every change."""
    seen = []
    saved = runner.Simulation._saved

    def every(self, now, **kwargs):
        saved(self, now, **kwargs)
        seen.append(self.state.exposure())

    monkeypatch.setattr(runner.Simulation, "_saved", every)
    for values in ({"concurrent_trading_enabled": "true", "max_concurrent_lanes": "4"},
                   {"concurrent_trading_enabled": "true", "ladder_mode": "recover", "max_stake": "30.00"},
                   {"enhanced_martingale_enabled": "false"}):
        seen.clear()
        setting = configs.build(configs.start_from(), values)
        source = streams.RandomSource(3000, 0.45, 0.05, symbols=3, seed=8, expiry_seconds=150)
        result = runner.simulate(setting, source.signals())
        assert result.peak_at_risk == max(seen) > 0


def test_days_are_those_of_the_time_zone_setting(run_csv, settings):
    # Two lanes (each exhausted at once), at 23:30 and 00:30 UTC: two days in UTC, one in New York.
    text = """\
        timestamp,symbol,result
        2026-03-02T23:30:00+00:00,A,loss
        2026-03-02T23:31:00+00:00,A,loss
        2026-03-03T00:30:00+00:00,A,loss
        2026-03-03T00:31:00+00:00,A,loss
    """
    values = {"max_daily_lanes": 1, "martingale_max_level": 1}
    assert run_csv(text, **values).lanes_created == 2
    settings.TIME_ZONE = "America/New_York"
    assert run_csv(text, **values).lanes_created == 1
