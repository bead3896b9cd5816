"""Notifications' rows: whom to write to about an order, and the emails sent."""

import uuid

import factory
from factory.django import DjangoModelFactory

from notifications.models import Recipient, SentEmail


class RecipientFactory(DjangoModelFactory):
    class Meta:
        model = Recipient

    order_id = factory.LazyFunction(uuid.uuid4)
    email = factory.Sequence(lambda n: f"customer{n}@example.com")


class SentEmailFactory(DjangoModelFactory):
    """An email already sent about an order, to its recipient."""

    class Meta:
        model = SentEmail

    order_id = factory.LazyFunction(uuid.uuid4)
    kind = SentEmail.Kind.PLACED
    to = factory.LazyAttribute(lambda sent: RecipientFactory(order_id=sent.order_id).email)
    subject = "We received your order"
    body = "Thank you for your order.\n"
