from django.contrib import admin

from messaging.admin import short_id_column

from . import services
from .models import OrderRequest, Product, Reservation, ReservationLine


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "sku",
        "name",
        "price",
        "on_hand",
        "reserved",
        "available",
        "shipped",
        "is_active",
    ]
    list_filter = ["is_active"]
    search_fields = ["sku", "name"]
    readonly_fields = ["reserved", "shipped"]
    fields = ["sku", "name", "price", "on_hand", "reserved", "shipped", "is_active"]

    def save_model(self, request, obj, form, change):
        # Through the service, so the rest of the shop hears of the change.
        saved = services.product_save(
            sku=obj.sku,
            name=obj.name,
            price=obj.price,
            on_hand=obj.on_hand,
            is_active=obj.is_active,
        )
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False


class ReservationLineInline(admin.TabularInline):
    model = ReservationLine
    extra = 0
    can_delete = False
    readonly_fields = ["product", "quantity"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = [short_id_column("order_id", "order"), "status", "created_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["order_id"]
    inlines = [ReservationLineInline]
    readonly_fields = ["order_id", "status"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Reserved and released by the order's events only: a page to read.
        return False


@admin.register(OrderRequest)
class OrderRequestAdmin(admin.ModelAdmin):
    list_display = [short_id_column("order_id", "order"), "received_at"]
    search_fields = ["order_id"]
    readonly_fields = ["order_id", "lines", "received_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
