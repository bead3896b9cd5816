"""Shipments for orders whose stock is reserved."""

from __future__ import annotations

import secrets
from uuid import UUID

from django.db import transaction

from messaging.consumers import RetryLater
from messaging.publishing import publish

from .events import ShipmentCreated
from .models import Shipment, ShipmentRequest

CARRIER = "ParcelPost"


@transaction.atomic
def shipment_request_record(*, order_id: UUID, address: dict, lines: list[dict]) -> None:
    """Keep a placed order's address and lines until its stock is reserved."""
    ShipmentRequest.objects.get_or_create(
        order_id=order_id, defaults={"address": address, "lines": lines}
    )


@transaction.atomic
def shipment_create(*, order_id: UUID) -> Shipment:
    """Create the order's one shipment with a tracking number; publishes ShipmentCreated."""
    if (existing := Shipment.objects.filter(order_id=order_id).first()) is not None:
        return existing
    request = ShipmentRequest.objects.filter(order_id=order_id).first()
    if request is None:
        raise RetryLater(f"the address of order {order_id} has not arrived yet")
    shipment = Shipment.objects.create(
        order_id=order_id,
        carrier=CARRIER,
        tracking_number=f"PP{secrets.randbelow(10**12):012d}",
        address=request.address,
        lines=request.lines,
    )
    publish(
        ShipmentCreated(
            order_id=order_id,
            shipment_id=shipment.id,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
        )
    )
    return shipment
