"""The order saga's deadlines, late and duplicate replies, and staff actions, on real workers."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import override_settings
from django.utils import timezone

from gateway.models import Charge
from messaging.messages import Envelope
from messaging.models import OutboxMessage
from messaging.publishing import publish
from orders.models import Order, OrderSaga, SagaEntry
from orders.saga import saga_check_deadlines, saga_handle_reply
from payments.events import PaymentProcessed
from payments.models import Payment
from tests.flow.conftest import order_body, wait_until_closed
from tests.support.waiting import wait_for
from tests.support.workers import consumer_paused

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def place(client, **body) -> Order:
    response = client.post(
        "/api/orders/",
        order_body(workflow="orchestration", **body),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return Order.objects.get(pk=response.json()["id"])


def history(order: Order) -> list[tuple[str, str]]:
    return list(SagaEntry.objects.filter(saga_id=order.pk).values_list("kind", "message_type"))


def commands_sent(order: Order, command: str) -> int:
    return OutboxMessage.objects.filter(correlation_id=str(order.pk), type=command).count()


@override_settings(SAGA_STEP_TIMEOUT=0.5, SAGA_STEP_ATTEMPTS=2)
def test_a_step_without_reply_is_retried_then_compensated_and_a_late_charge_refunded(
    client, stock, app_workers
):
    sku = stock(on_hand=3, price="11.00")
    with consumer_paused(app_workers["payments"], "payments"):
        # Given payments does not answer
        order = place(client, items=[(sku, 1)])

        # When the deadline passes twice (celery beat runs this check)
        wait_for(lambda: saga_check_deadlines(now=timezone.now()) or None, what="a first timeout")
        wait_for(lambda: saga_check_deadlines(now=timezone.now()) or None, what="a second timeout")

        # Then the charge was asked for twice, then the saga compensates
        saga = OrderSaga.objects.get(pk=order.pk)
        assert (saga.state, saga.step, saga.failure_code) == (
            "compensating",
            "refund_payment",
            "timeout",
        )
        assert commands_sent(order, "ChargePayment") == 2
        assert commands_sent(order, "RefundPayment") == 1

    # When payments comes back, it charges (late), answers twice, then refunds
    order = wait_until_closed(order.pk)
    assert order.status == "cancelled"
    assert order.cancel_reason_code == "timeout"
    assert order.cancel_reason == "No reply to Charge Payment in time; the payment was refunded"
    payment = Payment.objects.get(order_id=order.pk)
    assert (payment.status, payment.amount, payment.amount_refunded) == (
        "refunded", Decimal("11.00"), Decimal("11.00"),
    )  # fmt: skip
    charge = Charge.objects.get(charge_id=payment.gateway_charge_id)
    assert charge.refunded == charge.amount
    wait_for(
        lambda: ("late", "PaymentProcessed") in history(order),
        what="the late charge to be recognised",
    )
    kinds = [kind for kind, _ in history(order)]
    assert kinds.count("timed_out") == 2
    assert OrderSaga.objects.get(pk=order.pk).state == "cancelled"


def test_a_duplicate_reply_changes_nothing(client, stock, app_workers):
    sku = stock(on_hand=2, price="8.00")
    order = wait_until_closed(place(client, items=[(sku, 1)]).pk)
    assert order.status == "completed"
    payment = Payment.objects.get(order_id=order.pk)

    # When payments' reply arrives once more (a new message saying the same)
    with transaction.atomic():
        publish(
            PaymentProcessed(
                order_id=order.pk,
                payment_id=payment.id,
                amount=payment.amount,
                currency=payment.currency,
                workflow="orchestration",
            ),
            correlation_id=str(order.pk),
        )

    # Then the saga notes it and sends nothing more
    wait_for(
        lambda: history(order).count(("late", "PaymentProcessed")) == 1,
        what="the duplicate to be noted",
    )
    assert commands_sent(order, "ReserveInventory") == 1
    order.refresh_from_db()
    assert order.status == "completed"
    assert OrderSaga.objects.get(pk=order.pk).state == "completed"


def test_staff_compensate_a_running_saga_from_the_admin(admin_client, client, stock, app_workers):
    sku = stock(on_hand=2, price="9.00")
    with consumer_paused(app_workers["payments"], "payments"):
        order = place(client, items=[(sku, 1)])

        response = admin_client.post(
            "/admin/orders/ordersaga/",
            {"action": "compensate", "_selected_action": [str(order.pk)]},
            follow=True,
        )
        assert "1 compensating" in response.content.decode()
        # Asking twice does nothing more
        admin_client.post(
            "/admin/orders/ordersaga/",
            {"action": "compensate", "_selected_action": [str(order.pk)]},
        )
        assert commands_sent(order, "RefundPayment") == 1

    order = wait_until_closed(order.pk)
    assert (order.status, order.cancel_reason_code) == ("cancelled", "staff")
    payment = Payment.objects.get(order_id=order.pk)
    assert payment.amount_refunded == payment.amount == Decimal("9.00")


@override_settings(STUCK_ORDER_AGE=0)
def test_stuck_orders_page_lists_open_orders_and_what_they_wait_on(
    admin_client, client, stock, app_workers
):
    sku = stock(on_hand=2)
    with consumer_paused(app_workers["payments"], "payments"):
        order = place(client, items=[(sku, 1)])

        assert client.get("/staff/stuck-orders/").status_code == 302  # staff only
        page = admin_client.get("/staff/stuck-orders/").content.decode()
        assert str(order.pk) in page
        assert "saga: Charge Payment (Running)" in page
    wait_until_closed(order.pk)


@override_settings(SAGA_STEP_TIMEOUT=0.5, SAGA_STEP_ATTEMPTS=1)
def test_a_shipment_made_after_its_step_timed_out_completes_the_order(client, stock, app_workers):
    sku = stock(on_hand=2, price="5.00")
    with consumer_paused(app_workers["shipping"], "shipping"):
        order = place(client, items=[(sku, 1)])
        wait_for(
            lambda: OrderSaga.objects.filter(pk=order.pk, step="create_shipment").exists(),
            what="the saga to reach the shipping step",
        )
        # The shipping step times out (its deadline was set by the orders
        # worker, so the check looks from a moment past it): the saga starts
        # undoing, shipment first
        later = timezone.now() + timedelta(seconds=settings.SAGA_STEP_TIMEOUT + 60)
        assert saga_check_deadlines(now=later) == 1
        saga = OrderSaga.objects.get(pk=order.pk)
        assert (saga.state, saga.step) == ("compensating", "cancel_shipment")

    # Shipping comes back: it makes the parcel it was asked for first, so
    # the cancel fails and the saga goes forward instead of backward
    order = wait_until_closed(order.pk)
    assert order.status == "completed"
    assert order.tracking_number
    saga = OrderSaga.objects.get(pk=order.pk)
    assert (saga.state, saga.step) == ("completed", "done")
    assert commands_sent(order, "ReleaseInventory") == 0
    assert commands_sent(order, "RefundPayment") == 0
    payment = Payment.objects.get(order_id=order.pk)
    assert (payment.status, payment.amount_refunded) == ("captured", 0)


@override_settings(SAGA_STEP_TIMEOUT=0.5, SAGA_STEP_ATTEMPTS=1)
def test_a_parked_compensation_resumes_when_its_reply_comes(
    admin_client, client, stock, app_workers
):
    sku = stock(on_hand=2, price="7.00")
    with consumer_paused(app_workers["payments"], "payments"):
        order = place(client, items=[(sku, 1)])
        admin_client.post(
            "/admin/orders/ordersaga/",
            {"action": "compensate", "_selected_action": [str(order.pk)]},
        )
        # The refund gets no reply in time either: the saga parks, visibly
        wait_for(lambda: saga_check_deadlines(now=timezone.now()) or None, what="the timeout")
        saga = OrderSaga.objects.get(pk=order.pk)
        assert (saga.state, saga.step) == ("needs_attention", "refund_payment")
        assert ("attention", "") in history(order)

    # Payments comes back: charges (late), then refunds; the saga finishes
    order = wait_until_closed(order.pk)
    assert (order.status, order.cancel_reason_code) == ("cancelled", "staff")
    assert OrderSaga.objects.get(pk=order.pk).state == "cancelled"
    payment = Payment.objects.get(order_id=order.pk)
    assert payment.amount_refunded == payment.amount == Decimal("7.00")


def test_two_replies_handled_at_once_move_the_saga_once(client, stock, app_workers):
    sku = stock(on_hand=2, price="4.00")
    with consumer_paused(app_workers["payments"], "payments"):
        order = place(client, items=[(sku, 1)])
        reply = PaymentProcessed(
            order_id=order.pk,
            payment_id=uuid.uuid4(),
            amount=order.total,
            currency=order.currency,
            workflow="orchestration",
        )
        barrier = threading.Barrier(2)

        def handle() -> None:
            envelope = Envelope(
                message_id=uuid.uuid4(),
                kind="event",
                type="PaymentProcessed",
                version=1,
                occurred_at=timezone.now(),
                correlation_id=str(order.pk),
                payload=reply.model_dump(mode="json"),
            )
            try:
                barrier.wait(timeout=10)
                saga_handle_reply(order_id=order.pk, reply=reply, envelope=envelope)
            finally:
                connections.close_all()

        # When the same reply is handled twice at the same moment
        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(handle), pool.submit(handle)]:
                future.result()

        # Then the saga moved on once: one reservation asked for, one reply
        # taken, the other recognised as already handled
        assert commands_sent(order, "ReserveInventory") == 1
        kinds = [kind for kind, message in history(order) if message == "PaymentProcessed"]
        assert sorted(kinds) == ["late", "received"]
    wait_until_closed(order.pk)
