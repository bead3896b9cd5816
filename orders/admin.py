from django.contrib import admin
from django.utils.html import format_html_join

from . import selectors
from .models import CatalogItem, Order, OrderLine


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ["sku", "name", "quantity", "unit_price"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "email",
        "status",
        "total",
        "currency",
        "payment_status",
        "workflow",
        "created_at",
    ]
    list_filter = ["status", "workflow", "payment_status", "created_at"]
    search_fields = ["id", "email", "tracking_number"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    readonly_fields = ["timeline"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Order._meta.fields] + ["timeline"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

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
