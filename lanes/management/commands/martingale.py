"""`python manage.py martingale …`: the description's management script as one Django command.

Each subcommand parses its arguments, calls one service or selector and prints the answer as an
aligned table (or JSON with ``--json``). Values are handed to the services as text, so a bad value
is refused by the same validation as the API, with one line naming the field and its range, and
nothing is changed. Run ``python manage.py martingale examples`` for a tour.
"""
from __future__ import annotations

import getpass
import json
import re
from datetime import datetime
from typing import Any, Iterable, Optional

from django.conf import settings as django_settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from lanes import checks, engine, selectors, services
from lanes.adapters import engine_settings
from lanes.ranges import (
    ACCOUNT, LOCK_MINUTES, PAYOUT, RESULTS, RISK_SETTINGS, SETTINGS, STATS_DAYS, Choice, Field, Flag, InvalidInput, Off,
    Whole,
)
from lanes.validation import clean
from lanes.serializers import account_json, lane_json, lock_json, money, settings_json, trade_json
from lanes.simulator import cli as simulator_cli

SETTING_OPTIONS = {
    "concurrent": ("concurrent_trading_enabled", "--concurrent"),
    "max_lanes": ("max_concurrent_lanes", "--max-lanes"),
    "strategy": ("lane_assignment_strategy", "--strategy"),
    "auto_create": ("auto_create_lanes", "--auto-create"),
    "cool_down": ("cool_down_seconds", "--cool-down"),
    "max_daily_lanes": ("max_daily_lanes", "--max-daily-lanes"),
}
ACCOUNT_OPTIONS = {
    "base_amount": ("base_amount", "--base-amount"),
    "multiplier": ("martingale_multiplier", "--multiplier"),
    "max_level": ("martingale_max_level", "--max-level"),
    "payout_rate": ("payout_rate", "--payout-rate"),
    "balance": ("balance", "--balance"),
    "demo": ("is_demo", "--demo"),
    "enabled": ("enabled", "--enabled"),
    "martingale": ("martingale_enabled", "--martingale"),
    "enhanced": ("enhanced_martingale_enabled", "--enhanced"),
}
# The risk guard's settings (SPEC §11), set with `account set` (and `configure`) beside the others.
RISK_OPTIONS = {
    "ladder_mode": ("ladder_mode", "--ladder-mode"),
    "max_stake": ("max_stake", "--max-stake"),
    "max_exposure": ("max_exposure", "--max-exposure"),
    "daily_stop_loss": ("daily_stop_loss", "--daily-stop-loss"),
    "daily_take_profit": ("daily_take_profit", "--daily-take-profit"),
    "max_exhausted_lanes": ("max_exhausted_lanes", "--max-exhausted-lanes"),
    "exhausted_window_hours": ("exhausted_window_hours", "--exhausted-window-hours"),
    "lock_minutes": ("lock_minutes", "--lock-minutes"),
}
OPTION_OF_FIELD = {
    field: option for field, option in [*SETTING_OPTIONS.values(), *ACCOUNT_OPTIONS.values(), *RISK_OPTIONS.values()]
}
OPTION_OF_FIELD["minutes"] = "--minutes"
OPTION_OF_FIELD["enhanced_martingale_enabled"] = "--enhanced/--legacy"

EXAMPLES = """\
Every account with its settings, then the active lanes:
  python manage.py martingale list

Add an account (base stake 1.00, ×2 per level, 7 levels), or one in legacy mode:
  python manage.py martingale account add pelly_demo --base-amount 1.00 --multiplier 2.00 --max-level 7
  python manage.py martingale account add old_bot --legacy
  python manage.py martingale account set pelly_demo --balance 500.00 --enabled true

Basic setup: concurrent trading with 3 lanes, oldest lane first:
  python manage.py martingale configure pelly_demo --concurrent true --max-lanes 3 --strategy fifo

Conservative setup: one trade at a time, at most 5 new lanes a day:
  python manage.py martingale configure pelly_demo --concurrent false --auto-create true --max-daily-lanes 5

Aggressive setup: high concurrency with round-robin:
  python manage.py martingale configure pelly_demo --concurrent true --max-lanes 7 --strategy round_robin --max-daily-lanes 20

Statistics of the last 7 days (or 1 day, all accounts, as JSON):
  python manage.py martingale stats --account pelly_demo --days 7
  python manage.py martingale stats --days 1 --json

What is running now:
  python manage.py martingale status

Force-complete a stuck lane, or cancel it:
  python manage.py martingale complete LANE_ID
  python manage.py martingale complete LANE_ID --status cancelled

Enter the result of an open trade whose bot lost track of it (as the broker shows it):
  python manage.py martingale settle TRADE_ID loss
  python manage.py martingale settle TRADE_ID win --payout 1.85

Switch martingale off, and complete the active lanes in the same change:
  python manage.py martingale account set pelly_demo --martingale false --complete-lanes

Risk guard: stakes that recover the losses at the payout, at most 50.00 a stake, at most 200.00 at
risk, a lock for the rest of the day after a loss of 100.00, and for 2 hours after 3 exhausted lanes
within 24 hours (off turns one off):
  python manage.py martingale account set pelly_demo --ladder-mode recover --max-stake 50.00 --max-exposure 200.00
  python manage.py martingale account set pelly_demo --daily-stop-loss 100.00 --max-exhausted-lanes 3 --lock-minutes 120
  python manage.py martingale account set pelly_demo --max-exposure off

Pause an account for 30 minutes (trade requests are refused, results still land), and end it:
  python manage.py martingale lock pelly_demo --minutes 30 --note "news at 14:30"
  python manage.py martingale unlock pelly_demo
  python manage.py martingale locks pelly_demo

Emergency stop (no new lanes), and reset (complete every active lane):
  python manage.py martingale emergency-stop pelly_demo
  python manage.py martingale reset pelly_demo

A bearer token for a bot, for one account (omit --account for every account):
  python manage.py martingale token create bot-1 --account pelly_demo
"""


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _reason(exc: InvalidInput) -> str:
    return "; ".join(
        f"{field} ({OPTION_OF_FIELD[field]}): {message}" if field in OPTION_OF_FIELD else f"{field}: {message}"
        for field, message in exc.errors.items()
    )


def _values(options: dict, names: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return {field: options[key] for key, (field, _) in names.items() if options.get(key) is not None}


def _metavar(field: Field) -> str:
    if isinstance(field, Off):
        return _metavar(field.inner) + "|off"
    if isinstance(field, Flag):
        return "true|false"
    if isinstance(field, Choice):
        return "|".join(field.choices)
    return "N" if isinstance(field, Whole) else "X"


def _help(name: str, field: Field) -> str:
    """An option's help: the field, what it does and its range (lanes.ranges)."""
    default = f", default {field.default}" if field.default is not None else ""
    return f"{name}: {field.help} ({field.describe()}{default})".replace("%", "%%")


NUMBER = re.compile(r"-?[\d,]+(\.\d+)?%?")


def _table(headers: list[str], rows: Iterable[list[Any]]) -> list[str]:
    """Aligned columns; a column of numbers is right-aligned."""
    cells = [[("-" if value is None else str(value)) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [bool(cells) and all(NUMBER.fullmatch(row[i]) or row[i] == "-" for row in cells) for i in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in cells)]


def _pairs(pairs: list[tuple[str, Any]]) -> list[str]:
    """Label and value lines, the values right-aligned in one column."""
    width = max(len(label) for label, _ in pairs)
    values = [str(value) for _, value in pairs]
    value_width = max(len(value) for value in values)
    return [f"{label.ljust(width)}  {value.rjust(value_width)}" for (label, _), value in zip(pairs, values)]


def _on(value: bool) -> str:
    return "on" if value else "off"


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _short_time(value: Optional[str]) -> Optional[str]:
    """An ISO time from the JSON shapes, in the project's TIME_ZONE, to the second."""
    return timezone.localtime(datetime.fromisoformat(value)).strftime("%Y-%m-%d %H:%M:%S %Z") if value else value


def _violation_line(violation: checks.Violation) -> str:
    where = [
        f"{name}={value}"
        for name, value in (("account", violation.account), ("lane", violation.lane_id), ("trade", violation.trade_id))
        if value is not None
    ]
    return f"{violation.check} {' '.join(where)}: {violation.message}"


def _check_summary(report: checks.Report) -> str:
    """One line: what was read, what could not be judged, and the verdict."""
    counted = report.checked
    skipped = counted["skipped"]
    scope = (
        f"{counted['accounts']} accounts, {counted['lanes']} lanes, {counted['trades']} trades, "
        f"{counted['events']} events (last {counted['days']} days, active lanes and live trades of any age); "
        f"not judged: {counted['unverifiable_lanes']} lanes adopted from the old bot (totals, history), "
        f"over a limit lowered since: {skipped['open_trades_within_slots']} slot, "
        f"{skipped['active_lanes_within_limit']} active-lane, {skipped['lanes_per_day_within_limit']} daily"
    )
    if report.ok:
        return f"all {counted['checks']} checks passed on {scope}"
    failed = sorted({v.check for v in report.violations}, key=list(checks.CHECKS).index)
    return f"{len(report.violations)} violations of {len(failed)} of {counted['checks']} checks ({', '.join(failed)}) on {scope}"


class Command(BaseCommand):
    help = "Manage the Martingale lanes: accounts, settings, statistics, status, lanes and tokens."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)

        p = sub.add_parser("list", help="every account with its settings, then the active lanes")
        p.add_argument("--json", action="store_true", help="print JSON")

        p = sub.add_parser("configure", help="change an account's trading settings")
        p.add_argument("account", metavar="ACCOUNT")
        for key, (field, option) in SETTING_OPTIONS.items():
            p.add_argument(option, dest=key, metavar=_metavar(SETTINGS[field]), help=_help(field, SETTINGS[field]))
        for key, (field, option) in RISK_OPTIONS.items():
            spec = RISK_SETTINGS[field]
            p.add_argument(option, dest=key, metavar=_metavar(spec), help=_help(field, spec))

        p = sub.add_parser("stats", help="statistics of the last N days")
        p.add_argument("--account", metavar="ACCOUNT", help="one account (default: every account)")
        p.add_argument("--days", metavar="N", default=str(STATS_DAYS.default), help=_help("days", STATS_DAYS))
        p.add_argument("--json", action="store_true", help="print JSON")

        p = sub.add_parser("complete", help="force-complete or cancel an active lane")
        p.add_argument("lane_id", metavar="LANE_ID")
        p.add_argument("--status", metavar="completed|cancelled", default="completed")

        p = sub.add_parser("settle", help="enter the result of an open trade by hand (its bot lost track of it)")
        p.add_argument("trade_id", metavar="TRADE_ID")
        p.add_argument("result", metavar="|".join(RESULTS), help="the result the broker shows")
        p.add_argument("--payout", metavar="X", help=PAYOUT.help)

        p = sub.add_parser("status", help="what every enabled account is doing now")
        p.add_argument("--json", action="store_true", help="print JSON")

        sub.add_parser("examples", help="usage examples")
        simulator_cli.add_parser(sub)

        p = sub.add_parser("reset", help="complete every active lane of an account")
        p.add_argument("account", metavar="ACCOUNT")
        p.add_argument("--status", choices=("completed", "cancelled"), default="completed")

        p = sub.add_parser("emergency-stop", help="stop creating lanes for an account (auto_create_lanes off)")
        p.add_argument("account", metavar="ACCOUNT")

        p = sub.add_parser("lock", help="pause an account: trade requests are refused until the lock ends or is released")
        p.add_argument("account", metavar="ACCOUNT")
        p.add_argument("--minutes", metavar="N", required=True, help=_help("minutes", LOCK_MINUTES))
        p.add_argument("--note", metavar="TEXT", default="", help="why, for the audit trail")

        p = sub.add_parser("unlock", help="release every active lock of an account at once")
        p.add_argument("account", metavar="ACCOUNT")

        p = sub.add_parser("locks", help="an account's locks, active first")
        p.add_argument("account", metavar="ACCOUNT")
        p.add_argument("--json", action="store_true", help="print JSON")

        p = sub.add_parser("account", help="add or change an account")
        account_sub = p.add_subparsers(dest="account_action", metavar="add|set", required=True)
        add = account_sub.add_parser("add", help="add an account")
        change = account_sub.add_parser("set", help="change an account")
        for q in (add, change):
            q.add_argument("name", metavar="NAME")
            for key in ("base_amount", "multiplier", "max_level", "payout_rate", "balance", "demo"):
                field, option = ACCOUNT_OPTIONS[key]
                q.add_argument(option, dest=key, metavar=_metavar(ACCOUNT[field]), help=_help(field, ACCOUNT[field]))
            q.add_argument("--legacy", action="store_true", help="legacy mode (enhanced_martingale_enabled false)")
        for key in ("enabled", "martingale", "enhanced"):
            field, option = ACCOUNT_OPTIONS[key]
            change.add_argument(option, dest=key, metavar="true|false", help=_help(field, ACCOUNT[field]))
        for key, (field, option) in RISK_OPTIONS.items():
            spec = RISK_SETTINGS[field]
            change.add_argument(option, dest=key, metavar=_metavar(spec), help=_help(field, spec))
        change.add_argument(
            "--complete-lanes",
            action="store_true",
            help="also complete (force-complete) every active lane of the account in the same change",
        )

        p = sub.add_parser("check", help="verify the contract's invariants on the database; exit 1 naming each violation")
        p.add_argument("--account", metavar="ACCOUNT", help="one account (default: every account)")
        p.add_argument("--days", metavar="N", default=str(checks.CHECK_DAYS.default), help=_help("days", checks.CHECK_DAYS))
        p.add_argument("--json", action="store_true", help="print JSON")

        p = sub.add_parser("token", help="API tokens for bots")
        token_sub = p.add_subparsers(dest="token_action", metavar="create", required=True)
        create = token_sub.add_parser("create", help="create a bearer token (printed once, on the last line)")
        create.add_argument("name", metavar="NAME")
        create.add_argument(
            "--account", dest="accounts", action="append", metavar="ACCOUNT", help="repeat for more; none = every account"
        )

    def handle(self, *args, subcommand: str, **options):
        name = subcommand.replace("-", "_")
        if subcommand in ("account", "token"):
            name += "_" + options[f"{subcommand}_action"]
        try:
            getattr(self, f"do_{name}")(options)
        except InvalidInput as exc:
            raise CommandError(_reason(exc)) from None
        except (services.NotFound, services.Forbidden, services.EngineUnavailable, engine.Refused) as exc:
            raise CommandError(" ".join(str(exc).split())) from None

    def out(self, lines: Iterable[str] | str = "") -> None:
        for line in [lines] if isinstance(lines, str) else lines:
            self.stdout.write(line)

    def out_json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2))

    # --- Subcommands ------------------------------------------------------------------------------

    def do_list(self, options):
        accounts = selectors.account_list()
        lanes = list(selectors.lane_iter(status="active"))
        if options["json"]:
            self.out_json(
                {
                    "accounts": [{**account_json(a), "settings": settings_json(a.worker_name, a.trading_settings)} for a in accounts],
                    "active_lanes": [lane_json(lane) for lane in lanes],
                }
            )
            return
        self.out(f"Accounts ({len(accounts)})")
        if accounts:
            self.out(
                _table(
                    ["ACCOUNT", "ENABLED", "DEMO", "MODE", "MARTINGALE", "BASE", "MULTIPLIER", "MAX LEVEL", "PAYOUT RATE", "BALANCE"],
                    [
                        [
                            a.worker_name, _on(a.enabled), "yes" if a.is_demo else "no",
                            "enhanced" if a.enhanced_martingale_enabled else "legacy", _on(a.martingale_enabled),
                            money(a.base_amount), money(a.martingale_multiplier), a.martingale_max_level,
                            f"{a.payout_rate:.4f}", money(a.balance),
                        ]
                        for a in accounts
                    ],
                )
            )
            self.out()
            self.out("Settings")
            self.out(self._settings_table([settings_json(a.worker_name, a.trading_settings) for a in accounts]))
            self.out()
            self.out("Risk guard")
            self.out(self._risk_table([settings_json(a.worker_name, a.trading_settings) for a in accounts]))
        self.out()
        self.out(f"Active lanes ({len(lanes)})")
        if lanes:
            self.out(self._lanes_table([lane_json(lane) for lane in lanes], with_account=True))

    def do_configure(self, options):
        values = {**_values(options, SETTING_OPTIONS), **_values(options, RISK_OPTIONS)}
        if not values:
            raise CommandError(
                "nothing to change: give at least one of "
                + ", ".join(option for _, option in [*SETTING_OPTIONS.values(), *RISK_OPTIONS.values()])
            )
        services.settings_update(account_name=options["account"], values=values, actor=_actor(), from_text=True)
        self.out(f"Settings of {options['account']} saved.")
        self.out(self._settings_table([selectors.settings_get(account_name=options["account"])]))

    def do_stats(self, options):
        stats = selectors.stats_with_risk_get(account=options["account"], days=options["days"])
        if options["json"]:
            self.out_json(stats)
            return
        scope = f"account {stats['account']}" if stats["account"] else "all accounts"
        self.out(f"Statistics of {scope}, last {stats['days']} days ({_short_time(stats['since'])} to {_short_time(stats['until'])})")
        self.out(
            _pairs(
                [
                    ("lanes created", stats["lanes_created"]),
                    ("  active", stats["lanes_active"]),
                    ("  recovered", stats["lanes_recovered"]),
                    ("  exhausted", stats["lanes_exhausted"]),
                    ("  cancelled", stats["lanes_cancelled"]),
                    ("  force-completed", stats["lanes_force_completed"]),
                    ("recovery rate", _percent(stats["recovery_rate"])),
                    ("average level", f"{stats['avg_level']:.2f}"),
                    ("highest level", stats["max_level"]),
                    ("total invested", stats["total_invested"]),
                    ("total potential payout", stats["total_potential_payout"]),
                    ("trades", stats["trades"]),
                    ("  wins", stats["wins"]),
                    ("  losses", stats["losses"]),
                    ("  draws", stats["draws"]),
                    ("win rate", _percent(stats["win_rate"])),
                    ("net profit", stats["net_profit"]),
                    ("  of recovered lanes", stats["net_profit_by_outcome"]["recovered"]),
                    ("  of exhausted lanes", stats["net_profit_by_outcome"]["exhausted"]),
                    ("recovered at a loss", stats["lanes_recovered_at_loss"]),
                    ("max drawdown", stats["max_drawdown"]),
                    ("longest losing run", stats["max_consecutive_losses"]),
                    ("exposure now", stats["exposure"]),
                ]
            )
        )
        self.out()
        self.out("By level")
        self.out(
            _table(
                ["LEVEL", "TRADES", "WINS", "LOSSES", "DRAWS", "NET PROFIT", "RECOVERED HERE"],
                [[r["level"], r["trades"], r["wins"], r["losses"], r["draws"], r["net_profit"], r["lanes_recovered"]] for r in stats["by_level"]],
            )
        )
        self.out()
        self.out("By symbol")
        self.out(
            _table(
                ["SYMBOL", "TRADES", "WINS", "LOSSES", "DRAWS", "WIN RATE", "NET PROFIT", "LANES"],
                [
                    [r["symbol"], r["trades"], r["wins"], r["losses"], r["draws"], _percent(r["win_rate"]), r["net_profit"], r["lanes_created"]]
                    for r in stats["by_symbol"]
                ],
            )
        )
        self.out()
        self.out("Daily")
        self.out(
            _table(
                ["DATE", "TRADES", "WINS", "LOSSES", "DRAWS", "NET PROFIT", "LANES", "RECOVERED", "EXHAUSTED"],
                [
                    [r["date"], r["trades"], r["wins"], r["losses"], r["draws"], r["net_profit"], r["lanes_created"], r["lanes_recovered"], r["lanes_exhausted"]]
                    for r in stats["daily"]
                ],
            )
        )

    def do_complete(self, options):
        lane = services.lane_force_complete(lane_id=options["lane_id"], status=options["status"], actor=_actor())
        self.out(f"Lane {lane.lane_id} ({lane.account_name} {lane.symbol}, level {lane.current_level}) is {lane.status}: outcome {lane.outcome}.")

    def do_settle(self, options):
        result = clean(Choice(RESULTS, None), options["result"], "result", from_text=True)
        payout = None if options["payout"] is None else clean(PAYOUT, options["payout"], "payout", from_text=True)
        outcome = services.trade_settle(
            trade_id=options["trade_id"], result=result, payout=payout, actor=_actor(), by_hand=True
        )
        trade = outcome.trade
        if not outcome.changed:
            self.out(f"Trade {trade.trade_id} was already settled as {trade.status}; nothing changed.")
            return
        self.out(
            f"Trade {trade.trade_id} ({trade.account.worker_name} {trade.symbol}, {trade.kind} level {trade.level}, "
            f"stake {money(trade.amount)}) settled by hand: {trade.status}, payout {money(trade.payout)}, "
            f"profit {money(trade.profit)}."
        )
        lane = outcome.lane
        if lane is not None:
            state = f"next stake {money(lane.current_amount)} at level {lane.current_level}" if lane.status == "active" else f"outcome {lane.outcome}"
            self.out(f"Lane {lane.lane_id}: {lane.status}, {state}.")

    def do_status(self, options):
        now = timezone.now()
        status = selectors.status_all(now=now)
        counts = selectors.health_counts(now=now)
        hours, seconds = django_settings.MARTINGALE_STUCK_LANE_HOURS, django_settings.MARTINGALE_TRADE_TIMEOUT_SECONDS
        stuck = [lane_json(lane) for lane in selectors.stuck_lanes(now=now)]
        overdue = [trade_json(trade, account_name=trade.account_name) for trade in selectors.overdue_trades(now=now)]
        if options["json"]:
            self.out_json(
                {
                    **status,
                    "stuck_lanes": {"count": counts["stuck_lanes"], "after_hours": hours, "lanes": stuck},
                    "overdue_trades": {"count": counts["overdue_trades"], "after_seconds": seconds, "trades": overdue},
                }
            )
            return
        self.out(f"Status at {_short_time(status['generated_at'])} ({len(status['accounts'])} enabled accounts)")
        self.out(
            f"Alarms: {counts['stuck_lanes']} stuck lanes (no change for {hours:g} h), "
            f"{counts['overdue_trades']} overdue trades (open over {seconds} s)"
        )
        if stuck:
            self.out("  " + line for line in self._lanes_table(stuck, with_account=True, last_change=True))
        if overdue:
            self.out(
                "  " + line
                for line in _table(
                    ["OVERDUE TRADE", "ACCOUNT", "SYMBOL", "KIND", "LEVEL", "STAKE", "LANE", "OPENED"],
                    [
                        [t["trade_id"], t["account"], t["symbol"], t["kind"], t["level"], t["amount"], t["lane_id"], _short_time(t["opened_at"])]
                        for t in overdue
                    ],
                )
            )
        for item in status["accounts"]:
            account, settings = item["account"], item["settings"]
            self.out()
            self.out(
                f"{account['worker_name']}: {item['mode']}, martingale {_on(account['martingale_enabled'])}, "
                f"balance {account['balance']}, base {account['base_amount']} x{account['martingale_multiplier']} "
                f"up to level {account['martingale_max_level']}"
            )
            self.out(
                f"  slots {len(item['open_trades'])}/{item['slots']} busy, {len(item['queued_trades'])} queued; "
                f"active lanes {len(item['active_lanes'])}/{settings['max_concurrent_lanes']}; "
                f"strategy {settings['lane_assignment_strategy']}, auto-create {_on(settings['auto_create_lanes'])}, "
                f"cool-down {settings['cool_down_seconds']}s"
            )
            self.out(
                f"  today: {item['lanes_created_today']}/{settings['max_daily_lanes']} lanes created, "
                f"net profit {item['net_profit_today']}; worst-case exposure {item['worst_case_exposure']} "
                f"(one ladder {item['lane_worst_case']})"
            )
            headroom = "" if item["max_exposure"] is None else f" of max {item['max_exposure']}, headroom {item['exposure_headroom']}"
            self.out(f"  exposure {item['exposure']}{headroom}; ladder mode {settings['ladder_mode']}")
            lock = item["active_lock"]
            if lock is not None:
                self.out(
                    f"  LOCKED until {_short_time(lock['locked_until'])} ({lock['reason']}{': ' + lock['note'] if lock['note'] else ''}); "
                    f"lock {lock['lock_id']}"
                )
            if item["active_lanes"]:
                self.out(["  " + line for line in self._lanes_table(item["active_lanes"], with_account=False)])
            trades = item["open_trades"] + item["queued_trades"]
            if trades:
                self.out(
                    "  " + line
                    for line in _table(
                        ["TRADE", "STATUS", "SYMBOL", "KIND", "LEVEL", "STAKE", "QUEUE", "LANE"],
                        [
                            [t["trade_id"], t["status"], t["symbol"], t["kind"], t["level"], t["amount"], t["queue_position"], t["lane_id"]]
                            for t in trades
                        ],
                    )
                )

    def do_examples(self, options):
        self.stdout.write(EXAMPLES, ending="")

    def do_simulate(self, options):
        simulator_cli.run(self, options)

    def do_reset(self, options):
        name = options["account"]
        try:
            lanes = services.account_reset(account_name=name, status=options["status"], actor=_actor())
        except services.NotFound:
            raise CommandError(f"account {name} not found") from None
        if not lanes:
            self.out(f"{name} has no active lanes.")
            return
        self.out(f"{len(lanes)} active lanes of {name} are now {options['status']}: " + ", ".join(lane.lane_id for lane in lanes))

    def do_emergency_stop(self, options):
        services.account_emergency_stop(account_name=options["account"], actor=_actor())
        self.out(
            f"Emergency stop for {options['account']}: auto_create_lanes is off, no new lanes will be created. "
            "Active lanes carry on; use `reset` to complete them."
        )

    def do_lock(self, options):
        lock = services.account_lock(
            account_name=options["account"], minutes=options["minutes"], note=options["note"], actor=_actor(), from_text=True
        )
        self.out(
            f"Account {options['account']} is locked until {_short_time(lock.locked_until.isoformat())} (lock {lock.lock_id}): "
            "trade requests are refused, queued trades wait, open trades still take results."
        )

    def do_unlock(self, options):
        released = services.account_unlock(account_name=options["account"], actor=_actor())
        if not released:
            self.out(f"{options['account']} has no active lock.")
            return
        self.out(f"{len(released)} lock(s) of {options['account']} released: " + ", ".join(lock.lock_id for lock in released))

    def do_locks(self, options):
        now = timezone.now()
        locks = [lock_json(lock, account_name=options["account"], now=now) for lock in selectors.lock_list(account_name=options["account"], now=now)]
        if options["json"]:
            self.out_json({"locks": locks})
            return
        self.out(f"Locks of {options['account']} ({len(locks)})")
        if locks:
            self.out(
                _table(
                    ["LOCK ID", "REASON", "ACTIVE", "CREATED", "UNTIL", "RELEASED", "BY", "NOTE"],
                    [
                        [
                            lock["lock_id"], lock["reason"], "yes" if lock["active"] else "no", _short_time(lock["created_at"]),
                            _short_time(lock["locked_until"]), _short_time(lock["released_at"]), lock["released_by"] or None,
                            lock["note"] or None,
                        ]
                        for lock in locks
                    ],
                )
            )

    def do_account_add(self, options):
        values = _values(options, ACCOUNT_OPTIONS)
        if options["legacy"]:
            values["enhanced_martingale_enabled"] = False
        account = services.account_create(name=options["name"], values=values, from_text=True)
        self.out(f"Account {account.worker_name} added.")
        self._print_account(account)

    def do_account_set(self, options):
        values = _values(options, ACCOUNT_OPTIONS)
        risk_values = _values(options, RISK_OPTIONS)
        if options["legacy"]:
            if values.get("enhanced_martingale_enabled", "false").strip().lower() != "false":
                raise CommandError("--legacy and --enhanced true contradict each other")
            values["enhanced_martingale_enabled"] = False
        if not values and not risk_values and not options["complete_lanes"]:
            raise CommandError(
                "nothing to change: give at least one of "
                + ", ".join(
                    [option for _, option in [*ACCOUNT_OPTIONS.values(), *RISK_OPTIONS.values()]] + ["--legacy", "--complete-lanes"]
                )
            )
        change = services.account_configure(
            account_name=options["name"], account_values=values, settings_values=risk_values, actor=_actor(), from_text=True,
            complete_active_lanes=options["complete_lanes"],
        )
        self.out(f"Account {change.account.worker_name} saved.")
        if change.completed_lanes:
            self.out(
                f"{len(change.completed_lanes)} active lane(s) force-completed: "
                + ", ".join(lane.lane_id for lane in change.completed_lanes)
            )
        self._print_account(change.account)
        if risk_values:
            self.out(self._risk_table([selectors.settings_get(account_name=change.account.worker_name)]))
        for warning in change.warnings:
            self.stderr.write(
                f"Warning: {warning['message']}: run `martingale reset {change.account.worker_name}`, or repeat with --complete-lanes."
            )

    def do_check(self, options):
        report = checks.run_checks(account=options["account"], days=options["days"])
        if options["json"]:
            self.out_json(report.as_json())
        else:
            self.out(_violation_line(v) for v in report.violations)
        summary = _check_summary(report)
        if not report.ok:
            raise CommandError(summary)
        if not options["json"]:
            self.out(summary)

    def do_token_create(self, options):
        token, raw = services.token_create(name=options["name"], account_names=options["accounts"] or ())
        scope = "every account" if token.all_accounts else "accounts " + ", ".join(token.account_names)
        self.out(f"Token {token.name} created for {scope}. It is shown once, on the next line:")
        self.out(raw)

    # --- Printing -----------------------------------------------------------------------------------

    def _settings_table(self, settings: list[dict]) -> list[str]:
        return _table(
            ["ACCOUNT", "CONCURRENT", "MAX LANES", "STRATEGY", "AUTO-CREATE", "COOL-DOWN S", "MAX DAILY LANES"],
            [
                [
                    s["account"], _on(s["concurrent_trading_enabled"]), s["max_concurrent_lanes"], s["lane_assignment_strategy"],
                    _on(s["auto_create_lanes"]), s["cool_down_seconds"], s["max_daily_lanes"],
                ]
                for s in settings
            ],
        )

    def _risk_table(self, settings: list[dict]) -> list[str]:
        def off(value):
            return "off" if value is None else value

        return _table(
            ["ACCOUNT", "LADDER MODE", "MAX STAKE", "MAX EXPOSURE", "DAILY STOP-LOSS", "DAILY TAKE-PROFIT", "MAX EXHAUSTED", "WINDOW H", "LOCK MIN"],
            [
                [
                    s["account"], s["ladder_mode"], off(s["max_stake"]), off(s["max_exposure"]), off(s["daily_stop_loss"]),
                    off(s["daily_take_profit"]), off(s["max_exhausted_lanes"]), s["exhausted_window_hours"], s["lock_minutes"],
                ]
                for s in settings
            ],
        )

    def _lanes_table(self, lanes: list[dict], *, with_account: bool, last_change: bool = False) -> list[str]:
        headers = [
            "LANE ID", *(["ACCOUNT"] if with_account else []), "SYMBOL", "LEVEL", "STAKE", "INVESTED", "POTENTIAL",
            "NET PROFIT", "AT RISK", "MODE", "OPEN TRADE", "CREATED",
        ]
        return _table(
            headers + (["LAST CHANGE"] if last_change else []),
            [
                [
                    lane["lane_id"], *([lane["account_name"]] if with_account else []), lane["symbol"],
                    f"{lane['current_level']}/{lane['max_level']}", lane["current_amount"], lane["total_invested"],
                    lane["total_potential_payout"], lane["net_profit"], lane["remaining_risk"], lane["ladder_mode"],
                    lane["open_trade_id"], _short_time(lane["created_at"]),
                    *([_short_time(lane["updated_at"])] if last_change else []),
                ]
                for lane in lanes
            ],
        )

    def _print_account(self, account) -> None:
        data = account_json(account)
        self.out(
            _table(
                ["FIELD", "VALUE"],
                [[name, data[name]] for name in (
                    "worker_name", "enabled", "is_demo", "enhanced_martingale_enabled", "martingale_enabled", "balance",
                    "base_amount", "martingale_multiplier", "martingale_max_level", "payout_rate",
                )],
            )
        )
        settings = engine_settings(selectors.account_get(account_name=account.worker_name).trading_settings)
        stakes = engine.mode_ladder(
            settings.ladder_mode, account.base_amount, account.martingale_multiplier, account.payout_rate,
            account.martingale_max_level,
        )
        stakes = stakes[: engine.last_level(stakes, settings.max_stake) + 1]
        self.out(
            f"One lane risks {money(sum(stakes[1:], stakes[0]))} before it is exhausted (largest stake {money(stakes[-1])}, "
            f"ladder mode {settings.ladder_mode})."
        )
