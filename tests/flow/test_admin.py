"""Every admin list and change page renders for staff, with the order's timeline; pages for
reading only offer no save buttons; lists show orders by their short reference."""

import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from inventory.models import Reservation
from messaging.models import DeadLetter, InboxRecord, OutboxMessage
from messaging.references import short_reference
from orders.models import Order
from payments.models import Screening
from tests.analytics.factories import FraudFlagFactory
from tests.flow.conftest import form_data
from tests.gateway.factories import GatewayChargeFactory
from tests.inventory.factories import OrderRequestFactory, ProductFactory
from tests.orders.factories import CatalogItemFactory, OrderFactory, OrderSagaFactory
from tests.payments.factories import PaymentFactory
from tests.shipping.factories import ShipmentFactory, ShipmentRequestFactory

pytestmark = pytest.mark.django_db(databases="__all__")

MODELS = [
    "orders.order", "orders.ordersaga", "orders.catalogitem", "payments.payment",
    "payments.screening",
    "inventory.product", "inventory.reservation", "shipping.shipment",
    "notifications.sentemail", "messaging.outboxmessage", "messaging.inboxrecord", "gateway.outage",
    "messaging.deadletter", "gateway.charge", "django_celery_results.taskresult",
    "messaging.deadlettergroup", "messaging.deadletteraudit", "messaging.deadlettergrouprun",
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


def dead_letter() -> DeadLetter:
    now = timezone.now()
    return DeadLetter.objects.create(
        reason="malformed", error="e", first_failed_at=now, last_failed_at=now
    )


def read_only_rows() -> dict[str, object]:
    """One row of each model whose admin page is for reading only, by the model's label."""
    now = timezone.now()
    order = OrderFactory()
    return {
        "orders.order": order,
        "orders.catalogitem": CatalogItemFactory(),
        "orders.ordersaga": OrderSagaFactory(),
        "payments.payment": PaymentFactory(order_id=order.id),
        "payments.screening": Screening.objects.create(order_id=order.id, requested_at=now),
        "inventory.reservation": Reservation.objects.create(order_id=order.id),
        "inventory.orderrequest": OrderRequestFactory(order_id=order.id),
        "shipping.shipment": ShipmentFactory(order_id=order.id),
        "shipping.shipmentrequest": ShipmentRequestFactory(order_id=order.id),
        "messaging.outboxmessage": OutboxMessage.objects.create(
            message_id=uuid.uuid4(),
            kind="event",
            type="OrderPlaced",
            version=1,
            occurred_at=now,
            correlation_id=str(order.id),
            payload={},
        ),
        "messaging.inboxrecord": InboxRecord.objects.create(
            message_id=uuid.uuid4(), handler="payments.handlers.on_order_placed", processed_at=now
        ),
        "messaging.deadletter": dead_letter(),
        "analytics.fraudflag": FraudFlagFactory(order_id=order.id),
        "gateway.charge": GatewayChargeFactory(),
        "django_celery_results.taskresult": TaskResult.objects.create(
            task_id=str(uuid.uuid4()), status="SUCCESS"
        ),
    }


SAVE_BUTTONS = ('name="_save"', 'name="_continue"', 'name="_addanother"')


def change_page(client, obj) -> str:
    opts = obj._meta
    response = client.get(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    )
    assert response.status_code == 200
    return response.content.decode()


def test_pages_where_nothing_can_be_edited_show_no_save_buttons(admin_client):
    # Given a row of each model whose every field is read-only
    rows = read_only_rows()

    # When a superuser opens each one's page
    pages = {label: change_page(admin_client, obj) for label, obj in rows.items()}

    # Then none offers to save, and each shows its record
    with_buttons = {
        label: [b for b in SAVE_BUTTONS if b in page]
        for label, page in pages.items()
        if any(b in page for b in SAVE_BUTTONS)
    }
    assert not with_buttons
    assert rows["orders.order"].email in pages["orders.order"]
    # while a page that edits something keeps its button
    assert 'name="_save"' in change_page(admin_client, ProductFactory())


def test_a_read_only_page_refuses_a_posted_change(admin_client):
    order = OrderFactory(email="ada@example.com")

    response = admin_client.post(
        reverse("admin:orders_order_change", args=[order.pk]), {"email": "eve@example.com"}
    )

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.email == "ada@example.com"


def staff(client, *codenames: str) -> User:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    ("make", "action"),
    [
        (OrderSagaFactory, "retry_step"),
        (OrderSagaFactory, "compensate"),
        (PaymentFactory, "refund"),
        (dead_letter, "redrive"),
    ],
)
def test_staff_who_may_change_a_record_keep_its_actions_on_a_read_only_list(client, make, action):
    # Given a row, staff who may change its model, and staff who may only see it
    opts = make()._meta
    offered_to = {}
    for may in (["view", "change"], ["view"]):
        staff(client, *(f"{permission}_{opts.model_name}" for permission in may))

        # When each opens its list
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        page = client.get(url).content.decode()
        offered_to["+".join(may)] = f'value="{action}"' in page

    # Then the action is offered to the first only
    assert offered_to == {"view+change": True, "view": False}


def test_staff_who_may_change_a_saga_retry_its_step_from_the_list(client):
    # Given a running saga, and staff who may change sagas but not edit one on its page
    saga = OrderSagaFactory()
    staff(client, "view_ordersaga", "change_ordersaga")

    # When they retry its step from the list
    response = client.post(
        reverse("admin:orders_ordersaga_changelist"),
        {"action": "retry_step", "_selected_action": [str(saga.pk)]},
        follow=True,
    )

    # Then the step's command goes again, noted in their name
    assert "1 step(s) sent again." in response.content.decode()
    assert saga.history.filter(kind="staff").exists()


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
