from django.contrib import admin

from messaging.admin import short_id_column

from .models import Shipment, ShipmentRequest


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = [
        short_id_column("order_id", "order"),
        "carrier",
        "tracking_number",
        "created_at",
    ]
    search_fields = ["order_id", "tracking_number"]
    list_filter = ["carrier", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Shipment._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # A record of the carrier's answer: a page to read.
        return False


@admin.register(ShipmentRequest)
class ShipmentRequestAdmin(admin.ModelAdmin):
    list_display = [short_id_column("order_id", "order"), "received_at"]
    search_fields = ["order_id"]
    readonly_fields = ["order_id", "address", "lines", "received_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
