"""orders.services: placing an order, and each piece of news moving it along (or not)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from gateway.client import card_fingerprint
from gateway.models import CardToken
from orders import services
from orders.models import CatalogItem, Order, OrderSaga
from orders.selectors import order_timeline
from orders.services import OrderItem, OrderRejected
from payments.events import PaymentFailed, PaymentProcessed
from shipping.events import ShipmentCreated
from tests.orders.factories import CatalogItemFactory, OrderFactory, OrderSagaFactory, reply
from tests.support.envelopes import envelope_of, published, published_types

pytestmark = pytest.mark.django_db

PaymentStatus = Order.PaymentStatus

CARD = "4242 4242 4242 4242"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "London",
    "postal_code": "N1 7AA",
    "country": "GB",
}


def place(
    *items: tuple[str, int], card_number: str = CARD, workflow=None, country: str = "GB"
) -> Order:
    return services.order_place(
        email="ada@example.com",
        items=[OrderItem(sku=sku, quantity=quantity) for sku, quantity in items],
        shipping_address={**ADDRESS, "country": country},
        card_number=card_number,
        workflow=workflow,
    )


def reread(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


def cancellations() -> list[dict]:
    return [row.payload for row in published("OrderCancelled")]


def completions() -> list[dict]:
    return [row.payload for row in published("OrderCompleted")]


# --- order_place -------------------------------------------------------------


@pytest.mark.django_db(databases=["default", "gateway"])
def test_an_order_is_priced_from_the_catalog_and_published_without_the_card_number():
    # Given two products for sale
    mug = CatalogItemFactory(sku="MUG", name="Mug", price=Decimal("12.50"))
    pen = CatalogItemFactory(sku="PEN", name="Pen", price=Decimal("20.00"))

    # When a customer orders the mug twice over, in two lines, and a pen
    order = place((mug.sku, 1), (pen.sku, 1), (mug.sku, 1), workflow="choreography")

    # Then the order is priced from the catalog, its lines merged by product
    order = reread(order)
    assert (order.status, order.payment_status, order.total, order.currency) == (
        "placed", "pending", Decimal("45.00"), "EUR",
    )  # fmt: skip
    assert (order.card_last4, order.ship_country, order.workflow) == ("4242", "GB", "choreography")
    assert list(
        order.lines.order_by("sku").values_list("sku", "name", "quantity", "unit_price")
    ) == [
        ("MUG", "Mug", 2, Decimal("12.50")),
        ("PEN", "Pen", 1, Decimal("20.00")),
    ]
    # And OrderPlaced carries a gateway token and the card's fingerprint, never the card number
    assert published_types() == ["OrderPlaced"]
    (placed,) = published("OrderPlaced")
    assert placed.correlation_id == str(order.id)
    assert placed.payload["total"] == "45.00"
    assert placed.payload["lines"] == [
        {"sku": "MUG", "name": "Mug", "quantity": 2, "unit_price": "12.50"},
        {"sku": "PEN", "name": "Pen", "quantity": 1, "unit_price": "20.00"},
    ]
    token = CardToken.objects.get()
    assert placed.payload["card_token"] == token.token
    assert (
        placed.payload["card_fingerprint"]
        == token.fingerprint
        == card_fingerprint("4242424242424242")
    )
    assert "4242424242424242" not in json.dumps(placed.payload)
    # And nobody orchestrates it
    assert not OrderSaga.objects.filter(pk=order.pk).exists()


@pytest.mark.django_db(databases=["default", "gateway"])
@pytest.mark.parametrize(
    ("workflow", "default_workflow"),
    [("orchestration", "choreography"), (None, "orchestration")],
    ids=["asked for", "the default"],
)
def test_an_orchestrated_order_starts_its_saga_by_asking_for_the_charge(
    settings, workflow, default_workflow
):
    # Given a product, and the shop's default workflow
    settings.ORDERS_DEFAULT_WORKFLOW = default_workflow
    sku = CatalogItemFactory(price=Decimal("7.00")).sku

    # When an order is placed by orchestration
    order = place((sku, 3), workflow=workflow)

    # Then its saga waits for the charge it asked for, with the token the order got
    saga = OrderSaga.objects.get(pk=order.pk)
    assert (saga.state, saga.step, saga.attempts) == ("running", "charge_payment", 1)
    assert saga.deadline > timezone.now()
    assert published_types() == ["OrderPlaced", "ChargePayment"]
    placed, charge = published()
    assert (charge.kind, charge.correlation_id) == ("command", str(order.id))
    assert charge.payload == {
        "order_id": str(order.id),
        "amount": "21.00",
        "currency": "EUR",
        "card_token": saga.card_token,
        "card_last4": "4242",
    }
    assert placed.payload["card_token"] == saga.card_token
    assert placed.payload["workflow"] == "orchestration"


@pytest.mark.django_db(databases=["default", "gateway"])
@pytest.mark.parametrize(
    ("order", "errors"),
    [
        pytest.param(
            {"items": [("MUG", 1), ("NOPE", 2)]},
            {"items.1.sku": ["There is no product 'NOPE' for sale."]},
            id="unknown product",
        ),
        pytest.param(
            {"items": [("GONE", 1)]},
            {"items.0.sku": ["There is no product 'GONE' for sale."]},
            id="product no longer for sale",
        ),
        pytest.param(
            {"items": [("PEN", 50)]},
            {"items.0.quantity": ["Only 10 Brass pen (PEN) available; you asked for 50."]},
            id="more than the catalog says is available",
        ),
        pytest.param(
            {"items": [("PEN", 6), ("MUG", 1), ("PEN", 5)]},
            {
                "items.0.quantity": [
                    "Only 10 Brass pen (PEN) available; you asked for 11 in all, on items 0 and 2."
                ],
                "items.2.quantity": [
                    "Only 10 Brass pen (PEN) available; you asked for 11 in all, on items 0 and 2."
                ],
            },
            id="lines for one product that together ask for more than is available",
        ),
        pytest.param(
            {"items": [("TEE", 60), ("TEE", 60)]},
            {
                "items.0.quantity": [
                    "At most 100 T-shirt (TEE) per order; you asked for 120 in all, on items 0 "
                    "and 1."
                ],
                "items.1.quantity": [
                    "At most 100 T-shirt (TEE) per order; you asked for 120 in all, on items 0 "
                    "and 1."
                ],
            },
            id="lines for one product that together break the limit",
        ),
        pytest.param(
            {"items": [("SOLD", 1)]},
            {"items.0.quantity": ["Sold-out cap (SOLD) is sold out."]},
            id="sold out",
        ),
        pytest.param(
            {"country": "AQ"},
            {
                "shipping_address.country": [
                    "We cannot deliver to Antarctica (AQ): our carrier does not go there."
                ]
            },
            id="a country the carrier does not serve",
        ),
        pytest.param(
            {"country": "ZZ"},
            {
                "shipping_address.country": [
                    "'ZZ' is not an ISO 3166 country code; use two capital letters, e.g. FR."
                ]
            },
            id="not a country",
        ),
        pytest.param(
            {"country": "Fr"},
            {"shipping_address.country": ["Write the country code in capitals: 'FR'."]},
            id="a country not in capitals",
        ),
        pytest.param(
            {"card_number": "4242 4242 4242 4241"},
            {"card_number": ["This card number is not valid (check the digits)."]},
            id="card failing the Luhn check",
        ),
        pytest.param(
            {"card_number": "4242"},
            {"card_number": ["Enter a card number of 12 to 19 digits."]},
            id="card too short",
        ),
        pytest.param(
            {"workflow": "saga"},
            {"workflow": ["Choose one of: choreography, orchestration."]},
            id="unknown workflow",
        ),
        pytest.param(
            {"items": [("NOPE", 1), ("MUG", 1), ("PEN", 11)], "card_number": "1234",
             "country": "AQ"},
            {
                "items.0.sku": ["There is no product 'NOPE' for sale."],
                "items.2.quantity": ["Only 10 Brass pen (PEN) available; you asked for 11."],
                "shipping_address.country": [
                    "We cannot deliver to Antarctica (AQ): our carrier does not go there."
                ],
                "card_number": ["Enter a card number of 12 to 19 digits."],
            },
            id="every problem at once",
        ),
    ],
)  # fmt: skip
def test_a_rejected_order_says_which_field_and_why_and_writes_nothing(order, errors):
    # Given orders' copy of the catalog: a mug, ten pens, plenty of T-shirts, a cap sold
    # out and a product withdrawn
    CatalogItemFactory(sku="MUG")
    CatalogItemFactory(sku="PEN", name="Brass pen", available=10)
    CatalogItemFactory(sku="TEE", name="T-shirt", available=500)
    CatalogItemFactory(sku="SOLD", name="Sold-out cap", available=0)
    CatalogItemFactory(sku="GONE", is_active=False)

    # When an order with a problem is placed
    with pytest.raises(OrderRejected) as rejected:
        place(*order.pop("items", [("MUG", 1)]), **order)

    # Then it says which field and why, before any charge: nothing was written,
    # not even a card token
    assert rejected.value.errors == errors
    assert not Order.objects.exists()
    assert published() == []
    assert not CardToken.objects.exists()


@pytest.mark.django_db(databases=["default", "gateway"])
def test_an_order_for_all_there_is_in_lines_up_to_the_limit_is_placed():
    # Given ten pens in orders' copy of the catalog, and plenty of T-shirts
    CatalogItemFactory(sku="PEN", available=10)
    CatalogItemFactory(sku="TEE", available=500)

    # When an order asks for every pen, in two lines, and the most T-shirts one order may hold
    order = place(("PEN", 4), ("TEE", 100), ("PEN", 6))

    # Then it is placed, a line per product
    quantities = dict(order.lines.values_list("sku", "quantity"))
    assert quantities == {"PEN": 10, "TEE": 100}
    assert published_types() == ["OrderPlaced"]


# --- catalog_item_apply -------------------------------------------------------


def apply_statement(sku: str, *, as_of, price: str = "15.00") -> None:
    services.catalog_item_apply(
        sku=sku, name="Mug, large", price=Decimal(price), currency="EUR", available=4,
        is_active=False, as_of=as_of,
    )  # fmt: skip


def catalog_row(sku: str) -> tuple:
    return CatalogItem.objects.values_list(
        "name", "price", "currency", "available", "is_active"
    ).get(sku=sku)


def test_a_product_the_catalog_does_not_know_yet_is_added():
    # When inventory states a product orders has never heard of
    apply_statement("NEW", as_of=timezone.now())

    # Then orders' catalog holds it as stated
    assert catalog_row("NEW") == ("Mug, large", Decimal("15.00"), "EUR", 4, False)


@pytest.mark.parametrize(
    ("age", "applied"),
    [(timedelta(seconds=1), True), (timedelta(0), True), (timedelta(seconds=-1), False)],
    ids=["newer statement applied", "as recent applied", "older statement ignored"],
)
def test_a_statement_about_a_known_product_applies_unless_the_catalog_has_newer(age, applied):
    # Given the catalog's copy of a product, as of a moment
    item = CatalogItemFactory(sku="MUG", name="Mug", price=Decimal("10.00"), available=10)
    before = catalog_row("MUG")

    # When inventory's statement about it, made at another moment, arrives
    apply_statement("MUG", as_of=item.as_of + age)

    # Then the copy follows it only if it is not older than what the copy holds
    expected = ("Mug, large", Decimal("15.00"), "EUR", 4, False) if applied else before
    assert catalog_row("MUG") == expected


# --- order_mark_paid -----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "payment_status", "expected"),
    [
        ("placed", PaymentStatus.PENDING, ("paid", "captured")),
        ("placed", PaymentStatus.FAILED, ("paid", "captured")),
        ("reserved", PaymentStatus.PENDING, ("reserved", "captured")),
        ("cancelled", PaymentStatus.PENDING, ("cancelled", "captured")),
        ("cancelled", PaymentStatus.REFUNDED, ("cancelled", "refunded")),
    ],
    ids=[
        "placed order paid",
        "a charge succeeding after a failure",
        "status never moves backwards",
        "a closed order stays closed",
        "a refund is not undone",
    ],
)
def test_a_payment_records_the_money_and_moves_the_order_forward_only(
    status, payment_status, expected
):
    # Given an order at some point of its life
    order = OrderFactory(status=status, payment_status=payment_status)

    # When its payment is reported
    services.order_mark_paid(order_id=order.id, amount=Decimal("20.00"))

    # Then the money is recorded, and the order only moves forward
    order = reread(order)
    assert (order.status, order.payment_status, order.amount_charged) == (
        *expected,
        Decimal("20.00"),
    )
    assert published() == []


# --- order_mark_payment_failed --------------------------------------------------


def test_a_failed_payment_cancels_a_choreographed_order_saying_why():
    # Given an order run by choreography
    order = OrderFactory()

    # When its payment fails
    services.order_mark_payment_failed(
        order_id=order.id, reason_code="card_declined", reason="Your card was declined."
    )

    # Then it is cancelled for that reason, and everyone is told
    order = reread(order)
    assert (order.status, order.payment_status) == ("cancelled", "failed")
    assert (order.cancel_reason_code, order.cancel_reason) == (
        "card_declined",
        "Payment failed: Your card was declined.",
    )
    assert order.closed_at is not None
    assert cancellations() == [
        {
            "order_id": str(order.id),
            "reason_code": "card_declined",
            "reason": "Payment failed: Your card was declined.",
        }
    ]


def test_a_failed_payment_of_an_orchestrated_order_is_only_recorded():
    # Given an order its saga runs
    order = OrderFactory(orchestrated=True)

    # When its payment fails
    services.order_mark_payment_failed(order_id=order.id, reason_code="card_declined", reason="No.")

    # Then the failure is recorded, and the saga is left to end the order
    order = reread(order)
    assert (order.status, order.payment_status, order.cancel_reason) == ("placed", "failed", "")
    assert published() == []


@pytest.mark.parametrize(
    ("end", "payment_status"),
    [("cancelled", "failed"), ("completed", "captured")],
    ids=["cancelled before it was charged", "completed, the money captured"],
)
def test_a_failed_payment_leaves_a_closed_order_as_it_ended(end, payment_status):
    # Given an order already closed
    order = OrderFactory(**{end: True})
    cancel_reason = order.cancel_reason

    # When a payment failure is reported for it
    services.order_mark_payment_failed(order_id=order.id, reason_code="gateway_error", reason="?")

    # Then it stays as it ended (a captured payment stays captured), and nothing is published
    order = reread(order)
    assert (order.status, order.payment_status, order.cancel_reason) == (
        end, payment_status, cancel_reason,
    )  # fmt: skip
    assert published() == []


# --- order_mark_reserved --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("placed", "reserved"),
        ("paid", "reserved"),
        ("shipped", "shipped"),
        ("completed", "completed"),
        ("cancelled", "cancelled"),
    ],
)
def test_a_reservation_moves_the_order_to_reserved_never_backwards(status, expected):
    # Given an order at some point of its life
    order = OrderFactory(status=status)

    # When its stock is reported reserved
    services.order_mark_reserved(order_id=order.id)

    # Then it is reserved, unless it was further along or closed
    assert reread(order).status == expected
    assert published() == []


# --- order_mark_refunded --------------------------------------------------------


def refund(order: Order, amount: str = "20.00") -> None:
    services.order_mark_refunded(
        order_id=order.id, amount=Decimal(amount), reason_code="out_of_stock",
        reason="Not enough MUG in stock.",
    )  # fmt: skip


def test_a_refund_cancels_an_open_choreographed_order_once_however_often_it_is_reported():
    # Given a paid order run by choreography
    order = OrderFactory(status="paid", payment_status=PaymentStatus.CAPTURED)

    # When its refund is reported, twice (a saga asking again gets the same answer)
    refund(order)
    refund(order)

    # Then the money is recorded once, and the order cancelled once for that reason
    order = reread(order)
    assert (order.status, order.payment_status, order.amount_refunded) == (
        "cancelled", "refunded", Decimal("20.00"),
    )  # fmt: skip
    assert (order.cancel_reason_code, order.cancel_reason) == (
        "out_of_stock",
        "Not enough MUG in stock; the payment was refunded",
    )
    assert cancellations() == [
        {
            "order_id": str(order.id),
            "reason_code": "out_of_stock",
            "reason": "Not enough MUG in stock; the payment was refunded",
        }
    ]


@pytest.mark.parametrize(
    ("given", "status", "cancel_reason"),
    [
        ({"orchestrated": True, "status": "paid"}, "paid", ""),
        ({"cancelled": True}, "cancelled", "Payment failed: Your card was declined."),
    ],
    ids=["orchestrated order", "order already cancelled"],
)
def test_a_refund_is_only_recorded_when_the_saga_ends_the_order_or_it_already_ended(
    given, status, cancel_reason
):
    # Given an order the saga ends, or one already ended
    order = OrderFactory(**given)

    # When its refund is reported
    refund(order)

    # Then the money is recorded, the order stays as it is
    order = reread(order)
    assert (order.payment_status, order.amount_refunded) == ("refunded", Decimal("20.00"))
    assert (order.status, order.cancel_reason) == (status, cancel_reason)
    assert published() == []


# --- order_record_shipment and order_complete -------------------------------------


def test_a_shipment_completes_a_choreographed_order():
    # Given a reserved order run by choreography
    order = OrderFactory(status="reserved")

    # When its shipment is reported
    services.order_record_shipment(order_id=order.id, carrier="PostNL", tracking_number="TRK-9")

    # Then it is complete, with its tracking number, and everyone is told
    order = reread(order)
    assert (order.status, order.carrier, order.tracking_number) == ("completed", "PostNL", "TRK-9")
    assert order.closed_at is not None
    assert completions() == [{"order_id": str(order.id), "tracking_number": "TRK-9"}]


@pytest.mark.parametrize(
    ("given", "status"),
    [
        ({"orchestrated": True, "status": "reserved"}, "reserved"),
        ({"cancelled": True}, "cancelled"),
    ],
    ids=["orchestrated order: the saga completes it", "cancelled order stays cancelled"],
)
def test_a_shipment_is_only_recorded_when_it_does_not_complete_the_order(given, status):
    # Given an order the saga ends, or one already cancelled
    order = OrderFactory(**given)

    # When its shipment is reported
    services.order_record_shipment(order_id=order.id, carrier="PostNL", tracking_number="TRK-9")

    # Then where it went is recorded, and the order is not completed
    order = reread(order)
    assert (order.status, order.carrier, order.tracking_number) == (status, "PostNL", "TRK-9")
    assert completions() == []


def test_completing_an_order_closes_it_and_publishes_order_completed():
    # Given a reserved order run by its saga
    order = OrderFactory(orchestrated=True, status="reserved")

    # When the saga completes it
    services.order_complete(order_id=order.id, carrier="DHL", tracking_number="JD01")

    # Then it is complete, with its tracking number, and everyone is told
    order = reread(order)
    assert (order.status, order.carrier, order.tracking_number) == ("completed", "DHL", "JD01")
    assert order.closed_at is not None
    assert completions() == [{"order_id": str(order.id), "tracking_number": "JD01"}]


@pytest.mark.parametrize("end", ["cancelled", "completed"])
def test_completing_a_closed_order_publishes_nothing(end):
    # Given an order already closed
    order = OrderFactory(orchestrated=True, **{end: True})

    # When it is completed (again)
    services.order_complete(order_id=order.id, carrier="DHL", tracking_number="JD01")

    # Then it stays as it ended, and no second OrderCompleted goes out
    assert reread(order).status == end
    assert completions() == []


# --- order_cancel --------------------------------------------------------------------


def test_cancelling_an_open_order_closes_it_saying_why():
    # Given a paid order
    order = OrderFactory(status="paid")
    reason = "Customer asked. " * 30

    # When it is cancelled with a long reason
    services.order_cancel(order_id=order.id, reason_code="staff", reason=reason)

    # Then it is closed as cancelled, the row keeping what fits, the event all of it
    order = reread(order)
    assert (order.status, order.cancel_reason_code) == ("cancelled", "staff")
    assert order.cancel_reason == reason[:300]
    assert order.closed_at is not None
    assert cancellations() == [
        {"order_id": str(order.id), "reason_code": "staff", "reason": reason}
    ]


@pytest.mark.parametrize("end", ["cancelled", "completed"])
def test_cancelling_a_closed_order_changes_nothing(end):
    # Given an order already closed
    order = OrderFactory(**{end: True})
    before = (order.status, order.cancel_reason_code, order.cancel_reason)

    # When it is cancelled
    services.order_cancel(order_id=order.id, reason_code="staff", reason="Too late.")

    # Then it stays as it ended, and nothing is published
    order = reread(order)
    assert (order.status, order.cancel_reason_code, order.cancel_reason) == before
    assert published() == []


# --- order_saga_advance ----------------------------------------------------------------


def advance(saga: OrderSaga, message_class, **fields) -> Order | None:
    message = reply(message_class, order=saga.order, **fields)
    return services.order_saga_advance(
        order_id=saga.order_id, reply=message, envelope=envelope_of(message)
    )


def test_a_reply_the_saga_ends_in_cancelling_cancels_the_order():
    # Given a saga waiting for the charge
    saga = OrderSagaFactory(charging=True)

    # When the charge fails
    order = advance(saga, PaymentFailed, reason_code="card_declined", reason="Declined.")

    # Then the order is cancelled for that reason, and everyone is told
    assert (order.status, order.cancel_reason) == ("cancelled", "Payment failed: Declined.")
    assert reread(order).status == "cancelled"
    assert published_types() == ["OrderCancelled"]


def test_a_reply_the_saga_ends_in_completing_completes_the_order():
    # Given a saga waiting for the shipment
    saga = OrderSagaFactory(shipping=True)

    # When the shipment is created
    order = advance(saga, ShipmentCreated, carrier="DHL", tracking_number="JD02")

    # Then the order is complete, with its tracking number
    order = reread(order)
    assert (order.status, order.carrier, order.tracking_number) == ("completed", "DHL", "JD02")
    assert completions() == [{"order_id": str(order.id), "tracking_number": "JD02"}]


def test_a_reply_that_does_not_end_the_saga_leaves_the_order_to_the_other_services():
    # Given a saga waiting for the charge
    saga = OrderSagaFactory(charging=True)

    # When the charge succeeds
    ended = advance(saga, PaymentProcessed)

    # Then the saga goes on (it asks for the stock) and the order is not ended
    assert ended is None
    assert reread(saga.order).status == "placed"
    assert published_types() == ["ReserveInventory"]


def test_a_reply_about_an_order_without_a_saga_is_ignored():
    # Given an order run by choreography (it has no saga)
    order = OrderFactory()

    # When a saga reply about it arrives
    message = reply(PaymentFailed, order=order)
    ended = services.order_saga_advance(
        order_id=order.id, reply=message, envelope=envelope_of(message)
    )

    # Then nothing happens to it
    assert ended is None
    assert reread(order).status == "placed"
    assert published() == []


# --- The order's conversation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "event"),
    [
        (lambda order: services.order_cancel(order_id=order.id, reason_code="customer_request",
                                             reason="Changed my mind"), "OrderCancelled"),
        (lambda order: services.order_complete(order_id=order.id, carrier="DHL",
                                               tracking_number="JD01"), "OrderCompleted"),
    ],
    ids=["order_cancel", "order_complete"],
)  # fmt: skip
def test_an_order_ended_outside_any_delivery_shows_the_end_in_its_timeline(end, event):
    # Given an open order
    order = OrderFactory(status="reserved")

    # When it is ended by a direct call (no message being handled)
    end(order)

    # Then the event is in the order's conversation, where its timeline reads it
    assert [row.type for row in order_timeline(order=order)] == [event]
