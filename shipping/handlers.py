"""How shipping reacts to the other apps' events, and the commands it takes."""

from inventory.events import InventoryReserved
from messaging.consumers import handler
from messaging.messages import Envelope
from orders.events import OrderCancelled, OrderPlaced, Workflow

from . import services
from .commands import CancelShipment, CreateShipment


@handler(OrderPlaced)
def remember_destination(event: OrderPlaced, envelope: Envelope) -> None:
    """Keep where the order goes until its stock is reserved."""
    services.shipment_request_record(
        order_id=event.order_id,
        address=event.shipping_address.model_dump(),
        lines=[{"sku": x.sku, "name": x.name, "quantity": x.quantity} for x in event.lines],
        deadline=event.deadline,
    )


@handler(OrderCancelled)
def prevent_shipment(event: OrderCancelled, envelope: Envelope) -> None:
    """No parcel for a cancelled order: one not made yet never will be."""
    services.shipment_prevent(order_id=event.order_id, reason=event.reason)


@handler(InventoryReserved, when=lambda event: event.workflow == Workflow.CHOREOGRAPHY)
def ship_reserved_order(event: InventoryReserved, envelope: Envelope) -> None:
    """Reserved stock means the parcel can go (the saga asks by command instead)."""
    services.shipment_create(order_id=event.order_id)


@handler(CreateShipment)
def create_shipment(command: CreateShipment, envelope: Envelope) -> None:
    """Ship on the saga's request; answers every time it is asked."""
    services.shipment_create_on_request(
        order_id=command.order_id,
        address=command.address,
        lines=[line.model_dump() for line in command.lines],
    )


@handler(CancelShipment)
def cancel_shipment(command: CancelShipment, envelope: Envelope) -> None:
    """Compensation: no parcel for this order (answers every time it is asked)."""
    services.shipment_cancel(order_id=command.order_id, reason=command.reason)
