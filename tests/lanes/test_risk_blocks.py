"""The risk guard's drawdown and losing run from stored stretches (lanes.risk_blocks) against the
window's trades read in settle order: the same for every window, scope and moment of the roll-up,
on SQLite and MariaDB (the suite runs on both)."""
import random
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from lanes import engine, risk_blocks, selectors, tasks
from lanes.models import Account, RiskBlock, RiskChange, Trade

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 1, tzinfo=dt_timezone.utc)
SETTLED = ("won", "lost", "draw")


# --- engine.Stretch ---------------------------------------------------------------------------------

trades = st.lists(st.tuples(st.sampled_from(["won", "lost", "draw", "win", "loss"]), st.integers(-500, 500)), max_size=30)


@hypothesis_settings(max_examples=500, deadline=None, database=None)
@given(trades, trades, trades)
def test_a_stretch_is_the_drawdown_and_losing_run_of_its_trades_and_composes(a, b, c):
    whole = a + b + c
    stretch = engine.Stretch.of(whole)
    assert stretch.drawdown == engine.max_drawdown([profit for _, profit in whole])
    assert stretch.longest == engine.longest_losing_run([result for result, _ in whole])
    assert (stretch.n, stretch.total) == (len(whole), sum(profit for _, profit in whole))
    of = engine.Stretch.of
    assert of(a).then(of(b)).then(of(c)) == stretch == of(a).then(of(b).then(of(c)))


def test_a_stretch_by_hand():
    # +5, -3, -4 (a fall of 7 from the peak 5), draw, -1 (run of 3 losses), +20, -2.
    stretch = engine.Stretch.of([("won", 5), ("lost", -3), ("lost", -4), ("draw", 0), ("lost", -1), ("won", 20), ("lost", -2)])
    assert (stretch.total, stretch.high, stretch.low, stretch.drawdown) == (15, 17, -3, 8)
    assert (stretch.lead, stretch.tail, stretch.longest, stretch.won) == (0, 1, 3, True)


# --- Blocks against the trades -------------------------------------------------------------------------


def reference(account_id, since, now):
    rows = Trade.objects.filter(status__in=SETTLED, opened_at__gte=since, opened_at__lte=now)
    if account_id != risk_blocks.ALL:
        rows = rows.filter(account_id=account_id)
    ordered = sorted(rows.values_list("settled_at", "id", "status", "profit"), key=lambda r: (r[0] is not None, r[0] or START, r[1]))
    return engine.Stretch.of((status, int(profit * 100)) for _, _, status, profit in ordered)


def moment(rng):
    return START + timedelta(seconds=rng.randint(0, 6 * 86400), microseconds=rng.choice([0, 0, rng.randint(0, 999999)]))


def build(seed, *, trades=240, roll_ups=True):
    """Trades opened over six days, settled seconds to days later (some at the same instant),
    some moved or cancelled afterwards, rolled up in part between the steps."""
    rng = random.Random(seed)
    accounts = list(Account.objects.bulk_create(
        Account(worker_name=f"r{seed}x{n}", balance="1000.00", base_amount="1.00", martingale_multiplier="2.00") for n in range(3)
    ))
    accounts = list(Account.objects.filter(worker_name__startswith=f"r{seed}x"))

    def maybe_roll_up():
        if roll_ups and rng.random() < 0.5:
            risk_blocks.roll_up(limit=rng.randint(1, 200))

    Trade.objects.bulk_create(
        Trade(trade_id=f"r{seed}-t{n}", account=rng.choice(accounts), symbol="EURUSD", status="open", level=0,
              amount=Decimal("10.00"), requested_at=START, opened_at=moment(rng))
        for n in range(trades)
    )
    maybe_roll_up()
    same = None
    for trade in Trade.objects.filter(trade_id__startswith=f"r{seed}-").order_by("id"):
        if rng.random() < 0.1:
            continue  # still open
        status = rng.choice(SETTLED)
        profit = {"won": Decimal(rng.randint(1, 900)) / 100, "lost": -Decimal(rng.randint(0, 1000)) / 100, "draw": Decimal("0.00")}[status]
        wait = rng.choice([0, 30, 60, 900, 3600, 5 * 3600, 2 * 86400])
        if same is not None and same >= trade.opened_at and rng.random() < 0.5:
            settled = same  # the same instant as the previous settlement: ordered by id
        else:
            settled = trade.opened_at + timedelta(seconds=wait)
        same = settled
        Trade.objects.filter(pk=trade.pk).update(status=status, profit=profit, payout=Decimal("10.00") + profit, settled_at=settled)
        if rng.random() < 0.1:
            maybe_roll_up()
    # Corrections, not rolled up yet.
    for trade in Trade.objects.filter(trade_id__startswith=f"r{seed}-", status__in=SETTLED):
        roll = rng.random()
        if roll < 0.05:  # settled again later (a correction)
            Trade.objects.filter(pk=trade.pk).update(settled_at=trade.settled_at + timedelta(hours=rng.randint(1, 30)))
        elif roll < 0.08:
            Trade.objects.filter(pk=trade.pk).update(status="cancelled", profit=Decimal("0.00"))
        elif roll < 0.10:
            Trade.objects.filter(pk=trade.pk).update(profit=trade.profit - Decimal("1.00"), status="lost")
    return rng, [a.id for a in accounts]


def windows(rng, count=40):
    for _ in range(count):
        since = moment(rng) - timedelta(days=rng.choice([0, 0, 1]))
        now = since + timedelta(seconds=rng.choice([1, 600, 3600, 86400, 3 * 86400, 10 * 86400]), microseconds=rng.randint(0, 999999))
        yield since, now


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_blocks_give_the_trades_own_drawdown_and_losing_run_at_every_moment(seed):
    rng, account_ids = build(seed)
    assert RiskChange.objects.exists()  # some left pending: read as trades
    for since, now in windows(rng):
        for scope in (risk_blocks.ALL, *account_ids):
            assert risk_blocks.stretch(scope, since, now) == reference(scope, since, now), (scope, since, now)
    risk_blocks.roll_up_all()
    assert not RiskChange.objects.exists()
    for since, now in windows(rng):
        for scope in (risk_blocks.ALL, *account_ids):
            assert risk_blocks.stretch(scope, since, now) == reference(scope, since, now), (scope, since, now)


def blocks():
    return sorted(RiskBlock.objects.values_list(
        "account_id", "width", "slot", "n", "total", "high", "low", "drawdown", "lead", "tail", "longest", "won", "opened_min", "opened_max"
    ))


def test_rolling_up_gives_the_blocks_a_rebuild_gives():
    build(4)
    tasks.roll_up_stats()
    assert not RiskChange.objects.exists()
    rolled = blocks()
    assert rolled and {width for _, width, *_ in rolled} == {risk_blocks.QUARTER, risk_blocks.DAY}
    risk_blocks.rebuild()
    assert blocks() == rolled


def test_the_triggers_name_each_settlement_and_its_move():
    account = Account.objects.create(worker_name="trig", balance="0.00", base_amount="1.00", martingale_multiplier="2.00")
    opened = START + timedelta(minutes=7)
    trade = Trade.objects.create(trade_id="t", account=account, symbol="EURUSD", status="open", level=0, amount=Decimal("1.00"),
                                 requested_at=START, opened_at=opened)
    assert not RiskChange.objects.exists()  # not settled: nothing to sum up
    Trade.objects.filter(pk=trade.pk).update(status="won", profit=Decimal("0.85"), settled_at=opened + timedelta(minutes=10))
    slot = int((START + timedelta(minutes=15)).timestamp())
    assert list(RiskChange.objects.values_list("account_id", "slot")) == [(account.id, slot)]
    Trade.objects.filter(pk=trade.pk).update(symbol="GBPUSD")  # not a settlement: nothing
    assert RiskChange.objects.count() == 1
    Trade.objects.filter(pk=trade.pk).update(settled_at=START + timedelta(hours=2))  # moved: old and new quarter-hours
    assert sorted(RiskChange.objects.values_list("slot", flat=True)) == sorted([slot, slot, int((START + timedelta(hours=2)).timestamp())])
    assert risk_blocks.installed_triggers() == set(risk_blocks.TRIGGERS)


def test_a_read_that_meets_many_pending_quarter_hours_rolls_them_up(monkeypatch):
    rng, account_ids = build(5, roll_ups=False)
    since, now = START, START + timedelta(days=10)
    expected = reference(risk_blocks.ALL, since, now)
    assert risk_blocks.stretch(risk_blocks.ALL, since, now) == expected
    assert RiskChange.objects.exists()
    monkeypatch.setattr(risk_blocks, "ROLL_UP_AT", 5)
    assert risk_blocks.stretch(risk_blocks.ALL, since, now) == expected
    assert not RiskChange.objects.exists()
    assert risk_blocks.stretch(risk_blocks.ALL, since, now) == expected


def test_a_long_window_reads_a_block_per_day_and_few_trades(django_assert_max_num_queries):
    build(6)
    risk_blocks.roll_up_all()
    since, now = START - timedelta(days=1), START + timedelta(days=9)
    with django_assert_max_num_queries(6):  # changes, days, quarter-hours of the ends, their trades, unsettled
        assert risk_blocks.stretch(risk_blocks.ALL, since, now) == reference(risk_blocks.ALL, since, now)


def test_the_api_statistics_take_their_drawdown_from_the_blocks():
    rng, account_ids = build(7)
    now = START + timedelta(days=7)
    for account in [None, *Account.objects.filter(id__in=account_ids).values_list("worker_name", flat=True)]:
        scope = risk_blocks.ALL if account is None else Account.objects.get(worker_name=account).id
        expected = reference(scope, now - timedelta(days=7), now)
        stats = selectors.risk_stats_get(account=account, days=7, now=now)
        assert stats["max_drawdown"] == f"{Decimal(expected.drawdown) / 100:.2f}"
        assert stats["max_consecutive_losses"] == expected.longest
    # A list of accounts reads its trades: the same figures for the same trades.
    names = list(Account.objects.filter(id__in=account_ids).values_list("worker_name", flat=True))
    assert selectors.risk_stats_get(days=7, now=now, account_names=names)["max_drawdown"] == selectors.risk_stats_get(days=7, now=now)["max_drawdown"]
