"""Stock: the catalog, reservations for paid orders, shipments and releases."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from uuid import UUID

from django.db import transaction
from django.db.models import F

from messaging.errors import RetryLater
from messaging.publishing import publish
from orders.events import Workflow

from .events import (
    InventoryReleased,
    InventoryReleaseFailed,
    InventoryReservationFailed,
    InventoryReserved,
    ProductUpdated,
    ReservedLine,
    ShortLine,
)
from .models import OrderRequest, Product, Reservation, ReservationLine


def _announce(product: Product) -> None:
    # A product's changes are a conversation of their own, not the order's.
    publish(
        ProductUpdated(
            sku=product.sku,
            name=product.name,
            price=product.price,
            currency=product.currency,
            available=product.available,
            is_active=product.is_active,
        ),
        correlation_id=f"product:{product.sku}",
    )


@transaction.atomic
def product_save(
    *, sku: str, name: str, price: Decimal, on_hand: int | None = None, is_active: bool = True
) -> Product:
    """Create or update a catalog product and tell the other apps about it."""
    # Checked before anything is written, a new product too: the database's
    # constraints would refuse a bad one less readably.
    product = Product.objects.select_for_update().filter(sku=sku).first() or Product(sku=sku)
    product.name, product.price, product.is_active = name, price, is_active
    if on_hand is not None:
        product.on_hand = on_hand
    product.full_clean()
    product.save()
    _announce(product)
    return product


@transaction.atomic(savepoint=False)
def order_request_record(*, order_id: UUID, lines: list[dict]) -> None:
    """Keep a placed order's lines until its payment goes through (the first copy wins)."""
    # One INSERT ... ON CONFLICT DO NOTHING: get_or_create would SELECT, then
    # insert inside a savepoint of its own.
    OrderRequest.objects.bulk_create(
        [OrderRequest(order_id=order_id, lines=lines)], ignore_conflicts=True
    )


@transaction.atomic(savepoint=False)
def stock_reserve(*, order_id: UUID) -> Reservation | None:
    """Reserve every line of a paid order, or none, once; the first time, publishes
    InventoryReserved or InventoryReservationFailed.

    The lines are those of the order's OrderPlaced; until they arrive the
    delivery is retried (RetryLater).
    """
    existing = _locked_reservation(order_id)
    if existing is not None:
        return existing
    request = OrderRequest.objects.filter(order_id=order_id).first()
    if request is None:
        raise RetryLater(f"the lines of order {order_id} have not arrived yet")
    lines = [ReservedLine(**line) for line in request.lines]
    return _reserve(order_id, lines, Workflow.CHOREOGRAPHY)


@transaction.atomic(savepoint=False)
def stock_reserve_on_request(*, order_id: UUID, lines: list[ReservedLine]) -> Reservation | None:
    """Reserve the lines the saga asks for, all or none, once; answers every time it is asked."""
    existing = _locked_reservation(order_id)
    if existing is not None:
        _reply_reservation(existing, Workflow.ORCHESTRATION)
        return existing
    return _reserve(order_id, lines, Workflow.ORCHESTRATION)


def _locked_reservation(order_id: UUID) -> Reservation | None:
    return Reservation.objects.select_for_update().filter(order_id=order_id).first()


def _reserve(order_id: UUID, lines: list[ReservedLine], workflow: Workflow) -> Reservation | None:
    """Products are locked in SKU order, so concurrent reservations never deadlock and never
    promise the same unit twice."""
    wanted: Counter[str] = Counter()
    for line in lines:
        wanted[line.sku] += line.quantity
    products = {
        p.sku: p for p in Product.objects.select_for_update().filter(sku__in=wanted).order_by("sku")
    }
    short = [
        ShortLine(
            sku=sku,
            requested=quantity,
            available=products[sku].available if sku in products and products[sku].is_active else 0,
        )
        for sku, quantity in sorted(wanted.items())
        if sku not in products or not products[sku].is_active or products[sku].available < quantity
    ]
    if short:
        missing = ", ".join(
            f"{s.sku} ({s.requested} ordered, {s.available} available)" for s in short
        )
        publish(
            InventoryReservationFailed(
                order_id=order_id, reason=f"Out of stock: {missing}", short=short, workflow=workflow
            )
        )
        return None
    reservation = Reservation.objects.create(order_id=order_id)
    for sku, quantity in sorted(wanted.items()):
        product = products[sku]
        Product.objects.filter(pk=product.pk).update(reserved=F("reserved") + quantity)
        product.reserved += quantity
        ReservationLine.objects.create(reservation=reservation, product=product, quantity=quantity)
        _announce(product)
    reserved = [ReservedLine(sku=sku, quantity=count) for sku, count in sorted(wanted.items())]
    _reply_reservation(reservation, workflow, reserved)
    return reservation


def _reserved_lines(reservation: Reservation) -> list[ReservedLine]:
    return [
        ReservedLine(sku=line.product.sku, quantity=line.quantity)
        for line in reservation.lines.select_related("product").order_by("product__sku")
    ]


def _reply_reservation(
    reservation: Reservation, workflow: Workflow, lines: list[ReservedLine] | None = None
) -> None:
    if reservation.status == Reservation.Status.RELEASED:
        publish(
            InventoryReservationFailed(
                order_id=reservation.order_id,
                reason="The order was cancelled before its stock was reserved",
                workflow=workflow,
            )
        )
    else:
        publish(
            InventoryReserved(
                order_id=reservation.order_id,
                lines=_reserved_lines(reservation) if lines is None else lines,
                workflow=workflow,
            )
        )


@transaction.atomic(savepoint=False)
def stock_ship(*, order_id: UUID) -> None:
    """The reserved units left the warehouse with the order's shipment."""
    reservation = Reservation.objects.select_for_update().filter(order_id=order_id).first()
    if reservation is None or reservation.status != Reservation.Status.RESERVED:
        return
    for line in reservation.lines.order_by("product__sku"):
        Product.objects.filter(pk=line.product_id).update(
            on_hand=F("on_hand") - line.quantity,
            reserved=F("reserved") - line.quantity,
            shipped=F("shipped") + line.quantity,
        )
    reservation.status = Reservation.Status.SHIPPED
    reservation.save(update_fields=["status", "updated_at"])


@transaction.atomic(savepoint=False)
def stock_release(*, order_id: UUID) -> None:
    """Give an order's reserved units back to the shelf; publishes InventoryReleased if it held
    any.

    An order with no reservation yet gets a released one (a tombstone), so a
    reservation still on its way (a retry) is refused.
    """
    reservation = _locked_reservation(order_id)
    if reservation is None:
        _tombstone(order_id)
    elif reservation.status == Reservation.Status.RESERVED:
        _release(reservation, Workflow.CHOREOGRAPHY)


@transaction.atomic(savepoint=False)
def stock_release_on_request(*, order_id: UUID) -> None:
    """Release on the saga's request (compensation); answers every time it is asked.

    Publishes InventoryReleased, or InventoryReleaseFailed once the units have shipped.
    """
    workflow = Workflow.ORCHESTRATION
    reservation = _locked_reservation(order_id)
    if reservation is None:
        _tombstone(order_id)
    elif reservation.status == Reservation.Status.RESERVED:
        _release(reservation, workflow)
        return
    elif reservation.status == Reservation.Status.SHIPPED:
        reason = "the reserved units have already shipped"
        publish(InventoryReleaseFailed(order_id=order_id, reason=reason, workflow=workflow))
        return
    publish(InventoryReleased(order_id=order_id, lines=[], workflow=workflow))


def _tombstone(order_id: UUID) -> None:
    # The unique order_id makes a reservation under way wait for us, and
    # find this one released.
    Reservation.objects.create(order_id=order_id, status=Reservation.Status.RELEASED)


def _release(reservation: Reservation, workflow: Workflow) -> None:
    lines = list(reservation.lines.select_related("product").order_by("product__sku"))
    for line in lines:
        Product.objects.filter(pk=line.product_id).update(reserved=F("reserved") - line.quantity)
    reservation.status = Reservation.Status.RELEASED
    reservation.save(update_fields=["status", "updated_at"])
    for line in lines:
        line.product.refresh_from_db()
        _announce(line.product)
    publish(
        InventoryReleased(
            order_id=reservation.order_id,
            lines=[ReservedLine(sku=line.product.sku, quantity=line.quantity) for line in lines],
            workflow=workflow,
        )
    )
