"""Shipping's rows: where a placed order goes, and its one shipment."""

import uuid

import factory
from factory.django import DjangoModelFactory

from shipping.models import Shipment, ShipmentRequest
from shipping.services import CARRIER
from tests.support.order_messages import AddressFactory


def _address() -> dict:
    return AddressFactory().model_dump()


def _lines() -> list[dict]:
    return [{"sku": "MUG-1", "name": "Mug", "quantity": 2}]


class ShipmentRequestFactory(DjangoModelFactory):
    """A placed order's address and lines, kept until its stock is reserved."""

    class Meta:
        model = ShipmentRequest

    order_id = factory.LazyFunction(uuid.uuid4)
    address = factory.LazyFunction(_address)
    lines = factory.LazyFunction(_lines)


class ShipmentFactory(DjangoModelFactory):
    """An order's shipment, handed to the carrier by default; or refused, or cancelled first."""

    class Meta:
        model = Shipment

    order_id = factory.LazyFunction(uuid.uuid4)
    carrier = CARRIER
    tracking_number = factory.Sequence(lambda n: f"PP{n:012d}")
    address = factory.LazyFunction(_address)
    lines = factory.LazyFunction(_lines)

    class Params:
        refused = factory.Trait(
            status=Shipment.Status.REFUSED,
            failure_reason=f"{CARRIER} does not deliver to AQ",
            tracking_number=None,
            address=factory.LazyFunction(lambda: AddressFactory(country="AQ").model_dump()),
        )
        cancelled = factory.Trait(
            status=Shipment.Status.CANCELLED,
            failure_reason="payment timed out",
            tracking_number=None,
        )
