"""How inventory reacts to the other apps' events, and the commands it takes."""

from messaging.consumers import handler
from messaging.messages import Envelope
from orders.events import OrderCancelled, OrderPlaced, Workflow
from payments.events import PaymentProcessed
from shipping.events import ShipmentCreated, ShipmentFailed

from . import services
from .commands import ReleaseInventory, ReserveInventory


@handler(OrderPlaced)
def remember_order_lines(event: OrderPlaced, envelope: Envelope) -> None:
    """Keep the lines to reserve once the order is paid."""
    services.order_request_record(
        order_id=event.order_id,
        lines=[{"sku": line.sku, "quantity": line.quantity} for line in event.lines],
    )


def choreographed(event) -> bool:
    return event.workflow == Workflow.CHOREOGRAPHY


@handler(PaymentProcessed, when=choreographed)
def reserve_stock(event: PaymentProcessed, envelope: Envelope) -> None:
    """A paid order gets its stock, all lines or none (the saga asks by command instead)."""
    services.stock_reserve(order_id=event.order_id)


@handler(ShipmentFailed, when=choreographed)
def release_unshippable(event: ShipmentFailed, envelope: Envelope) -> None:
    """An order that cannot ship gives its stock back."""
    services.stock_release(order_id=event.order_id)


@handler(OrderCancelled)
def release_stock(event: OrderCancelled, envelope: Envelope) -> None:
    """A cancelled order's reservation, if any, goes back to the shelf."""
    services.stock_release(order_id=event.order_id)


@handler(ShipmentCreated)
def ship_stock(event: ShipmentCreated, envelope: Envelope) -> None:
    """The reserved units leave with the shipment."""
    services.stock_ship(order_id=event.order_id)


@handler(ReserveInventory)
def reserve_inventory(command: ReserveInventory, envelope: Envelope) -> None:
    """Reserve on the saga's request; answers every time it is asked."""
    services.stock_reserve_on_request(order_id=command.order_id, lines=command.lines)


@handler(ReleaseInventory)
def release_inventory(command: ReleaseInventory, envelope: Envelope) -> None:
    """Release on the saga's request (compensation); answers every time it is asked."""
    services.stock_release_on_request(order_id=command.order_id)
