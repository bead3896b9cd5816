from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename

from messaging.admin import short_id_column

from . import services
from .models import Payment, Refund, Screening


class RefundInline(admin.StackedInline):
    model = Refund
    extra = 0
    can_delete = False
    readonly_fields = ["amount", "reason", "gateway_refund_id", "created_at"]


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = [
        short_id_column("order_id", "order"),
        "amount",
        "currency",
        "status",
        "amount_refunded",
        "card_last4",
        "failure_code",
        "created_at",
    ]
    list_filter = ["status", "failure_code", "created_at"]
    search_fields = ["order_id", "gateway_charge_id"]
    inlines = [RefundInline]
    actions = ["refund"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Payment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The page is for reading; money moves through the refund action.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_refund_permission(self, request) -> bool:
        """A refund changes the payment: the payment's change permission."""
        return request.user.has_perm(
            f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}"
        )

    @admin.action(description="Refund selected payments in full", permissions=["refund"])
    def refund(self, request, queryset):
        refunded = 0
        for payment in queryset:
            if services.payment_refund(
                order_id=payment.order_id,
                reason_code="staff",
                reason=f"Refunded by {request.user.get_username()}",
            ):
                refunded += 1
        skipped = queryset.count() - refunded
        self.message_user(
            request,
            f"{refunded} refunded; {skipped} had nothing left to refund.",
            messages.SUCCESS if not skipped else messages.WARNING,
        )


class ChargeWaitingFilter(admin.SimpleListFilter):
    title = "charge"
    parameter_name = "charge"

    def lookups(self, request, model_admin):
        return [("waiting", "Waiting for its verdict")]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(requested_at__isnull=False, verdict="")
        return queryset


@admin.register(Screening)
class ScreeningAdmin(admin.ModelAdmin):
    """The fraud screen's verdicts, and the charges waiting for one (the stream processor is
    behind or down while they pile up)."""

    list_display = [
        short_id_column("order_id", "order"),
        "verdict",
        "rule",
        "reason",
        "requested_at",
        "screened_at",
    ]
    list_filter = [ChargeWaitingFilter, "verdict", "created_at"]
    search_fields = ["order_id"]
    exclude = ["card_token"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Screening._meta.fields if f.name != "card_token"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
