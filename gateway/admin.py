from django.contrib import admin
from django.utils import timezone

from .models import Charge, Outage, Refund


@admin.register(Charge)
class ChargeAdmin(admin.ModelAdmin):
    list_display = [
        "charge_id",
        "amount",
        "currency",
        "status",
        "decline_code",
        "attempts",
        "refunded",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["charge_id", "idempotency_key"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ["refund_id", "charge", "amount", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Outage)
class OutageAdmin(admin.ModelAdmin):
    """Start a drill by adding an outage; end it with the action."""

    list_display = ["started_at", "ended_at", "refused_calls", "note"]
    fields = ["note"]
    actions = ["end_outage"]

    @admin.action(description="End the selected outages")
    def end_outage(self, request, queryset):
        ended = queryset.filter(ended_at__isnull=True).update(ended_at=timezone.now())
        self.message_user(request, f"{ended} outage(s) ended; the gateway accepts calls again.")
