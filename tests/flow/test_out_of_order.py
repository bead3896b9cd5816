"""Messages that arrive in the wrong order are handled by each app's state machine, never blindly.

A compensation can overtake the step it undoes: the step's first delivery
failed and waits for its retry while the saga, out of patience, already
compensates. Here the undoing command is delivered first, on purpose, to the
real workers; each app must remember it (a tombstone) and refuse the step
when it finally comes. Under choreography the same holds for an order that
ends while its charge waits for a retry, or while a charge is under way.
"""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pybreaker
import pytest
from django.db import connections, transaction

from gateway import client as gateway
from gateway.models import Charge
from inventory.commands import ReleaseInventory, ReserveInventory
from inventory.events import ReservedLine
from inventory.models import Product, Reservation
from inventory.services import stock_release, stock_reserve
from messaging.models import OutboxMessage
from messaging.publishing import send
from orders.models import Order
from orders.services import order_cancel
from payments import breaker as payments_breaker
from payments import services as payments
from payments.commands import ChargePayment, RefundPayment
from payments.models import Payment
from shipping.commands import CancelShipment, CreateShipment, ShipmentLine
from shipping.models import Shipment
from tests.flow.conftest import ADDRESS, order_body
from tests.flow.test_saga import consumer_paused
from tests.support.waiting import wait_for, wait_until_quiet

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

TIMEOUT_CARD = "4000000000000119"


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


# --- Choreography: an order that ends before its charge or its reservation ---


def place_choreographed(client, sku: str, card_number: str = "4242 4242 4242 4242") -> Order:
    response = client.post(
        "/api/orders/",
        order_body(items=[(sku, 1)], card_number=card_number, workflow="choreography"),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return Order.objects.get(pk=response.json()["id"])


def test_an_order_cancelled_while_its_charge_waits_for_a_retry_is_never_charged(
    client, stock, app_workers
):
    sku = stock(on_hand=3)

    with consumer_paused(app_workers["payments"], "payments"):
        # The gateway times out on this card's first tries: its charge is
        # retried with backoff, after the news that the order was cancelled.
        order = place_choreographed(client, sku, card_number=TIMEOUT_CARD)
        order_cancel(order_id=order.pk, reason_code="customer_request", reason="Changed my mind")

    wait_for(
        lambda: Payment.objects.filter(order_id=order.pk, status="voided").exists(),
        what="the payment to be voided",
    )
    wait_until_quiet(["payments"])
    assert Payment.objects.get(order_id=order.pk).status == "voided"
    assert not Charge.objects.filter(
        idempotency_key=f"order-{order.pk}", status=Charge.Status.SUCCEEDED
    ).exists()
    order.refresh_from_db()
    assert (order.status, order.cancel_reason_code) == ("cancelled", "customer_request")
    assert order.amount_charged == order.amount_refunded == 0


def test_a_reservation_that_comes_after_its_release_takes_nothing(stock):
    # A reservation retried after its order was cancelled and released finds
    # the tombstone the release left, and takes no stock.
    sku = stock(on_hand=2)
    order_id = uuid.uuid4()
    messages_before = OutboxMessage.objects.count()

    stock_release(order_id=order_id)
    late = stock_reserve(order_id=order_id)

    assert late.status == Reservation.Status.RELEASED
    assert not late.lines.exists()
    product = Product.objects.get(sku=sku)
    assert (product.on_hand, product.reserved) == (2, 0)
    # Nothing announced: no InventoryReserved, no ProductUpdated.
    assert OutboxMessage.objects.count() == messages_before


class _ProcessDied(Exception):
    """Stands for a payments worker that dies after the gateway answered, before its commit."""


def test_a_void_racing_a_charge_that_dies_after_taking_the_money_refunds_it(
    client, stock, app_workers, monkeypatch
):
    # The order is cancelled (the void) while a charge is under way whose
    # worker then dies before its commit: the money the gateway took goes back.
    sku = stock(on_hand=5, price="12.00")
    real_charge = gateway.charge
    charging = threading.Event()

    def charge_then_die(**kwargs):
        charging.set()
        time.sleep(0.5)  # the void starts meanwhile
        real_charge(**kwargs)
        raise _ProcessDied

    monkeypatch.setattr(gateway, "charge", charge_then_die)
    # The charge and the void stand for two worker processes, each with a
    # breaker of its own: one pybreaker object runs one call at a time.
    own = threading.local()

    def breaker_of_this_thread():
        if not hasattr(own, "breaker"):
            closed = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
            own.breaker = payments_breaker.GatewayBreaker(closed)
        return own.breaker

    monkeypatch.setattr(payments_breaker, "breaker", breaker_of_this_thread)

    with consumer_paused(app_workers["payments"], "payments"):
        order = place_choreographed(client, sku)
        placed = OutboxMessage.objects.get(correlation_id=str(order.pk), type="OrderPlaced")

        def charge() -> None:
            try:
                with pytest.raises(_ProcessDied):
                    payments.payment_charge(
                        charge=payments.Charge(
                            order_id=order.pk,
                            amount=order.total,
                            currency=order.currency,
                            card_token=placed.payload["card_token"],
                            card_last4=order.card_last4,
                        )
                    )
            finally:
                connections.close_all()

        def void() -> None:
            try:
                payments.payment_refund_or_void(
                    order_id=order.pk, reason_code="order_cancelled", reason="Cancelled"
                )
            finally:
                connections.close_all()

        with ThreadPoolExecutor(max_workers=2) as pool:
            charged = pool.submit(charge)
            charging.wait(timeout=10)
            voided = pool.submit(void)
            charged.result(timeout=30)
            voided.result(timeout=30)

        payment = Payment.objects.get(order_id=order.pk)
        assert (payment.status, payment.amount_refunded) == ("refunded", Decimal("12.00"))
        gateway_charge = Charge.objects.get(idempotency_key=f"order-{order.pk}")
        assert gateway_charge.status == Charge.Status.SUCCEEDED
        assert gateway_charge.refunded == gateway_charge.amount == Decimal("12.00")
        about_payment = OutboxMessage.objects.filter(
            payload__order_id=str(order.pk), type__startswith="Payment"
        ).values_list("type", flat=True)
        assert list(about_payment) == ["PaymentRefunded"]

    # The paused worker's own delivery of the order then finds it settled.
    wait_for(
        lambda: Order.objects.filter(pk=order.pk, status="cancelled").exists(),
        what="orders to cancel the refunded order",
    )
    wait_until_quiet(["payments"])
    assert Charge.objects.filter(idempotency_key=f"order-{order.pk}").count() == 1
    assert Payment.objects.get(order_id=order.pk).amount_refunded == Decimal("12.00")
