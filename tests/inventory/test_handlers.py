"""inventory.handlers, called as a delivery calls them: with the message, its envelope, in a
transaction, what they publish following from the message handled."""

import uuid
from decimal import Decimal

import pytest

from inventory import handlers
from inventory.commands import ReleaseInventory, ReserveInventory
from inventory.events import ReservedLine
from inventory.models import OrderRequest, Product, Reservation
from orders.events import Workflow
from payments.events import PaymentProcessed
from shipping.events import ShipmentCreated, ShipmentFailed
from tests.inventory.factories import OrderRequestFactory, ProductFactory, ReservationFactory
from tests.support.envelopes import published
from tests.support.handling import assert_workflows_taken, handle
from tests.support.order_messages import OrderCancelledFactory, OrderPlacedFactory

pytestmark = pytest.mark.django_db


def paid(order_id, workflow=Workflow.CHOREOGRAPHY):
    return PaymentProcessed(
        order_id=order_id,
        payment_id=uuid.uuid4(),
        amount=Decimal("20.00"),
        currency="EUR",
        workflow=workflow,
    )


def shipped(order_id, workflow=Workflow.CHOREOGRAPHY):
    return ShipmentCreated(
        order_id=order_id,
        shipment_id=uuid.uuid4(),
        carrier="ParcelPost",
        tracking_number="PP000000000001",
        workflow=workflow,
    )


def unshippable(order_id, workflow=Workflow.CHOREOGRAPHY):
    reason = "ParcelPost does not deliver to AQ"
    return ShipmentFailed(order_id=order_id, reason=reason, workflow=workflow)


def stock(product: Product) -> tuple[int, int, int]:
    product.refresh_from_db()
    return (product.on_hand, product.reserved, product.shipped)


@pytest.mark.parametrize(
    ("handler", "message_of", "takes_orchestration"),
    [
        pytest.param(handlers.reserve_stock, paid, False, id="reserve_stock"),
        pytest.param(handlers.release_unshippable, unshippable, False, id="release_unshippable"),
        pytest.param(
            handlers.remember_order_lines, OrderPlacedFactory, True, id="remember_order_lines"
        ),
        # The units leave with the parcel, whichever workflow sent it.
        pytest.param(handlers.ship_stock, shipped, True, id="ship_stock"),
    ],
)
def test_each_handler_takes_the_workflows_it_serves(handler, message_of, takes_orchestration):
    assert_workflows_taken(handler, message_of, orchestration=takes_orchestration)


def test_a_placed_orders_lines_are_kept_for_its_payment():
    # Given an order placed for two lines
    order = OrderPlacedFactory(lines__0__sku="MUG-1", lines__0__quantity=2)

    # When remember_order_lines takes it
    handle(handlers.remember_order_lines, order)

    # Then inventory keeps what to reserve (not names nor prices), and says nothing yet
    assert OrderRequest.objects.get(order_id=order.order_id).lines == [
        {"sku": "MUG-1", "quantity": 2}
    ]
    assert published() == []


def test_a_paid_order_gets_its_stock_and_the_reply_follows_from_the_payment():
    # Given a paid order whose lines inventory kept
    mug = ProductFactory(on_hand=5)
    request = OrderRequestFactory(lines=[{"sku": mug.sku, "quantity": 2}])

    # When reserve_stock takes its PaymentProcessed
    envelope = handle(handlers.reserve_stock, paid(request.order_id))

    # Then two mugs are held, and the order's conversation hears so
    assert stock(mug) == (5, 2, 0)
    [reserved] = published("InventoryReserved")
    assert reserved.payload["workflow"] == "choreography"
    assert (reserved.correlation_id, reserved.causation_id) == (
        str(request.order_id),
        envelope.message_id,
    )


def test_a_shipment_takes_the_reserved_units_out_of_the_warehouse():
    # Given an order holding two mugs
    mug = ProductFactory(on_hand=5)
    reservation = ReservationFactory(holding=[(mug, 2)])

    # When ship_stock takes its ShipmentCreated
    handle(handlers.ship_stock, shipped(reservation.order_id))

    # Then they are counted as shipped
    assert stock(mug) == (3, 0, 2)
    assert Reservation.objects.get().status == Reservation.Status.SHIPPED


@pytest.mark.parametrize(
    ("handler", "message_of"),
    [
        pytest.param(handlers.release_unshippable, unshippable, id="unshippable"),
        pytest.param(
            handlers.release_stock,
            lambda order_id: OrderCancelledFactory(order_id=order_id),
            id="cancelled",
        ),
    ],
)
def test_an_order_that_cannot_go_on_gives_its_stock_back(handler, message_of):
    # Given an order holding two mugs
    mug = ProductFactory(on_hand=5)
    reservation = ReservationFactory(holding=[(mug, 2)])

    # When the news that it cannot go on arrives
    handle(handler, message_of(reservation.order_id))

    # Then the mugs are back on the shelf, and the order hears so
    assert stock(mug) == (5, 0, 0)
    [released] = published("InventoryReleased")
    assert released.payload["workflow"] == "choreography"


def test_the_sagas_reservation_is_made_and_answered_for_the_saga():
    # Given the saga's command to reserve two mugs
    mug = ProductFactory(on_hand=5)
    command = ReserveInventory(order_id=uuid.uuid4(), lines=[ReservedLine(sku=mug.sku, quantity=2)])

    # When reserve_inventory takes it
    handle(handlers.reserve_inventory, command)

    # Then they are held, and the saga gets its reply
    assert stock(mug) == (5, 2, 0)
    [reserved] = published("InventoryReserved")
    assert reserved.payload["workflow"] == "orchestration"


def test_the_sagas_release_gives_the_stock_back_and_answers_for_the_saga():
    # Given an order holding two mugs, and the saga's compensation for it
    mug = ProductFactory(on_hand=5)
    reservation = ReservationFactory(holding=[(mug, 2)])
    command = ReleaseInventory(order_id=reservation.order_id, reason="payment timed out")

    # When release_inventory takes it
    handle(handlers.release_inventory, command)

    # Then the mugs are back on the shelf, and the saga gets its reply
    assert stock(mug) == (5, 0, 0)
    [released] = published("InventoryReleased")
    assert (released.payload["lines"], released.payload["workflow"]) == (
        [{"sku": mug.sku, "quantity": 2}],
        "orchestration",
    )
