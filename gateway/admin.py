from django.contrib import admin

from .models import Charge, Refund


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
