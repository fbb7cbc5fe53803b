"""Django admin for the lane engine's tables.

Lanes, trades and lane events are read-only: a lane or a trade changes only through the
services (the admin actions below call them, so the audit log names the admin user), and
the audit trail is append-only. Accounts are saved through the services too, after the form
has checked them with settings_app.validation.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from . import engine, services
from .forms import AccountAdminForm
from .models import Account, AccountLock, ApiToken, Lane, LaneEvent, Trade
from .selectors.lanes import with_open_trade
from .serializers import lane_remaining_risk


def admin_actor(request) -> str:
    return f"admin:{request.user.get_username()}"


def _confirmed(modeladmin, request, queryset, *, title: str, action: str, warning: str):
    """None once the user confirmed on the intermediate page, else that page (like delete_selected)."""
    if request.POST.get("post") == "yes":
        return None
    return TemplateResponse(
        request,
        "admin/lanes/confirm_action.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "action": action,
            "warning": warning,
            "objects": queryset,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        },
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable, never added, changed or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountAdminForm
    list_display = (
        "worker_name", "enabled", "is_demo", "balance", "base_amount", "martingale_multiplier",
        "martingale_max_level", "payout_rate", "martingale_enabled", "enhanced_martingale_enabled", "last_updated",
    )
    list_filter = ("enabled", "is_demo", "martingale_enabled", "enhanced_martingale_enabled")
    search_fields = ("worker_name",)
    date_hierarchy = "created_at"
    readonly_fields = ("legacy_consecutive_losses", "created_at", "last_updated")

    def get_readonly_fields(self, request, obj=None):
        # Lanes, trades and settings refer to the account by name: a name is never changed.
        return (*self.readonly_fields, "worker_name") if obj is not None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False  # its trades and lanes keep referring to it

    def save_model(self, request, obj, form, change):
        # The form has checked the values; the services lock the row and write it.
        if change:
            result = services.account_update(name=obj.worker_name, values=form.account_values, actor=admin_actor(request))
            for warning in result.warnings:
                self.message_user(request, warning["message"] + " (the Reset button on its dashboard page completes them)", messages.WARNING)
            obj.pk = result.account.pk
        else:
            obj.pk = services.account_create(name=obj.worker_name, values=form.account_values).pk


@admin.register(Lane)
class LaneAdmin(ReadOnlyAdmin):
    list_display = (
        "lane_id", "account_name", "symbol", "status", "outcome", "ladder_mode", "current_level", "max_level",
        "current_amount", "total_invested", "net_profit", "remaining_risk", "created_at", "completed_at",
    )
    list_filter = ("status", "outcome", "ladder_mode", "max_level", "created_at")
    search_fields = ("lane_id", "account_name", "symbol")
    date_hierarchy = "created_at"
    actions = ("force_complete", "cancel")

    def get_queryset(self, request):
        return with_open_trade(super().get_queryset(request))  # with its account's max_stake

    @admin.display(description="remaining risk")
    def remaining_risk(self, lane):
        return lane_remaining_risk(lane)

    def has_lane_action_permission(self, request):
        return request.user.has_perm("lanes.change_lane")

    def _complete(self, request, queryset, *, status: str, title: str, done_word: str, action: str):
        active = queryset.filter(status=engine.ACTIVE)
        page = _confirmed(
            self, request, active,
            title=title, action=action,
            warning=f"These active lanes will be {done_word}; finished lanes among the selection are left as they are.",
        )
        if page is not None:
            return page
        done, refused = 0, []
        for lane_id in active.values_list("lane_id", flat=True):
            try:
                services.lane_force_complete(lane_id=lane_id, status=status, actor=admin_actor(request))
                done += 1
            except (engine.Refused, services.NotFound) as error:
                refused.append(str(error))
        self.message_user(request, f"{done} lane(s) {done_word}.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)
        return None

    @admin.action(description="Force-complete selected active lanes", permissions=["lane_action"])
    def force_complete(self, request, queryset):
        return self._complete(
            request, queryset, status=engine.COMPLETED, title="Force-complete lanes", done_word="force-completed", action="force_complete"
        )

    @admin.action(description="Cancel selected active lanes", permissions=["lane_action"])
    def cancel(self, request, queryset):
        return self._complete(
            request, queryset, status=engine.CANCELLED, title="Cancel lanes", done_word="cancelled", action="cancel"
        )


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = (
        "trade_id", "account", "symbol", "direction", "status", "kind", "level", "amount", "profit",
        "requested_at", "opened_at", "settled_at",
    )
    list_filter = ("status", "kind", "direction", "requested_at")
    search_fields = ("trade_id", "symbol", "account__worker_name", "lane__lane_id")
    date_hierarchy = "requested_at"
    list_select_related = ("account",)
    actions = ("cancel",)

    def has_trade_action_permission(self, request):
        return request.user.has_perm("lanes.change_trade")

    @admin.action(description="Cancel selected queued or open trades", permissions=["trade_action"])
    def cancel(self, request, queryset):
        live = queryset.filter(status__in=(engine.QUEUED, engine.OPEN))
        page = _confirmed(
            self, request, live,
            title="Cancel trades", action="cancel",
            warning="These queued or open trades will be cancelled; an open lane trade is taken back out of its lane.",
        )
        if page is not None:
            return page
        done, refused = 0, []
        for trade_id in live.values_list("trade_id", flat=True):
            try:
                services.trade_cancel(trade_id=trade_id, actor=admin_actor(request))
                done += 1
            except (engine.Refused, services.NotFound) as error:
                refused.append(str(error))
        self.message_user(request, f"{done} trade(s) cancelled.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)
        return None


@admin.register(LaneEvent)
class LaneEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account_name", "lane", "kind", "trade_id", "actor")
    list_filter = ("kind", "created_at")
    search_fields = ("account_name", "trade_id", "actor", "lane__lane_id")
    date_hierarchy = "created_at"
    list_select_related = ("lane",)

    def get_actions(self, request):
        return {}


@admin.register(AccountLock)
class AccountLockAdmin(ReadOnlyAdmin):
    """Locks of SPEC §11: set by a circuit breaker or by hand (the API, the command line); an active
    one can be released here."""

    list_display = ("lock_id", "account", "reason", "created_at", "locked_until", "released_at", "released_by", "note")
    list_filter = ("reason", "created_at", "released_at")
    search_fields = ("lock_id", "account__worker_name", "note")
    date_hierarchy = "created_at"
    list_select_related = ("account",)
    actions = ("release",)

    def has_lock_action_permission(self, request):
        return request.user.has_perm("lanes.change_accountlock")

    @admin.action(description="Release selected active locks", permissions=["lock_action"])
    def release(self, request, queryset):
        active = queryset.filter(released_at__isnull=True, locked_until__gt=timezone.now())
        page = _confirmed(
            self, request, active,
            title="Release locks", action="release",
            warning="These accounts take trade requests again at once; their queued trades may open.",
        )
        if page is not None:
            return page
        lock_ids = list(active.values_list("lock_id", flat=True))
        for lock_id in lock_ids:
            services.lock_release(lock_id=lock_id, actor=admin_actor(request))
        self.message_user(request, f"{len(lock_ids)} lock(s) released.", messages.SUCCESS)
        return None


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "all_accounts", "account_names", "created_at", "revoked_at")
    list_filter = ("all_accounts", "created_at", "revoked_at")
    search_fields = ("name", "prefix")
    date_hierarchy = "created_at"
    fields = ("name", "prefix", "all_accounts", "account_names", "created_at", "revoked_at")
    readonly_fields = ("name", "prefix", "all_accounts", "account_names", "created_at")
    actions = ("revoke",)

    def has_add_permission(self, request):
        return False  # the raw token is shown once, by `manage.py martingale token create`

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the token name stays in the audit log

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)
