"""Emails to the customer at the moments a customer cares about."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from messaging.errors import RetryLater
from messaging.references import short_reference

from .models import Recipient, SentEmail

logger = logging.getLogger(__name__)


@transaction.atomic(savepoint=False)
def recipient_record(*, order_id: UUID, email: str) -> None:
    """Who to write to about an order (the first copy wins)."""
    Recipient.objects.bulk_create(
        [Recipient(order_id=order_id, email=email)], ignore_conflicts=True
    )


@transaction.atomic(savepoint=False)
def email_send(*, order_id: UUID, kind: str, **facts: Any) -> SentEmail | None:
    """Send one email of this kind about an order, at most once, and record it.

    What it says comes from the template ``notifications/<kind>.txt``, whose
    first line is the subject, given the ``facts``, the order's reference and
    the absolute link to the order's page.
    """
    recipient = Recipient.objects.filter(order_id=order_id).first()
    if recipient is None:
        raise RetryLater(f"the customer of order {order_id} is not known yet")
    if SentEmail.objects.filter(order_id=order_id, kind=kind).exists():
        return None
    context = {**facts, "order_ref": short_reference(order_id), "order_url": order_url(order_id)}
    text = render_to_string(f"notifications/{kind}.txt", context)
    subject, _, body = text.partition("\n")
    body = body.rstrip("\n") + "\n"
    sent = SentEmail.objects.create(
        order_id=order_id, kind=kind, to=recipient.email, subject=subject, body=body
    )
    # Sent last: if sending fails, the record rolls back and the delivery retries.
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [recipient.email])
    logger.info("Sent the %s email about order %s", kind, short_reference(order_id))
    return sent


def order_url(order_id: UUID) -> str:
    """The order's page as the customer reaches it: SHOP_URL and the page's unguessable path."""
    return settings.SHOP_URL + reverse("orders:detail", kwargs={"order_id": order_id})
