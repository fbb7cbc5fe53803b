"""The simulator's streams (SPEC §12): CSV, an account's trades, random signals and prices."""
import itertools
from collections import Counter
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest

from lanes import engine, services
from lanes.simulator import streams

T0 = datetime(2026, 3, 2, 9, tzinfo=dt_timezone.utc)


# --- CSV ------------------------------------------------------------------------------------------


def test_csv_reads_iso_times_with_offsets_unix_seconds_payouts_and_expiries(csv_file):
    path = csv_file(
        """\
        timestamp,symbol,result,payout,expiry_seconds,direction
        2026-03-02T10:00:00+01:00,EURUSD,win,1.70,60,call
        1772442060,GBP/USD,LOSS,,,put
        1772442120.5,EURUSD,draw,,30,
        """
    )
    rows = list(streams.CsvSource(path).signals())
    assert rows[0] == streams.Signal(T0, "EURUSD", "win", Decimal("1.70"), 60, 2)
    assert rows[1] == streams.Signal(T0 + timedelta(minutes=1), "GBP/USD", "loss", None, 0, 3)
    assert rows[2].at == T0 + timedelta(minutes=2, microseconds=500000)
    assert (rows[2].result, rows[2].expiry_seconds, rows[2].line) == ("draw", 30, 4)


@pytest.mark.parametrize(
    "row, message",
    [
        ("yesterday,EURUSD,win", "line 3: timestamp 'yesterday' is neither ISO 8601 nor Unix seconds"),
        ("2026-03-02T09:05:00,EURUSD,win", "line 3: timestamp '2026-03-02T09:05:00' has no offset"),
        ("2026-03-02T09:05:00Z,EURUSD,maybe", "line 3: result 'maybe' must be win, loss or draw"),
        ("2026-03-02T09:05:00Z,EUR USD,win", "line 3: symbol 'EUR USD' must be 1–50 characters"),
        ("2026-03-02T09:05:00Z,EURUSD,win,-1", "line 3: payout: must be a decimal number"),
        ("2026-03-02T09:05:00Z,EURUSD,win,1.001", "line 3: payout: must have at most 2 decimal places"),
        ("2026-03-02T09:05:00Z,EURUSD,win,,-5", "line 3: expiry_seconds: must be from 0 to 31536000"),
        ("2026-03-02T08:59:00Z,EURUSD,win", "line 3: timestamp 2026-03-02T08:59:00+00:00 is before the previous row's"),
        ("2026-03-02T09:05:00Z,EURUSD", "line 3: 2 fields where the header has 5"),
    ],
)
def test_a_bad_csv_row_stops_the_stream_naming_its_line(csv_file, row, message):
    if row.count(",") == 2:
        row += ",,"
    elif row.count(",") == 3:
        row += ","
    path = csv_file(f"timestamp,symbol,result,payout,expiry_seconds\n2026-03-02T09:00:00Z,EURUSD,win,,\n{row}\n")
    rows = streams.CsvSource(path).signals()
    assert next(rows).line == 2
    with pytest.raises(streams.StreamError) as error:
        next(rows)
    assert message in str(error.value)
    assert str(error.value).startswith(path)


def test_a_csv_without_the_required_columns_is_refused_on_line_1(csv_file):
    with pytest.raises(streams.StreamError, match="line 1: the header lacks result"):
        list(streams.CsvSource(csv_file("timestamp,symbol\n")).signals())
    with pytest.raises(streams.StreamError, match="line 1: the file is empty"):
        list(streams.CsvSource(csv_file("")).signals())
    with pytest.raises(streams.StreamError, match="cannot read"):
        list(streams.CsvSource("/nonexistent/signals.csv").signals())


def test_a_line_number_counts_blank_lines(csv_file):
    path = csv_file("timestamp,symbol,result\n2026-03-02T09:00:00Z,A,win\n\n2026-03-02T09:01:00Z,A,tie\n")
    with pytest.raises(streams.StreamError, match="line 4: result 'tie'"):
        list(streams.CsvSource(path).signals())


# --- Random ---------------------------------------------------------------------------------------


def test_random_signals_are_a_minute_apart_at_the_rates_asked():
    source = streams.RandomSource(20000, win_rate=0.5, draw_rate=0.1, symbols=3, seed=9)
    rows = list(source.signals())
    assert len(rows) == len(source) == 20000
    assert rows[1].at - rows[0].at == timedelta(minutes=1)
    counts = Counter(row.result for row in rows)
    assert abs(counts["win"] / 20000 - 0.5) < 0.02 and abs(counts["draw"] / 20000 - 0.1) < 0.01
    assert set(row.symbol for row in rows) == {"EURUSD", "GBPUSD", "USDJPY"}


def test_random_signals_repeat_for_a_seed_and_differ_for_another():
    first = list(streams.RandomSource(500, 0.55, seed=1).signals())
    assert first == list(streams.RandomSource(500, 0.55, seed=1).signals())
    assert first != list(streams.RandomSource(500, 0.55, seed=2).signals())


def test_streaks_lengthen_runs_and_keep_the_win_rate():
    def longest_run(source):
        return max(len(list(group)) for _, group in itertools.groupby(row.result for row in source.signals()))

    plain = streams.RandomSource(20000, 0.5, seed=3)
    streaky = streams.RandomSource(20000, 0.5, seed=3, streak=0.6)
    assert longest_run(streaky) > longest_run(plain)
    wins = Counter(row.result for row in streaky.signals())["win"]
    assert abs(wins / 20000 - 0.5) < 0.03


def test_random_options_out_of_range_are_refused():
    with pytest.raises(streams.StreamError, match="add up to at most 1"):
        streams.RandomSource(10, win_rate=0.8, draw_rate=0.3)
    with pytest.raises(streams.StreamError, match="--symbols"):
        streams.RandomSource(10, win_rate=0.5, symbols=0)


# --- Prices ---------------------------------------------------------------------------------------


def test_prices_become_signals_in_the_direction_of_the_moving_averages(csv_file):
    # Closes 1..20 rise (fast average above slow: call), then fall; entry at a close, result at the next.
    closes = list(range(1, 21)) + [22, 22, 10]
    lines = ["Date,Open,High,Low,Close"] + [f"2024-01-{i + 1:02d},0,0,0,{c}" for i, c in enumerate(closes)]
    path = csv_file("\n".join(lines) + "\n", name="ACME.csv")
    rows = list(streams.PriceSource(path).signals())
    day = timedelta(days=1)
    start = datetime(2024, 1, 20, tzinfo=dt_timezone.utc)
    # Candle 20 (close 20): call, next close 22 → win; candle 21 (22): call, 22 → draw; candle 22: call, 10 → loss.
    assert [(r.at, r.symbol, r.result, r.expiry_seconds) for r in rows] == [
        (start, "ACME", "win", 86400), (start + day, "ACME", "draw", 86400), (start + 2 * day, "ACME", "loss", 86400),
    ]
    later = list(streams.PriceSource(path, expiry_candles=2).signals())
    assert [(r.result, r.expiry_seconds) for r in later] == [("win", 2 * 86400), ("loss", 2 * 86400)]


def test_falling_prices_give_puts(csv_file):
    closes = list(range(40, 20, -1)) + [19, 25]
    lines = ["time,close"] + [f"{1700000000 + 60 * i},{c}" for i, c in enumerate(closes)]
    rows = list(streams.PriceSource(csv_file("\n".join(lines) + "\n")).signals())
    assert [r.result for r in rows] == ["win", "loss"]  # puts: 21 → 19 falls, 19 → 25 rises


@pytest.mark.parametrize("name, symbol", [("eurusd", "EURUSD"), ("goog", "GOOG"), ("btcusd", "BTCUSD")])
def test_the_samples_of_the_backtesting_package_are_streams(name, symbol):
    rows = list(streams.PriceSource(name).signals())
    assert len(rows) > 100
    assert {row.symbol for row in rows} == {symbol}
    assert all(a.at <= b.at for a, b in zip(rows, rows[1:]))
    assert {row.result for row in rows} >= {"win", "loss"}


def test_a_bad_price_row_names_its_line(csv_file):
    path = csv_file("Date,Close\n2024-01-01,1.5\n2024-01-02,abc\n")
    with pytest.raises(streams.StreamError, match="line 3: close 'abc' is not a positive number"):
        list(streams.PriceSource(path).signals())


# --- An account's trades --------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_account_replays_its_settled_trades_in_opening_order():
    services.account_create(name="acc", values={"base_amount": "1.00"})

    def trade(trade_id, at, result, payout=None, hold=60):
        services.trade_open(account_name="acc", request=engine.Request(trade_id=trade_id, symbol="EURUSD"), actor="t", now=at)
        services.trade_settle(trade_id=trade_id, result=result, payout=payout, actor="t", now=at + timedelta(seconds=hold))

    trade("a", T0, "loss")
    trade("b", T0 + timedelta(minutes=5), "win", payout=Decimal("3.60"), hold=30)  # a 2.00 lane trade paid 1.80×
    trade("c", T0 + timedelta(minutes=9), "win")
    services.trade_open(account_name="acc", request=engine.Request(trade_id="open", symbol="X"), actor="t", now=T0 + timedelta(minutes=20))
    source = streams.AccountSource.load("acc", now=T0 + timedelta(days=1))
    assert [(r.at, r.result, r.expiry_seconds, r.payout_per_stake) for r in source.signals()] == [
        (T0, "loss", 60, None), (T0 + timedelta(minutes=5), "win", 30, Decimal("1.8")), (T0 + timedelta(minutes=9), "win", 60, None),
    ]
    assert len(streams.AccountSource.load("acc", 1, now=T0 + timedelta(days=1, minutes=6))) == 1  # the last day: "c"


def test_a_csv_saved_with_a_byte_order_mark_reads_as_any_other(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefftimestamp,symbol,result\r\n2026-03-02T09:00:00Z,A,win\r\n".encode())
    assert [row.result for row in streams.CsvSource(str(path)).signals()] == ["win"]
