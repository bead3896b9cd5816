"""How orders reacts to the other apps' events."""

from inventory.events import (
    InventoryReleased,
    InventoryReleaseFailed,
    InventoryReservationFailed,
    InventoryReserved,
    ProductUpdated,
)
from messaging.consumers import handler
from messaging.messages import Envelope
from payments.events import (
    PaymentDeferred,
    PaymentFailed,
    PaymentProcessed,
    PaymentRefunded,
    PaymentVoided,
)
from shipping.events import (
    ShipmentCancelFailed,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentFailed,
)

from . import services
from .events import Workflow


@handler(ProductUpdated)
def update_catalog(event: ProductUpdated, envelope: Envelope) -> None:
    """Keep the storefront's copy of the catalog current."""
    services.catalog_item_apply(
        sku=event.sku,
        name=event.name,
        price=event.price,
        currency=event.currency,
        available=event.available,
        is_active=event.is_active,
        as_of=envelope.occurred_at,
    )


@handler(PaymentProcessed)
def mark_paid(event: PaymentProcessed, envelope: Envelope) -> None:
    """The card was charged: the order is paid."""
    services.order_mark_paid(order_id=event.order_id, amount=event.amount)


@handler(PaymentFailed)
def cancel_unpaid(event: PaymentFailed, envelope: Envelope) -> None:
    """The card was not charged: a choreographed order ends here."""
    services.order_mark_payment_failed(
        order_id=event.order_id, reason_code=event.reason_code, reason=event.reason
    )


@handler(PaymentDeferred)
def note_payment_deferred(event: PaymentDeferred, envelope: Envelope) -> None:
    """The payment waits out a gateway outage: under orchestration its step is not timed out."""
    services.order_mark_payment_deferred(order_id=event.order_id, reason=event.reason)


@handler(InventoryReserved)
def mark_reserved(event: InventoryReserved, envelope: Envelope) -> None:
    """The stock is held for the order."""
    services.order_mark_reserved(order_id=event.order_id)


@handler(PaymentRefunded)
def record_refund(event: PaymentRefunded, envelope: Envelope) -> None:
    """The money went back: a choreographed order still open is cancelled."""
    order_id, amount = event.order_id, event.amount
    services.order_mark_refunded(
        order_id=order_id, amount=amount, reason_code=event.reason_code, reason=event.reason
    )


@handler(ShipmentCreated)
def complete_shipped(event: ShipmentCreated, envelope: Envelope) -> None:
    """The parcel left: a choreographed order is complete."""
    services.order_record_shipment(
        order_id=event.order_id, carrier=event.carrier, tracking_number=event.tracking_number
    )


@handler(
    PaymentProcessed,
    PaymentFailed,
    PaymentRefunded,
    PaymentVoided,
    InventoryReserved,
    InventoryReservationFailed,
    InventoryReleased,
    InventoryReleaseFailed,
    ShipmentCreated,
    ShipmentFailed,
    ShipmentCancelled,
    ShipmentCancelFailed,
    when=lambda reply: reply.workflow == Workflow.ORCHESTRATION,
)
def advance_saga(reply, envelope: Envelope) -> None:
    """A reply to one of the order saga's commands moves the saga on."""
    services.order_saga_advance(order_id=reply.order_id, reply=reply, envelope=envelope)
