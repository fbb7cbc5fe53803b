"""The statistics over every account come from running totals kept by database triggers
(lanes.summary) and must equal, to the cent, a direct computation from the rows.

Randomised histories (several accounts; lanes active, recovered, exhausted, force-completed,
cancelled with and without an outcome; trades of every state, some never opened; rows moved
between days and changed after they were written; rows on the window's edges to the
microsecond) are compared with ``reference`` (plain Python over every row) and with the
statistics of the same accounts read from their rows (the path a token's accounts take), in
zones with DST changes inside the window and with half- and quarter-hour offsets, for windows of
1, 7, 30 and 365 days ending at times that are not midnight, with changes rolled up or not.
"""
import random
from collections import Counter
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from lanes import engine, risk_blocks, selectors, services, summary, tasks
from lanes.models import Account, Lane, StatsBucket, StatsChange, Trade

from test_migrations import old_bot_database  # noqa: F401  (a fixture: the old bot's tables, with rows)

pytestmark = pytest.mark.django_db

SYMBOLS = ("EURUSD", "GBPUSD", "XAUUSD", "BTCUSD")
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe")
WINDOWS = (1, 7, 30, 365)
SETTLED = ("won", "lost", "draw")
# Window ends, none at midnight: DST starts in New York (2026-03-08 07:00 UTC) and ends
# (2026-11-01 06:00 UTC) and Lord Howe's half-hour DST ends (2026-04-04 15:00 UTC) within the
# 1-, 7- and 30-day windows ending there.
NOWS = (
    datetime(2026, 3, 8, 15, 37, 12, 345678, tzinfo=dt_timezone.utc),
    datetime(2026, 4, 5, 2, 7, 0, tzinfo=dt_timezone.utc),
    datetime(2026, 11, 1, 18, 5, 1, 500000, tzinfo=dt_timezone.utc),
    datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=dt_timezone.utc),
)
START, END = datetime(2025, 10, 1, tzinfo=dt_timezone.utc), datetime(2026, 11, 25, tzinfo=dt_timezone.utc)


# --- The reference: every row, in Python -----------------------------------------------------------


def reference(since, now, zone):
    """The statistics of SPEC §9 computed from every lane and trade row."""

    def within(moment):
        return moment is not None and since <= moment <= now

    lanes = [lane for lane in Lane.objects.all() if within(lane.created_at)]
    trades = [trade for trade in Trade.objects.all() if within(trade.opened_at)]
    first, last = since.astimezone(zone).date(), now.astimezone(zone).date()
    dates = [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def money(values):
        return f"{engine.round2(sum((v for v in values if v is not None), Decimal('0'))):.2f}"

    def rate(part, other):
        return round(part / (part + other), 4) if part + other else 0.0

    def trade_figures(rows):
        statuses = Counter(t.status for t in rows)
        return {
            "trades": len(rows), "wins": statuses["won"], "losses": statuses["lost"], "draws": statuses["draw"],
            "net_profit": money(t.profit for t in rows if t.status in SETTLED),
        }

    def outcome_count(rows, outcome):
        return sum(1 for lane in rows if lane.outcome == outcome)

    def day(moment):
        return moment.astimezone(zone).date()

    statuses = Counter(t.status for t in trades)
    recovered, exhausted = outcome_count(lanes, "recovered"), outcome_count(lanes, "exhausted")
    ended = [lane for lane in lanes if lane.outcome in ("recovered", "exhausted")]
    levels = {t.level for t in trades} | {lane.current_level for lane in ended}
    symbols = {t.symbol for t in trades} | {lane.symbol for lane in lanes}
    return {
        "account": None,
        "days": round((now - since) / timedelta(days=1)),
        "since": since.isoformat(),
        "until": now.isoformat(),
        "lanes_created": len(lanes),
        "lanes_active": sum(1 for lane in lanes if lane.status == "active"),
        "lanes_recovered": recovered,
        "lanes_exhausted": exhausted,
        "lanes_cancelled": sum(
            1 for lane in lanes if lane.outcome == "cancelled" or (lane.outcome is None and lane.status == "cancelled")
        ),
        "lanes_force_completed": outcome_count(lanes, "force_completed"),
        "recovery_rate": rate(recovered, exhausted),
        "avg_level": round(sum(lane.current_level for lane in lanes) / len(lanes), 2) if lanes else 0.0,
        "max_level": max((lane.current_level for lane in lanes), default=0),
        "total_invested": money(lane.total_invested for lane in lanes),
        "total_potential_payout": money(lane.total_potential_payout for lane in lanes),
        **trade_figures(trades),
        "trades_open": statuses["open"],
        "trades_cancelled": statuses["cancelled"],
        "win_rate": rate(statuses["won"], statuses["lost"]),
        "by_level": [
            {
                "level": level,
                **trade_figures([t for t in trades if t.level == level]),
                "lanes_recovered": outcome_count([lane for lane in ended if lane.current_level == level], "recovered"),
                "lanes_exhausted": outcome_count([lane for lane in ended if lane.current_level == level], "exhausted"),
            }
            for level in sorted(levels, key=lambda level: (level is None, level))
        ],
        "by_symbol": [
            {
                "symbol": symbol,
                **trade_figures([t for t in trades if t.symbol == symbol]),
                "win_rate": rate(*(sum(1 for t in trades if t.symbol == symbol and t.status == s) for s in ("won", "lost"))),
                "lanes_created": sum(1 for lane in lanes if lane.symbol == symbol),
                "lanes_recovered": outcome_count([lane for lane in lanes if lane.symbol == symbol], "recovered"),
                "lanes_exhausted": outcome_count([lane for lane in lanes if lane.symbol == symbol], "exhausted"),
            }
            for symbol in sorted(symbols)
        ],
        "daily": [
            {
                "date": date.isoformat(),
                **trade_figures([t for t in trades if day(t.opened_at) == date]),
                "lanes_created": sum(1 for lane in lanes if day(lane.created_at) == date),
                "lanes_recovered": outcome_count([lane for lane in lanes if day(lane.created_at) == date], "recovered"),
                "lanes_exhausted": outcome_count([lane for lane in lanes if day(lane.created_at) == date], "exhausted"),
            }
            for date in dates
        ],
    }


# --- Random histories --------------------------------------------------------------------------------


def money_value(rng, low, high):
    return Decimal(rng.randint(int(low * 100), int(high * 100))) / 100


def edge_moments():
    """Times on and next to each window's edges and its whole quarter-hours, and on and next to
    local midnights near the window ends."""
    micro = timedelta(microseconds=1)
    moments = []
    for now in NOWS:
        for days in WINDOWS:
            since = now - timedelta(days=days)
            first = summary.utc(-(-summary.epoch(since) // 900) * 900)
            last = summary.utc(summary.epoch(now) // 900 * 900)
            for moment in (since, now, first, last):
                moments += [moment - micro, moment, moment + micro]
        for name in ZONES:
            local = now.astimezone(ZoneInfo(name))
            for back in (0, 1, 7):
                midnight = datetime.combine(local.date() - timedelta(days=back), datetime.min.time(), tzinfo=ZoneInfo(name))
                moments += [midnight - micro, midnight, midnight + micro]
    return moments


def random_moment(rng, edges):
    if rng.random() < 0.25:
        return rng.choice(edges)
    return START + timedelta(seconds=rng.uniform(0, (END - START).total_seconds()))


def build_random_history(seed, *, lanes=90, trades=420, roll_ups=True):
    """Accounts, lanes and trades written as the service writes them (insert, then updates that
    move them on), with a few rows moved to another time afterwards; rolls up part of the
    changes between the steps. Returns the account names."""
    rng = random.Random(seed)
    edges = edge_moments()
    names = [f"acc{seed}x{n}" for n in range(3)]
    accounts = Account.objects.bulk_create(
        Account(worker_name=name, balance="1000.00", base_amount="1.00", martingale_multiplier="2.00") for name in names
    )
    accounts = list(Account.objects.filter(worker_name__in=names))

    def maybe_roll_up():
        if roll_ups and rng.random() < 0.5:
            summary.roll_up(limit=rng.randint(1, 400))

    lane_rows = Lane.objects.bulk_create(
        Lane(
            lane_id=f"s{seed}-L{n}", account_name=rng.choice(names), symbol=rng.choice(SYMBOLS), status="active",
            current_level=1, base_amount="1.00", current_amount="2.00", multiplier="2.00", max_level=7,
            total_invested=money_value(rng, 0, 50), total_potential_payout=money_value(rng, 0, 90),
            created_at=random_moment(rng, edges), updated_at=END,
        )
        for n in range(lanes)
    )
    maybe_roll_up()
    for lane in Lane.objects.filter(lane_id__startswith=f"s{seed}-"):
        ending = rng.choice(["active", "recovered", "exhausted", "force_completed", "cancelled", "cancelled-old"])
        changes = {
            "current_level": rng.randint(1, 7),
            "total_invested": money_value(rng, 0, 99999),
            "total_potential_payout": money_value(rng, 0, 99999),
        }
        if ending == "cancelled-old":  # adopted from the old bot: cancelled without an outcome
            changes.update(status="cancelled", outcome=None)
        elif ending == "cancelled":
            changes.update(status="cancelled", outcome="cancelled")
        elif ending != "active":
            changes.update(status="completed", outcome=ending)
        if rng.random() < 0.1:
            changes["created_at"] = random_moment(rng, edges)
        Lane.objects.filter(pk=lane.pk).update(**changes)
        if rng.random() < 0.1:
            maybe_roll_up()
    maybe_roll_up()

    trade_rows = []
    for n in range(trades):
        queued = rng.random() < 0.15
        trade_rows.append(
            Trade(
                trade_id=f"s{seed}-t{n}", account=rng.choice(accounts), symbol=rng.choice(SYMBOLS),
                status="queued" if queued else "open", level=None if queued else rng.choice([0, 1, 2, 3, 7, None]),
                amount=None if queued else money_value(rng, 1, 500), requested_at=START,
                opened_at=None if queued else random_moment(rng, edges),
            )
        )
    Trade.objects.bulk_create(trade_rows)
    maybe_roll_up()
    for trade in Trade.objects.filter(trade_id__startswith=f"s{seed}-"):
        if trade.status == "queued":
            step = rng.choice(["stay", "expired", "cancelled", "open", "won"])
            if step == "stay":
                continue
            if step in ("expired", "cancelled"):
                Trade.objects.filter(pk=trade.pk).update(status=step)
                continue
            changes = {"status": step, "level": rng.randint(0, 7), "opened_at": random_moment(rng, edges)}
        else:
            step = rng.choice(["open", "won", "lost", "draw", "cancelled"])
            changes = {"status": step}
        if changes["status"] in SETTLED:
            changes["profit"] = money_value(rng, -999, 999) if changes["status"] != "draw" else Decimal("0.00")
        if rng.random() < 0.1:
            changes["opened_at"] = random_moment(rng, edges)
        Trade.objects.filter(pk=trade.pk).update(**changes)
        if rng.random() < 0.05:
            maybe_roll_up()
    return names


# --- The comparisons ---------------------------------------------------------------------------------


def compare_everywhere(names):
    for now in NOWS:
        for days in WINDOWS:
            for name in ZONES:
                with override_settings(TIME_ZONE=name):
                    zone = ZoneInfo(name)
                    everyone = selectors.stats_get(days=days, now=now)
                    expected = reference(now - timedelta(days=days), now, zone)
                    assert everyone == expected, (now, days, name)
                    rows = selectors.stats_get(days=days, now=now, account_names=names)
                    assert rows == expected, (now, days, name)


@pytest.mark.parametrize("seed", [1, 2])
def test_running_totals_give_the_statistics_of_the_rows_to_the_cent(seed):
    names = build_random_history(seed)
    assert StatsChange.objects.exists()  # some changes are still pending, read as such
    compare_everywhere(names)
    assert summary.differences() == {}


def test_statistics_are_the_same_before_and_after_every_change_is_rolled_up():
    names = build_random_history(3, roll_ups=False)
    assert not StatsBucket.objects.exists()
    before = {(now, days): selectors.stats_get(days=days, now=now) for now in NOWS for days in WINDOWS}
    assert summary.roll_up_all() > 0
    assert not StatsChange.objects.exists() and StatsBucket.objects.exists()
    assert {(now, days): selectors.stats_get(days=days, now=now) for now in NOWS for days in WINDOWS} == before
    compare_everywhere(names)
    # A bucket emptied by the changes rolled up is gone, not kept at zero.
    assert not StatsBucket.objects.filter(n=0).exists()


def test_the_beat_task_rolls_the_pending_changes_up(settings):
    build_random_history(1, roll_ups=False)
    pending = StatsChange.objects.count()
    before = selectors.stats_get(days=30, now=NOWS[0])
    assert pending > 0
    assert tasks.roll_up_stats.run() == pending
    assert not StatsChange.objects.exists()
    assert selectors.stats_get(days=30, now=NOWS[0]) == before
    assert settings.CELERY_BEAT_SCHEDULE["martingale-stats-roll-up"]["task"] == "lanes.tasks.roll_up_stats"


def test_rebuild_gives_the_same_buckets_as_the_triggers():
    build_random_history(4)
    summary.roll_up_all()
    rolled = sorted(StatsBucket.objects.values_list("kind", "dim", "width", "slot", "level", "symbol", "status", "outcome", "n", "amount", "payout"))
    # A few more changes pending, then the rebuild: it replaces the buckets and takes them in.
    Trade.objects.filter(status="open").update(status="won", profit=Decimal("1.23"))
    summary.rebuild()
    assert not StatsChange.objects.exists()
    assert summary.differences() == {}
    Trade.objects.filter(status="won", profit=Decimal("1.23")).update(status="open", profit=None)
    summary.roll_up_all()
    assert sorted(
        StatsBucket.objects.values_list("kind", "dim", "width", "slot", "level", "symbol", "status", "outcome", "n", "amount", "payout")
    ) == rolled


def test_statistics_of_a_history_written_by_the_services():
    """Lanes and trades as the bots make them (SPEC §5): the triggers see every write of ``_save``."""
    rng = random.Random(11)
    names = ["sa", "sb"]
    for name in names:
        services.account_create(
            name=name, values={"base_amount": "1.00", "martingale_multiplier": "2.00", "martingale_max_level": 3, "balance": "10000.00"}
        )
        services.settings_update(account_name=name, values={"concurrent_trading_enabled": True, "max_concurrent_lanes": 3}, actor="t")
    at = datetime(2026, 10, 25, 21, 50, tzinfo=dt_timezone.utc)
    open_trades = []
    for n in range(160):
        at += timedelta(minutes=rng.randint(1, 180), microseconds=rng.randint(0, 999999))
        if open_trades and rng.random() < 0.6:
            trade_id = open_trades.pop(rng.randrange(len(open_trades)))
            status = Trade.objects.get(trade_id=trade_id).status
            if status in ("open", "queued") and rng.random() < 0.1:
                services.trade_cancel(trade_id=trade_id, actor="bot", now=at)
            elif status == "open":
                services.trade_settle(trade_id=trade_id, result=rng.choice(["win", "loss", "loss", "draw"]), actor="bot", now=at)
            elif status == "queued":
                open_trades.append(trade_id)  # still waiting for a slot
        else:
            outcome = services.trade_open(
                account_name=rng.choice(names), request=engine.Request(trade_id=f"sv{n}", symbol=rng.choice(SYMBOLS[:2])),
                actor="bot", now=at,
            )
            if outcome.trade.status in ("open", "queued"):
                open_trades.append(outcome.trade.trade_id)
        if rng.random() < 0.03:
            active = Lane.objects.filter(status="active").values_list("lane_id", flat=True).first()
            if active:
                services.lane_force_complete(lane_id=active, status=rng.choice(["completed", "cancelled"]), actor="t", now=at)
        if rng.random() < 0.1:
            summary.roll_up(limit=rng.randint(1, 50))
    assert Lane.objects.exists() and Trade.objects.filter(status="won").exists()
    for now in (at - timedelta(hours=7, minutes=3), at + timedelta(seconds=1)):
        for days in WINDOWS:
            for name in ("UTC", "America/New_York", "Asia/Kathmandu"):
                with override_settings(TIME_ZONE=name):
                    expected = reference(now - timedelta(days=days), now, ZoneInfo(name))
                    assert selectors.stats_get(days=days, now=now) == expected
                    assert selectors.stats_get(days=days, now=now, account_names=names) == expected
    assert summary.differences() == {}


def test_a_window_of_one_account_or_a_few_is_read_from_their_rows():
    names = build_random_history(5, lanes=30, trades=120)
    now = NOWS[-1]
    with CaptureQueriesContext(connection) as queries:
        selectors.stats_get(days=30, now=now, account_names=names[:2])
    assert not any(summary.BUCKETS in q["sql"] for q in queries.captured_queries)
    with CaptureQueriesContext(connection) as queries:
        selectors.stats_get(days=30, now=now)
    assert sum(summary.BUCKETS in q["sql"] for q in queries.captured_queries) == 1


def test_a_midnight_off_the_quarter_hours_reads_the_rows():
    """Paris kept local mean time (+00:09:21) until 1911: its midnights then were on no quarter-hour."""
    lane = Lane.objects.create(
        lane_id="old", account_name="a", symbol="EURUSD", base_amount="1.00", current_amount="1.00", multiplier="2.00",
        created_at=datetime(1905, 6, 1, 12, tzinfo=dt_timezone.utc), updated_at=datetime(1905, 6, 1, 12, tzinfo=dt_timezone.utc),
    )
    now = datetime(1905, 6, 3, 12, 30, tzinfo=dt_timezone.utc)
    with override_settings(TIME_ZONE="Europe/Paris"):
        boundaries = selectors.stats._day_buckets(now - timedelta(days=7), now)[1]
        assert summary.plan(now - timedelta(days=7), now, boundaries) is None
        stats = selectors.stats_get(days=7, now=now)
        assert stats == reference(now - timedelta(days=7), now, ZoneInfo("Europe/Paris"))
        assert stats["lanes_created"] == 1 and lane.pk


# --- Triggers and migrations -------------------------------------------------------------------------


def test_the_triggers_are_installed():
    assert summary.installed_triggers() == set(summary.TRIGGERS)


def test_a_queued_trade_counts_nowhere_until_it_opens_and_a_trade_counts_where_it_opened():
    account = Account.objects.create(worker_name="q", balance="10.00")
    trade = Trade.objects.create(trade_id="q1", account=account, symbol="EURUSD", status="queued", requested_at=START)
    assert not StatsChange.objects.exists()
    opened = datetime(2026, 1, 1, 10, 14, 59, 999999, tzinfo=dt_timezone.utc)
    Trade.objects.filter(pk=trade.pk).update(status="open", level=0, amount="1.00", opened_at=opened)
    assert list(StatsChange.objects.values_list("kind", "slot", "level", "symbol", "status", "n", "amount")) == [
        ("t", summary.epoch(datetime(2026, 1, 1, 10, tzinfo=dt_timezone.utc)), 0, "EURUSD", "open", 1, 0)
    ]
    Trade.objects.filter(pk=trade.pk).update(status="won", profit="0.85")
    Trade.objects.filter(pk=trade.pk).update(requested_by="x")  # nothing the statistics read: no change
    assert list(StatsChange.objects.order_by("id").values_list("status", "n", "amount")) == [
        ("open", 1, 0), ("open", -1, 0), ("won", 1, 85)
    ]
    summary.roll_up()
    assert set(StatsBucket.objects.values_list("dim", "width", "status", "n", "amount")) == {
        (dim, width, "won", 1, 85) for dim in summary.DIMS for width in summary.WIDTHS
    }


@pytest.mark.django_db(transaction=True)
def test_migrating_back_and_forth_keeps_the_statistics():
    build_random_history(6, lanes=20, trades=80)
    now = NOWS[-1]
    before = selectors.stats_get(days=365, now=now)
    call_command("migrate", "lanes", "0004", verbosity=0)
    assert summary.installed_triggers() == set()
    assert risk_blocks.installed_triggers() == set()
    # Written while the triggers are gone: counted by the backfill on the way up.
    Trade.objects.filter(status="open").update(status="lost", profit=Decimal("-2.00"), settled_at=now - timedelta(days=1))
    call_command("migrate", verbosity=0)
    assert summary.installed_triggers() == set(summary.TRIGGERS)
    assert risk_blocks.installed_triggers() == set(risk_blocks.TRIGGERS)
    risk = risk_blocks.stretch(risk_blocks.ALL, now - timedelta(days=365), now)
    assert risk.n == Trade.objects.filter(status__in=("won", "lost", "draw"), opened_at__gte=now - timedelta(days=365), opened_at__lte=now).count()
    assert summary.differences() == {}
    after = selectors.stats_get(days=365, now=now)
    assert after == reference(now - timedelta(days=365), now, ZoneInfo("UTC"))
    assert after["trades_open"] == 0 and before["trades_open"] > 0


def test_a_read_that_meets_many_pending_changes_rolls_them_up(monkeypatch):
    build_random_history(7, lanes=30, trades=120, roll_ups=False)
    now = NOWS[-1]
    expected = reference(now - timedelta(days=365), now, ZoneInfo("UTC"))
    assert selectors.stats_get(days=365, now=now) == expected
    assert StatsChange.objects.exists()  # below the threshold: left for the beat task
    monkeypatch.setattr(summary, "ROLL_UP_AT", 10)
    assert selectors.stats_get(days=365, now=now) == expected
    assert not StatsChange.objects.exists()
    assert selectors.stats_get(days=365, now=now) == expected
    assert summary.differences() == {}


@pytest.mark.django_db(transaction=True)
def test_the_old_bots_lanes_are_counted_once_adopted(old_bot_database):
    call_command("migrate", verbosity=0)
    assert summary.installed_triggers() == set(summary.TRIGGERS)
    assert summary.differences() == {}
    now = datetime(2025, 6, 3, 12, 0, 0, 1, tzinfo=dt_timezone.utc)
    stats = selectors.stats_get(days=1, now=now)
    assert stats == reference(now - timedelta(days=1), now, ZoneInfo("UTC"))
    assert (stats["lanes_created"], stats["lanes_active"], stats["total_invested"]) == (2, 1, "7.00")


@pytest.mark.parametrize("zone_name", [*ZONES, "Pacific/Chatham", "Europe/London", "America/St_Johns"])
def test_the_buckets_read_tile_the_window_and_keep_to_its_days(zone_name):
    """For random windows: the buckets selected for the days cover [first, last) exactly once,
    none across a local midnight, and the SQL terms select exactly them (checked in SQLite)."""
    import sqlite3

    rng = random.Random(zone_name)
    with override_settings(TIME_ZONE=zone_name):
        for _ in range(40):
            now = START + timedelta(seconds=rng.uniform(0, (END - START).total_seconds()))
            if rng.random() < 0.3:
                now = now.replace(minute=rng.choice([0, 15, 30, 45]), second=0, microsecond=0)
            days = rng.choice(WINDOWS)
            since = now - timedelta(days=days)
            boundaries = selectors.stats._day_buckets(since, now)[1]
            window = summary.plan(since, now, boundaries)
            assert window is not None
            assert since <= window.first_at < since + timedelta(minutes=15) or window.first_at == since
            assert now - timedelta(minutes=15) < window.last_at <= now
            by_day = [run for low, high in summary._days(window) for run in summary._runs(low, high)]
            whole = summary._runs(window.first, window.last)
            for runs, cut in ((by_day, True), (whole, False)):
                buckets = sorted((start, width) for width, low, high in runs for start in range(low, high, width))
                assert all(start % width == 0 for start, width in buckets)
                assert [start for start, _ in buckets][0] == window.first
                assert all(a + w == b for (a, w), (b, _) in zip(buckets, buckets[1:]))
                assert buckets[-1][0] + buckets[-1][1] == window.last
                if cut:
                    assert all(summary.day_of(window, start) == summary.day_of(window, start + width - 1) for start, width in buckets)
                candidates = sqlite3.connect(":memory:")
                candidates.execute("CREATE TABLE b (width INTEGER, slot INTEGER)")
                candidates.executemany(
                    "INSERT INTO b VALUES (?, ?)",
                    [
                        (width, slot)
                        for width in summary.WIDTHS
                        for slot in range(window.first - window.first % width - 2 * width, window.last + 2 * width, width)
                    ],
                )
                sql = " OR ".join(f"({term})" for term in summary._covering(runs))
                assert sorted((slot, width) for width, slot in candidates.execute(f"SELECT width, slot FROM b WHERE {sql}")) == buckets
