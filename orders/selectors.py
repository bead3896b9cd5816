from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from messaging.models import OutboxMessage
from messaging.selectors import conversation_messages

from .events import Workflow
from .models import CatalogItem, Order, OrderSaga, PlacementKey
from .steps import step_entry

# What a choreographed order in each status waits for.
WAITING_ON: dict[str, str] = {
    Order.Status.PLACED: "payments: charge the card",
    Order.Status.PAID: "inventory: reserve stock",
    Order.Status.RESERVED: "shipping: create the shipment",
    Order.Status.SHIPPED: "orders: complete the order",
}


# What an orchestrated order waits for while its saga undoes a step.
SAGA_UNDOING: dict[str, str] = {
    OrderSaga.Step.CANCEL_SHIPMENT: "shipping: cancel the shipment",
    OrderSaga.Step.RELEASE_INVENTORY: "inventory: release the stock",
    OrderSaga.Step.REFUND_PAYMENT: "payments: refund the payment",
}


# With FRAUD_SCREENING on, payments charges an order only once the fraud screen
# (a stream processor) has published its verdict, under this type.
SCREENED_EVENT = "OrderScreened"
AWAITING_VERDICT = "analytics: the fraud screen's verdict (is stream_processor running?)"


@dataclass(frozen=True)
class StuckOrder:
    order: Order
    waiting_on: str
    saga: OrderSaga | None


# Named rather than "not closed", so that the status index finds them among all the closed.
OPEN_STATUSES = [
    status
    for status in Order.Status
    if status not in {Order.Status.COMPLETED, Order.Status.CANCELLED}
]


def _open_orders_older_than(older_than: timedelta) -> QuerySet[Order]:
    # With the open ones, those parked as needing attention (a parcel left for
    # a cancelled order, say): they are closed but not settled.
    return Order.objects.filter(
        Q(status__in=OPEN_STATUSES) | ~Q(attention_reason=""),
        created_at__lt=timezone.now() - older_than,
    )


def stuck_orders(*, older_than: timedelta, limit: int | None = None) -> list[StuckOrder]:
    """Orders neither completed nor cancelled after the given age, oldest first (``limit`` of
    them, if given)."""
    open_orders = list(
        _open_orders_older_than(older_than).select_related("saga").order_by("created_at")[:limit]
    )
    unscreened = _unscreened(open_orders)
    rows = []
    for order in open_orders:
        saga = getattr(order, "saga", None) if order.workflow == Workflow.ORCHESTRATION else None
        if order.pk in unscreened:
            waiting_on = AWAITING_VERDICT
        elif saga is not None:
            waiting_on = f"saga: {saga.get_step_display()} ({saga.get_state_display()})"
        else:
            waiting_on = WAITING_ON.get(order.status, order.status)
        if order.waiting_because:
            waiting_on = f"{waiting_on} ({order.waiting_because})"
        if order.attention_reason:
            waiting_on = f"a person: {order.attention_reason}"
        rows.append(StuckOrder(order=order, waiting_on=waiting_on, saga=saga))
    return rows


def order_waiting_for(*, order: Order) -> str:
    """What an open order waits for, the same words under either workflow: the step its status
    leads to, or the one its saga is undoing.

    Why it waits (a step put off by an outage) is left out: an order whose
    step was dead-lettered before the outage was noticed waits for the same
    thing, and both are to read the same.
    """
    saga = getattr(order, "saga", None) if order.workflow == Workflow.ORCHESTRATION else None
    if order.pk in _unscreened([order]):
        return AWAITING_VERDICT
    if saga is not None and saga.step in SAGA_UNDOING:
        return SAGA_UNDOING[saga.step]
    return WAITING_ON.get(order.status, order.status)


def order_shipment_reported(*, order_id: UUID) -> dict | None:
    """The ShipmentCreated of the order's conversation, if shipping reported one: the parcel left.

    Read from the event log, as the other apps published it, not from shipping's tables.
    """
    message = (
        conversation_messages(correlation_id=str(order_id)).filter(type="ShipmentCreated").first()
    )
    return message.payload if message else None


def orders_overdue_queryset(*, now) -> QuerySet[Order]:
    """Open orders past their deadline and not parked, earliest first (the watchdog's sweep).

    Filtered exactly as the partial index orders_open_by_deadline is defined,
    so that the sweep reads that index, not the table.
    """
    return Order.objects.filter(
        status__in=OPEN_STATUSES, attention_reason="", deadline__lt=now
    ).order_by("deadline")


def orders_overdue(*, now, limit: int) -> list[UUID]:
    """The ids of the first ``limit`` orders past their deadline (orders_overdue_queryset)."""
    return list(orders_overdue_queryset(now=now).values_list("pk", flat=True)[:limit])


def _unscreened(orders: list[Order]) -> set[UUID]:
    """The placed orders whose charge waits on a fraud verdict that has not come yet."""
    if not settings.FRAUD_SCREENING:
        return set()
    placed = {str(order.pk): order.pk for order in orders if order.status == Order.Status.PLACED}
    screened = OutboxMessage.objects.filter(
        type=SCREENED_EVENT, correlation_id__in=list(placed)
    ).values_list("correlation_id", flat=True)
    return set(placed.values()) - {placed[correlation_id] for correlation_id in screened}


def stuck_orders_count(*, older_than: timedelta) -> int:
    return _open_orders_older_than(older_than).count()


def catalog_for_sale() -> QuerySet[CatalogItem]:
    """What orders will take an order for: the storefront's list and the products API's."""
    return CatalogItem.objects.filter(is_active=True).order_by("sku")


# Seconds a client is asked to wait while the catalog loads after a fresh start.
CATALOG_RETRY_AFTER = 2


def catalog_is_loading() -> bool:
    """True until inventory's first ProductUpdated has reached orders' copy.

    Right after a fresh start the copy is empty while the catalog's events are
    still on their way; saying so beats refusing orders for unknown products.
    """
    return not CatalogItem.objects.exists()


def orders_newest_first() -> QuerySet[Order]:
    """Every order, the latest placed first: what staff list through the API."""
    return Order.objects.order_by("-created_at", "-id")


def placement_key_order(*, source: str, key: str) -> UUID | None:
    """The order placed under a key or form token, if one was."""
    return (
        PlacementKey.objects.filter(source=source, key=key, order__isnull=False)
        .values_list("order_id", flat=True)
        .first()
    )


def order_get(*, order_id: UUID) -> Order | None:
    return Order.objects.prefetch_related("lines").filter(pk=order_id).first()


def order_timeline(*, order: Order) -> QuerySet[OutboxMessage]:
    """Every event of the order's conversation, as the event log recorded it."""
    return conversation_messages(correlation_id=str(order.id))


def order_steps(*, order_id: UUID) -> list[dict]:
    """The order's events as steps in its customer's words (what its page shows), oldest first."""
    return [
        step_entry(
            message_type=message.type,
            payload=message.payload,
            message_id=str(message.message_id),
            occurred_at=message.occurred_at.isoformat(),
            order_id=str(order_id),
        )
        for message in conversation_messages(correlation_id=str(order_id)).filter(
            kind=OutboxMessage.Kind.EVENT
        )
    ]


def order_as_dict(*, order: Order) -> dict:
    """The order as the API and the live order page show it."""
    return {
        "id": str(order.id),
        "status": order.status,
        "status_display": order.get_status_display(),
        "is_closed": order.is_closed,
        "cancel_reason": order.cancel_reason,
        "workflow": order.workflow,
        "email": order.email,
        "total": str(order.total),
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "lines": [
            {
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
                "line_total": str(line.line_total),
            }
            for line in order.lines.all()
        ],
        "payment": {
            "status": order.payment_status,
            "card_last4": order.card_last4,
            "amount_charged": str(order.amount_charged),
            "amount_refunded": str(order.amount_refunded),
        },
        "shipment": (
            {"carrier": order.carrier, "tracking_number": order.tracking_number}
            if order.tracking_number
            else None
        ),
        "timeline": [
            step_entry(
                message_type=message.type,
                payload=message.payload,
                message_id=str(message.message_id),
                occurred_at=message.occurred_at.isoformat(),
                kind=message.kind,
                version=message.version,
                correlation_id=message.correlation_id,
                causation_id=str(message.causation_id) if message.causation_id else None,
            )
            for message in order_timeline(order=order)
        ],
    }
