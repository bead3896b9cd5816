"""The order flow end to end, under both workflows, with each app's own worker process.

Orders go in through the JSON API; every app consumes from RabbitMQ in its
own `celery -A config worker -Q <app>` process, on PostgreSQL. The same
inputs must reach the same end states by choreography and by orchestration.
"""

from decimal import Decimal

import pytest

from gateway.models import Charge
from inventory.models import Product
from notifications.models import SentEmail
from payments.models import Payment
from shipping.models import Shipment
from tests.flow.conftest import ADDRESS, order_body, wait_until_closed
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture(params=["choreography", "orchestration"])
def workflow(request) -> str:
    return request.param


def place(client, workflow: str, **body) -> dict:
    response = client.post(
        "/api/orders/", order_body(workflow=workflow, **body), content_type="application/json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def emails_of(order_id) -> set[str]:
    return set(SentEmail.objects.filter(order_id=order_id).values_list("kind", flat=True))


def wait_for_emails(order_id, kinds: set[str]) -> None:
    wait_for(lambda: emails_of(order_id) == kinds, what=f"emails {kinds}")


def test_a_paid_order_with_stock_is_completed(client, stock, workflow):
    mug, pen = stock(on_hand=5, price="12.50"), stock(on_hand=3, price="34.00")

    accepted = place(client, workflow, items=[(mug, 2), (pen, 1)])
    assert accepted["status"] == "placed"
    assert accepted["status_url"].endswith(f"/api/orders/{accepted['id']}/")

    order = wait_until_closed(accepted["id"])
    assert order.status == "completed"
    assert order.workflow == workflow
    assert order.total == Decimal("59.00")

    detail = client.get(f"/api/orders/{order.id}/").json()
    assert detail["payment"] == {
        "status": "captured",
        "card_last4": "4242",
        "amount_charged": "59.00",
        "amount_refunded": "0.00",
    }
    shipment = Shipment.objects.get(order_id=order.id)
    assert detail["shipment"]["tracking_number"] == shipment.tracking_number
    events = [e for e in detail["timeline"] if e["kind"] == "event"]
    assert [e["type"] for e in events] == [
        "OrderPlaced", "PaymentProcessed", "InventoryReserved", "ShipmentCreated", "OrderCompleted",
    ]  # fmt: skip
    commands = [e["type"] for e in detail["timeline"] if e["kind"] == "command"]
    expected_commands = ["ChargePayment", "ReserveInventory", "CreateShipment"]
    assert commands == (expected_commands if workflow == "orchestration" else [])
    assert all(e["correlation_id"] == str(order.id) for e in detail["timeline"])
    by_type = {e["type"]: e for e in detail["timeline"]}
    cause = "ChargePayment" if workflow == "orchestration" else "OrderPlaced"
    assert by_type["PaymentProcessed"]["causation_id"] == by_type[cause]["message_id"]

    payment = Payment.objects.get(order_id=order.id)
    assert (payment.status, payment.amount, payment.amount_refunded) == ("captured", 59, 0)
    assert Charge.objects.get(charge_id=payment.gateway_charge_id).amount == Decimal("59.00")
    mug_row = Product.objects.get(sku=mug)
    assert (mug_row.on_hand, mug_row.reserved, mug_row.shipped) == (3, 0, 2)
    wait_for_emails(order.id, {"placed", "completed"})


@pytest.mark.parametrize(
    ("card", "reason_code", "reason"),
    [
        ("4000000000000002", "card_declined", "Your card was declined."),
        ("4000000000009995", "insufficient_funds", "Your card has insufficient funds."),
    ],
)
def test_a_refused_card_cancels_the_order_and_moves_no_stock(
    client, stock, workflow, card, reason_code, reason
):
    sku = stock(on_hand=5)

    order = wait_until_closed(place(client, workflow, items=[(sku, 1)], card_number=card)["id"])

    assert order.status == "cancelled"
    assert order.cancel_reason_code == reason_code
    assert order.cancel_reason == f"Payment failed: {reason}"
    payment = Payment.objects.get(order_id=order.id)
    assert (payment.status, payment.failure_code) == ("failed", reason_code)
    # No parcel: shipping keeps only a cancelled record, refusing any later request.
    assert (
        not Shipment.objects.filter(order_id=order.id)
        .exclude(status=Shipment.Status.CANCELLED)
        .exists()
    )
    assert Product.objects.get(sku=sku).reserved == 0
    wait_for_emails(order.id, {"placed", "cancelled"})


def test_an_order_without_stock_is_refunded_and_cancelled(client, stock, stale_catalog, workflow):
    # Orders' copy of the catalog says there are more than inventory has
    sku = stock(on_hand=1, price="20.00")
    stale_catalog(sku)

    order = wait_until_closed(place(client, workflow, items=[(sku, 2)])["id"])

    assert order.status == "cancelled"
    assert order.cancel_reason_code == "out_of_stock"
    assert order.cancel_reason == (
        f"Out of stock: {sku} (2 ordered, 1 available); the payment was refunded"
    )
    assert_refunded_in_full(order, Decimal("40.00"))
    product = Product.objects.get(sku=sku)
    assert (product.on_hand, product.reserved, product.shipped) == (1, 0, 0)
    wait_for_emails(order.id, {"placed", "refunded", "cancelled"})


def test_an_order_that_cannot_ship_gives_back_its_stock_and_money(
    client, stock, stale_catalog, workflow
):
    # Orders does not know the carrier refuses AQ, shipping does
    sku = stock(on_hand=4, price="10.00")
    address = dict(ADDRESS, country="AQ")

    order = wait_until_closed(
        place(client, workflow, items=[(sku, 3)], shipping_address=address)["id"]
    )

    assert order.status == "cancelled"
    assert order.cancel_reason_code == "shipping_failed"
    assert order.cancel_reason == "ParcelPost does not deliver to AQ; the payment was refunded"
    assert_refunded_in_full(order, Decimal("30.00"))
    wait_for(
        lambda: Product.objects.filter(sku=sku, on_hand=4, reserved=0, shipped=0).exists(),
        what="the reserved units back on the shelf",
    )
    wait_for_emails(order.id, {"placed", "refunded", "cancelled"})


def test_gateway_timeouts_are_retried_until_the_charge_succeeds(client, stock, workflow):
    sku = stock(on_hand=2)

    accepted = place(client, workflow, items=[(sku, 1)], card_number="4000000000000119")
    order = wait_until_closed(accepted["id"])

    assert order.status == "completed"
    payment = Payment.objects.get(order_id=order.id)
    charge = Charge.objects.get(charge_id=payment.gateway_charge_id)
    # Two timeouts, then the third try went through, charging once.
    assert charge.attempts == 3
    assert Charge.objects.filter(idempotency_key=f"order-{order.id}").count() == 1


def assert_refunded_in_full(order, amount: Decimal) -> None:
    payment = Payment.objects.get(order_id=order.id)
    assert (payment.status, payment.amount, payment.amount_refunded) == ("refunded", amount, amount)
    charge = Charge.objects.get(charge_id=payment.gateway_charge_id)
    assert charge.refunded == charge.amount == amount
    wait_for(
        lambda: (
            type(order)
            .objects.filter(pk=order.pk, amount_charged=amount, amount_refunded=amount)
            .exists()
        ),
        what="the order to record the refund",
    )
