"""Shipments for orders whose stock is reserved."""

from __future__ import annotations

import secrets
from uuid import UUID

from django.conf import settings
from django.db import transaction

from messaging.errors import RetryLater
from messaging.publishing import publish
from orders.events import Workflow

from .events import ShipmentCancelFailed, ShipmentCancelled, ShipmentCreated, ShipmentFailed
from .models import Shipment, ShipmentRequest

CARRIER = "ParcelPost"


@transaction.atomic(savepoint=False)
def shipment_request_record(*, order_id: UUID, address: dict, lines: list[dict]) -> None:
    """Keep a placed order's address and lines until its stock is reserved (the first copy wins)."""
    ShipmentRequest.objects.bulk_create(
        [ShipmentRequest(order_id=order_id, address=address, lines=lines)], ignore_conflicts=True
    )


@transaction.atomic(savepoint=False)
def shipment_create(*, order_id: UUID) -> Shipment:
    """Create the order's one shipment once; the first time, publishes ShipmentCreated, or
    ShipmentFailed when the carrier does not serve the destination.

    The address and lines are those of the order's OrderPlaced; until they
    arrive the delivery is retried (RetryLater).
    """
    existing = Shipment.objects.filter(order_id=order_id).first()
    if existing is not None:
        return existing
    request = ShipmentRequest.objects.filter(order_id=order_id).first()
    if request is None:
        raise RetryLater(f"the address of order {order_id} has not arrived yet")
    shipment = _create(order_id, request.address, request.lines)
    _reply(shipment, Workflow.CHOREOGRAPHY)
    return shipment


@transaction.atomic(savepoint=False)
def shipment_create_on_request(*, order_id: UUID, address: dict, lines: list[dict]) -> Shipment:
    """Create the order's one shipment on the saga's request; answers every time it is asked."""
    shipment = Shipment.objects.filter(order_id=order_id).first()
    if shipment is None:
        shipment = _create(order_id, address, lines)
    _reply(shipment, Workflow.ORCHESTRATION)
    return shipment


def _create(order_id: UUID, address: dict, lines: list[dict]) -> Shipment:
    country = address.get("country", "").upper()
    if country in settings.SHIPPING_UNSERVED_COUNTRIES:
        return Shipment.objects.create(
            order_id=order_id,
            status=Shipment.Status.REFUSED,
            failure_reason=f"{CARRIER} does not deliver to {country}",
            carrier=CARRIER,
            address=address,
            lines=lines,
        )
    return Shipment.objects.create(
        order_id=order_id,
        carrier=CARRIER,
        tracking_number=f"PP{secrets.randbelow(10**12):012d}",
        address=address,
        lines=lines,
    )


@transaction.atomic(savepoint=False)
def shipment_cancel(*, order_id: UUID, reason: str) -> None:
    """Make sure no shipment goes out for the order (the saga's compensation).

    Publishes ShipmentCancelled, or ShipmentCancelFailed if it already left.
    """
    workflow = Workflow.ORCHESTRATION
    shipment = Shipment.objects.select_for_update().filter(order_id=order_id).first()
    if shipment is None:
        request = ShipmentRequest.objects.filter(order_id=order_id).first()
        Shipment.objects.create(
            order_id=order_id,
            status=Shipment.Status.CANCELLED,
            failure_reason=reason[:200],
            carrier=CARRIER,
            address=request.address if request else {},
            lines=request.lines if request else [],
        )
    elif shipment.status == Shipment.Status.CREATED:
        assert shipment.tracking_number is not None  # a created shipment has one
        publish(
            ShipmentCancelFailed(
                order_id=order_id,
                reason=f"shipment {shipment.tracking_number} has already left",
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                workflow=workflow,
            )
        )
        return
    publish(ShipmentCancelled(order_id=order_id, workflow=workflow))


def _reply(shipment: Shipment, workflow: Workflow) -> None:
    if shipment.status == Shipment.Status.CANCELLED:
        publish(
            ShipmentFailed(
                order_id=shipment.order_id,
                reason="The shipment was cancelled with its order",
                workflow=workflow,
            )
        )
    elif shipment.status == Shipment.Status.REFUSED:
        publish(
            ShipmentFailed(
                order_id=shipment.order_id, reason=shipment.failure_reason, workflow=workflow
            )
        )
    else:
        assert shipment.tracking_number is not None  # neither cancelled nor refused: created
        publish(
            ShipmentCreated(
                order_id=shipment.order_id,
                shipment_id=shipment.id,
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                workflow=workflow,
            )
        )
