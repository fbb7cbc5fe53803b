"""Tables of the lane engine.

`accounts`, `martingale_lanes` (and `trading_settings` in settings_app) keep the names, columns
and column order of the old bot's DDL; the project's own columns are appended after them.
The trade ledger, the lane event log and the API tokens are the project's own tables.
"""
from decimal import Decimal

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from .fields import JSONListTextField
from .ranges import ACCOUNT_DEFAULTS, LADDER_MODES, LOCK_NOTE_MAX, MULTIPLIER_MODE


class Account(models.Model):
    worker_name = models.CharField(max_length=100, unique=True)
    is_demo = models.BooleanField(default=ACCOUNT_DEFAULTS["is_demo"], db_default=ACCOUNT_DEFAULTS["is_demo"])
    enabled = models.BooleanField(default=ACCOUNT_DEFAULTS["enabled"], db_default=ACCOUNT_DEFAULTS["enabled"])
    balance = models.DecimalField(
        max_digits=10, decimal_places=2, default=ACCOUNT_DEFAULTS["balance"], db_default=ACCOUNT_DEFAULTS["balance"]
    )
    base_amount = models.DecimalField(
        max_digits=10, decimal_places=2, default=ACCOUNT_DEFAULTS["base_amount"], db_default=ACCOUNT_DEFAULTS["base_amount"]
    )
    martingale_multiplier = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=ACCOUNT_DEFAULTS["martingale_multiplier"],
        db_default=ACCOUNT_DEFAULTS["martingale_multiplier"],
    )
    martingale_enabled = models.BooleanField(
        default=ACCOUNT_DEFAULTS["martingale_enabled"], db_default=ACCOUNT_DEFAULTS["martingale_enabled"]
    )
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    last_updated = models.DateTimeField(auto_now=True, db_default=Now())
    # The project's columns.
    martingale_max_level = models.IntegerField(
        default=ACCOUNT_DEFAULTS["martingale_max_level"], db_default=ACCOUNT_DEFAULTS["martingale_max_level"]
    )
    payout_rate = models.DecimalField(
        max_digits=5, decimal_places=4, default=ACCOUNT_DEFAULTS["payout_rate"], db_default=ACCOUNT_DEFAULTS["payout_rate"]
    )
    enhanced_martingale_enabled = models.BooleanField(
        default=ACCOUNT_DEFAULTS["enhanced_martingale_enabled"], db_default=ACCOUNT_DEFAULTS["enhanced_martingale_enabled"]
    )
    legacy_consecutive_losses = models.IntegerField(default=0, db_default=0)
    # No column: joins trading_settings on account_name, so one locking query reads both rows.
    trading_settings = models.ForeignObject(
        "settings_app.TradingSettings",
        on_delete=models.DO_NOTHING,
        from_fields=["worker_name"],
        to_fields=["account_name"],
        null=True,
        related_name="+",
    )

    class Meta:
        db_table = "accounts"
        ordering = ["worker_name"]

    def __str__(self):
        return self.worker_name


class LaneStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class LaneOutcome(models.TextChoices):
    RECOVERED = "recovered", "Recovered"
    EXHAUSTED = "exhausted", "Exhausted"
    FORCE_COMPLETED = "force_completed", "Force-completed"
    CANCELLED = "cancelled", "Cancelled"


class Lane(models.Model):
    lane_id = models.CharField(max_length=100, unique=True)
    account_name = models.CharField(max_length=100)
    symbol = models.CharField(max_length=50)
    status = models.CharField(max_length=9, choices=LaneStatus.choices, default=LaneStatus.ACTIVE, db_default="active")
    current_level = models.IntegerField(default=1, db_default=1)
    base_amount = models.DecimalField(max_digits=10, decimal_places=2)
    current_amount = models.DecimalField(max_digits=10, decimal_places=2)
    multiplier = models.DecimalField(max_digits=5, decimal_places=2)
    max_level = models.IntegerField(default=7, db_default=7)
    total_invested = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"), db_default=Decimal("0.00"))
    total_potential_payout = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0.00"), db_default=Decimal("0.00")
    )
    trade_ids = JSONListTextField(default=list)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    updated_at = models.DateTimeField(default=timezone.now, db_default=Now())  # set by the services, from their `now`
    completed_at = models.DateTimeField(null=True, blank=True)
    # The project's columns.
    outcome = models.CharField(max_length=20, choices=LaneOutcome.choices, null=True, blank=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    # SPEC §11: the ladder mode and payout rate copied at creation (payout_rate NULL: a lane from
    # before), and the profit of its settled trades, the base trade that opened it included.
    ladder_mode = models.CharField(
        max_length=10, choices=[(mode, mode) for mode in LADDER_MODES], default=MULTIPLIER_MODE, db_default=MULTIPLIER_MODE
    )
    payout_rate = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    net_profit = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"), db_default=Decimal("0.00"))

    class Meta:
        db_table = "martingale_lanes"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["account_name", "status"], name="lane_account_status_idx"),
            models.Index(fields=["account_name", "created_at"], name="lane_account_created_idx"),
            models.Index(fields=["status", "updated_at"], name="lane_status_updated_idx"),
            # The statistics read the lanes created in the few minutes at each end of their window.
            models.Index(fields=["created_at"], name="lane_created_idx"),
            # The exhausted-lanes breaker counts an account's lanes exhausted within a window.
            models.Index(fields=["account_name", "outcome", "completed_at"], name="lane_account_outcome_idx"),
        ]

    def __str__(self):
        return f"{self.lane_id} ({self.account_name} {self.symbol}, level {self.current_level})"


class TradeStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    DRAW = "draw", "Draw"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


class TradeKind(models.TextChoices):
    BASE = "base", "Base"
    LANE = "lane", "Lane"
    LEGACY = "legacy", "Legacy"


class Direction(models.TextChoices):
    CALL = "call", "Call"
    PUT = "put", "Put"


class Trade(models.Model):
    """The trade ledger: one row per trade request, from queued to settled."""

    trade_id = models.CharField(max_length=100, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="trades")
    symbol = models.CharField(max_length=50)
    direction = models.CharField(max_length=4, choices=Direction.choices, null=True, blank=True)
    status = models.CharField(max_length=9, choices=TradeStatus.choices)
    kind = models.CharField(max_length=6, choices=TradeKind.choices, null=True, blank=True)
    # By the lane's lane_id (as the API names it), so trade.lane_id is what everyone calls the lane.
    lane = models.ForeignKey(
        Lane, on_delete=models.PROTECT, to_field="lane_id", null=True, blank=True, related_name="trades"
    )
    level = models.IntegerField(null=True, blank=True)
    amount = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    requested_payout = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    expected_payout = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    payout = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    profit = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    max_wait_seconds = models.IntegerField(default=60)
    requested_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        db_table = "martingale_trades"
        ordering = ["requested_at", "id"]
        indexes = [
            models.Index(fields=["account", "status", "requested_at"], name="trade_account_status_idx"),
            models.Index(fields=["account", "opened_at"], name="trade_account_opened_idx"),
            models.Index(fields=["status", "opened_at"], name="trade_status_opened_idx"),
            models.Index(fields=["opened_at"], name="trade_opened_idx"),
            models.Index(fields=["account", "settled_at"], name="trade_account_settled_idx"),
            models.Index(fields=["settled_at"], name="trade_settled_idx"),  # the risk blocks of every account (lanes.risk_blocks)
            # Covers the statistics' scans of a window of trades (selectors.stats_get).
            models.Index(fields=["opened_at", "status", "level", "symbol", "profit", "account"], name="trade_stats_idx"),
        ]
        constraints = [
            # MySQL/MariaDB have no partial indexes (check models.W036 is silenced in settings);
            # there the per-account row lock in services is what keeps one open trade per lane.
            models.UniqueConstraint(
                fields=["lane"], condition=models.Q(status="open"), name="trade_one_open_per_lane"
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0) | models.Q(amount__isnull=True), name="trade_amount_positive"),
            models.CheckConstraint(condition=models.Q(level__gte=0) | models.Q(level__isnull=True), name="trade_level_not_negative"),
        ]

    def __str__(self):
        return self.trade_id


class LaneEventKind(models.TextChoices):
    CREATED = "created", "Lane created"
    TRADE_ASSIGNED = "trade_assigned", "Trade assigned"
    ADVANCED = "advanced", "Advanced a level"
    DRAW = "draw", "Trade drawn"
    RECOVERED = "recovered", "Recovered"
    EXHAUSTED = "exhausted", "Exhausted"
    TRADE_CANCELLED = "trade_cancelled", "Trade cancelled out"
    FORCE_COMPLETED = "force_completed", "Force-completed"
    CANCELLED = "cancelled", "Cancelled"
    NOT_CREATED = "not_created", "Lane not created"
    SETTLED_BY_HAND = "settled_by_hand", "Result entered by hand"
    LOCKED = "locked", "Account locked"
    UNLOCKED = "unlocked", "Account lock released"


class LaneEvent(models.Model):
    """The append-only audit trail: one row per lane change, written with the change."""

    lane = models.ForeignKey(
        Lane, on_delete=models.PROTECT, to_field="lane_id", null=True, blank=True, related_name="events"
    )
    account_name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=LaneEventKind.choices)
    trade_id = models.CharField(max_length=100, null=True, blank=True)
    actor = models.CharField(max_length=150)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "martingale_lane_events"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["account_name", "created_at"], name="event_account_created_idx"),
            models.Index(fields=["kind", "created_at"], name="event_kind_created_idx"),
        ]

    def __str__(self):
        return f"{self.kind} {self.lane_id or self.account_name} at {self.created_at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args, **kwargs):
        # The audit trail is append-only: an event, once written, is never changed.
        if self.pk is not None and not self._state.adding:
            raise ValueError("lane events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("lane events are append-only")


class LockReason(models.TextChoices):
    DAILY_STOP_LOSS = "daily_stop_loss", "Daily stop-loss"
    DAILY_TAKE_PROFIT = "daily_take_profit", "Daily take-profit"
    EXHAUSTED_LANES = "exhausted_lanes", "Exhausted lanes"
    MANUAL = "manual", "Paused by hand"


class AccountLock(models.Model):
    """A pause of an account's new trades (SPEC §11), set by a circuit breaker or by hand: active
    while ``locked_until`` is in the future and it is not released."""

    lock_id = models.CharField(max_length=100, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="locks")
    reason = models.CharField(max_length=20, choices=LockReason.choices)
    created_at = models.DateTimeField()
    locked_until = models.DateTimeField()
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.CharField(max_length=150, blank=True, default="")
    note = models.CharField(max_length=LOCK_NOTE_MAX, blank=True, default="")

    class Meta:
        db_table = "martingale_account_locks"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "locked_until"], name="lock_account_until_idx")]

    def __str__(self):
        return f"{self.reason} lock of {self.account_id} until {self.locked_until:%Y-%m-%d %H:%M:%S}"


class ApiToken(models.Model):
    """A bot's bearer token, stored as a SHA-256 hash, scoped to accounts by name."""

    name = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    all_accounts = models.BooleanField(default=False)
    account_names = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "martingale_api_tokens"
        ordering = ["name"]

    def __str__(self):
        return self.name

    def covers(self, account_name: str) -> bool:
        return self.all_accounts or account_name in self.account_names


class StatsChange(models.Model):
    """What a change of a trade or a lane did to the statistics (lanes.summary): appended by
    database triggers on martingale_trades and martingale_lanes in the transaction of the change,
    and folded into ``StatsBucket`` rows by ``lanes.summary.roll_up``. Never written by the code.

    One row takes a row's old contribution away (``n`` = -1) or adds its new one (``n`` = 1), or
    (a backfill) adds many: ``kind`` "t" for a trade opened in the quarter-hour ``slot`` (epoch
    seconds, UTC), "l" for a lane created in it; ``level`` -1 for none, ``status``/``outcome`` ""
    for none; ``amount`` the trade's profit or the lane's total_invested, ``payout`` the lane's
    total_potential_payout, in cents.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=1)
    slot = models.BigIntegerField()
    level = models.IntegerField()
    symbol = models.CharField(max_length=50)
    status = models.CharField(max_length=20)
    outcome = models.CharField(max_length=20)
    n = models.IntegerField()
    amount = models.BigIntegerField()
    payout = models.BigIntegerField()

    class Meta:
        db_table = "martingale_stats_changes"

    def __str__(self):
        return f"{self.kind} {self.slot} {self.n:+d}"


class StatsBucket(models.Model):
    """The statistics' running totals (lanes.summary): trades by the UTC quarter-hour, hour and
    day (``width`` seconds from ``slot``, epoch seconds) they opened in, lanes by the one they
    were created in; each ``dim`` keeps one breakdown: "s" by status (and outcome), "l" by level
    too, "y" by symbol too (the unused key columns hold -1 or ""). Written only by
    ``lanes.summary.roll_up`` and ``rebuild``."""

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=1)
    dim = models.CharField(max_length=1)
    width = models.IntegerField()
    slot = models.BigIntegerField()
    level = models.IntegerField()
    symbol = models.CharField(max_length=50)
    status = models.CharField(max_length=20)
    outcome = models.CharField(max_length=20)
    n = models.BigIntegerField()
    amount = models.BigIntegerField()
    payout = models.BigIntegerField()

    class Meta:
        db_table = "martingale_stats_buckets"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "dim", "width", "slot", "level", "symbol", "status", "outcome"], name="stats_bucket_key"
            ),
        ]

    def __str__(self):
        return f"{self.kind}/{self.dim} {self.width}s@{self.slot}"


class RiskChange(models.Model):
    """A settled trade's stretch that changed (lanes.risk_blocks): appended by database triggers
    on martingale_trades when a trade with a ``settled_at`` is written or its settlement changes,
    naming its account and the UTC quarter-hour (``slot``, epoch seconds) it settled in; taken by
    ``lanes.risk_blocks.roll_up``, which sums that quarter-hour up again. Never written by the code."""

    id = models.BigAutoField(primary_key=True)
    account_id = models.BigIntegerField()
    slot = models.BigIntegerField()

    class Meta:
        db_table = "martingale_risk_changes"

    def __str__(self):
        return f"account {self.account_id} {self.slot}"


class RiskBlock(models.Model):
    """The settled trades of one account (``account_id`` 0: of all accounts) in one UTC
    quarter-hour or day of settlement (``width`` seconds from ``slot``, epoch seconds), summed up
    as an ``engine.Stretch`` (profits in cents), with the range of their ``opened_at`` (epoch
    microseconds): the risk guard's drawdown and losing run of a window come from these (SPEC §11).
    Written only by ``lanes.risk_blocks``."""

    id = models.BigAutoField(primary_key=True)
    account_id = models.BigIntegerField()
    width = models.IntegerField()
    slot = models.BigIntegerField()
    n = models.BigIntegerField()
    total = models.BigIntegerField()
    high = models.BigIntegerField()
    low = models.BigIntegerField()
    drawdown = models.BigIntegerField()
    lead = models.BigIntegerField()
    tail = models.BigIntegerField()
    longest = models.BigIntegerField()
    won = models.BooleanField()
    opened_min = models.BigIntegerField()
    opened_max = models.BigIntegerField()

    class Meta:
        db_table = "martingale_risk_blocks"
        constraints = [models.UniqueConstraint(fields=["account_id", "width", "slot"], name="risk_block_key")]

    def __str__(self):
        return f"account {self.account_id} {self.width}s@{self.slot}"
