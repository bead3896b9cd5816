from django.db.models import QuerySet

from .models import OutboxMessage, RelayRun


def conversation_messages(*, correlation_id: str) -> QuerySet[OutboxMessage]:
    """Every message of one business conversation (an order, say), oldest first."""
    return OutboxMessage.objects.filter(correlation_id=correlation_id).order_by("id")


def relay_last_run() -> RelayRun | None:
    """The outbox relay's record of its last run, if it ever ran on this database."""
    return RelayRun.objects.filter(name=RelayRun.OUTBOX).first()
