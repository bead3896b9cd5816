"""What analytics publishes: the fraud screen's verdict on every order it reads in the log."""

from enum import StrEnum
from uuid import UUID

from messaging.messages import Event
from orders.events import Workflow


class Verdict(StrEnum):
    CLEARED = "cleared"
    SUSPECTED_FRAUD = "suspected_fraud"


class OrderScreened(Event):
    """The fraud screen read this order's OrderPlaced: it may be charged, or never.

    ``rule`` names the velocity rule that fired (empty when cleared) and
    ``reason`` says it with the numbers behind it, for the customer and staff.
    """

    order_id: UUID
    verdict: Verdict
    rule: str = ""
    reason: str = ""
    workflow: Workflow = Workflow.CHOREOGRAPHY
