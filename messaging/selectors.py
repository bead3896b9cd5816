from datetime import datetime
from typing import TypedDict

from django.db.models import Count, QuerySet

from .models import DeadLetter, OutboxMessage, RelayRun


def conversation_messages(*, correlation_id: str) -> QuerySet[OutboxMessage]:
    """Every message of one business conversation (an order, say), oldest first."""
    return OutboxMessage.objects.filter(correlation_id=correlation_id).order_by("id")


def outbox_oldest_pending() -> OutboxMessage | None:
    """The oldest message not yet dispatched (read on the outbox_pending partial index)."""
    return (
        OutboxMessage.objects.filter(dispatched_at__isnull=True)
        .order_by("id")
        .only("id", "type", "message_id", "occurred_at", "dispatch_attempts", "last_dispatch_error")
        .first()
    )


def outbox_pending_count(*, up_to: int) -> int:
    """How many messages wait to be dispatched, counted up to ``up_to`` (a bounded read)."""
    pending = OutboxMessage.objects.filter(dispatched_at__isnull=True).order_by()
    return pending[:up_to].count()


def relay_last_run() -> RelayRun | None:
    """The outbox relay's record of its last run, if it ever ran on this database."""
    return RelayRun.objects.filter(name=RelayRun.OUTBOX).first()


class DeadLetterGroup(TypedDict):
    handler: str
    reason: str
    count: int


def dead_letters_recorded_since(since: datetime) -> list[DeadLetterGroup]:
    """Dead letters recorded since then, counted per handler and reason (most first)."""
    return list(
        DeadLetter.objects.filter(last_failed_at__gte=since)
        .values("handler", "reason")
        .annotate(count=Count("id"))
        .order_by("-count", "handler", "reason")
    )
