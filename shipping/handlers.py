"""How shipping reacts to the other apps' events."""

from inventory.events import InventoryReserved
from messaging.consumers import handler
from messaging.messages import Envelope
from orders.events import OrderPlaced

from . import services


@handler(OrderPlaced)
def remember_destination(event: OrderPlaced, envelope: Envelope) -> None:
    """Keep where the order goes until its stock is reserved."""
    services.shipment_request_record(
        order_id=event.order_id,
        address=event.shipping_address.model_dump(),
        lines=[
            {"sku": line.sku, "name": line.name, "quantity": line.quantity} for line in event.lines
        ],
    )


@handler(InventoryReserved)
def ship_reserved_order(event: InventoryReserved, envelope: Envelope) -> None:
    """Reserved stock means the parcel can go: create its shipment."""
    services.shipment_create(order_id=event.order_id)
