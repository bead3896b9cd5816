from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, urlize
from django.utils.safestring import mark_safe

from messaging.references import short_reference

from .models import Recipient, SentEmail


@admin.register(SentEmail)
class SentEmailAdmin(admin.ModelAdmin):
    """The mailbox: every email sent to a customer, as they read it, beside their order's page.

    With no mail server configured (development) it is the only place an
    email's body can be read.
    """

    list_display = ["sent_at", "to", "subject", "order"]
    list_display_links = ["subject"]
    list_filter = ["kind", "sent_at"]
    search_fields = ["to", "order_id", "subject"]
    fields = ["sent_at", "to", "subject", "order", "message"]
    readonly_fields = ["order", "message"]

    @admin.display(description="order")
    def order(self, email: SentEmail) -> str:
        """The order's short reference, linking to its page (the one the email links to)."""
        page = reverse("orders:detail", kwargs={"order_id": email.order_id})
        return format_html('<a href="{}">{}</a>', page, short_reference(email.order_id))

    @admin.display(description="message")
    def message(self, email: SentEmail) -> str:
        """The body as the customer reads it: plain text, its links clickable."""
        # urlize escapes all but the links it makes, and returns a plain str.
        body = mark_safe(urlize(email.body, autoescape=True))  # noqa: S308
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', body)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Recipient)
class RecipientAdmin(admin.ModelAdmin):
    list_display = ["order_id", "email"]
    search_fields = ["order_id", "email"]
