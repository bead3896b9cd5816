"""How notifications reacts to the other apps' events."""

from messaging.consumers import handler
from messaging.messages import Envelope
from orders.events import OrderCancelled, OrderCompleted, OrderPlaced
from payments.events import PaymentRefunded

from . import services
from .models import SentEmail


@handler(OrderPlaced)
def confirm_order(event: OrderPlaced, envelope: Envelope) -> None:
    """Tell the customer we have their order."""
    services.recipient_record(order_id=event.order_id, email=event.email)
    lines = "\n".join(
        f"  {line.quantity} × {line.name} ({line.sku}) at {line.unit_price} {event.currency}"
        for line in event.lines
    )
    services.email_send(
        order_id=event.order_id,
        kind=SentEmail.Kind.PLACED,
        subject=f"We received your order {services.short_id(event.order_id)}",
        body=f"Thank you for your order.\n\n{lines}\n\nTotal: {event.total} {event.currency}\n",
    )


@handler(OrderCompleted)
def announce_completion(event: OrderCompleted, envelope: Envelope) -> None:
    """The parcel is on its way."""
    services.email_send(
        order_id=event.order_id,
        kind=SentEmail.Kind.COMPLETED,
        subject=f"Your order {services.short_id(event.order_id)} is on its way",
        body=f"Your order has shipped. Tracking number: {event.tracking_number}\n",
    )


@handler(OrderCancelled)
def announce_cancellation(event: OrderCancelled, envelope: Envelope) -> None:
    """Say the order was cancelled, and why."""
    services.email_send(
        order_id=event.order_id,
        kind=SentEmail.Kind.CANCELLED,
        subject=f"Your order {services.short_id(event.order_id)} was cancelled",
        body=f"We are sorry: your order was cancelled.\n\nReason: {event.reason}\n",
    )


@handler(PaymentRefunded)
def announce_refund(event: PaymentRefunded, envelope: Envelope) -> None:
    """Say the money is on its way back."""
    services.email_send(
        order_id=event.order_id,
        kind=SentEmail.Kind.REFUNDED,
        subject=f"Refund for order {services.short_id(event.order_id)}",
        body=(
            f"We refunded {event.amount} {event.currency} to your card.\n\nReason: {event.reason}\n"
        ),
    )
