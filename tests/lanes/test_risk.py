"""The stake ladder, one lane's risk and the account's worst case (SPEC §9, dashboard), as the
engine computes them and the risk report shows them."""
from decimal import Decimal

from lanes import engine, risk
from lanes.engine import Account, Settings

D = Decimal


def account(**fields) -> Account:
    values = {"name": "acc", "base_amount": D("1.00"), "multiplier": D("2.00"), "max_level": 3, "payout_rate": D("0.85")}
    return Account(**{**values, **fields})


def test_ladder_lists_each_level_stake():
    assert engine.ladder(D("1.00"), D("2.00"), 3) == [D("1.00"), D("2.00"), D("4.00"), D("8.00")]


def test_ladder_rounds_each_stake_half_up_like_the_engine():
    assert engine.ladder(D("1.00"), D("1.50"), 3) == [D("1.00"), D("1.50"), D("2.25"), D("3.38")]
    assert engine.lane_risk(D("1.00"), D("1.50"), 3) == D("8.13")


def test_report_rungs_carry_the_running_total_and_what_a_win_returns():
    report = risk.report(account(), Settings(), D("1000.00"))
    assert [(r.level, r.stake, r.total, r.returns) for r in report.rungs] == [
        (0, D("1.00"), D("1.00"), D("1.85")),
        (1, D("2.00"), D("3.00"), D("3.70")),
        (2, D("4.00"), D("7.00"), D("7.40")),
        (3, D("8.00"), D("15.00"), D("14.80")),
    ]
    assert [r.recovers for r in report.rungs] == [True, True, True, False]


def test_worst_case_is_max_concurrent_lanes_times_one_lane():
    assert engine.worst_case(account(base_amount=D("2.00"), max_level=7), Settings(max_concurrent_lanes=3)) == D("1530.00")


def test_worst_case_of_legacy_mode_is_one_progression_whatever_the_settings():
    settings = Settings(concurrent_trading_enabled=True, max_concurrent_lanes=5)
    assert engine.worst_case(account(enhanced=False), settings) == D("15.00")
    assert engine.slots(account(enhanced=False), settings) == 1


def test_without_martingale_the_worst_case_is_one_base_stake_per_slot():
    concurrent = Settings(concurrent_trading_enabled=True, max_concurrent_lanes=5)
    assert engine.worst_case(account(martingale_enabled=False), concurrent) == D("5.00")
    assert engine.worst_case(account(martingale_enabled=False), Settings(max_concurrent_lanes=5)) == D("1.00")
    # Legacy mode has one slot, with or without martingale.
    assert engine.worst_case(account(martingale_enabled=False, enhanced=False), concurrent) == D("1.00")


def test_report_labels_and_warnings_follow_the_mode():
    settings = Settings(concurrent_trading_enabled=True, max_concurrent_lanes=4)
    even = account(payout_rate=D("1.0000"))
    lanes = risk.report(even, settings, D("100.00"))
    assert (lanes.worst_case, lanes.worst_label, lanes.slots, lanes.warnings) == (D("60.00"), "4 lane(s) × 15.00", 4, [])
    legacy = risk.report(account(payout_rate=D("1.0000"), enhanced=False), settings, D("100.00"))
    assert (legacy.worst_case, legacy.worst_label, legacy.slots) == (D("15.00"), "one progression (legacy mode)", 1)
    off = risk.report(account(martingale_enabled=False), settings, D("100.00"))
    assert (off.worst_case, off.worst_label, off.warnings) == (D("4.00"), "4 open trade(s) × the base amount", [])


def test_report_warns_about_the_balance_the_recovery_and_a_ladder_too_large():
    report = risk.report(account(), Settings(max_concurrent_lanes=4), D("50.00"))
    assert [(w.kind, w.message) for w in report.warnings] == [
        ("balance", "The worst case (60.00) exceeds the balance (50.00)."),
        (
            "recovery",
            "The multiplier is too low for the payout rate: a win at level 3 returns 14.80, not more than the "
            "15.00 the lane has invested by then.",
        ),
    ]
    huge = risk.report(account(base_amount=D("1000000.00"), multiplier=D("3.00"), max_level=20), Settings(), D("0"))
    assert "too-large" in [w.kind for w in huge.warnings]


def test_account_warnings_come_from_the_counts_and_the_rules():
    counts = risk.AccountCounts(active_lanes=2, lanes_at_last_level=1, full_lanes=1, stuck_lanes=1, overdue_trades=1, lanes_created_today=10)
    kinds = [w.kind for w in risk.account_warnings(account(martingale_enabled=False), Settings(), counts, D("0.00"))]
    assert kinds == ["idle-lanes", "full-lanes", "last-level", "stuck", "overdue", "daily-limit", "balance"]
    assert risk.account_warnings(account(), Settings(), risk.AccountCounts(), D("1000.00")) == []
