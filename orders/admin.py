from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.utils.html import format_html_join

from messaging.admin import short_id_column

from . import saga, selectors
from .models import CatalogItem, Order, OrderLine, OrderSaga, SagaEntry


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ["sku", "name", "quantity", "unit_price"]

    def has_add_permission(self, request, obj=None):
        return False


class NeedsAttentionFilter(admin.SimpleListFilter):
    """Orders parked for a person: the watchdog could not bring them to an end by itself."""

    title = "needs attention"
    parameter_name = "needs_attention"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(attention_reason="")
        if self.value() == "no":
            return queryset.filter(attention_reason="")
        return queryset


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        short_id_column("id", "order"),
        "email",
        "status",
        "amount",
        "payment_status",
        "workflow",
        "created_at",
        "attention_reason",
    ]
    list_filter = ["status", NeedsAttentionFilter, "workflow", "payment_status", "created_at"]
    search_fields = ["id", "email", "tracking_number"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Order._meta.fields] + ["timeline"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # A record of what happened: its page is for reading, without save buttons.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="total", ordering="total")
    def amount(self, obj: Order) -> str:
        return f"{obj.total} {obj.currency}"

    @admin.display(description="Event timeline")
    def timeline(self, obj: Order):
        return format_html_join(
            "\n",
            "<div>{} · <strong>{}</strong> v{} · caused by {}</div>",
            (
                (
                    m.occurred_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                    m.type,
                    m.version,
                    m.causation_id or "—",
                )
                for m in selectors.order_timeline(order=obj)
            ),
        )


@admin.register(CatalogItem)
class CatalogItemAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "price", "currency", "available", "is_active", "as_of"]
    search_fields = ["sku", "name"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in CatalogItem._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Inventory's copy, changed by its ProductUpdated events only.
        return False


class SagaEntryInline(admin.TabularInline):
    model = SagaEntry
    extra = 0
    can_delete = False
    readonly_fields = ["at", "kind", "step", "message_type", "message_id", "note"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(OrderSaga)
class OrderSagaAdmin(admin.ModelAdmin):
    list_display = [
        short_id_column("order_id", "order"),
        "state",
        "step",
        "attempts",
        "deadline",
        "failure_code",
        "updated_at",
    ]
    list_filter = ["state", "step"]
    search_fields = ["order__id", "order__email"]
    inlines = [SagaEntryInline]
    actions = ["retry_step", "compensate"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in OrderSaga._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The page is for reading; staff steer a saga with the actions.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_steer_permission(self, request) -> bool:
        """Retrying a step or compensating changes the saga: the saga's change permission."""
        return request.user.has_perm(
            f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}"
        )

    @admin.action(description="Retry the current step", permissions=["steer"])
    def retry_step(self, request, queryset):
        done = sum(
            saga.saga_retry_step(order_id=pk, by=request.user.get_username())
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{done} step(s) sent again.", messages.SUCCESS)

    @admin.action(description="Compensate (undo and cancel)", permissions=["steer"])
    def compensate(self, request, queryset):
        done = sum(
            saga.saga_compensate(order_id=pk, by=request.user.get_username())
            for pk in queryset.values_list("pk", flat=True)
        )
        skipped = queryset.count() - done
        self.message_user(
            request,
            f"{done} compensating; {skipped} not running (nothing to do).",
            messages.SUCCESS if not skipped else messages.WARNING,
        )
