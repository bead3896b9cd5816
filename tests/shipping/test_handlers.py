"""shipping.handlers, called as a delivery calls them: with the message, its envelope, in a
transaction, what they publish following from the message handled."""

import uuid

import pytest

from inventory.events import InventoryReserved, ReservedLine
from orders.events import Workflow
from shipping import handlers
from shipping.commands import CancelShipment, CreateShipment, ShipmentLine
from shipping.models import Shipment, ShipmentRequest
from tests.shipping.factories import ShipmentRequestFactory
from tests.support.envelopes import published, published_types
from tests.support.handling import assert_workflows_taken, handle
from tests.support.order_messages import AddressFactory, OrderPlacedFactory

pytestmark = pytest.mark.django_db


def reserved(order_id, workflow=Workflow.CHOREOGRAPHY):
    lines = [ReservedLine(sku="MUG-1", quantity=2)]
    return InventoryReserved(order_id=order_id, lines=lines, workflow=workflow)


def test_only_a_choreographed_reservation_sends_the_parcel_and_every_destination_is_kept():
    # The saga sends CreateShipment instead of letting the reservation send the parcel
    assert_workflows_taken(handlers.ship_reserved_order, reserved, orchestration=False)
    assert_workflows_taken(handlers.remember_destination, OrderPlacedFactory, orchestration=True)


def test_a_placed_orders_destination_and_lines_are_kept_for_its_shipment():
    # Given an order placed for two mugs, to Paris
    order = OrderPlacedFactory(
        shipping_address__city="Paris",
        lines__0__sku="MUG-1",
        lines__0__name="Mug",
        lines__0__quantity=2,
    )

    # When remember_destination takes it
    handle(handlers.remember_destination, order)

    # Then shipping keeps where it goes and what goes (no prices), and says nothing yet
    request = ShipmentRequest.objects.get(order_id=order.order_id)
    assert request.address == order.shipping_address.model_dump()
    assert request.address["city"] == "Paris"
    assert request.lines == [{"sku": "MUG-1", "name": "Mug", "quantity": 2}]
    assert published_types() == []


def test_reserved_stock_sends_the_parcel_and_the_reply_follows_from_the_reservation():
    # Given an order whose destination shipping kept
    request = ShipmentRequestFactory()

    # When ship_reserved_order takes its InventoryReserved
    envelope = handle(handlers.ship_reserved_order, reserved(request.order_id))

    # Then the parcel is with the carrier, and the order's conversation hears so
    shipment = Shipment.objects.get(order_id=request.order_id)
    assert shipment.status == Shipment.Status.CREATED
    [created] = published("ShipmentCreated")
    assert (created.payload["tracking_number"], created.payload["workflow"]) == (
        shipment.tracking_number,
        "choreography",
    )
    assert (created.correlation_id, created.causation_id) == (
        str(request.order_id),
        envelope.message_id,
    )


def test_the_sagas_shipment_is_made_to_the_address_it_gives_and_answered():
    # Given the saga's command to ship two mugs to Paris
    command = CreateShipment(
        order_id=uuid.uuid4(),
        address=AddressFactory(city="Paris").model_dump(),
        lines=[ShipmentLine(sku="MUG-1", name="Mug", quantity=2)],
    )

    # When create_shipment takes it
    handle(handlers.create_shipment, command)

    # Then the parcel goes where and with what the saga said, and the saga gets its reply
    shipment = Shipment.objects.get(order_id=command.order_id)
    assert (shipment.address["city"], shipment.lines) == (
        "Paris",
        [{"sku": "MUG-1", "name": "Mug", "quantity": 2}],
    )
    [created] = published("ShipmentCreated")
    assert created.payload["workflow"] == "orchestration"


def test_the_sagas_cancellation_leaves_no_parcel_and_is_answered():
    # Given the saga's compensation for an order not yet shipped
    command = CancelShipment(order_id=uuid.uuid4(), reason="payment timed out")

    # When cancel_shipment takes it
    handle(handlers.cancel_shipment, command)

    # Then no parcel will go out for it, and the saga hears so
    assert Shipment.objects.get(order_id=command.order_id).status == Shipment.Status.CANCELLED
    [cancelled] = published()
    assert (cancelled.type, cancelled.payload["workflow"]) == ("ShipmentCancelled", "orchestration")
