"""Emails to the customer at the moments a customer cares about."""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from messaging.errors import RetryLater

from .models import Recipient, SentEmail


@transaction.atomic(savepoint=False)
def recipient_record(*, order_id: UUID, email: str) -> None:
    """Who to write to about an order (the first copy wins)."""
    Recipient.objects.bulk_create(
        [Recipient(order_id=order_id, email=email)], ignore_conflicts=True
    )


@transaction.atomic(savepoint=False)
def email_send(*, order_id: UUID, kind: str, subject: str, body: str) -> SentEmail | None:
    """Send one email about an order, at most once per kind, and record it."""
    recipient = Recipient.objects.filter(order_id=order_id).first()
    if recipient is None:
        raise RetryLater(f"the customer of order {order_id} is not known yet")
    if SentEmail.objects.filter(order_id=order_id, kind=kind).exists():
        return None
    sent = SentEmail.objects.create(
        order_id=order_id, kind=kind, to=recipient.email, subject=subject, body=body
    )
    # Sent last: if sending fails, the record rolls back and the delivery retries.
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient.email])
    return sent


def short_id(order_id: UUID) -> str:
    return str(order_id).split("-")[0].upper()
