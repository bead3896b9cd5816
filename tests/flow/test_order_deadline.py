"""Every order ends by its deadline, on real workers: the watchdog undoes what was done.

The watchdog is beat's; here the test runs its sweep itself, as the saga's
deadline tests run the saga's check. ORDER_DEADLINE_SECONDS is a few seconds,
set in this process, which places the orders (the deadline travels with
OrderPlaced to the workers).
"""

import time

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from gateway.models import Outage
from inventory.models import OrderRequest, Product
from messaging.models import DeadLetter, OutboxMessage
from orders.models import Order, OrderSaga, SagaEntry
from orders.saga import saga_check_deadlines
from orders.watchdog import order_watchdog_sweep
from payments.models import Payment
from shipping.models import Shipment
from tests.flow.conftest import place_orders
from tests.flow.invariants import assert_books_balance, wait_until_all_closed
from tests.support.waiting import wait_for
from tests.support.workers import consumer_paused

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]

DEADLINE = 6


def status_of(order_id) -> str:
    return Order.objects.values_list("status", flat=True).get(pk=order_id)


def published(order_id, message_type: str) -> int:
    return OutboxMessage.objects.filter(correlation_id=str(order_id), type=message_type).count()


def sweep_until_it_acts(timeout: float = DEADLINE + 20) -> None:
    """Run the watchdog's sweep as beat would, until it ends an order."""
    wait_for(lambda: order_watchdog_sweep() or None, timeout=timeout, what="the watchdog")


def refunded(order_id) -> bool:
    return Payment.objects.filter(order_id=order_id, status="refunded").exists()


@override_settings(ORDER_DEADLINE_SECONDS=DEADLINE)
def test_with_shipping_down_a_paid_order_is_refunded_and_cancelled_and_never_ships(
    stock, app_workers
):
    sku = stock(on_hand=5, price="12.00")
    with consumer_paused(app_workers["shipping"], "shipping"):
        # Given a choreographed order paid and reserved while shipping is down
        [order_id] = place_orders(sku, workflows=["choreography"], email="deadline@example.com")
        wait_for(lambda: status_of(order_id) == "reserved", what="the order to be reserved")
        assert order_watchdog_sweep() == 0  # not before its deadline

        # When its deadline passes
        sweep_until_it_acts()

        # Then the order is cancelled saying what it waited for, its money goes
        # back and its stock to the shelf, with shipping still down
        order = Order.objects.get(pk=order_id)
        assert (order.status, order.cancel_reason_code) == ("cancelled", "deadline")
        assert order.cancel_reason == (
            "not completed in time: waiting for shipping: create the shipment"
        )
        wait_for(lambda: refunded(order_id), what="the refund")
        wait_for(
            lambda: Product.objects.get(sku=sku).reserved == 0, what="the stock to be released"
        )

    # When shipping comes back and handles the InventoryReserved that waited for it
    wait_for(lambda: published(order_id, "ShipmentFailed"), what="shipping to refuse the parcel")

    # Then nothing ships for the cancelled order, and the books balance
    shipment = Shipment.objects.get(order_id=order_id)
    assert (shipment.status, shipment.tracking_number) == ("cancelled", None)
    assert published(order_id, "ShipmentCreated") == 0
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.attention_reason) == ("cancelled", "")
    tally = assert_books_balance([order_id], {sku: 5})
    assert (tally.completed, tally.cancelled) == (0, 1)


@override_settings(ORDER_DEADLINE_SECONDS=DEADLINE)
def test_a_dead_lettered_choreography_step_ends_its_order_the_same_way(stock, app_workers):
    sku = stock(on_hand=5, price="8.00")
    with consumer_paused(app_workers["payments"], "payments"):
        # Given inventory lost a placed order's lines (its reservation can never be made)
        [order_id] = place_orders(sku, workflows=["choreography"], email="lost@example.com")
        wait_for(lambda: OrderRequest.objects.filter(order_id=order_id).exists(), what="lines")
        OrderRequest.objects.filter(order_id=order_id).delete()

    # When it is paid, the reservation waits for the lines (MESSAGING_RETRY_LATER_WINDOW),
    # is retried, then dead-lettered
    wait_for(
        lambda: DeadLetter.objects.filter(handler="inventory.reserve_stock").exists(),
        timeout=settings.MESSAGING_RETRY_LATER_WINDOW + 30,
        what="the reservation's dead letter",
    )
    assert status_of(order_id) == "paid"

    # Then at its deadline the watchdog cancels it and the payment is refunded
    sweep_until_it_acts()
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.cancel_reason) == (
        "cancelled",
        "not completed in time: waiting for inventory: reserve stock",
    )
    wait_for(lambda: refunded(order_id), what="the refund")
    tally = assert_books_balance([order_id], {sku: 5})
    assert tally.cancelled == 1


@override_settings(ORDER_DEADLINE_SECONDS=DEADLINE, SAGA_STEP_TIMEOUT=0.5, SAGA_STEP_ATTEMPTS=2)
def test_during_a_gateway_outage_both_workflows_wait_for_the_deadline_then_end_alike(
    stock, app_workers, shared_breaker
):
    sku = stock(on_hand=5, price="9.00")
    # Given the card gateway down, its breaker open for every payments process
    outage = Outage.objects.create(note="deadline drill")
    shared_breaker.open()
    # and an orchestrated and a choreographed order placed meanwhile
    ids = place_orders(
        sku, workflows=["orchestration", "choreography"], email="outage-deadline@example.com"
    )
    saga_order = ids[0]
    # whose payments say they wait for the gateway
    wait_for(
        lambda: (
            Order.objects.filter(pk__in=ids).exclude(waiting_because="").count() == 2
            and SagaEntry.objects.filter(saga_id=saga_order, kind="waiting").exists()
        ),
        what="both orders to hear that their payment waits for the gateway",
    )

    # When the saga's step deadlines are checked (its step times out in 0.5 s,
    # twice) until just before the order's deadline
    deadline = Order.objects.get(pk=saga_order).deadline
    while (deadline - timezone.now()).total_seconds() > 1:
        saga_check_deadlines(now=timezone.now())
        time.sleep(0.3)

    # Then the orchestrated order was not cancelled: its saga waits for the card
    saga = OrderSaga.objects.get(pk=saga_order)
    assert (saga.state, saga.step) == ("running", "charge_payment")
    assert published(saga_order, "RefundPayment") == 0
    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"placed"}

    # When the deadline passes, the watchdog ends both
    def swept() -> bool:
        order_watchdog_sweep()
        return Order.objects.filter(pk__in=ids, status="cancelled").count() == len(ids)

    wait_for(swept, timeout=DEADLINE + 20, what="the watchdog to end both orders")

    # Then both end the same way, with the same reason
    reasons = set(
        Order.objects.filter(pk__in=ids).values_list(
            "status", "cancel_reason_code", "cancel_reason"
        )
    )
    because = "not completed in time: waiting for payments: charge the card"
    assert reasons == {("cancelled", "deadline", because)}

    # and once the gateway is back, nothing was kept: the books balance
    Outage.objects.filter(pk=outage.pk).update(ended_at=timezone.now())
    wait_for(
        lambda: Payment.objects.filter(order_id__in=ids).count() == 2, what="both payments settled"
    )
    wait_until_all_closed(ids)
    tally = assert_books_balance(ids, {sku: 5})
    assert tally.cancelled == 2
