"""Messages that arrive in the wrong order are handled by each app's state machine, never blindly.

A compensation can overtake the step it undoes: the step's first delivery
failed and waits for its retry while the saga, out of patience, already
compensates. Here the undoing command is delivered first, on purpose, to the
real workers; each app must remember it (a tombstone) and refuse the step
when it finally comes.
"""

import uuid
from decimal import Decimal

import pytest
from django.db import transaction

from gateway import client as gateway
from gateway.models import Charge
from inventory.commands import ReleaseInventory, ReserveInventory
from inventory.events import ReservedLine
from inventory.models import Product, Reservation
from messaging.models import OutboxMessage
from messaging.publishing import send
from payments.commands import ChargePayment, RefundPayment
from payments.models import Payment
from shipping.commands import CancelShipment, CreateShipment, ShipmentLine
from shipping.models import Shipment
from tests.conftest import wait_for
from tests.flow.conftest import ADDRESS

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def deliver(command, order_id) -> None:
    with transaction.atomic():
        send(command, correlation_id=str(order_id))


def replies(order_id) -> list[str]:
    return list(
        OutboxMessage.objects.filter(correlation_id=str(order_id), kind="event")
        .order_by("id")
        .values_list("type", flat=True)
    )


def wait_for_replies(order_id, count: int) -> list[str]:
    return wait_for(
        lambda: (found := replies(order_id)) and len(found) >= count and found,
        what=f"{count} replies for {order_id}",
    )


def test_a_refund_before_its_charge_voids_the_payment_and_the_charge_never_happens(app_workers):
    order_id = uuid.uuid4()
    token = gateway.tokenize(card_number="4242424242424242")

    deliver(RefundPayment(order_id=order_id, reason_code="timeout", reason="gave up"), order_id)
    assert wait_for_replies(order_id, 1) == ["PaymentVoided"]
    deliver(
        ChargePayment(
            order_id=order_id,
            amount=Decimal("20.00"),
            currency="EUR",
            card_token=token.token,
            card_last4=token.last4,
        ),
        order_id,
    )

    assert wait_for_replies(order_id, 2) == ["PaymentVoided", "PaymentFailed"]
    payment = Payment.objects.get(order_id=order_id)
    assert (payment.status, payment.amount_refunded) == ("voided", 0)
    assert not Charge.objects.filter(idempotency_key=f"order-{order_id}").exists()


def test_a_reservation_after_its_release_is_refused_and_takes_no_stock(app_workers, stock):
    sku = stock(on_hand=5)
    order_id = uuid.uuid4()

    deliver(ReleaseInventory(order_id=order_id, reason="cancelled"), order_id)
    assert wait_for_replies(order_id, 1) == ["InventoryReleased"]
    deliver(
        ReserveInventory(order_id=order_id, lines=[ReservedLine(sku=sku, quantity=2)]), order_id
    )

    assert wait_for_replies(order_id, 2) == ["InventoryReleased", "InventoryReservationFailed"]
    assert Reservation.objects.get(order_id=order_id).status == "released"
    product = Product.objects.get(sku=sku)
    assert (product.on_hand, product.reserved) == (5, 0)


def test_a_shipment_after_its_cancellation_is_never_created(app_workers):
    order_id = uuid.uuid4()

    deliver(CancelShipment(order_id=order_id, reason="cancelled"), order_id)
    assert wait_for_replies(order_id, 1) == ["ShipmentCancelled"]
    deliver(
        CreateShipment(
            order_id=order_id,
            address=dict(ADDRESS),
            lines=[ShipmentLine(sku="X-1", name="X", quantity=1)],
        ),
        order_id,
    )

    assert wait_for_replies(order_id, 2) == ["ShipmentCancelled", "ShipmentFailed"]
    shipment = Shipment.objects.get(order_id=order_id)
    assert shipment.status == "cancelled"
    assert not shipment.tracking_number
