"""What payments publishes."""

from decimal import Decimal
from uuid import UUID

from messaging.messages import Event
from orders.events import Workflow


class PaymentProcessed(Event):
    order_id: UUID
    payment_id: UUID
    amount: Decimal
    currency: str
    workflow: Workflow = Workflow.CHOREOGRAPHY


class PaymentFailed(Event):
    order_id: UUID
    # card_declined, insufficient_funds, gateway_error, or suspected_fraud (refused by the
    # fraud screen's verdict: the gateway was never asked)
    reason_code: str
    reason: str
    workflow: Workflow = Workflow.CHOREOGRAPHY


class PaymentRefunded(Event):
    order_id: UUID
    payment_id: UUID
    amount: Decimal
    currency: str
    # Why the money went back: out_of_stock, order_cancelled or staff
    reason_code: str = "staff"
    reason: str
    workflow: Workflow = Workflow.CHOREOGRAPHY


class PaymentVoided(Event):
    """Nothing was captured for the order, and a charge asked for later is refused."""

    order_id: UUID
    reason: str
    workflow: Workflow = Workflow.CHOREOGRAPHY
    # Why the payment was voided (e.g. order_cancelled); optional, so v1 stays readable.
    reason_code: str = ""


class PaymentDeferred(Event):
    """A charge or refund for the order is put off while the card gateway is unavailable.

    Published once, the first time a delivery of it is deferred: the order saga then
    waits (until the order's deadline) instead of timing the step out.
    """

    order_id: UUID
    reason: str
    workflow: Workflow = Workflow.CHOREOGRAPHY
