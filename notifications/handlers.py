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
    services.email_send(
        order_id=event.order_id,
        kind=SentEmail.Kind.PLACED,
        lines=event.lines,
        total=event.total,
        currency=event.currency,
    )


@handler(OrderCompleted)
def announce_completion(event: OrderCompleted, envelope: Envelope) -> None:
    """The parcel is on its way."""
    kind, tracking_number = SentEmail.Kind.COMPLETED, event.tracking_number
    services.email_send(order_id=event.order_id, kind=kind, tracking_number=tracking_number)


@handler(OrderCancelled)
def announce_cancellation(event: OrderCancelled, envelope: Envelope) -> None:
    """Say the order was cancelled, and why."""
    services.email_send(order_id=event.order_id, kind=SentEmail.Kind.CANCELLED, reason=event.reason)


@handler(PaymentRefunded)
def announce_refund(event: PaymentRefunded, envelope: Envelope) -> None:
    """Say the money is on its way back."""
    facts = {"amount": event.amount, "currency": event.currency, "reason": event.reason}
    services.email_send(order_id=event.order_id, kind=SentEmail.Kind.REFUNDED, **facts)
