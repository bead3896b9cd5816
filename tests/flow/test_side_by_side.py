"""Choreography charges the card and reserves the stock side by side; either may come first.

Each app's real worker runs; one of them is held off its queue to decide
which of the two happens first, so that each ordering is tested on purpose
rather than by luck. Whatever the order, an order ships only when it is both
paid and reserved, and one that cannot go on keeps neither money nor stock.
"""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pybreaker
import pytest
from django.db import connections

from gateway.models import Charge
from inventory import services as inventory
from inventory.events import ReservedLine
from inventory.models import Product, Reservation
from messaging.models import OutboxMessage
from notifications.models import SentEmail
from orders.models import Order
from orders.selectors import stuck_orders
from payments import breaker as payments_breaker
from payments import services as payments
from payments.models import Payment
from shipping import services as shipping
from shipping.models import Clearance, Shipment
from tests.conftest import wait_for, wait_until_quiet
from tests.flow.conftest import order_body, wait_until_closed
from tests.flow.test_saga import consumer_paused

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

TIMEOUT_CARD = "4000000000000119"
DECLINED_CARD = "4000000000000002"


def place(client, items, card_number="4242 4242 4242 4242") -> Order:
    response = client.post(
        "/api/orders/",
        order_body(items=items, card_number=card_number, workflow="choreography"),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return Order.objects.get(pk=response.json()["id"])


def published(order: Order, event_type: str) -> bool:
    return OutboxMessage.objects.filter(
        correlation_id=str(order.pk), type=event_type, dispatched_at__isnull=False
    ).exists()


def stock_of(sku: str) -> tuple[int, int, int]:
    product = Product.objects.get(sku=sku)
    return product.on_hand, product.reserved, product.shipped


def emails_of(order: Order) -> set[str]:
    return set(SentEmail.objects.filter(order_id=order.pk).values_list("kind", flat=True))


def test_stock_reserved_before_the_charge_waits_for_it_then_ships(client, stock, app_workers):
    sku = stock(on_hand=5, price="15.00")

    with consumer_paused(app_workers["payments"], "payments"):
        order = place(client, [(sku, 2)])
        wait_for(
            lambda: Order.objects.filter(pk=order.pk, stock_status="reserved").exists(),
            what="orders to hear that the stock is reserved",
        )
        order.refresh_from_db()
        # Reserved but not paid: still "placed", and it says what it waits for.
        assert (order.status, order.payment_status) == ("placed", "pending")
        assert stock_of(sku) == (5, 2, 0)
        wait_for(
            lambda: Clearance.objects.filter(order_id=order.pk, reserved_at__isnull=False).exists(),
            what="shipping to hear that the stock is reserved",
        )
        assert Clearance.objects.get(order_id=order.pk).paid_at is None
        assert not Shipment.objects.filter(order_id=order.pk).exists()
        [stuck] = [row for row in stuck_orders(older_than=timedelta(0)) if row.order == order]
        assert stuck.waiting_on == "payments: charge the card"

    order = wait_until_closed(order.pk)
    assert order.status == "completed"
    assert Shipment.objects.get(order_id=order.pk).tracking_number == order.tracking_number
    wait_for(lambda: stock_of(sku) == (3, 0, 2), what="the reserved units to ship")


def test_stock_that_runs_out_after_the_charge_is_refunded(client, stock, app_workers):
    sku = stock(on_hand=1, price="20.00")

    with consumer_paused(app_workers["inventory"], "inventory"):
        order = place(client, [(sku, 2)])
        wait_for(
            lambda: Order.objects.filter(pk=order.pk, status="paid").exists(),
            what="the card to be charged",
        )

    order = wait_until_closed(order.pk)
    assert (order.status, order.cancel_reason_code) == ("cancelled", "out_of_stock")
    assert order.cancel_reason == f"Out of stock: {sku} (1 of 2 available) (refunded)"
    payment = Payment.objects.get(order_id=order.pk)
    assert (payment.status, payment.amount, payment.amount_refunded) == (
        "refunded", Decimal("40.00"), Decimal("40.00"),
    )  # fmt: skip
    charge = Charge.objects.get(charge_id=payment.gateway_charge_id)
    assert charge.refunded == charge.amount == Decimal("40.00")
    assert stock_of(sku) == (1, 0, 0)
    assert not Shipment.objects.filter(order_id=order.pk).exists()
    wait_for(lambda: emails_of(order) == {"placed", "refunded", "cancelled"}, what="the emails")


def test_stock_that_runs_out_before_the_charge_voids_it_and_no_money_moves(
    client, stock, app_workers
):
    sku = stock(on_hand=1, price="20.00")

    with consumer_paused(app_workers["payments"], "payments"):
        # The gateway times out on this card's first tries: the charge is
        # retried with backoff, after the news that the stock ran out.
        order = place(client, [(sku, 2)], card_number=TIMEOUT_CARD)
        wait_for(
            lambda: published(order, "InventoryReservationFailed"),
            what="inventory to find the stock short",
        )

    order = wait_until_closed(order.pk)
    assert (order.status, order.cancel_reason_code) == ("cancelled", "out_of_stock")
    assert order.cancel_reason == (f"Out of stock: {sku} (1 of 2 available) (nothing was charged)")
    assert order.payment_status == "voided"
    assert Payment.objects.get(order_id=order.pk).status == "voided"
    # The charge that came after the void was refused before reaching the gateway.
    wait_until_quiet(["payments"])
    assert not Charge.objects.filter(
        idempotency_key=f"order-{order.pk}", status=Charge.Status.SUCCEEDED
    ).exists()
    assert order.amount_charged == order.amount_refunded == 0
    assert stock_of(sku) == (1, 0, 0)
    wait_for(lambda: emails_of(order) == {"placed", "cancelled"}, what="the emails")


def test_a_declined_card_gives_back_stock_reserved_meanwhile(client, stock, app_workers):
    sku = stock(on_hand=4)

    with consumer_paused(app_workers["payments"], "payments"):
        order = place(client, [(sku, 3)], card_number=DECLINED_CARD)
        wait_for(lambda: stock_of(sku) == (4, 3, 0), what="the stock to be reserved")

    order = wait_until_closed(order.pk)
    assert (order.status, order.cancel_reason_code) == ("cancelled", "card_declined")
    wait_for(lambda: stock_of(sku) == (4, 0, 0), what="the reserved units back on the shelf")
    assert Reservation.objects.get(order_id=order.pk).status == "released"
    wait_for(
        lambda: Clearance.objects.filter(order_id=order.pk, reserved_at__isnull=False).exists(),
        what="shipping to hear that the stock was reserved",
    )
    assert Clearance.objects.get(order_id=order.pk).paid_at is None
    assert not Shipment.objects.filter(order_id=order.pk).exists()


def test_two_shipping_workers_hearing_both_reports_at_once_ship_each_order_once(
    client, stock, app_workers
):
    # Competing consumers: the two reports of an order may reach two shipping
    # workers at the same moment. Exactly one of them sees both and ships.
    sku = stock(on_hand=20)

    with consumer_paused(app_workers["shipping"], "shipping"):
        orders = [place(client, [(sku, 1)]) for _ in range(6)]
        wait_for(
            lambda: (
                Order.objects.filter(pk__in=[o.pk for o in orders], status="reserved").count()
                == len(orders)
            ),
            what="every order paid and reserved",
        )
        for order in orders:
            placed = OutboxMessage.objects.get(correlation_id=str(order.pk), type="OrderPlaced")
            shipping.shipment_request_record(
                order_id=order.pk,
                address=placed.payload["shipping_address"],
                lines=[
                    {k: line[k] for k in ("sku", "name", "quantity")}
                    for line in placed.payload["lines"]
                ],
            )
        start = threading.Barrier(2)

        def report(order_id, **what) -> None:
            try:
                start.wait(timeout=10)
                shipping.shipment_clear(order_id=order_id, **what)
            finally:
                connections.close_all()

        with ThreadPoolExecutor(max_workers=2) as pool:
            for order in orders:
                both = [
                    pool.submit(report, order.pk, paid=True),
                    pool.submit(report, order.pk, reserved=True),
                ]
                for future in both:
                    future.result(timeout=30)
                start.reset()

        for order in orders:
            assert Shipment.objects.filter(order_id=order.pk).count() == 1
            assert (
                OutboxMessage.objects.filter(
                    payload__order_id=str(order.pk), type="ShipmentCreated"
                ).count()
                == 1
            )

    # The paused worker's own copies of both reports then change nothing.
    for order in orders:
        assert wait_until_closed(order.pk).status == "completed"
    wait_until_quiet(["shipping"])
    assert Shipment.objects.filter(order_id__in=[o.pk for o in orders]).count() == len(orders)


def test_a_reservation_that_comes_after_the_release_takes_nothing(stock):
    # A reservation can be retried after its order was cancelled and released:
    # the release leaves a tombstone that refuses it.
    sku = stock(on_hand=2)
    order_id = uuid.uuid4()
    messages_before = OutboxMessage.objects.count()

    inventory.stock_release(order_id=order_id)
    late = inventory.stock_reserve(order_id=order_id, lines=[ReservedLine(sku=sku, quantity=1)])

    assert late.status == Reservation.Status.RELEASED
    assert not late.lines.exists()
    assert stock_of(sku) == (2, 0, 0)
    # Nothing announced: no InventoryReserved, no ProductUpdated.
    assert OutboxMessage.objects.count() == messages_before


class _ProcessDied(Exception):
    """Stands for a payments worker that dies after the gateway answered, before its commit."""


def test_a_void_racing_a_charge_that_dies_after_taking_the_money_refunds_it(
    client, stock, app_workers, monkeypatch
):
    # The stock runs out (the void) while a charge is under way whose worker
    # then dies before its commit: the money the gateway took must go back.
    from gateway import client as gateway

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
        order = place(client, [(sku, 1)])
        placed = OutboxMessage.objects.get(correlation_id=str(order.pk), type="OrderPlaced")

        def charge() -> None:
            try:
                with pytest.raises(_ProcessDied):
                    payments.payment_charge(
                        order_id=order.pk,
                        amount=order.total,
                        currency=order.currency,
                        card_token=placed.payload["card_token"],
                        card_last4=order.card_last4,
                    )
            finally:
                connections.close_all()

        def void() -> None:
            try:
                payments.payment_refund(
                    order_id=order.pk,
                    reason_code="out_of_stock",
                    reason="Out of stock",
                    void_uncharged=True,
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

    # The paused worker's own deliveries then find the payment settled.
    order = wait_until_closed(order.pk)
    assert (order.status, order.cancel_reason_code) == ("cancelled", "out_of_stock")
    wait_until_quiet(["payments"])
    assert Charge.objects.filter(idempotency_key=f"order-{order.pk}").count() == 1
    assert Payment.objects.get(order_id=order.pk).amount_refunded == Decimal("12.00")
