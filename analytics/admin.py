"""Staff's view of stream processing: each processor's lag, the live figures, the fraud flags."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from messaging.admin import short_id_column

from . import selectors
from .models import (
    FraudClearance,
    FraudFlag,
    MinuteFigure,
    ProcessorState,
    SkippedEntry,
    Slot,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ProcessorState)
class ProcessorStateAdmin(ReadOnlyAdmin):
    list_display = [
        "processor",
        "slot",
        "offset",
        "head_offset",
        "lag_entries",
        "lag",
        "last_seen",
        "entries_processed",
        "entries_skipped",
        "duplicates_skipped",
        "short_last_error",
    ]
    list_filter = ["slot"]

    @admin.display(description="last error")
    def short_last_error(self, obj: ProcessorState) -> str:
        # Whole, an error is wider than the list; its page shows all of it.
        error = obj.last_error
        return error if len(error) <= 80 else error[:77] + "..."

    @admin.display(description="seconds behind")
    def lag(self, obj: ProcessorState) -> str:
        return f"{obj.lag_seconds:.1f}"

    @admin.display(description="last seen")
    def last_seen(self, obj: ProcessorState) -> str:
        if obj.heartbeat_at is None:
            return "never"
        age = (timezone.now() - obj.heartbeat_at).total_seconds()
        return f"{age:.0f} s ago" if age < 120 else f"{age / 60:.0f} min ago (not running?)"


@admin.register(SkippedEntry)
class SkippedEntryAdmin(ReadOnlyAdmin):
    list_display = ["processor", "slot", "offset", "message_type", "reason", "error", "skipped_at"]
    list_filter = ["processor", "slot", "reason"]
    search_fields = ["message_id", "message_type", "error"]


@admin.register(MinuteFigure)
class LiveFiguresAdmin(ReadOnlyAdmin):
    """The aggregates, rolling over 1, 5 and 60 minutes, and minute by minute."""

    def changelist_view(self, request, extra_context=None):
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": "Live figures",
            "opts": self.model._meta,
            "now": now,
            "windows": [selectors.figures(minutes=m, now=now) for m in selectors.WINDOWS],
            "minutes": _minutes_table(now),
            "processors": selectors.processors_status(),
        }
        return TemplateResponse(request, "admin/analytics/figures.html", context)


def _minutes_table(now, count: int = 15) -> list[dict]:
    series = {
        metric: selectors.per_minute(metric=metric, minutes=count, now=now)
        for metric in (
            "orders_placed",
            "orders_completed",
            "orders_cancelled",
            "payments_declined",
            "money_captured",
            "money_refunded",
        )
    }
    rows = []
    for i in reversed(range(count)):
        row: dict[str, object] = {"minute": series["orders_placed"][i][0]}
        row.update({metric: values[i][1] for metric, values in series.items()})
        rows.append(row)
    return rows


@admin.register(FraudFlag)
class FraudFlagAdmin(ReadOnlyAdmin):
    list_display = [
        "fired_at",
        short_id_column("order_id", "order"),
        "rule",
        "who",
        "count",
        "limit",
        "cleared",
        "reason",
    ]
    list_filter = ["rule", "key_kind"]
    search_fields = ["order_id", "key"]
    actions = ["clear"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(slot=Slot.LIVE)

    @admin.display(description="card or email")
    def who(self, obj: FraudFlag) -> str:
        if obj.key_kind == "card":
            return format_html("card <code>{}…</code>", obj.key[:12])
        return obj.key

    @admin.display(boolean=True)
    def cleared(self, obj: FraudFlag) -> bool:
        return selectors.fraud_flag_is_cleared(obj)

    def has_clear_permission(self, request) -> bool:
        # Clearing writes a clearance; the flag itself stays as the screen found it.
        return request.user.has_perm("analytics.add_fraudclearance")

    @admin.action(
        description="Clear the card or email (a false positive): its next order is charged",
        permissions=["clear"],
    )
    def clear(self, request, queryset):
        now = timezone.now()
        keys = {(flag.key_kind, flag.key) for flag in queryset}
        FraudClearance.objects.bulk_create(
            FraudClearance(
                key_kind=kind,
                key=key,
                cleared_at=now,
                cleared_by=request.user.get_username(),
                note=f"cleared from {len(queryset)} flag(s) in the admin",
            )
            for kind, key in keys
        )
        self.message_user(
            request,
            f"Cleared {len(keys)} card(s) or email(s): what they did before now no longer counts.",
            messages.SUCCESS,
        )


@admin.register(FraudClearance)
class FraudClearanceAdmin(ReadOnlyAdmin):
    list_display = ["cleared_at", "key_kind", "key", "cleared_by", "note"]
    list_filter = ["key_kind"]
