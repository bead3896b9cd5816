"""How payments reacts to the other apps' events, and the commands it takes."""

from decimal import Decimal

from analytics.events import OrderScreened
from inventory.events import InventoryReservationFailed
from messaging.consumers import handler
from messaging.messages import Envelope
from orders.events import OrderCancelled, OrderPlaced, Workflow
from shipping.events import ShipmentFailed

from . import services
from .commands import ChargePayment, RefundPayment


def choreographed(event) -> bool:
    return event.workflow == Workflow.CHOREOGRAPHY


def _charge(message: OrderPlaced | ChargePayment, *, amount: Decimal) -> services.Charge:
    return services.Charge(
        order_id=message.order_id,
        amount=amount,
        currency=message.currency,
        card_token=message.card_token,
        card_last4=message.card_last4,
    )


@handler(OrderPlaced, when=choreographed)
def charge_for_order(event: OrderPlaced, envelope: Envelope) -> None:
    """Charge the card of a newly placed order, once it may be (the saga sends ChargePayment
    instead)."""
    services.payment_charge(charge=_charge(event, amount=event.total))


@handler(OrderScreened)
def settle_screened_charge(event: OrderScreened, envelope: Envelope) -> None:
    """The fraud screen's verdict, under either workflow: a charge waiting for it is made, or
    refused as suspected fraud."""
    services.payment_screening_record(
        order_id=event.order_id, verdict=event.verdict, rule=event.rule, reason=event.reason
    )


@handler(InventoryReservationFailed, when=choreographed)
def refund_when_out_of_stock(event: InventoryReservationFailed, envelope: Envelope) -> None:
    """No stock for a paid order: the customer gets the money back."""
    services.payment_refund(
        order_id=event.order_id, reason_code="out_of_stock", reason=event.reason
    )


@handler(ShipmentFailed, when=choreographed)
def refund_when_unshippable(event: ShipmentFailed, envelope: Envelope) -> None:
    """The order cannot be shipped: the customer gets the money back."""
    services.payment_refund(
        order_id=event.order_id, reason_code="shipping_failed", reason=event.reason
    )


@handler(OrderCancelled)
def refund_when_cancelled(event: OrderCancelled, envelope: Envelope) -> None:
    """Money is never kept for a cancelled order, nor taken after it (the payment is voided)."""
    services.payment_refund_or_void(
        order_id=event.order_id, reason_code="order_cancelled", reason=event.reason
    )


@handler(ChargePayment)
def charge_payment(command: ChargePayment, envelope: Envelope) -> None:
    """Charge on the saga's request; answers every time it is asked."""
    services.payment_charge_on_request(charge=_charge(command, amount=command.amount))


@handler(RefundPayment)
def refund_payment(command: RefundPayment, envelope: Envelope) -> None:
    """Refund (or void, if nothing was captured) on the saga's request."""
    services.payment_refund_on_request(
        order_id=command.order_id, reason_code=command.reason_code, reason=command.reason
    )
