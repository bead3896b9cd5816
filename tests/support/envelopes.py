"""Messages as a handler receives them, and what a service left in the outbox: for unit tests."""

from __future__ import annotations

import uuid

from django.utils import timezone

from messaging.messages import Envelope, Message
from messaging.models import OutboxMessage


def envelope_of(message: Message, *, correlation_id: str | None = None) -> Envelope:
    """The envelope a handler would receive for ``message``."""
    message_id = uuid.uuid4()
    return Envelope(
        message_id=message_id,
        kind=message.kind,
        type=message.message_type,
        version=message.message_version,
        occurred_at=timezone.now(),
        correlation_id=correlation_id or str(message_id),
        payload=message.model_dump(mode="json"),
    )


def published(message_type: str | None = None) -> list[OutboxMessage]:
    """The outbox rows written so far (of one type, if given), oldest first."""
    rows = OutboxMessage.objects.order_by("id")
    return list(rows.filter(type=message_type) if message_type else rows)


def published_types() -> list[str]:
    """The types of every message written to the outbox so far, oldest first."""
    return list(OutboxMessage.objects.order_by("id").values_list("type", flat=True))
