"""What orders publishes."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field

from messaging.messages import Event


class Workflow(StrEnum):
    """How an order runs: each app reacting to events, or the order saga sending commands.

    Every reply names it, so each app's handlers take only their own workflow's messages.
    """

    CHOREOGRAPHY = "choreography"
    ORCHESTRATION = "orchestration"

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(workflow.value, workflow.value.capitalize()) for workflow in cls]


class Address(BaseModel):
    name: str
    line1: str
    city: str
    postal_code: str
    country: str


class PlacedLine(BaseModel):
    sku: str
    name: str
    quantity: int = Field(gt=0)
    unit_price: Decimal


class OrderPlaced(Event):
    order_id: UUID
    email: str
    lines: list[PlacedLine]
    total: Decimal
    currency: str
    shipping_address: Address
    # A token from the card gateway; card numbers never enter the event log.
    card_token: str
    card_last4: str
    workflow: Workflow = Workflow.CHOREOGRAPHY
    # The gateway's fingerprint of the card (the same for every order paid with it), for
    # the fraud screen's velocity rules; optional, so v1 stays readable.
    card_fingerprint: str = ""
    # When the order must have ended (ORDER_DEADLINE_SECONDS after it was placed): the
    # apps start none of its steps after it. Optional, so v1 stays readable.
    deadline: datetime | None = None


class OrderCompleted(Event):
    order_id: UUID
    tracking_number: str = ""


class OrderCancelled(Event):
    order_id: UUID
    reason_code: str
    reason: str
