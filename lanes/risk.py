"""What a configuration can cost, for people to read: the ladder level by level (in the account's
ladder mode, and in the other mode beside it, SPEC §11), the most one lane can lose, the account's
worst case against its balance, and the warnings about them.

Pure functions over the engine's numbers (``engine.ladder``, ``engine.worst_case``, …): the
settings page's risk panel, the account page, the overview and the command line all show this
report, so what a trader reads is what the engine trades.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Optional

from . import engine


@dataclass(frozen=True)
class Rung:
    level: int
    stake: Decimal
    total: Decimal  # invested by the end of this level if every trade so far lost
    returns: Decimal  # what a win at this level returns, stake included, at the payout rate

    @property
    def recovers(self) -> bool:
        """A win here returns more than the lane has invested by then."""
        return self.returns > self.total

    @property
    def lost_before(self) -> Decimal:
        """What the lane has lost before this level's trade (its base trade included)."""
        return self.total - self.stake

    @property
    def net_if_win(self) -> Decimal:
        """The lane's net profit if it wins here, at the payout rate."""
        return self.returns - self.total


@dataclass(frozen=True)
class Warning:
    kind: str
    message: str


@dataclass(frozen=True)
class RiskReport:
    rungs: list[Rung]
    lane_worst: Decimal
    worst_case: Decimal
    worst_label: str
    slots: int
    balance: Decimal
    warnings: list[Warning]
    # SPEC §11: the ladder's mode, the other mode's ladder beside it, and the settings that bound them.
    mode: str = engine.MULTIPLIER
    other_mode: str = engine.RECOVER
    other_rungs: list[Rung] = field(default_factory=list)
    max_stake: Optional[Decimal] = None
    max_exposure: Optional[Decimal] = None


def rungs_of(account: engine.Account, mode: str, max_stake: Optional[Decimal]) -> list[Rung]:
    """The ladder of ``mode`` for the account's base stake, level 0 (the base trade) up to the
    last level within ``max_stake``: each stake, the total invested by then, what a win returns."""
    stakes = engine.mode_ladder(mode, account.base_amount, account.multiplier, account.payout_rate, account.max_level)
    rungs, total = [], engine.ZERO
    for level, stake in enumerate(stakes[: engine.last_level(stakes, max_stake) + 1]):
        total += stake
        rungs.append(Rung(level, stake, total, engine.default_expected_payout(stake, account.payout_rate)))
    return rungs


def report(account: engine.Account, settings: engine.Settings, balance: Decimal) -> RiskReport:
    mode = engine.MULTIPLIER if engine.is_legacy(account) else settings.ladder_mode
    rungs = rungs_of(account, mode, None if engine.is_legacy(account) else settings.max_stake)
    total = rungs[-1].total
    other = engine.RECOVER if mode == engine.MULTIPLIER else engine.MULTIPLIER
    slots = engine.slots(account, settings)
    worst = engine.worst_case(account, settings)
    if not account.martingale_enabled:
        label = f"{slots} open trade(s) × the base amount"
    elif engine.is_legacy(account):
        label = "one progression (legacy mode)"
    else:
        label = f"{settings.max_concurrent_lanes} lane(s) × {total:,.2f}"
    warnings = []
    if worst > balance:
        warnings.append(Warning("balance", f"The worst case ({worst:,.2f}) exceeds the balance ({balance:,.2f})."))
    short = next((rung for rung in rungs[1:] if not rung.recovers), None)
    if account.martingale_enabled and short is not None:
        warnings.append(
            Warning(
                "recovery",
                f"The multiplier is too low for the payout rate: a win at level {short.level} returns "
                f"{short.returns:,.2f}, not more than the {short.total:,.2f} the lane has invested by then.",
            )
        )
    if account.martingale_enabled and len(rungs) < 2:
        warnings.append(Warning("no-lanes", "The first stake of a lane would pass max_stake: no lane will be created."))
    problem = engine.ladder_problem(
        account.base_amount, account.multiplier, account.max_level, account.payout_rate,
        mode=mode, max_stake=settings.max_stake,
    )
    if problem is not None:
        warnings.append(Warning("too-large", f"Cannot be saved: {problem[1]}."))
    return RiskReport(
        rungs, total, worst, label, slots, balance, warnings,
        mode=mode, other_mode=other, other_rungs=rungs_of(account, other, settings.max_stake),
        max_stake=settings.max_stake, max_exposure=settings.max_exposure,
    )


@dataclass(frozen=True)
class AccountCounts:
    """What the overview and the account page count for one account (selectors fill it)."""

    active_lanes: int = 0
    lanes_at_last_level: int = 0
    full_lanes: int = 0
    stuck_lanes: int = 0
    overdue_trades: int = 0
    lanes_created_today: int = 0


def account_warnings(
    account: engine.Account, settings: engine.Settings, counts: AccountCounts, balance: Decimal
) -> list[Warning]:
    """The warnings shown beside an account, most urgent first."""
    found = []
    if counts.active_lanes and not engine.lanes_take_trades(account):
        why = "martingale is off" if not account.martingale_enabled else "the account is in legacy mode"
        found.append(Warning("idle-lanes", f"{counts.active_lanes} active lane(s) take no trades: {why}"))
    if counts.full_lanes:
        found.append(Warning("full-lanes", f"{counts.full_lanes} full lane(s): complete them"))
    if counts.lanes_at_last_level:
        found.append(Warning("last-level", f"{counts.lanes_at_last_level} lane(s) at the last level"))
    if counts.stuck_lanes:
        found.append(Warning("stuck", f"{counts.stuck_lanes} stuck lane(s)"))
    if counts.overdue_trades:
        found.append(Warning("overdue", f"{counts.overdue_trades} overdue trade(s)"))
    if engine.daily_limit_reached(settings, counts.lanes_created_today):
        found.append(Warning("daily-limit", "daily lane limit reached"))
    if engine.worst_case(account, settings) > balance:
        found.append(Warning("balance", "worst case exceeds balance"))
    return found
