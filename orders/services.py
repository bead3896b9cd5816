"""Placing orders and moving them along as the other apps report back."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gateway import client as gateway
from messaging.messages import Envelope, Message
from messaging.publishing import publish

from .destinations import country_problem
from .events import Address, OrderCancelled, OrderCompleted, OrderPlaced, PlacedLine, Workflow
from .models import CatalogItem, Order, OrderLine
from .saga import Cancel, Complete, saga_handle_reply, saga_start, saga_wait_out
from .schemas import MAX_QUANTITY
from .steps import reason_refunded

logger = logging.getLogger(__name__)

# How far along each status is; an event never moves an order backwards.
PROGRESS: dict[str, int] = {
    Order.Status.PLACED: 0,
    Order.Status.PAID: 1,
    Order.Status.RESERVED: 2,
    Order.Status.SHIPPED: 3,
    Order.Status.COMPLETED: 4,
}


class OrderRejected(Exception):
    """The order cannot be placed as given; ``errors`` maps each field to its problems."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class OrderItem:
    sku: str
    quantity: int


def order_place(
    *,
    email: str,
    items: list[OrderItem],
    shipping_address: dict[str, str],
    card_number: str,
    workflow: Workflow | str | None = None,
) -> Order:
    """Place an order priced from the catalog; publishes OrderPlaced.

    Under orchestration it also starts the order's saga, which sends the
    first command in the same transaction.

    Raises OrderRejected, writing nothing and before the card is tokenized, for
    what orders' own copy of the catalog already says cannot be had (a product
    not for sale, more of one than the limit or than there is), a destination
    the carrier does not serve, or an invalid card number. Inventory and
    shipping check again later: the copy can be behind.
    """
    quantities: OrderedDict[str, int] = OrderedDict()
    for item in items:
        quantities[item.sku] = quantities.get(item.sku, 0) + item.quantity
    catalog = {c.sku: c for c in CatalogItem.objects.filter(sku__in=quantities, is_active=True)}
    errors = _item_problems(items, catalog)
    country = shipping_address.get("country", "")
    if problem := country_problem(country):
        errors["shipping_address.country"] = [problem]
    try:
        card = gateway.card_number_normalize(card_number)
    except gateway.InvalidCardNumber as invalid:
        errors["card_number"] = [str(invalid)]
    workflow = workflow or settings.ORDERS_DEFAULT_WORKFLOW
    if workflow not in set(Workflow):
        errors["workflow"] = [f"Choose one of: {', '.join(Workflow)}."]
    if errors:
        raise OrderRejected(errors)
    # The card number goes to the gateway and no further; we keep its token.
    token = gateway.tokenize(card_number=card)
    address = Address(**shipping_address)
    with transaction.atomic():
        order = Order.objects.create(
            email=email,
            ship_name=address.name,
            ship_line1=address.line1,
            ship_city=address.city,
            ship_postal_code=address.postal_code,
            ship_country=address.country,
            workflow=workflow,
            total=sum(
                (catalog[sku].price * quantity for sku, quantity in quantities.items()), Decimal(0)
            ),
            currency=settings.SHOP_CURRENCY,
            card_last4=token.last4,
            deadline=timezone.now() + timedelta(seconds=settings.ORDER_DEADLINE_SECONDS),
        )
        lines = OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                sku=sku,
                name=catalog[sku].name,
                quantity=quantity,
                unit_price=catalog[sku].price,
            )
            for sku, quantity in quantities.items()
        )
        publish(
            OrderPlaced(
                order_id=order.id,
                email=order.email,
                lines=[
                    PlacedLine(sku=x.sku, name=x.name, quantity=x.quantity, unit_price=x.unit_price)
                    for x in lines
                ],
                total=order.total,
                currency=order.currency,
                shipping_address=address,
                card_token=token.token,
                card_last4=token.last4,
                workflow=Workflow(order.workflow),
                card_fingerprint=token.fingerprint,
                deadline=order.deadline,
            ),
            correlation_id=str(order.id),
        )
        if workflow == Workflow.ORCHESTRATION:
            saga_start(order=order, card_token=token.token)
    logger.info(
        "Placed order %s: %s %s, %s line(s), by %s",
        order.id,
        order.total,
        order.currency,
        len(lines),
        order.workflow,
    )
    return order


def _item_problems(items: list[OrderItem], catalog: dict[str, CatalogItem]) -> dict[str, list[str]]:
    """Each line's problem as orders' copy of the catalog sees it, keyed by the line's field.

    Lines for one product count together: its quantity is their sum, and
    when that is too many each of them says so.
    """
    lines: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        lines.setdefault(item.sku, []).append(index)
    problems: dict[str, tuple[str, str]] = {}
    for sku, indexes in lines.items():
        product = catalog.get(sku)
        if product is None:
            problems[sku] = ("sku", f"There is no product {sku!r} for sale.")
            continue
        wanted = sum(items[index].quantity for index in indexes)
        asked = f"you asked for {wanted}"
        if len(indexes) > 1:
            asked += f" in all, on items {_and(indexes)}"
        named = f"{product.name} ({sku})"
        if product.available <= 0:
            problems[sku] = ("quantity", f"{named} is sold out.")
        elif wanted > product.available and product.available < MAX_QUANTITY:
            problems[sku] = ("quantity", f"Only {product.available} {named} available; {asked}.")
        elif wanted > MAX_QUANTITY:
            problems[sku] = ("quantity", f"At most {MAX_QUANTITY} {named} per order; {asked}.")
    return {
        f"items.{index}.{problems[item.sku][0]}": [problems[item.sku][1]]
        for index, item in enumerate(items)
        if item.sku in problems
    }


def _and(numbers: list[int]) -> str:
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


@transaction.atomic(savepoint=False)
def catalog_item_apply(
    *, sku: str, name: str, price: Decimal, currency: str, available: int, is_active: bool,
    as_of: datetime,
) -> None:  # fmt: skip
    """Update orders' copy of a product, unless what it has is newer."""
    fields = {
        "name": name,
        "price": price,
        "currency": currency,
        "available": available,
        "is_active": is_active,
        "as_of": as_of,
    }
    item = CatalogItem.objects.select_for_update().filter(sku=sku).first()
    if item is None:
        CatalogItem.objects.update_or_create(sku=sku, defaults=fields)
        return
    if item.as_of > as_of:
        return
    for field, value in fields.items():
        setattr(item, field, value)
    item.save(update_fields=list(fields))


def _locked(order_id: UUID) -> Order:
    return Order.objects.select_for_update().get(pk=order_id)


def _advance(order: Order, status: str) -> bool:
    if order.is_closed or PROGRESS[status] <= PROGRESS[order.status]:
        return False
    order.status = status
    return True


def _cancel(order: Order, *, reason_code: str, reason: str) -> None:
    order.status = Order.Status.CANCELLED
    order.cancel_reason_code, order.cancel_reason = reason_code, reason[:300]
    order.closed_at = timezone.now()
    event = OrderCancelled(order_id=order.id, reason_code=reason_code, reason=reason)
    publish(event, correlation_id=str(order.id))


@transaction.atomic(savepoint=False)
def order_mark_paid(*, order_id: UUID, amount: Decimal) -> Order:
    order = _locked(order_id)
    order.amount_charged = amount
    order.waiting_because = ""
    if order.payment_status in {Order.PaymentStatus.PENDING, Order.PaymentStatus.FAILED}:
        order.payment_status = Order.PaymentStatus.CAPTURED
    _advance(order, Order.Status.PAID)
    order.save()
    return order


def _is_choreographed(order: Order) -> bool:
    # Under orchestration the saga decides when an order ends; these
    # services then only record the facts.
    return order.workflow == Workflow.CHOREOGRAPHY


def _cancel_if_choreographed(order: Order, *, reason_code: str, reason: str) -> None:
    if _is_choreographed(order) and not order.is_closed:
        _cancel(order, reason_code=reason_code, reason=reason)


@transaction.atomic(savepoint=False)
def order_mark_payment_failed(*, order_id: UUID, reason_code: str, reason: str) -> Order:
    """The card was not charged: the order ends here."""
    order = _locked(order_id)
    if order.payment_status == Order.PaymentStatus.PENDING:
        order.payment_status = Order.PaymentStatus.FAILED
    _cancel_if_choreographed(order, reason_code=reason_code, reason=f"Payment failed: {reason}")
    order.save()
    return order


@transaction.atomic(savepoint=False)
def order_mark_payment_deferred(*, order_id: UUID, reason: str) -> Order:
    """The payment waits on the card gateway: the order says so, and its saga waits too (not
    timing the step out before the order's deadline)."""
    order = _locked(order_id)
    if not order.is_closed:
        order.waiting_because = reason[:200]
        order.save(update_fields=["waiting_because", "updated_at"])
        if order.workflow == Workflow.ORCHESTRATION:
            saga_wait_out(order_id=order_id, reason=reason)
    return order


@transaction.atomic(savepoint=False)
def order_mark_reserved(*, order_id: UUID) -> Order:
    order = _locked(order_id)
    _advance(order, Order.Status.RESERVED)
    order.save()
    return order


@transaction.atomic(savepoint=False)
def order_mark_refunded(*, order_id: UUID, amount: Decimal, reason_code: str, reason: str) -> Order:
    """Money went back to the customer; an order still open is cancelled for that reason.

    A payment is refunded at most once, in full, but the news of it may come
    more than once (a saga asking again gets the same answer): the amount is
    set, not added.
    """
    order = _locked(order_id)
    order.amount_refunded = amount
    order.payment_status = Order.PaymentStatus.REFUNDED
    _cancel_if_choreographed(order, reason_code=reason_code, reason=reason_refunded(reason))
    order.save()
    return order


@transaction.atomic(savepoint=False)
def order_record_shipment(*, order_id: UUID, carrier: str, tracking_number: str) -> Order:
    """The shipment exists; under choreography that completes the order."""
    order = _locked(order_id)
    if order.status == Order.Status.CANCELLED and not order.needs_attention:
        # Only a shipment begun just before the order's deadline gets here: the
        # parcel left for an order cancelled (and refunded) meanwhile.
        order.carrier, order.tracking_number = carrier, tracking_number
        order.attention_reason = f"shipment {tracking_number} left for this cancelled order"
        order.save()
        logger.warning("Order %s: %s", order.id, order.attention_reason)
        return order
    if _is_choreographed(order):
        return _complete(order, carrier=carrier, tracking_number=tracking_number)
    order.carrier, order.tracking_number = carrier, tracking_number
    order.save()
    return order


@transaction.atomic(savepoint=False)
def order_complete(*, order_id: UUID, carrier: str, tracking_number: str) -> Order:
    """The order is shipped and complete; publishes OrderCompleted."""
    return _complete(_locked(order_id), carrier=carrier, tracking_number=tracking_number)


def _complete(order: Order, *, carrier: str, tracking_number: str) -> Order:
    order.carrier, order.tracking_number = carrier, tracking_number
    if _advance(order, Order.Status.SHIPPED):
        order.status = Order.Status.COMPLETED
        order.closed_at = timezone.now()
        event = OrderCompleted(order_id=order.id, tracking_number=tracking_number)
        publish(event, correlation_id=str(order.id))
    order.save()
    return order


@transaction.atomic(savepoint=False)
def order_cancel(*, order_id: UUID, reason_code: str, reason: str) -> Order:
    """End an open order as cancelled, saying why; publishes OrderCancelled."""
    order = _locked(order_id)
    if not order.is_closed:
        _cancel(order, reason_code=reason_code, reason=reason)
        order.save()
    return order


@transaction.atomic(savepoint=False)
def order_saga_advance(*, order_id: UUID, reply: Message, envelope: Envelope) -> Order | None:
    """A reply to one of the saga's commands: the saga takes its next step, and ends the order
    when it says so."""
    ending = saga_handle_reply(order_id=order_id, reply=reply, envelope=envelope)
    if isinstance(ending, Cancel):
        return order_cancel(order_id=order_id, reason_code=ending.reason_code, reason=ending.reason)
    if isinstance(ending, Complete):
        return order_complete(
            order_id=order_id, carrier=ending.carrier, tracking_number=ending.tracking_number
        )
    return None
