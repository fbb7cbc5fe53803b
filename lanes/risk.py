"""What a lane can cost: the stake ladder from the base trade to the last level, and the
worst-case exposure of an account (SPEC §9, dashboard: `max_concurrent_lanes ×` the total one
lane risks before it is exhausted).

Pure functions over ``Decimal``; the stakes come from ``engine.stake_at`` so the ladder shown to a
person is the one the engine trades.
"""
from __future__ import annotations

from decimal import Decimal

from .engine import ZERO, stake_at


def lane_ladder(base: Decimal, multiplier: Decimal, max_level: int) -> list[tuple[int, Decimal, Decimal]]:
    """(level, stake, total invested if every trade up to this one is lost) for levels 0..max_level.

    Level 0 is the base trade whose loss creates the lane; level ``max_level`` is the last trade
    before the lane is exhausted, so the last row's total is what one lane risks.
    """
    ladder = []
    total = ZERO
    for level in range(max_level + 1):
        stake = stake_at(base, multiplier, level)
        total += stake
        ladder.append((level, stake, total))
    return ladder


def lane_worst_case(base: Decimal, multiplier: Decimal, max_level: int) -> Decimal:
    """The total one lane loses when every trade of its ladder loses."""
    return lane_ladder(base, multiplier, max_level)[-1][2]


def worst_case_exposure(
    *,
    base: Decimal,
    multiplier: Decimal,
    max_level: int,
    max_concurrent_lanes: int,
    slots: int = 1,
    enhanced: bool = True,
    martingale: bool = True,
) -> Decimal:
    """What the account loses if every trade of every progression it may run loses.

    Lanes: ``max_concurrent_lanes`` × one lane's ladder. Legacy mode runs a single progression:
    one ladder. Without martingale each open trade stakes the base amount: ``slots`` × base.
    """
    if not martingale:
        return slots * base
    ladder = lane_worst_case(base, multiplier, max_level)
    return max_concurrent_lanes * ladder if enhanced else ladder
