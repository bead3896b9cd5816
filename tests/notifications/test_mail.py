"""notifications.mail: with no mail server, each email is one INFO line in the log (to, subject,
its links), not a message printed to stdout (which a Celery worker logs as WARNING lines)."""

import logging

import pytest
from django.core import mail

from messaging.references import short_reference
from notifications.mail import LoggingEmailBackend
from notifications.models import SentEmail
from notifications.services import email_send, order_url
from tests.notifications.conftest import SHOP
from tests.notifications.factories import RecipientFactory

BACKEND = "notifications.mail.LoggingEmailBackend"


def test_each_email_is_one_info_line_naming_its_recipients_subject_and_link(caplog, capsys):
    # Given two emails, one with a link and one without
    messages = [
        mail.EmailMessage("Hello", f"Look:\n{SHOP}/orders/1/\n", to=["ada@example.com"]),
        mail.EmailMessage("Plain", "No link here.\n", to=["bob@example.com", "eve@example.com"]),
    ]

    # When the logging backend sends them
    with caplog.at_level(logging.INFO, logger="notifications"):
        sent = LoggingEmailBackend().send_messages(messages)

    # Then each is one INFO line of the notifications logger, and nothing is printed
    assert sent == 2
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("notifications", "INFO", f'Email to ada@example.com: "Hello" {SHOP}/orders/1/'),
        ("notifications", "INFO", 'Email to bob@example.com, eve@example.com: "Plain" (no link)'),
    ]
    assert capsys.readouterr() == ("", "")


@pytest.mark.django_db
def test_an_order_email_logs_the_link_to_the_order_page(settings, caplog):
    # Given no mail server: the logging backend
    settings.EMAIL_BACKEND = BACKEND
    recipient = RecipientFactory(email="ada@example.com")

    # When the customer is told their order shipped
    with caplog.at_level(logging.INFO, logger="notifications"):
        email_send(
            order_id=recipient.order_id,
            kind=SentEmail.Kind.COMPLETED,
            tracking_number="PP000000000042",
        )

    # Then the log says to whom, what, and where the order's page is
    link, reference = order_url(recipient.order_id), short_reference(recipient.order_id)
    assert link == f"{SHOP}/orders/{recipient.order_id}/"
    assert [r.getMessage() for r in caplog.records if r.name == "notifications"] == [
        f'Email to ada@example.com: "Your order {reference} is on its way" {link}'
    ]
    assert SentEmail.objects.get().to == "ada@example.com"
