"""notifications.services: whom to write to, and one email per order and moment, really sent
(the test settings' locmem backend keeps what went out in django.core.mail.outbox)."""

import smtplib
import uuid

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from messaging.errors import RetryLater
from notifications.models import Recipient, SentEmail
from notifications.services import email_send, recipient_record
from tests.notifications.factories import RecipientFactory, SentEmailFactory

pytestmark = pytest.mark.django_db


class RefusingBackend(BaseEmailBackend):
    """A mail server that refuses every message."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("the mail server went away")


def send(order_id, kind=SentEmail.Kind.PLACED, subject="Your order", body="Hello\n"):
    return email_send(order_id=order_id, kind=kind, subject=subject, body=body)


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
    sent = send(recipient.order_id, subject="We received your order", body="Thank you.\n")

    # Then the mail went out, from the shop, and is on record
    [message] = mail.outbox
    assert (message.to, message.from_email) == (["ada@example.com"], settings.DEFAULT_FROM_EMAIL)
    assert (message.subject, message.body) == ("We received your order", "Thank you.\n")
    assert (sent.to, sent.kind, sent.subject) == (
        "ada@example.com",
        "placed",
        "We received your order",
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
    send(recipient.order_id, kind=kind, subject="First")

    # When the same moment comes again (a redelivery, or the other workflow's twin)
    again = send(recipient.order_id, kind=kind, subject="Second")

    # Then nothing more goes out
    assert again is None
    assert sent_to("ada@example.com") == ["First"]
    assert SentEmail.objects.count() == 1


def test_every_moment_of_an_order_gets_its_own_email():
    # Given an order whose receipt was written about already
    sent = SentEmailFactory(kind=SentEmail.Kind.PLACED)

    # When it ships, and its money is refunded
    send(sent.order_id, kind=SentEmail.Kind.COMPLETED, subject="On its way")
    send(sent.order_id, kind=SentEmail.Kind.REFUNDED, subject="Refund")

    # Then each of them goes out
    assert sent_to(sent.to) == ["On its way", "Refund"]
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
    send(recipient.order_id, subject="At last")
    assert sent_to(recipient.email) == ["At last"]
