"""Fraud screening on real workers: payments charges only what the fraud screen cleared.

The test plays the stream processor (analytics/), publishing each order's
OrderScreened verdict as it will. Payments runs in a worker of its own started
with FRAUD_SCREENING=1, its regular worker (started with the test settings'
default, off) held off the queue meanwhile; payments is the one app that reads
the setting. Under both workflows: the cleared order completes, the suspected
one is cancelled for suspected fraud and never reaches the gateway.
"""

import pytest
from django.db import transaction

from analytics.events import OrderScreened, Verdict
from gateway.models import Charge
from inventory.models import Product
from messaging.publishing import publish
from notifications.models import SentEmail
from orders.models import Order
from payments.models import Payment, Refund, Screening
from tests.flow.conftest import order_body, wait_until_closed
from tests.flow.test_saga import consumer_paused
from tests.support.screening_messages import SUSPICION
from tests.support.waiting import wait_for, wait_until_quiet
from tests.support.workers import APP_QUEUES, WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture
def screening_payments(app_workers):
    """A payments worker with FRAUD_SCREENING=1, alone on the payments queue (two pool
    processes, so that an order's charge and its verdict may be handled at once)."""
    regular = app_workers["payments"]
    worker = WorkerProcess(
        "screening-payments", ["payments"], {**regular.env, "FRAUD_SCREENING": "1"}, 2
    )
    try:
        worker.wait_ready()
        with consumer_paused(regular, "payments"):
            yield worker
            # What the test set going finishes here, before the regular worker is back.
            wait_until_quiet(APP_QUEUES)
    finally:
        worker.stop()


def place(client, workflow: str, sku: str) -> str:
    response = client.post(
        "/api/orders/",
        order_body(items=[(sku, 1)], workflow=workflow),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def screened(order_id: str, workflow: str, *, suspected: bool = False) -> None:
    """Publish the fraud screen's verdict on an order, as the stream processor does."""
    verdict = OrderScreened(
        order_id=order_id,
        verdict=Verdict.SUSPECTED_FRAUD if suspected else Verdict.CLEARED,
        rule="card_velocity" if suspected else "",
        reason=SUSPICION if suspected else "",
        workflow=workflow,
    )
    with transaction.atomic():
        publish(verdict, correlation_id=order_id)


def gateway_charges(order_id: str):
    return Charge.objects.filter(idempotency_key=f"order-{order_id}")


@pytest.mark.parametrize("workflow", ["choreography", "orchestration"])
def test_a_cleared_order_completes_and_a_suspected_one_is_cancelled_never_charged(
    client, stock, screening_payments, workflow
):
    sku = stock(on_hand=5, price="15.00")

    # Given two orders; the fraud screen clears the first as soon as it is placed
    cleared_id = place(client, workflow, sku)
    screened(cleared_id, workflow)
    suspected_id = place(client, workflow, sku)

    # Then the second one's charge waits for its verdict, the gateway not asked
    wait_for(
        lambda: Screening.objects.filter(order_id=suspected_id, requested_at__isnull=False).first(),
        what="the second order's charge to wait for its verdict",
    )
    assert not gateway_charges(suspected_id).exists()
    assert Order.objects.get(pk=suspected_id).status == "placed"

    # When the fraud screen suspects it
    screened(suspected_id, workflow, suspected=True)

    # Then the cleared order is charged and completes
    cleared = wait_until_closed(cleared_id)
    assert cleared.status == "completed"
    assert gateway_charges(cleared_id).get().amount == cleared.total

    # And the suspected one is cancelled for suspected fraud, saying why, and never charged
    suspected = wait_until_closed(suspected_id)
    assert suspected.status == "cancelled"
    assert suspected.cancel_reason_code == "suspected_fraud"
    assert suspected.cancel_reason == f"Payment failed: {SUSPICION}"
    assert "suspected fraud" in suspected.cancel_reason.lower()
    assert not gateway_charges(suspected_id).exists()
    payment = Payment.objects.get(order_id=suspected_id)
    assert (payment.status, payment.failure_code) == ("failed", "suspected_fraud")
    assert not Refund.objects.filter(payment=payment).exists()
    assert (suspected.payment_status, suspected.amount_charged, suspected.amount_refunded) == (
        "failed", 0, 0,
    )  # fmt: skip

    # And the customer reads why on the API, on the order page and in the email
    detail = client.get(f"/api/orders/{suspected_id}/").json()
    assert (detail["status"], detail["cancel_reason"]) == ("cancelled", suspected.cancel_reason)
    assert "OrderScreened" in [entry["type"] for entry in detail["timeline"]]
    page = client.get(f"/orders/{suspected_id}/").content.decode()
    assert suspected.cancel_reason in page
    email = wait_for(
        lambda: SentEmail.objects.filter(order_id=suspected_id, kind="cancelled").first(),
        what="the cancellation email",
    )
    assert SUSPICION in email.body

    # And no stock was held for it: only the cleared order's unit left
    product = Product.objects.get(sku=sku)
    assert (product.on_hand, product.reserved, product.shipped) == (4, 0, 1)
