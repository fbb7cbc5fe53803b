"""The trader's dashboard (SPEC §9): overview, account, lane, settings and statistics pages,
CSV exports, and the buttons that force-complete a lane, reset an account or stop it.

Reading needs a login; every change needs a staff user, a POST with its CSRF token, and a
confirmation page first. Views parse their input and call one selector or one service.
"""
from __future__ import annotations

import csv
import json
from dataclasses import replace
from functools import wraps
from typing import Any, Iterable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods

from settings_app.forms import STAKE_FIELDS, SWITCH_FIELDS, AccountSettingsForm
from settings_app.validation import clean_account_fields, clean_trading_settings

from . import engine, risk, selectors, services
from .adapters import engine_account, engine_settings
from .forms import SettleForm
from .models import LaneStatus, TradeStatus
from .ranges import InvalidInput
from .selectors.exports import LANE_EXPORT_COLUMNS
from .selectors.locks import lock_get
from .selectors.status import account_summaries
from .serializers import settings_json

STATS_PERIODS = (1, 7, 30)


def _actor(request: HttpRequest) -> str:
    return f"dashboard:{request.user.get_username()}"


def staff_required(view):
    """Login first (anonymous users go to the login page), then staff (others get 403)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("changes need a staff user")
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def _account_or_404(name: str):
    try:
        return selectors.account_get(account_name=name)
    except services.NotFound as error:
        raise Http404(str(error)) from None


def _confirm(request: HttpRequest, *, title: str, message: str, button: str, hidden: dict[str, str], back: str):
    """The confirmation page every change goes through: its button POSTs back to the same URL."""
    return render(
        request, "lanes/confirm.html", {"title": title, "message": message, "button": button, "hidden": hidden, "back": back}
    )


# --- Overview -----------------------------------------------------------------------------------


def _overview_context(request: HttpRequest) -> dict[str, Any]:
    search = request.GET.get("q", "").strip()[:100]
    context = selectors.overview_get(page=request.GET.get("page") or 1, search=search)
    context["search"] = search
    context["refresh_seconds"] = settings.MARTINGALE_DASHBOARD_REFRESH_SECONDS
    return context


@require_GET
@login_required
def overview(request: HttpRequest) -> HttpResponse:
    return render(request, "lanes/overview.html", _overview_context(request))


@require_GET
def overview_partial(request: HttpRequest) -> HttpResponse:
    """The part of the overview that htmx polls and swaps in place."""
    if not request.user.is_authenticated:
        if request.headers.get("HX-Request"):
            # Session gone while polling: send the whole page to the login form, not into the table.
            response = HttpResponse(status=204)
            response["HX-Redirect"] = f"{settings.LOGIN_URL}?next={reverse('dashboard:overview')}"
            return response
        return redirect_to_login(request.get_full_path())
    return render(request, "lanes/_overview.html", _overview_context(request))


# --- Account ------------------------------------------------------------------------------------


@require_GET
@login_required
def account_detail(request: HttpRequest, name: str) -> HttpResponse:
    try:
        context = selectors.account_page_get(account_name=name)
    except services.NotFound as error:
        raise Http404(str(error)) from None
    return render(request, "lanes/account.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def account_reset(request: HttpRequest, name: str) -> HttpResponse:
    account = _account_or_404(name)
    back = reverse("dashboard:account", args=[name])
    if request.method == "GET":
        return _confirm(
            request,
            title=f"Reset {name}",
            message=f"Complete every active lane of {name} now? Their losses stay lost; open trades keep running "
            "and their results are recorded on the trades only.",
            button="Reset: complete every active lane",
            hidden={},
            back=back,
        )
    try:
        lanes = services.account_reset(account_name=account.worker_name, actor=_actor(request))
    except services.EngineUnavailable as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{name}: {len(lanes)} active lane(s) force-completed.")
    return redirect(back)


@require_http_methods(["GET", "POST"])
@staff_required
def account_emergency_stop(request: HttpRequest, name: str) -> HttpResponse:
    account = _account_or_404(name)
    back = reverse("dashboard:account", args=[name])
    if request.method == "GET":
        return _confirm(
            request,
            title=f"Emergency stop for {name}",
            message=f"Turn auto-create lanes off for {name}? No new lane is created after a lost base trade; "
            "the active lanes keep trading. Turn it back on in the settings.",
            button="Emergency stop",
            hidden={},
            back=back,
        )
    services.account_emergency_stop(account_name=account.worker_name, actor=_actor(request))
    messages.success(request, f"{name}: emergency stop on (auto-create lanes off).")
    return redirect(back)


@require_http_methods(["GET", "POST"])
@staff_required
def lock_release(request: HttpRequest, lock_id: str) -> HttpResponse:
    """End an account's lock (SPEC §11) at once, after confirming."""
    lock = lock_get(lock_id=lock_id)
    if lock is None:
        raise Http404(f"lock {lock_id} not found")
    name = lock.account.worker_name
    back = _next_url(request, reverse("dashboard:account", args=[name]))
    if request.method == "GET":
        return _confirm(
            request,
            title=f"Release the lock of {name}",
            message=f"End the lock of {name} now ({lock.get_reason_display()}, until "
            f"{timezone.localtime(lock.locked_until):%Y-%m-%d %H:%M %Z})? New trade requests are accepted again "
            "and queued trades may open.",
            button="Release the lock",
            hidden={"next": back},
            back=back,
        )
    services.lock_release(lock_id=lock_id, actor=_actor(request))
    messages.success(request, f"{name}: lock released.")
    return redirect(back)


# --- Lanes --------------------------------------------------------------------------------------


@require_GET
@login_required
def lane_detail(request: HttpRequest, lane_id: str) -> HttpResponse:
    try:
        lane = selectors.lane_get(lane_id=lane_id)
    except services.NotFound as error:
        raise Http404(str(error)) from None
    context = {"lane": lane, "trades": selectors.lane_trades_with_base(lane=lane), "events": selectors.lane_events(lane=lane)}
    return render(request, "lanes/lane.html", context)


LANE_END = {
    LaneStatus.COMPLETED: ("Force-complete", "force-completed"),
    LaneStatus.CANCELLED: ("Cancel", "cancelled"),
}


@require_http_methods(["GET", "POST"])
@staff_required
def lane_complete(request: HttpRequest, lane_id: str) -> HttpResponse:
    try:
        lane = selectors.lane_get(lane_id=lane_id)
    except services.NotFound as error:
        raise Http404(str(error)) from None
    status = request.POST.get("status") if request.method == "POST" else request.GET.get("status", LaneStatus.COMPLETED)
    if status not in LANE_END:
        messages.error(request, "status: must be completed or cancelled")
        return redirect("dashboard:lane", lane_id=lane_id)
    back = _next_url(request, reverse("dashboard:account", args=[lane.account_name]))
    verb, done = LANE_END[status]
    if request.method == "GET" and lane.status != LaneStatus.ACTIVE:
        messages.info(request, f"Lane {lane.lane_id} is already finished ({lane.outcome or lane.status}).")
        return redirect("dashboard:lane", lane_id=lane_id)
    if request.method == "GET":
        return _confirm(
            request,
            title=f"{verb} lane {lane.lane_id}",
            message=f"{verb} the {lane.symbol} lane of {lane.account_name} at level {lane.current_level} of "
            f"{lane.max_level} ({lane.total_invested:,.2f} invested)? It stops taking trades; its losses stay lost.",
            button=f"{verb} lane",
            hidden={"status": status, "next": back},
            back=back,
        )
    try:
        services.lane_force_complete(lane_id=lane_id, status=status, actor=_actor(request))
    except (engine.Refused, services.EngineUnavailable) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Lane {lane_id} {done}.")
    return redirect(back)


# --- Trades ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@staff_required
def trade_settle(request: HttpRequest, trade_id: str) -> HttpResponse:
    """Enter the result of an open trade by hand (its bot lost track of it): the same service as the
    bot's result, with the person in the audit trail."""
    try:
        trade = selectors.trade_get(trade_id=trade_id)
    except services.NotFound as error:
        raise Http404(str(error)) from None
    back = _next_url(request, reverse("dashboard:account", args=[trade.account.worker_name]))
    if trade.status != TradeStatus.OPEN:
        messages.info(request, f"Trade {trade_id} is {trade.status}: only an open trade takes a result.")
        return redirect(back)
    form = SettleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.trade_settle(
                trade_id=trade_id,
                result=form.cleaned_data["result"],
                payout=form.cleaned_data["payout"],
                actor=_actor(request),
                by_hand=True,
            )
        except InvalidInput as error:
            for field, message in error.errors.items():
                form.add_error(field if field in form.fields else None, message)
        except (engine.Refused, services.EngineUnavailable) as error:
            messages.error(request, str(error))
            return redirect(back)
        else:
            messages.success(request, f"Trade {trade_id} settled by hand as {form.cleaned_data['result']}.")
            return redirect(back)
    return render(request, "lanes/settle.html", {"trade": trade, "form": form, "back": back})


# --- Settings and the risk panel ----------------------------------------------------------------


# The risk-guard settings the risk panel draws (SPEC §11): the ladder's mode and its bounds.
RISK_PANEL_SETTINGS = ("ladder_mode", "max_stake", "max_exposure")


def _risk_from_values(account, values) -> risk.RiskReport | None:
    """The risk report of the settings a form holds (not saved yet); None while they are invalid."""
    try:
        stakes = clean_account_fields({name: values.get(name, "") for name in STAKE_FIELDS}, from_text=True)
        given = [name for name in RISK_PANEL_SETTINGS if name in values]  # the others: as stored
        lanes = clean_trading_settings(
            {name: values.get(name, "") for name in ("max_concurrent_lanes", *given)}, from_text=True
        )
    except InvalidInput:
        return None
    switches = {name: values.get(name) in ("on", "true", "True", True) for name in SWITCH_FIELDS}
    rules = engine_account(account)
    rules.base_amount, rules.multiplier = stakes["base_amount"], stakes["martingale_multiplier"]
    rules.max_level, rules.payout_rate = stakes["martingale_max_level"], stakes["payout_rate"]
    rules.martingale_enabled, rules.enhanced = switches["martingale_enabled"], switches["enhanced_martingale_enabled"]
    settings = replace(
        engine_settings(account.trading_settings),
        max_concurrent_lanes=lanes["max_concurrent_lanes"],
        concurrent_trading_enabled=values.get("concurrent_trading_enabled") in ("on", "true", "True", True),
        **{name: lanes[name] for name in given},
    )
    return risk.report(rules, settings, account.balance)


@require_http_methods(["GET", "POST"])
@login_required
def account_settings(request: HttpRequest, name: str) -> HttpResponse:
    account = _account_or_404(name)
    current = settings_json(name, account.trading_settings)
    active = selectors.active_lane_count(account_name=name)
    if request.method == "POST":
        if not request.user.is_staff:
            raise PermissionDenied("changes need a staff user")
        stored = account.trading_settings
        form = AccountSettingsForm(
            request.POST, active_lanes=active,
            current={"ladder_mode": stored.ladder_mode, "max_stake": stored.max_stake} if stored else {},
        )
        if form.is_valid():
            # Every value was validated above, and the service saves them all in one transaction.
            change = services.account_configure(
                account_name=name,
                account_values=form.account_values,
                settings_values=form.settings_values,
                actor=_actor(request),
                complete_active_lanes=form.complete_active_lanes,
            )
            messages.success(request, f"Settings of {name} saved.")
            if change.completed_lanes:
                messages.info(request, f"{len(change.completed_lanes)} active lane(s) force-completed.")
            for warning in change.warnings:
                messages.warning(request, warning["message"] + ": use Reset on this page to complete them.")
            return redirect("dashboard:account", name=name)
        report = _risk_from_values(account, request.POST)
    else:
        form = AccountSettingsForm(initial=AccountSettingsForm.initial_for(account, current), active_lanes=active)
        report = risk.report(engine_account(account), engine_settings(account.trading_settings), account.balance)
    return render(request, "lanes/settings.html", {"account": account, "form": form, **_panel_context(account, report)})


@require_GET
@login_required
def account_settings_risk(request: HttpRequest, name: str) -> HttpResponse:
    """The risk panel of the values the settings form holds, recomputed on the server as the
    trader types (htmx swaps it in)."""
    account = _account_or_404(name)
    return render(
        request, "lanes/_risk_panel.html", {"account": account, **_panel_context(account, _risk_from_values(account, request.GET))}
    )


def _panel_context(account, report: risk.RiskReport | None) -> dict[str, Any]:
    """The risk panel: the report of the settings typed, their ladder beside the other mode's,
    and the account's exposure as it stands with the headroom the typed max_exposure leaves."""
    if report is None:
        return {"risk": None}
    summary = account_summaries([account], timezone.now(), trade_lists=False)[0]
    return {
        "risk": report,
        "ladders": [(report.mode, report.rungs, True), (report.other_mode, report.other_rungs, False)],
        "now": {
            "exposure": summary.exposure,
            "headroom": engine.headroom(replace(summary.settings, max_exposure=report.max_exposure), summary.exposure),
        },
    }


# --- Statistics and exports ---------------------------------------------------------------------


def _period(request: HttpRequest) -> tuple[str, str | None]:
    """The raw ``days`` (checked by the selectors) and ``account`` of a stats or export URL."""
    return request.GET.get("days", "7"), request.GET.get("account") or None


@require_GET
@login_required
def stats(request: HttpRequest) -> HttpResponse:
    days, account = _period(request)
    try:
        data = selectors.stats_get(account=account, days=days)
    except InvalidInput as error:
        messages.error(request, str(error))
        data = selectors.stats_get(account=account, days=7)
    except services.NotFound as error:
        raise Http404(str(error)) from None
    context = {
        "stats": data,
        "periods": STATS_PERIODS,
        "account_names": selectors.account_names_get(),
        "chart_data": {"daily": data["daily"], "by_level": data["by_level"], "by_symbol": data["by_symbol"]},
    }
    return render(request, "lanes/stats.html", context)


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a streaming response."""

    def write(self, value: str) -> str:
        return value


def _csv_cell(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else value


def _csv_response(filename: str, header: Iterable[str], rows: Iterable[tuple]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([_csv_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _export(request: HttpRequest, what: str, selector, header: tuple[str, ...]) -> HttpResponse:
    days, account = _period(request)
    try:
        rows = selector(days=days, account=account)
    except InvalidInput as error:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filename = f"{what}-{account or 'all'}-{days}d-{stamp}.csv"
    return _csv_response(filename, header, rows)


TRADE_HEADER = (
    "trade_id", "account", "symbol", "direction", "status", "kind", "lane_id", "level", "amount", "expected_payout",
    "payout", "profit", "requested_at", "opened_at", "settled_at", "expires_at", "requested_by",
)
EVENT_HEADER = ("id", "created_at", "account", "lane_id", "kind", "trade_id", "actor", "data")
LANE_HEADER = tuple("account" if column == "account_name" else column for column in LANE_EXPORT_COLUMNS)


@require_GET
@login_required
def export_trades(request: HttpRequest) -> HttpResponse:
    return _export(request, "trades", selectors.trades_export, TRADE_HEADER)


@require_GET
@login_required
def export_events(request: HttpRequest) -> HttpResponse:
    return _export(request, "lane-events", selectors.events_export, EVENT_HEADER)


@require_GET
@login_required
def export_lanes(request: HttpRequest) -> HttpResponse:
    """The lanes created in the window with their ladder mode, net profit and remaining risk (SPEC §11)."""
    return _export(request, "lanes", selectors.lanes_export, LANE_HEADER)
