"""Every admin list and change page renders for staff, with the order's timeline; lists show
orders by their short reference."""

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging.models import DeadLetter, OutboxMessage
from messaging.references import short_reference
from orders.models import Order
from payments.models import Screening
from tests.flow.conftest import form_data
from tests.orders.factories import OrderFactory
from tests.payments.factories import PaymentFactory
from tests.shipping.factories import ShipmentFactory

pytestmark = pytest.mark.django_db(databases="__all__")

MODELS = [
    "orders.order", "orders.ordersaga", "orders.catalogitem", "payments.payment",
    "payments.screening",
    "inventory.product", "inventory.reservation", "shipping.shipment",
    "notifications.sentemail", "messaging.outboxmessage", "messaging.inboxrecord", "gateway.outage",
    "messaging.deadletter", "gateway.charge", "django_celery_results.taskresult",
]  # fmt: skip


@pytest.mark.parametrize("model", MODELS)
def test_admin_lists_render(admin_client, model):
    app_label, model_name = model.split(".")
    assert (
        admin_client.get(reverse(f"admin:{app_label}_{model_name}_changelist")).status_code == 200
    )


def test_an_orders_admin_page_shows_its_lines_and_event_timeline(
    admin_client, client, storefront_catalog
):
    client.post("/", form_data(workflow="orchestration"))
    order = Order.objects.get()
    DeadLetter.objects.create(
        reason="malformed",
        error="e",
        first_failed_at=order.created_at,
        last_failed_at=order.created_at,
    )

    page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "MUG-1" in page and "OrderPlaced" in page and "ChargePayment" in page
    saga_page = admin_client.get(reverse("admin:orders_ordersaga_change", args=[order.pk]))
    assert "Command sent" in saga_page.content.decode()
    message = OutboxMessage.objects.first()
    assert (
        admin_client.get(
            reverse("admin:messaging_outboxmessage_change", args=[message.pk])
        ).status_code
        == 200
    )
    assert client.get(reverse("admin:orders_order_changelist")).status_code == 302


def test_the_charges_waiting_for_their_fraud_verdict_are_listed_without_their_card_token(
    admin_client,
):
    # Given one charge waiting for its verdict, and one order screened
    now = timezone.now()
    waiting = Screening.objects.create(
        order_id=uuid.uuid4(), requested_at=now, amount=10, card_token="tok_secretish"
    )
    screened = Screening.objects.create(order_id=uuid.uuid4(), verdict="cleared", screened_at=now)

    # When staff list the charges waiting
    url = reverse("admin:payments_screening_changelist")
    listed = admin_client.get(url, {"charge": "waiting"}).content.decode()

    # Then only the waiting one is listed, and its page does not show the card's token
    assert str(waiting.order_id) in listed
    assert str(screened.order_id) not in listed
    page = admin_client.get(reverse("admin:payments_screening_change", args=[waiting.pk]))
    assert page.status_code == 200
    assert "tok_secretish" not in page.content.decode()


def test_the_admin_is_the_shops_and_leads_to_the_staff_pages_and_the_api_docs(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "eventshop operations" in page
    assert "Django administration" not in page
    for url in (reverse("live_dashboard:dashboard"), reverse("orders:stuck"), "/api/docs"):
        assert f'href="{url}"' in page
        assert admin_client.get(url).status_code == 200, url


@pytest.mark.parametrize(
    ("changelist", "make", "field"),
    [
        ("admin:orders_order_changelist", OrderFactory, "id"),
        ("admin:payments_payment_changelist", PaymentFactory, "order_id"),
        ("admin:shipping_shipment_changelist", ShipmentFactory, "order_id"),
    ],
)
def test_lists_show_the_short_reference_and_find_a_row_by_it_or_by_the_whole_id(
    admin_client, changelist, make, field
):
    # Given two rows about two orders
    wanted, other = make(), make()
    order_id = getattr(wanted, field)
    reference = short_reference(order_id)

    # When staff search by the reference, in either case, or by the whole id
    for term in (reference, reference.lower(), str(order_id)):
        page = admin_client.get(reverse(changelist), {"q": term}).content.decode()

        # Then that row alone is listed, by its reference, the whole id on hover
        assert f'<span title="{order_id}">{reference}</span>' in page, term
        assert short_reference(getattr(other, field)) not in page, term
