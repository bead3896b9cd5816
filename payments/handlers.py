"""How payments reacts to the other apps' events."""

from inventory.events import InventoryReservationFailed
from messaging.consumers import handler
from messaging.messages import Envelope
from orders.events import OrderCancelled, OrderPlaced

from . import services


@handler(OrderPlaced)
def charge_for_order(event: OrderPlaced, envelope: Envelope) -> None:
    """Charge the card of a newly placed order."""
    services.payment_charge(
        order_id=event.order_id,
        amount=event.total,
        currency=event.currency,
        card_token=event.card_token,
        card_last4=event.card_last4,
    )


@handler(InventoryReservationFailed)
def refund_when_out_of_stock(event: InventoryReservationFailed, envelope: Envelope) -> None:
    """No stock for a paid order: the customer gets the money back."""
    services.payment_refund(
        order_id=event.order_id, reason_code="out_of_stock", reason=event.reason
    )


@handler(OrderCancelled)
def refund_when_cancelled(event: OrderCancelled, envelope: Envelope) -> None:
    """Money is never kept for a cancelled order (a no-op if nothing was captured)."""
    services.payment_refund(
        order_id=event.order_id, reason_code="order_cancelled", reason=event.reason
    )
