"""The order flow end to end: the JSON API, each app's own worker process, RabbitMQ, PostgreSQL."""

from decimal import Decimal

import pytest

from gateway.models import Charge
from inventory.models import Product
from notifications.models import SentEmail
from payments.models import Payment
from shipping.models import Shipment
from tests.conftest import wait_for
from tests.flow.conftest import order_body, wait_until_closed

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def place(client, **body) -> dict:
    response = client.post("/api/orders/", order_body(**body), content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()


def emails_of(order_id) -> set[str]:
    return set(SentEmail.objects.filter(order_id=order_id).values_list("kind", flat=True))


def test_a_paid_order_with_stock_is_completed(client, stock):
    mug, pen = stock(on_hand=5, price="12.50"), stock(on_hand=3, price="34.00")

    accepted = place(client, items=[(mug, 2), (pen, 1)])
    assert accepted["status"] == "placed"
    assert accepted["status_url"].endswith(f"/api/orders/{accepted['id']}/")

    order = wait_until_closed(accepted["id"])
    assert order.status == "completed"
    assert order.total == Decimal("59.00")

    detail = client.get(f"/api/orders/{order.id}/").json()
    assert detail["payment"] == {
        "status": "captured",
        "card_last4": "4242",
        "amount_charged": "59.00",
        "amount_refunded": "0.00",
    }
    assert (
        detail["shipment"]["tracking_number"]
        == Shipment.objects.get(order_id=order.id).tracking_number
    )
    assert [e["type"] for e in detail["timeline"]] == [
        "OrderPlaced", "PaymentProcessed", "InventoryReserved", "ShipmentCreated", "OrderCompleted",
    ]  # fmt: skip
    first = detail["timeline"][0]
    assert all(e["correlation_id"] == str(order.id) for e in detail["timeline"])
    assert detail["timeline"][1]["causation_id"] == first["message_id"]

    payment = Payment.objects.get(order_id=order.id)
    assert (payment.status, payment.amount, payment.amount_refunded) == (
        "captured",
        Decimal("59.00"),
        0,
    )
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
    client, stock, card, reason_code, reason
):
    sku = stock(on_hand=5)

    order = wait_until_closed(place(client, items=[(sku, 1)], card_number=card)["id"])

    assert order.status == "cancelled"
    assert order.cancel_reason_code == reason_code
    assert reason in order.cancel_reason
    payment = Payment.objects.get(order_id=order.id)
    assert (payment.status, payment.failure_code) == ("failed", reason_code)
    assert not Shipment.objects.filter(order_id=order.id).exists()
    assert Product.objects.get(sku=sku).reserved == 0
    wait_for_emails(order.id, {"placed", "cancelled"})


def wait_for_emails(order_id, kinds: set[str]) -> None:
    wait_for(lambda: emails_of(order_id) == kinds, what=f"emails {kinds}")


def test_an_order_without_stock_is_refunded_and_cancelled(client, stock):
    sku = stock(on_hand=1, price="20.00")

    order = wait_until_closed(place(client, items=[(sku, 2)])["id"])

    assert order.status == "cancelled"
    assert order.cancel_reason_code == "out_of_stock"
    assert "Out of stock" in order.cancel_reason and "refunded" in order.cancel_reason
    payment = Payment.objects.get(order_id=order.id)
    assert (payment.status, payment.amount, payment.amount_refunded) == (
        "refunded", Decimal("40.00"), Decimal("40.00"),
    )  # fmt: skip
    charge = Charge.objects.get(charge_id=payment.gateway_charge_id)
    assert charge.refunded == charge.amount == Decimal("40.00")
    assert (order.amount_charged, order.amount_refunded) == (Decimal("40.00"), Decimal("40.00"))
    product = Product.objects.get(sku=sku)
    assert (product.on_hand, product.reserved, product.shipped) == (1, 0, 0)
    wait_for_emails(order.id, {"placed", "refunded", "cancelled"})


def test_gateway_timeouts_are_retried_until_the_charge_succeeds(client, stock):
    sku = stock(on_hand=2)

    order = wait_until_closed(place(client, items=[(sku, 1)], card_number="4000000000000119")["id"])

    assert order.status == "completed"
    payment = Payment.objects.get(order_id=order.id)
    charge = Charge.objects.get(charge_id=payment.gateway_charge_id)
    # Two timeouts, then the third try went through, charging once.
    assert charge.attempts == 3
    assert Charge.objects.filter(idempotency_key=f"order-{order.id}").count() == 1
