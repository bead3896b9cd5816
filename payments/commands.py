"""What payments can be asked to do (by the order saga)."""

from decimal import Decimal
from uuid import UUID

from messaging.messages import Command


class ChargePayment(Command):
    """Replies PaymentProcessed or PaymentFailed (again, if asked again)."""

    order_id: UUID
    amount: Decimal
    currency: str
    card_token: str
    card_last4: str


class RefundPayment(Command):
    """Replies PaymentRefunded if money was captured, else PaymentVoided."""

    order_id: UUID
    reason_code: str
    reason: str
