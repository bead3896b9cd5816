"""notifications.services: whom to write to, and one email per order and moment, really sent
(the test settings' locmem backend keeps what went out in django.core.mail.outbox)."""

import smtplib
import uuid
from decimal import Decimal

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from messaging.errors import RetryLater
from messaging.references import short_reference
from notifications.models import Recipient, SentEmail
from notifications.services import email_send, recipient_record
from orders.events import PlacedLine
from tests.notifications.conftest import page_link
from tests.notifications.factories import RecipientFactory, SentEmailFactory

pytestmark = pytest.mark.django_db


class RefusingBackend(BaseEmailBackend):
    """A mail server that refuses every message."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("the mail server went away")


# What each kind of email is told, as its handler tells it.
FACTS = {
    SentEmail.Kind.PLACED: {
        "lines": [PlacedLine(sku="MUG-1", name="Mug", quantity=2, unit_price=Decimal("6.25"))],
        "total": Decimal("12.50"),
        "currency": "EUR",
    },
    SentEmail.Kind.COMPLETED: {"tracking_number": "PP000000000042"},
    SentEmail.Kind.CANCELLED: {"reason": "Payment failed: Your card was declined."},
    SentEmail.Kind.REFUNDED: {"amount": Decimal("12.50"), "currency": "EUR", "reason": "Lost"},
}
# Each email's subject, for the order's reference.
SUBJECTS = {
    SentEmail.Kind.PLACED: "We received your order {}",
    SentEmail.Kind.COMPLETED: "Your order {} is on its way",
    SentEmail.Kind.CANCELLED: "Your order {} was cancelled",
    SentEmail.Kind.REFUNDED: "Refund for order {}",
}


def send(order_id, kind=SentEmail.Kind.PLACED):
    return email_send(order_id=order_id, kind=kind, **FACTS[kind])


def subject(kind, order_id) -> str:
    return SUBJECTS[kind].format(short_reference(order_id))


def sent_to(address: str) -> list[str]:
    """The subjects of the emails that went out to ``address``."""
    return [message.subject for message in mail.outbox if message.to == [address]]


# --- recipient_record ---


def test_whom_to_write_to_is_kept_and_the_first_copy_wins():
    # Given an order's recipient kept once
    order_id = uuid.uuid4()
    recipient_record(order_id=order_id, email="ada@example.com")

    # When another copy arrives, saying something else
    recipient_record(order_id=order_id, email="mallory@example.com")

    # Then the first one stands
    assert Recipient.objects.get().email == "ada@example.com"


# --- email_send ---


def test_the_email_goes_out_to_the_orders_recipient_and_is_recorded(settings):
    # Given whom to write to about an order
    recipient = RecipientFactory(email="ada@example.com")

    # When the customer is told their order was received
    sent = send(recipient.order_id)

    # Then the mail went out, from the shop, and is on record, as its template says
    [message] = mail.outbox
    placed = subject(SentEmail.Kind.PLACED, recipient.order_id)
    assert (message.to, message.from_email) == (["ada@example.com"], settings.DEFAULT_FROM_EMAIL)
    assert (message.subject, message.body) == (
        placed,
        "Thank you for your order.\n\n  2 × Mug (MUG-1) at 6.25 EUR\n\nTotal: 12.50 EUR\n"
        + page_link(recipient.order_id),
    )
    assert (sent.to, sent.kind, sent.subject, sent.body) == (
        "ada@example.com",
        "placed",
        placed,
        message.body,
    )


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        (SentEmail.Kind.COMPLETED, "Your order has shipped. Tracking number: PP000000000042\n"),
        (
            SentEmail.Kind.CANCELLED,
            "We are sorry: your order was cancelled.\n\n"
            "Reason: Payment failed: Your card was declined.\n",
        ),
        (SentEmail.Kind.REFUNDED, "We refunded 12.50 EUR to your card.\n\nReason: Lost\n"),
    ],
)
def test_each_kind_of_email_says_what_its_template_says(kind, says):
    # Given whom to write to
    recipient = RecipientFactory()

    # When an email of this kind is sent
    send(recipient.order_id, kind=kind)

    # Then its subject names the order and its body tells the facts, unescaped, and links
    # to the order's page
    [message] = mail.outbox
    assert (message.subject, message.body) == (
        subject(kind, recipient.order_id),
        says + page_link(recipient.order_id),
    )


def test_before_the_recipient_is_known_the_email_waits():
    # Given an order whose OrderPlaced has not reached notifications
    # When an email about it is to be sent
    with pytest.raises(RetryLater, match="is not known yet"), transaction.atomic():
        send(uuid.uuid4())

    # Then none went out and none is on record: the delivery comes again
    assert mail.outbox == []
    assert not SentEmail.objects.exists()


@pytest.mark.parametrize("kind", SentEmail.Kind.values)
def test_each_moment_is_written_about_once(kind):
    # Given an order whose customer was written to about this moment
    recipient = RecipientFactory(email="ada@example.com")
    send(recipient.order_id, kind=kind)

    # When the same moment comes again (a redelivery, or the other workflow's twin)
    again = send(recipient.order_id, kind=kind)

    # Then nothing more goes out
    assert again is None
    assert sent_to("ada@example.com") == [subject(kind, recipient.order_id)]
    assert SentEmail.objects.count() == 1


def test_every_moment_of_an_order_gets_its_own_email():
    # Given an order whose receipt was written about already
    sent = SentEmailFactory(kind=SentEmail.Kind.PLACED)

    # When it ships, and its money is refunded
    send(sent.order_id, kind=SentEmail.Kind.COMPLETED)
    send(sent.order_id, kind=SentEmail.Kind.REFUNDED)

    # Then each of them goes out
    assert sent_to(sent.to) == [
        subject(SentEmail.Kind.COMPLETED, sent.order_id),
        subject(SentEmail.Kind.REFUNDED, sent.order_id),
    ]
    assert SentEmail.objects.filter(order_id=sent.order_id).count() == 3


def test_an_email_the_mail_server_refuses_is_not_recorded_so_it_is_sent_again(settings):
    # Given an order's recipient, and a mail server that refuses everything
    recipient = RecipientFactory()
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"

    # When the email is to be sent
    with pytest.raises(smtplib.SMTPServerDisconnected), transaction.atomic():
        send(recipient.order_id)

    # Then it is not on record, so the retried delivery sends it
    assert not SentEmail.objects.exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send(recipient.order_id)
    assert sent_to(recipient.email) == [subject(SentEmail.Kind.PLACED, recipient.order_id)]
