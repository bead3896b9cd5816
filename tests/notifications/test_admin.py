"""The mailbox: staff read the emails sent to customers in the admin, with the link to each
order's page; nobody else can."""

import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from messaging.references import short_reference
from notifications.models import Recipient, SentEmail
from notifications.services import email_send
from tests.notifications.conftest import SHOP
from tests.notifications.factories import RecipientFactory

pytestmark = pytest.mark.django_db

MAILBOX = reverse("admin:notifications_sentemail_changelist")


@pytest.fixture
def email() -> SentEmail:
    """A refund email with a reason that needs escaping, sent the way the handlers send it."""
    recipient = RecipientFactory(email="ada@example.com")
    return email_send(
        order_id=recipient.order_id,
        kind=SentEmail.Kind.REFUNDED,
        amount="12.50",
        currency="EUR",
        reason="<b>Out of stock</b>",
    )


def staff(client, *codenames: str) -> User:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def test_staff_see_the_mailbox_from_the_admin_index(client):
    # Given staff who may read the emails
    staff(client, "view_sentemail")

    # When they open the admin
    page = client.get(reverse("admin:index")).content.decode()

    # Then its operations links lead to the mailbox
    assert f'href="{MAILBOX}">Mailbox</a>' in page


def test_the_mailbox_lists_when_to_whom_what_and_the_order_with_its_page(client, email):
    # Given staff, and an email sent about an order
    staff(client, "view_sentemail")

    # When they open the mailbox
    response = client.get(MAILBOX)

    # Then the email is listed: its subject opens it, its order's short reference opens the
    # order's page
    page = response.content.decode()
    assert response.status_code == 200
    opened = reverse("admin:notifications_sentemail_change", args=[email.pk])
    assert f'href="{opened}"' in page
    assert f"Refund for order {short_reference(email.order_id)}" in page
    assert "ada@example.com" in page
    order_page = reverse("orders:detail", kwargs={"order_id": email.order_id})
    assert f'<a href="{order_page}">{short_reference(email.order_id)}</a>' in page
    assert str(email.order_id) not in page.replace(order_page, "")


def test_an_email_opens_with_its_body_as_text_and_its_link_clickable(client, email):
    # Given staff, and an email sent about an order
    staff(client, "view_sentemail")

    # When they open it
    response = client.get(reverse("admin:notifications_sentemail_change", args=[email.pk]))

    # Then they read its body as written, escaped, its link to the order's page clickable,
    # and there is nothing to save
    page = response.content.decode()
    assert response.status_code == 200
    assert '<pre style="white-space: pre-wrap; margin: 0">We refunded 12.50 EUR' in page
    assert "Reason: &lt;b&gt;Out of stock&lt;/b&gt;" in page
    link = f"{SHOP}/orders/{email.order_id}/"
    assert f'<a href="{link}">{link}</a>' in page
    assert 'name="_save"' not in page


@pytest.mark.parametrize("who", ["anonymous", "customer", "staff without the permission"])
def test_nobody_else_reads_the_mailbox(client, email, who):
    # Given someone who is not staff allowed to read the emails
    if who == "customer":
        client.force_login(User.objects.create_user("customer"))
    elif who == "staff without the permission":
        staff(client)

    # When they ask for the mailbox, or an email in it
    pages = [MAILBOX, reverse("admin:notifications_sentemail_change", args=[email.pk])]
    responses = [client.get(page) for page in pages]

    # Then they are refused: sent to log in, or forbidden
    for response in responses:
        assert response.status_code in {302, 403}, response.status_code
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("admin:login"))
        assert email.subject not in response.content.decode()
    assert Recipient.objects.count() == 1
