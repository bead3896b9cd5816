from django.db.models import QuerySet

from .models import OutboxMessage


def conversation_messages(*, correlation_id: str) -> QuerySet[OutboxMessage]:
    """Every message of one business conversation (an order, say), oldest first."""
    return OutboxMessage.objects.filter(correlation_id=correlation_id).order_by("id")
