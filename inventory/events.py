"""What inventory publishes."""

from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel

from messaging.messages import Event
from orders.events import Workflow


class ReservedLine(BaseModel):
    sku: str
    quantity: int


class ShortLine(BaseModel):
    sku: str
    requested: int
    available: int


class ProductUpdated(Event):
    """A product's catalog entry or availability changed (its whole current state)."""

    sku: str
    name: str
    price: Decimal
    currency: str
    available: int
    is_active: bool = True


class InventoryReserved(Event):
    order_id: UUID
    lines: list[ReservedLine]
    workflow: Workflow = Workflow.CHOREOGRAPHY


class InventoryReservationFailed(Event):
    order_id: UUID
    reason: str
    short: list[ShortLine] = []
    workflow: Workflow = Workflow.CHOREOGRAPHY


class InventoryReleased(Event):
    order_id: UUID
    lines: list[ReservedLine]
    workflow: Workflow = Workflow.CHOREOGRAPHY


class InventoryReleaseFailed(Event):
    """The reserved units already shipped: they cannot go back to the shelf."""

    order_id: UUID
    reason: str
    workflow: Workflow = Workflow.CHOREOGRAPHY
