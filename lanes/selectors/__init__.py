"""Every read of the lane engine, for the API, the dashboard, the command line, the Python
functions and the status log, one module per subject:

- ``accounts``: accounts, their settings, what each did today;
- ``lanes``: pages of lanes, one lane with its trades and events;
- ``status``: what each account is doing now (lanes, trades, slots, worst case, warnings);
- ``stats``: statistics of a window of time; ``risk_stats``: the risk guard's (SPEC §11);
- ``dashboard``: the overview and account pages;
- ``exports``: the CSV exports;
- ``trades``: one trade;
- ``alarms``: stuck lanes, overdue trades, accounts with queued trades;
- ``locks``: an account's locks (SPEC §11).

Selectors never write and never open transactions. Each one runs a fixed number of queries,
whatever the number of accounts, lanes or trades. Derived numbers come from ``lanes.engine``.
"""
from .accounts import account_get, account_list, account_names_get, settings_get
from .alarms import health_counts, overdue_trades, queued_account_names, stuck_lanes
from .dashboard import account_page_get, overview_get
from .exports import events_export, lanes_export, trades_export
from .locks import active_locks, lock_list
from .lanes import active_lane_count, lane_events, lane_get, lane_iter, lane_page, lane_trades, lane_trades_with_base
from .risk_stats import risk_stats_get, stats_with_risk_get
from .stats import stats_get
from .status import account_status_get, account_summaries, status_all
from .trades import trade_get

__all__ = [
    "account_get", "account_list", "account_names_get", "settings_get",
    "health_counts", "overdue_trades", "queued_account_names", "stuck_lanes",
    "account_page_get", "overview_get",
    "events_export", "lanes_export", "trades_export",
    "active_locks", "lock_list",
    "active_lane_count", "lane_events", "lane_get", "lane_iter", "lane_page", "lane_trades", "lane_trades_with_base",
    "risk_stats_get", "stats_get", "stats_with_risk_get",
    "account_status_get", "account_summaries", "status_all",
    "trade_get",
]
