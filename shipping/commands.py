"""What shipping can be asked to do (by the order saga)."""

from uuid import UUID

from pydantic import BaseModel

from messaging.messages import Command


class ShipmentLine(BaseModel):
    sku: str
    name: str
    quantity: int


class CreateShipment(Command):
    """Replies ShipmentCreated or ShipmentFailed (again, if asked again)."""

    order_id: UUID
    address: dict[str, str]
    lines: list[ShipmentLine]


class CancelShipment(Command):
    """Replies ShipmentCancelled, or ShipmentCancelFailed if it already left."""

    order_id: UUID
    reason: str
