"""What inventory publishes."""

from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel

from messaging.messages import Event


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
    # Added in place (optional): which workflow the order runs under.
    workflow: str = "choreography"


class InventoryReservationFailed(Event):
    order_id: UUID
    reason: str
    short: list[ShortLine] = []
    # Added in place (optional): which workflow the order runs under.
    workflow: str = "choreography"


class InventoryReleased(Event):
    order_id: UUID
    lines: list[ReservedLine]
    # Added in place (optional): which workflow the order runs under.
    workflow: str = "choreography"


class InventoryReleaseFailed(Event):
    """The reserved units already shipped: they cannot go back to the shelf."""

    order_id: UUID
    reason: str
    workflow: str = "choreography"
