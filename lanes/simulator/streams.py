"""Streams of signals for the simulator (SPEC §12): each is a source whose ``signals()`` is a fresh
iterator of ``Signal`` rows in time order, read lazily (a stream of millions of rows runs in
constant memory) and picklable, so a worker process can read it again for its own setting.

- ``CsvSource``: ``timestamp`` (ISO 8601 with an offset, or Unix seconds), ``symbol``, ``result``
  (win/loss/draw), optional ``payout`` (as in §5) and ``expiry_seconds`` (default 0); other
  columns are ignored. A bad row stops the stream with ``StreamError`` naming its line.
- ``AccountSource``: an account's settled trades in the order they opened (read once, in the
  parent process).
- ``RandomSource``: N signals one minute apart from a win rate, a draw rate, K symbols and a seed;
  with ``streak`` each result repeats the previous one with that probability (the rates stay).
- ``PriceSource``: OHLC candles (a CSV, or the EURUSD, GOOG and BTCUSD samples shipped inside the
  ``backtesting`` package) turned into signals by ``PRICE_RULE``.
"""
from __future__ import annotations

import csv
import importlib.util
import random
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

from lanes import engine
from lanes.ranges import PAYOUT, SYMBOL_MAX, InvalidInput, Whole
from lanes.validation import SYMBOL_RE, clean

EXPIRY_SECONDS = Whole(0, 31_536_000, 0, "Seconds from a signal's request to its result.")
RANDOM_START = datetime(2026, 1, 1, tzinfo=dt_timezone.utc)
RANDOM_SYMBOLS = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "USDCHF", "NZDUSD", "EURGBP", "EURJPY", "GBPJPY")
SAMPLES = {"eurusd": "EURUSD", "goog": "GOOG", "btcusd": "BTCUSD"}
FAST, SLOW = 5, 20
PRICE_RULE = (
    f"at the close of each candle once both averages exist, a signal in the direction of the {FAST}-candle "
    f"simple moving average of closes against the {SLOW}-candle one (call when the fast one is above, put "
    "when below, none when equal); it is requested at that candle's time and settles N candles later "
    "(--expiry-candles, default 1): a call wins when that candle's close is above the entry close, a put "
    "when below, and it is a draw when the closes are equal; the symbol is the sample's or the file's name"
)
UNIX_SECONDS = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,6}))?")
EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)


class Signal(NamedTuple):
    """One row: a trade request for ``symbol`` at ``at``, settled with ``result`` after
    ``expiry_seconds``. ``payout`` is what the broker returned (None: the §5 default);
    ``payout_per_stake`` (account replays) is that payout as a share of the stake, so a replay
    with another base amount keeps the broker's rate. ``line`` names the row in errors."""

    at: datetime
    symbol: str
    result: str
    payout: Optional[Decimal] = None
    expiry_seconds: int = 0
    line: int = 0
    payout_per_stake: Optional[Decimal] = None


class StreamError(ValueError):
    """A stream that cannot be read: its message names the line (or the option) at fault."""


def parse_time(text: str, *, naive_utc: bool = False) -> datetime:
    """ISO 8601 with an offset, or Unix seconds; ``naive_utc``: a time without offset (or a date)
    is UTC (price files, whose dates carry no zone)."""
    text = text.strip()
    unix = UNIX_SECONDS.fullmatch(text)
    if unix and not (naive_utc and len(text) == 4):  # a price file's year-only date is not Unix time
        micro = int((unix.group(2) or "").ljust(6, "0"))
        return EPOCH + timedelta(seconds=int(unix.group(1)), microseconds=micro)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither ISO 8601 nor Unix seconds") from None
    if moment.tzinfo is None:
        if not naive_utc:
            raise ValueError(f"timestamp {text!r} has no offset (write e.g. {text}+00:00, or Unix seconds)")
        moment = moment.replace(tzinfo=dt_timezone.utc)
    return moment


def _in_order(at: datetime, previous: Optional[datetime], line: int, where: str) -> None:
    if previous is not None and at < previous:
        raise StreamError(f"{where} line {line}: timestamp {at.isoformat()} is before the previous row's ({previous.isoformat()}); rows must be in time order")


# --- CSV of signals -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvSource:
    path: str

    def describe(self) -> str:
        return f"csv {self.path}"

    def signals(self) -> Iterator[Signal]:
        try:
            handle = open(self.path, newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise StreamError(f"cannot read {self.path}: {exc.strerror}") from None
        with handle:
            yield from self._rows(csv.reader(handle))

    def _rows(self, reader) -> Iterator[Signal]:
        where = self.path
        try:
            header = [name.strip().lower() for name in next(reader)]
        except StopIteration:
            raise StreamError(f"{where} line 1: the file is empty; expected a header timestamp,symbol,result") from None
        missing = [name for name in ("timestamp", "symbol", "result") if name not in header]
        if missing:
            raise StreamError(f"{where} line 1: the header lacks {', '.join(missing)} (it has {', '.join(header) or 'nothing'})")
        at_i, symbol_i, result_i = header.index("timestamp"), header.index("symbol"), header.index("result")
        payout_i = header.index("payout") if "payout" in header else None
        expiry_i = header.index("expiry_seconds") if "expiry_seconds" in header else None
        width = len(header)
        previous = None
        try:
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                if len(row) != width:
                    raise ValueError(f"{len(row)} fields where the header has {width}")
                at = parse_time(row[at_i])
                symbol = row[symbol_i].strip()
                if not SYMBOL_RE.fullmatch(symbol):
                    raise ValueError(f"symbol {symbol!r} must be 1–{SYMBOL_MAX} characters of A-Z a-z 0-9 _ . / : -")
                result = row[result_i].strip().lower()
                if result not in engine.RESULTS:
                    raise ValueError(f"result {row[result_i]!r} must be win, loss or draw")
                payout = None
                if payout_i is not None and row[payout_i].strip():
                    payout = clean(PAYOUT, row[payout_i].strip(), "payout")
                expiry = 0
                if expiry_i is not None and row[expiry_i].strip():
                    expiry = clean(EXPIRY_SECONDS, row[expiry_i].strip(), "expiry_seconds", from_text=True)
                _in_order(at, previous, line, where)
                previous = at
                yield Signal(at, symbol, result, payout, expiry, line)
        except InvalidInput as exc:
            raise StreamError(f"{where} line {reader.line_num}: {exc}") from None
        except csv.Error as exc:
            raise StreamError(f"{where} line {reader.line_num}: {exc}") from None
        except ValueError as exc:
            if isinstance(exc, StreamError):
                raise
            raise StreamError(f"{where} line {reader.line_num}: {exc}") from None


# --- An account's recorded trades -----------------------------------------------------------------


@dataclass(frozen=True)
class AccountSource:
    """Rows read once from the database (``load``), so worker processes need no connection."""

    account: str
    days: Optional[int]
    rows: tuple[Signal, ...]

    @classmethod
    def load(cls, account: str, days: Optional[int] = None, *, now: Optional[datetime] = None) -> "AccountSource":
        from django.utils import timezone

        from lanes.models import Trade

        trades = Trade.objects.filter(account__worker_name=account, status__in=engine.SETTLED)
        if days is not None:
            trades = trades.filter(opened_at__gte=(now or timezone.now()) - timedelta(days=days))
        rows = []
        fields = ("opened_at", "settled_at", "symbol", "status", "amount", "payout", "expected_payout")
        for line, (opened, settled, symbol, status, amount, payout, expected) in enumerate(
            trades.order_by("opened_at", "pk").values_list(*fields).iterator(), start=1
        ):
            result = {engine.WON: engine.WIN, engine.LOST: engine.LOSS, engine.DRAWN: engine.DRAW}[status]
            default = {engine.WIN: expected, engine.LOSS: engine.ZERO, engine.DRAW: amount}[result]
            ratio = None if payout == default or not amount else payout / amount
            expiry = max(0, int((settled - opened).total_seconds()))
            rows.append(Signal(opened, symbol, result, None, expiry, line, ratio))
        return cls(account, days, tuple(rows))

    def describe(self) -> str:
        return f"account {self.account}" + (f", last {self.days} days" if self.days else "")

    def signals(self) -> Iterator[Signal]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


# --- Random signals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RandomSource:
    count: int
    win_rate: float
    draw_rate: float = 0.0
    symbols: int = 1
    seed: int = 0
    streak: float = 0.0
    expiry_seconds: int = 60

    def __post_init__(self):
        problems = []
        if not 1 <= self.count <= 10**10:
            problems.append("--random must be from 1 to 10,000,000,000")
        if not 0 <= self.win_rate <= 1 or not 0 <= self.draw_rate <= 1 or self.win_rate + self.draw_rate > 1:
            problems.append("--win-rate and --draw-rate must be from 0 to 1 and add up to at most 1")
        if not 1 <= self.symbols <= 100:
            problems.append("--symbols must be from 1 to 100")
        if not 0 <= self.streak < 1:
            problems.append("--streak must be from 0 to less than 1")
        if problems:
            raise StreamError("; ".join(problems))

    def describe(self) -> str:
        return f"random {self.count:,} signals, win rate {self.win_rate:g}, draw rate {self.draw_rate:g}, seed {self.seed}"

    def __len__(self) -> int:
        return self.count

    def symbol_names(self) -> list[str]:
        return [RANDOM_SYMBOLS[k] if k < len(RANDOM_SYMBOLS) else f"SYM{k + 1}" for k in range(self.symbols)]

    def signals(self, seed: Optional[str] = None) -> Iterator[Signal]:
        """``seed`` overrides the source's (a Monte Carlo run's own stream)."""
        rng = random.Random(self.seed if seed is None else seed)
        draw = rng.random
        names = self.symbol_names()
        win_below, draw_below = self.win_rate, self.win_rate + self.draw_rate
        streak, expiry = self.streak, self.expiry_seconds
        minute = timedelta(minutes=1)
        at = RANDOM_START
        result = None
        for line in range(1, self.count + 1):
            if result is None or not streak or draw() >= streak:
                roll = draw()
                result = engine.WIN if roll < win_below else engine.DRAW if roll < draw_below else engine.LOSS
            symbol = names[int(draw() * len(names))] if len(names) > 1 else names[0]
            yield Signal(at, symbol, result, None, expiry, line)
            at += minute


# --- Prices -----------------------------------------------------------------------------------------


def sample_path(name: str) -> Path:
    """The path of one of the OHLC samples shipped inside the ``backtesting`` package (found without
    importing it: only its data files are used)."""
    spec = importlib.util.find_spec("backtesting")
    if spec is None or not spec.submodule_search_locations:
        raise StreamError("the price samples come with the backtesting package: pip install -r requirements.txt")
    return Path(list(spec.submodule_search_locations)[0]) / "test" / f"{SAMPLES[name]}.csv"


@dataclass(frozen=True)
class PriceSource:
    source: str  # a file, or eurusd / goog / btcusd
    expiry_candles: int = 1

    def __post_init__(self):
        if not 1 <= self.expiry_candles <= 10_000:
            raise StreamError("--expiry-candles must be from 1 to 10,000")

    @property
    def path(self) -> Path:
        return sample_path(self.source.lower()) if self.source.lower() in SAMPLES else Path(self.source)

    @property
    def symbol(self) -> str:
        if self.source.lower() in SAMPLES:
            return SAMPLES[self.source.lower()]
        name = re.sub(r"[^A-Za-z0-9_.:\-]", "_", Path(self.source).stem)[:SYMBOL_MAX]
        return name or "PRICES"

    def describe(self) -> str:
        return f"prices {self.symbol}, expiry {self.expiry_candles} candle(s)"

    def candles(self) -> Iterator[tuple[int, datetime, Decimal]]:
        """(line, time, close) of each candle, in time order."""
        where = str(self.path)
        try:
            handle = open(self.path, newline="", encoding="utf-8-sig")
        except OSError as exc:
            raise StreamError(f"cannot read {where}: {exc.strerror}") from None
        with handle:
            reader = csv.reader(handle)
            header = [name.strip().lower() for name in next(reader, [])]
            if "close" not in header:
                raise StreamError(f"{where} line 1: the header lacks a Close column (it has {', '.join(header) or 'nothing'})")
            close_i = header.index("close")
            named = [i for i, name in enumerate(header) if name in ("timestamp", "datetime", "date", "time")]
            time_i = named[0] if named else 0
            previous = None
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                try:
                    at = parse_time(row[time_i], naive_utc=True)
                    close = Decimal(row[close_i].strip())
                    if not close.is_finite() or close <= 0:
                        raise InvalidOperation
                except (ValueError, IndexError, InvalidOperation) as exc:
                    why = str(exc) if isinstance(exc, ValueError) and str(exc) else f"close {row[close_i] if close_i < len(row) else ''!r} is not a positive number"
                    raise StreamError(f"{where} line {line}: {why}") from None
                _in_order(at, previous, line, where)
                previous = at
                yield line, at, close

    def signals(self) -> Iterator[Signal]:
        symbol, n = self.symbol, self.expiry_candles
        window: deque[Decimal] = deque(maxlen=SLOW)
        waiting: deque[tuple[int, datetime, Decimal, int, int]] = deque()  # (line, time, entry, +1 call / -1 put, due)
        fast_sum = slow_sum = Decimal(0)
        for index, (line, at, close) in enumerate(self.candles()):
            while waiting and waiting[0][4] == index:
                entry_line, entry_at, entry, side, _ = waiting.popleft()
                move = (close - entry) * side
                result = engine.WIN if move > 0 else engine.LOSS if move < 0 else engine.DRAW
                yield Signal(entry_at, symbol, result, None, int((at - entry_at).total_seconds()), entry_line)
            if len(window) == SLOW:
                slow_sum -= window[0]
            if len(window) >= FAST:
                fast_sum -= window[-FAST]
            window.append(close)
            slow_sum += close
            fast_sum += close
            if len(window) == SLOW:
                difference = fast_sum * SLOW - slow_sum * FAST  # the averages' order, without division
                if difference:
                    waiting.append((line, at, close, 1 if difference > 0 else -1, index + n))
