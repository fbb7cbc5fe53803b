"""The stake ladder and the worst-case exposure shown beside the settings (SPEC §9, dashboard)."""
from decimal import Decimal

from lanes.risk import lane_ladder, lane_worst_case, worst_case_exposure


def test_ladder_lists_each_level_stake_and_the_running_total():
    assert lane_ladder(Decimal("1.00"), Decimal("2.00"), 3) == [
        (0, Decimal("1.00"), Decimal("1.00")),
        (1, Decimal("2.00"), Decimal("3.00")),
        (2, Decimal("4.00"), Decimal("7.00")),
        (3, Decimal("8.00"), Decimal("15.00")),
    ]


def test_ladder_rounds_each_stake_half_up_like_the_engine():
    ladder = lane_ladder(Decimal("1.00"), Decimal("1.50"), 3)
    assert [stake for _, stake, _ in ladder] == [Decimal("1.00"), Decimal("1.50"), Decimal("2.25"), Decimal("3.38")]
    assert lane_worst_case(Decimal("1.00"), Decimal("1.50"), 3) == Decimal("8.13")


def test_exposure_is_max_concurrent_lanes_times_one_lane():
    args = {"base": Decimal("2.00"), "multiplier": Decimal("2.00"), "max_level": 7, "max_concurrent_lanes": 3}
    assert worst_case_exposure(**args) == Decimal("1530.00")  # 3 × 2 × (2^8 − 1)


def test_exposure_of_legacy_mode_is_one_progression_and_without_martingale_one_stake_per_slot():
    args = {"base": Decimal("1.00"), "multiplier": Decimal("2.00"), "max_level": 3, "max_concurrent_lanes": 5}
    assert worst_case_exposure(**args, enhanced=False) == Decimal("15.00")
    assert worst_case_exposure(**args, slots=5, martingale=False) == Decimal("5.00")
