"""Shipments for orders whose stock is reserved."""

from __future__ import annotations

import secrets
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messaging.errors import RetryLater
from messaging.publishing import publish
from orders.events import Workflow

from .events import ShipmentCancelFailed, ShipmentCancelled, ShipmentCreated, ShipmentFailed
from .models import Shipment, ShipmentRequest

CARRIER = "ParcelPost"


# Why a shipment asked for after its order's deadline is refused.
TOO_LATE = "the order was not completed in time"


@transaction.atomic(savepoint=False)
def shipment_request_record(
    *, order_id: UUID, address: dict, lines: list[dict], deadline: datetime | None = None
) -> None:
    """Keep a placed order's address, lines and deadline until its stock is reserved (the first
    copy wins)."""
    request = ShipmentRequest(order_id=order_id, address=address, lines=lines, deadline=deadline)
    ShipmentRequest.objects.bulk_create([request], ignore_conflicts=True)


def _is_too_late(order_id: UUID) -> bool:
    """Whether the order's deadline passed: its watchdog may have cancelled it, or soon will.

    Checked when a shipment would be made, so that a request that waited in
    the queue (shipping was down) makes no parcel for an order ended meanwhile.
    """
    request = ShipmentRequest.objects.filter(order_id=order_id).first()
    return (
        request is not None and request.deadline is not None and request.deadline <= timezone.now()
    )


def _refuse_late(order_id: UUID, address: dict, lines: list[dict]) -> Shipment:
    return Shipment.objects.create(
        order_id=order_id,
        status=Shipment.Status.CANCELLED,
        failure_reason=TOO_LATE,
        carrier=CARRIER,
        address=address,
        lines=lines,
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
    if _is_too_late(order_id):
        shipment = _refuse_late(order_id, request.address, request.lines)
    else:
        shipment = _create(order_id, request.address, request.lines)
    _reply(shipment, Workflow.CHOREOGRAPHY)
    return shipment


@transaction.atomic(savepoint=False)
def shipment_create_on_request(*, order_id: UUID, address: dict, lines: list[dict]) -> Shipment:
    """Create the order's one shipment on the saga's request; answers every time it is asked."""
    shipment = Shipment.objects.filter(order_id=order_id).first()
    if shipment is None and _is_too_late(order_id):
        shipment = _refuse_late(order_id, address, lines)
    elif shipment is None:
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


@transaction.atomic(savepoint=False)
def shipment_prevent(*, order_id: UUID, reason: str) -> None:
    """The order was cancelled: a shipment not made yet is cancelled now, so none ever will be.

    Publishes nothing: a parcel that already left is the order's to settle
    (it hears of it from ShipmentCreated).
    """
    if Shipment.objects.filter(order_id=order_id).exists():
        return
    request = ShipmentRequest.objects.filter(order_id=order_id).first()
    # ON CONFLICT DO NOTHING: a shipment made meanwhile in another process wins.
    Shipment.objects.bulk_create(
        [
            Shipment(
                order_id=order_id,
                status=Shipment.Status.CANCELLED,
                failure_reason=reason[:200],
                carrier=CARRIER,
                address=request.address if request else {},
                lines=request.lines if request else [],
            )
        ],
        ignore_conflicts=True,
    )


def _reply(shipment: Shipment, workflow: Workflow) -> None:
    if shipment.status == Shipment.Status.CANCELLED:
        reason = (
            f"The shipment was refused: {TOO_LATE}"
            if shipment.failure_reason == TOO_LATE
            else "The shipment was cancelled with its order"
        )
        publish(ShipmentFailed(order_id=shipment.order_id, reason=reason, workflow=workflow))
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
