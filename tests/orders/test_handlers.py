"""orders.handlers, each called as a delivery calls it: with the message and its envelope."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.events import InventoryReserved, ProductUpdated
from messaging.context import handling
from messaging.messages import Envelope, Message
from orders import handlers
from orders.models import CatalogItem, Order, OrderSaga
from payments.events import PaymentFailed, PaymentProcessed, PaymentRefunded
from shipping.events import ShipmentCreated
from tests.orders.factories import CatalogItemFactory, OrderFactory, OrderSagaFactory, reply
from tests.support.envelopes import envelope_of, published, published_types

pytestmark = pytest.mark.django_db


def deliver(handler, message: Message, *, correlation_id: str) -> Envelope:
    """Call the handler as a delivery does: what it publishes follows from the message."""
    envelope = envelope_of(message, correlation_id=correlation_id)
    with handling(envelope):
        handler(message, envelope)
    return envelope


def product_updated(**fields) -> ProductUpdated:
    return ProductUpdated(
        **{"sku": "MUG", "name": "Mug", "price": Decimal("12.50"), "currency": "EUR",
           "available": 7, "is_active": True, **fields}
    )  # fmt: skip


def test_update_catalog_keeps_the_product_as_inventory_stated_it_at_that_moment():
    # When inventory's ProductUpdated for a new product is handled
    envelope = deliver(handlers.update_catalog, product_updated(), correlation_id="catalog")

    # Then orders' catalog holds it, as of the moment inventory stated it
    item = CatalogItem.objects.get(sku="MUG")
    assert (item.name, item.price, item.available, item.is_active) == (
        "Mug", Decimal("12.50"), 7, True,
    )  # fmt: skip
    assert item.as_of == envelope.occurred_at
    assert published() == []


def test_update_catalog_ignores_a_statement_older_than_its_copy():
    # Given the catalog's copy of a product, stated later than the message about to arrive
    CatalogItemFactory(sku="MUG", price=Decimal("15.00"), as_of=timezone.now())
    message = product_updated(price=Decimal("9.99"), is_active=False)
    older = envelope_of(message).model_copy(
        update={"occurred_at": timezone.now() - timedelta(minutes=1)}
    )

    # When that older statement is handled
    handlers.update_catalog(message, older)

    # Then the copy keeps what it had
    item = CatalogItem.objects.get(sku="MUG")
    assert (item.price, item.is_active) == (Decimal("15.00"), True)


@pytest.mark.parametrize(
    ("handler", "message_class", "fields", "given", "expected", "publishes"),
    [
        pytest.param(
            handlers.mark_paid, PaymentProcessed, {"amount": Decimal("20.00")}, {},
            {"status": "paid", "payment_status": "captured", "amount_charged": Decimal("20.00")},
            [], id="mark_paid",
        ),
        pytest.param(
            handlers.cancel_unpaid, PaymentFailed,
            {"reason_code": "insufficient_funds", "reason": "Your card has insufficient funds."},
            {},
            {"status": "cancelled", "payment_status": "failed",
             "cancel_reason_code": "insufficient_funds",
             "cancel_reason": "Payment failed: Your card has insufficient funds."},
            ["OrderCancelled"], id="cancel_unpaid",
        ),
        pytest.param(
            handlers.mark_reserved, InventoryReserved, {}, {"status": "paid"},
            {"status": "reserved"}, [], id="mark_reserved",
        ),
        pytest.param(
            handlers.record_refund, PaymentRefunded,
            {"reason_code": "out_of_stock", "reason": "Not enough MUG in stock."},
            {"status": "paid", "payment_status": "captured"},
            {"status": "cancelled", "payment_status": "refunded",
             "amount_refunded": Decimal("20.00"), "cancel_reason_code": "out_of_stock",
             "cancel_reason": "Not enough MUG in stock; the payment was refunded"},
            ["OrderCancelled"], id="record_refund",
        ),
        pytest.param(
            handlers.complete_shipped, ShipmentCreated,
            {"carrier": "DHL", "tracking_number": "JD0042"}, {"status": "reserved"},
            {"status": "completed", "carrier": "DHL", "tracking_number": "JD0042"},
            ["OrderCompleted"], id="complete_shipped",
        ),
    ],
)  # fmt: skip
def test_each_piece_of_news_moves_a_choreographed_order(
    handler, message_class, fields, given, expected, publishes
):
    # Given an order run by choreography
    order = OrderFactory(**given)

    # When another app's news about it is handled
    message = reply(message_class, order=order, **fields)
    envelope = deliver(handler, message, correlation_id=str(order.id))

    # Then the order's row says so
    assert Order.objects.values(*expected).get(pk=order.pk) == expected
    # And what it published belongs to the order's conversation, caused by the news
    rows = published()
    assert [row.type for row in rows] == publishes
    assert all(row.correlation_id == str(order.id) for row in rows)
    assert all(row.causation_id == envelope.message_id for row in rows)


def test_advance_saga_moves_the_saga_on_and_sends_its_next_command():
    # Given a saga waiting for the charge
    saga = OrderSagaFactory(charging=True)
    message = reply(PaymentProcessed, order=saga.order)

    # When the charge's reply is handled
    envelope = deliver(handlers.advance_saga, message, correlation_id=str(saga.order_id))

    # Then the saga asks for the stock, as part of the order's conversation
    saga = OrderSaga.objects.get(pk=saga.pk)
    assert (saga.state, saga.step) == ("running", "reserve_inventory")
    (command,) = published()
    assert (command.kind, command.type) == ("command", "ReserveInventory")
    assert (command.correlation_id, command.causation_id) == (
        str(saga.order_id),
        envelope.message_id,
    )


@pytest.mark.parametrize(("workflow", "wanted"), [("orchestration", True), ("choreography", False)])
def test_advance_saga_takes_only_the_replies_of_orchestrated_orders(workflow, wanted):
    # Given a reply naming the order's workflow
    message = reply(PaymentProcessed, order=OrderFactory(workflow=workflow))

    # Then only an orchestrated order's reply goes to the saga
    assert handlers.advance_saga.wants(message) is wanted


def test_advance_saga_ignores_a_reply_about_an_order_it_does_not_run():
    # Given an order without a saga
    order = OrderFactory(orchestrated=True)

    # When a reply about it is handled
    deliver(handlers.advance_saga, reply(PaymentFailed, order=order), correlation_id=str(order.id))

    # Then nothing is written
    assert Order.objects.get(pk=order.pk).status == "placed"
    assert published_types() == []
