"""orders.watchdog: every order past its deadline is ended the same way under either workflow.

Each test gives orders at some point of their way (tests/orders/factories.py),
runs the watchdog's sweep at a moment past or before their deadline, then
reads what a person would: the order, its saga and what was published.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from messaging.publishing import publish
from orders import services
from orders.models import Order, OrderSaga, SagaEntry
from orders.saga import saga_check_deadlines
from orders.selectors import stuck_orders
from orders.watchdog import GRACE, order_watchdog_sweep
from payments.events import PaymentProcessed
from shipping.events import ShipmentCreated
from tests.orders.factories import OrderFactory, OrderSagaFactory, reply
from tests.support.envelopes import envelope_of, published

pytestmark = pytest.mark.django_db

Status = Order.Status
WAITING_FOR_THE_CARD = "not completed in time: waiting for payments: charge the card"


def past(order: Order):
    """A moment just after the order's deadline, once the watchdog's grace is over."""
    assert order.deadline is not None
    return order.deadline + GRACE + timedelta(seconds=1)


def test_an_order_past_its_deadline_is_cancelled_saying_what_it_waited_for():
    # Given a paid choreographed order past its deadline, and one still within its own
    paid = OrderFactory(status=Status.PAID, payment_status=Order.PaymentStatus.CAPTURED)
    later = OrderFactory(deadline=paid.deadline + timedelta(minutes=5))

    # When the watchdog sweeps
    ended = order_watchdog_sweep(now=past(paid))

    # Then the overdue one is cancelled, saying it waited for its stock, and
    # OrderCancelled asks the other apps to undo their part
    paid.refresh_from_db()
    assert ended == 1
    assert (paid.status, paid.cancel_reason_code) == (Status.CANCELLED, "deadline")
    assert paid.cancel_reason == "not completed in time: waiting for inventory: reserve stock"
    [cancelled] = published("OrderCancelled")
    assert cancelled.payload["order_id"] == str(paid.pk)
    assert cancelled.correlation_id == str(paid.pk)
    # and the other is left alone
    assert Order.objects.get(pk=later.pk).status == Status.PLACED


def test_closed_and_parked_orders_are_left_alone_and_a_sweep_twice_ends_once():
    # Given a completed order, a parked one and an open one, all past their deadline
    deadline = timezone.now() - timedelta(minutes=1)
    OrderFactory(completed=True, deadline=deadline)
    OrderFactory(status=Status.PAID, attention_reason="looked at by staff", deadline=deadline)
    open_one = OrderFactory(deadline=deadline)

    # When the watchdog sweeps twice
    first, second = order_watchdog_sweep(), order_watchdog_sweep()

    # Then only the open one was ended, once
    assert (first, second) == (1, 0)
    assert Order.objects.get(pk=open_one.pk).status == Status.CANCELLED
    assert len(published("OrderCancelled")) == 1


def test_an_order_whose_parcel_left_is_completed_instead():
    # Given a reserved order past its deadline whose ShipmentCreated is in the
    # event log, though orders has not handled it yet
    order = OrderFactory(status=Status.RESERVED)
    with transaction.atomic():
        publish(
            ShipmentCreated(
                order_id=order.pk, shipment_id=uuid.uuid4(), carrier="ParcelPost",
                tracking_number="PP000000000042",
            ),
            correlation_id=str(order.pk),
        )  # fmt: skip

    # When the watchdog sweeps
    order_watchdog_sweep(now=past(order))

    # Then the order completes with that parcel (forward recovery), nothing is cancelled
    order.refresh_from_db()
    assert (order.status, order.tracking_number) == (Status.COMPLETED, "PP000000000042")
    assert published("OrderCancelled") == []
    assert len(published("OrderCompleted")) == 1


def test_both_workflows_wait_out_a_gateway_outage_and_end_with_the_same_reason(settings):
    # Given an orchestrated and a choreographed order whose payments were put off
    # (the breaker is open): payments published PaymentDeferred for each
    saga = OrderSagaFactory(charging=True)
    choreographed = OrderFactory(deadline=saga.order.deadline)
    for order in (saga.order, choreographed):
        services.order_mark_payment_deferred(
            order_id=order.pk, reason="the card gateway is unavailable"
        )

    # When the saga's step deadlines are checked long after its usual timeout
    every_attempt = settings.SAGA_STEP_TIMEOUT * (settings.SAGA_STEP_ATTEMPTS + 1)
    before_deadline = saga.order.deadline - timedelta(seconds=1)
    assert timezone.now() + timedelta(seconds=every_attempt) < before_deadline
    saga_check_deadlines(now=before_deadline)

    # Then the stuck-orders page says why they wait,
    waiting_on = {row.order.pk: row.waiting_on for row in stuck_orders(older_than=timedelta(0))}
    assert waiting_on[choreographed.pk] == (
        "payments: charge the card (the card gateway is unavailable)"
    )
    # and the saga has not timed the step out: it waits for the order's deadline
    saga.refresh_from_db()
    assert (saga.state, saga.step, saga.attempts) == ("running", "charge_payment", 1)
    assert SagaEntry.objects.filter(saga=saga, kind="waiting").exists()
    assert published("RefundPayment") == []

    # When the watchdog sweeps after it
    order_watchdog_sweep(now=past(saga.order))

    # Then both orders are cancelled the same way, with the same reason
    reasons = set(
        Order.objects.filter(pk__in=[saga.order_id, choreographed.pk]).values_list(
            "status", "cancel_reason_code", "cancel_reason"
        )
    )
    assert reasons == {(Status.CANCELLED, "deadline", WAITING_FOR_THE_CARD)}
    # and the saga stops there, sending nothing more
    saga.refresh_from_db()
    assert (saga.state, saga.step) == (OrderSaga.State.CANCELLED, OrderSaga.Step.DONE)
    assert published("RefundPayment") == []


def test_a_charge_that_succeeds_after_the_deadline_is_refunded_by_the_saga():
    # Given an orchestrated order the watchdog cancelled while its charge waited
    saga = OrderSagaFactory(charging=True)
    order_watchdog_sweep(now=past(saga.order))

    # When the charge goes through after all and its reply comes
    message = reply(PaymentProcessed, order=saga.order)
    envelope = envelope_of(message, correlation_id=str(saga.order_id))
    services.order_saga_advance(order_id=saga.order_id, reply=message, envelope=envelope)

    # Then the saga asks for the money back
    saga.refresh_from_db()
    assert (saga.state, saga.step) == ("compensating", "refund_payment")
    assert [row.payload["reason_code"] for row in published("RefundPayment")] == ["deadline"]
    assert Order.objects.get(pk=saga.order_id).status == Status.CANCELLED


def test_an_order_whose_saga_is_parked_is_parked_for_a_person():
    # Given an orchestrated order past its deadline whose compensation got no reply
    saga = OrderSagaFactory(releasing=True, parked=True)

    # When the watchdog sweeps
    order_watchdog_sweep(now=past(saga.order))

    # Then the order stays as it is, parked: the stuck-orders page says a person must look
    order = Order.objects.get(pk=saga.order_id)
    assert order.status == Status.RESERVED
    assert order.attention_reason == "its saga needs attention (Release Inventory)"
    assert published("OrderCancelled") == []
    [row] = [row for row in stuck_orders(older_than=timedelta(0)) if row.order.pk == order.pk]
    assert row.waiting_on.startswith("a person: its saga needs attention")
    # and the sweep does not pick it again
    assert order_watchdog_sweep(now=past(order)) == 0


def test_a_parcel_that_left_for_a_cancelled_order_parks_it():
    # Given an order the watchdog cancelled
    order = OrderFactory(status=Status.RESERVED)
    order_watchdog_sweep(now=past(order))

    # When a parcel made just before the deadline is reported after it
    services.order_record_shipment(order_id=order.pk, carrier="ParcelPost", tracking_number="PP1")

    # Then the order stays cancelled, and is listed for a person to settle
    order.refresh_from_db()
    assert order.status == Status.CANCELLED
    assert order.attention_reason == "shipment PP1 left for this cancelled order"
    assert any(row.order.pk == order.pk for row in stuck_orders(older_than=timedelta(0)))


def test_an_order_whose_saga_is_undoing_a_step_at_its_deadline_says_which():
    # Given an orchestrated order out of stock whose refund has not come back by its deadline
    saga = OrderSagaFactory(refunding=True)

    # When the watchdog sweeps
    order_watchdog_sweep(now=past(saga.order))

    # Then it is cancelled saying it waited for the refund, which payments makes on OrderCancelled
    order = Order.objects.get(pk=saga.order_id)
    assert order.cancel_reason == "not completed in time: waiting for payments: refund the payment"
    assert len(published("OrderCancelled")) == 1
    assert OrderSaga.objects.get(pk=saga.pk).state == OrderSaga.State.CANCELLED
