from django.contrib import admin

from .models import Recipient, SentEmail


@admin.register(SentEmail)
class SentEmailAdmin(admin.ModelAdmin):
    list_display = ["sent_at", "kind", "to", "subject", "order_id"]
    list_filter = ["kind", "sent_at"]
    search_fields = ["to", "order_id", "subject"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in SentEmail._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ["order_id", "email"]
    search_fields = ["order_id", "email"]
