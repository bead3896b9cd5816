"""shipping.services: one shipment per order, to a destination the carrier serves, and none at
all for an order the saga cancelled first."""

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from messaging.errors import RetryLater
from shipping.models import Shipment, ShipmentRequest
from shipping.services import (
    shipment_cancel,
    shipment_create,
    shipment_create_on_request,
    shipment_prevent,
    shipment_request_record,
)
from tests.shipping.factories import ShipmentFactory, ShipmentRequestFactory
from tests.support.envelopes import published, published_types
from tests.support.order_messages import AddressFactory

pytestmark = pytest.mark.django_db

LINES = [{"sku": "MUG-1", "name": "Mug", "quantity": 2}]
UNSERVED = "ParcelPost does not deliver to AQ"


def address(country: str = "GB") -> dict:
    return AddressFactory(country=country).model_dump()


def workflows() -> set[str]:
    return {row.payload["workflow"] for row in published()}


# --- shipment_request_record ---


def test_an_orders_destination_is_kept_and_the_first_copy_wins():
    # Given an order's address and lines kept once
    order_id = uuid.uuid4()
    shipment_request_record(order_id=order_id, address=address("GB"), lines=LINES)

    # When another copy arrives, saying something else
    shipment_request_record(order_id=order_id, address=address("FR"), lines=[])

    # Then the first one stands
    request = ShipmentRequest.objects.get()
    assert (request.address["country"], request.lines) == ("GB", LINES)


# --- shipment_create ---


def test_a_reserved_order_is_handed_to_the_carrier_with_a_tracking_number():
    # Given an order whose destination shipping kept
    request = ShipmentRequestFactory()

    # When its shipment is made
    shipment = shipment_create(order_id=request.order_id)

    # Then the carrier has it, for the kept address, and the order hears how to track it
    assert (shipment.status, shipment.carrier) == (Shipment.Status.CREATED, "ParcelPost")
    assert (shipment.address, shipment.lines) == (request.address, request.lines)
    assert shipment.tracking_number.startswith("PP")
    assert len(shipment.tracking_number) == 14
    [created] = published("ShipmentCreated")
    assert created.payload == {
        "order_id": str(request.order_id),
        "shipment_id": str(shipment.id),
        "carrier": "ParcelPost",
        "tracking_number": shipment.tracking_number,
        "workflow": "choreography",
    }


def test_before_the_orders_destination_arrives_the_shipment_waits():
    # Given a reserved order whose OrderPlaced has not reached shipping
    # When its shipment is to be made
    with pytest.raises(RetryLater, match="has not arrived yet"), transaction.atomic():
        shipment_create(order_id=uuid.uuid4())

    # Then nothing is made and nothing is said: the delivery comes again
    assert not Shipment.objects.exists()
    assert published_types() == []


@pytest.mark.parametrize("country", ["AQ", "aq"])
def test_a_destination_the_carrier_does_not_serve_is_refused(country):
    # Given an order to Antarctica
    request = ShipmentRequestFactory(address=address(country))

    # When its shipment is to be made
    shipment = shipment_create(order_id=request.order_id)

    # Then the carrier refuses it, and the order hears why
    assert (shipment.status, shipment.failure_reason) == (Shipment.Status.REFUSED, UNSERVED)
    assert shipment.tracking_number is None
    [failed] = published()
    assert (failed.type, failed.payload) == (
        "ShipmentFailed",
        {"order_id": str(request.order_id), "reason": UNSERVED, "workflow": "choreography"},
    )


@pytest.mark.parametrize("trait", ["created", "refused", "cancelled"])
def test_making_an_orders_shipment_again_returns_it_and_says_nothing(trait):
    # Given an order with its one shipment (made, refused, or cancelled first)
    shipment = ShipmentFactory(**({} if trait == "created" else {trait: True}))
    ShipmentRequestFactory(order_id=shipment.order_id)

    # When its shipment is to be made (again)
    again = shipment_create(order_id=shipment.order_id)

    # Then it is the same one, and nothing more is said
    assert (again, again.status) == (shipment, shipment.status)
    assert Shipment.objects.count() == 1
    assert published_types() == []


# --- shipment_create_on_request ---


@pytest.mark.parametrize(
    ("country", "reply"), [("GB", "ShipmentCreated"), ("AQ", "ShipmentFailed")]
)
def test_on_request_the_shipment_is_made_once_and_answered_every_time(country, reply):
    # Given the saga asked for an order's shipment
    order_id = uuid.uuid4()
    first = shipment_create_on_request(order_id=order_id, address=address(country), lines=LINES)

    # When it asks again (its reply was late)
    again = shipment_create_on_request(order_id=order_id, address=address(country), lines=LINES)

    # Then one shipment, and the same answer twice, for the saga
    assert (again, Shipment.objects.count()) == (first, 1)
    answers = published()
    assert [row.type for row in answers] == [reply, reply]
    assert answers[0].payload == answers[1].payload
    assert workflows() == {"orchestration"}


def test_on_request_a_shipment_cancelled_first_is_refused():
    # Given the saga cancelled an order's shipment before asking for it (a tombstone)
    tombstone = ShipmentFactory(cancelled=True)

    # When the request for it comes late
    shipment_create_on_request(order_id=tombstone.order_id, address=address(), lines=LINES)

    # Then no parcel goes out, and the saga hears why
    assert Shipment.objects.get().status == Shipment.Status.CANCELLED
    [failed] = published("ShipmentFailed")
    assert failed.payload["reason"] == "The shipment was cancelled with its order"


# --- shipment_cancel ---


@pytest.mark.parametrize("destination_kept", [True, False], ids=["destination-kept", "unknown"])
def test_cancelling_an_order_with_no_shipment_leaves_a_tombstone_that_refuses_one(
    destination_kept,
):
    # Given an order not yet shipped (whose destination shipping may not know yet)
    request = ShipmentRequestFactory.build()
    if destination_kept:
        request.save()

    # When the saga cancels its shipment, then asks for the shipment late
    shipment_cancel(order_id=request.order_id, reason="payment timed out")
    shipment_create_on_request(order_id=request.order_id, address=request.address, lines=LINES)

    # Then no parcel ever goes out, the tombstone says why, and the saga hears both answers
    tombstone = Shipment.objects.get()
    assert (tombstone.status, tombstone.failure_reason, tombstone.tracking_number) == (
        Shipment.Status.CANCELLED,
        "payment timed out",
        None,
    )
    assert tombstone.address == (request.address if destination_kept else {})
    assert published_types() == ["ShipmentCancelled", "ShipmentFailed"]
    assert workflows() == {"orchestration"}


def test_a_shipment_that_left_cannot_be_cancelled():
    # Given a shipment handed to the carrier
    shipment = ShipmentFactory()

    # When the saga asks to cancel it
    shipment_cancel(order_id=shipment.order_id, reason="payment timed out")

    # Then it stays on its way, and the saga hears which parcel it was
    assert Shipment.objects.get().status == Shipment.Status.CREATED
    [failed] = published()
    assert (failed.type, failed.payload) == (
        "ShipmentCancelFailed",
        {
            "order_id": str(shipment.order_id),
            "reason": f"shipment {shipment.tracking_number} has already left",
            "carrier": "ParcelPost",
            "tracking_number": shipment.tracking_number,
            "workflow": "orchestration",
        },
    )


@pytest.mark.parametrize("trait", ["refused", "cancelled"])
def test_cancelling_a_shipment_that_never_left_is_answered_cancelled_every_time(trait):
    # Given a shipment the carrier refused, or one cancelled already
    shipment = ShipmentFactory(**{trait: True})

    # When the saga asks to cancel it
    shipment_cancel(order_id=shipment.order_id, reason="out of stock")

    # Then it stays as it was, and the saga hears it is cancelled
    assert Shipment.objects.get().status == shipment.status
    [cancelled] = published()
    assert (cancelled.type, cancelled.payload) == (
        "ShipmentCancelled",
        {"order_id": str(shipment.order_id), "workflow": "orchestration"},
    )


# --- the order's deadline and its cancellation ---


@pytest.mark.parametrize(
    "ship",
    [
        lambda request: shipment_create(order_id=request.order_id),
        lambda request: shipment_create_on_request(
            order_id=request.order_id, address=request.address, lines=request.lines
        ),
    ],
    ids=["choreography", "orchestration"],
)
def test_no_parcel_is_made_after_the_orders_deadline(ship):
    # Given an order whose deadline passed while its shipment request waited
    past = timezone.now() - timedelta(seconds=1)
    request = ShipmentRequestFactory(deadline=past)

    # When the request is handled
    ship(request)

    # Then no parcel is made, and the refusal says why
    shipment = Shipment.objects.get(order_id=request.order_id)
    assert (shipment.status, shipment.tracking_number) == (Shipment.Status.CANCELLED, None)
    [failed] = published("ShipmentFailed")
    assert (
        failed.payload["reason"] == "The shipment was refused: the order was not completed in time"
    )
    assert published("ShipmentCreated") == []


def test_a_shipment_within_the_deadline_is_made():
    request = ShipmentRequestFactory(deadline=timezone.now() + timedelta(minutes=1))
    shipment = shipment_create(order_id=request.order_id)
    assert shipment.status == Shipment.Status.CREATED
    assert published_types() == ["ShipmentCreated"]


def test_a_cancelled_order_gets_no_parcel_when_its_reservation_comes_later():
    # Given an order cancelled before its stock was reserved
    request = ShipmentRequestFactory()
    shipment_prevent(order_id=request.order_id, reason="not completed in time")
    shipment_prevent(order_id=request.order_id, reason="again")

    # When its InventoryReserved arrives after all
    shipment_create(order_id=request.order_id)

    # Then no parcel is made: one cancelled shipment, nothing created
    shipment = Shipment.objects.get(order_id=request.order_id)
    assert (shipment.status, shipment.failure_reason) == (
        Shipment.Status.CANCELLED,
        "not completed in time",
    )
    assert published("ShipmentCreated") == []


def test_cancelling_an_order_whose_parcel_left_changes_nothing():
    shipment = ShipmentFactory()
    shipment_prevent(order_id=shipment.order_id, reason="cancelled")
    assert Shipment.objects.get(pk=shipment.pk).status == Shipment.Status.CREATED
    assert published() == []
