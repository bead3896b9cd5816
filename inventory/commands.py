"""What inventory can be asked to do (by the order saga)."""

from uuid import UUID

from messaging.messages import Command

from .events import ReservedLine


class ReserveInventory(Command):
    """Replies InventoryReserved or InventoryReservationFailed (again, if asked again)."""

    order_id: UUID
    lines: list[ReservedLine]


class ReleaseInventory(Command):
    """Replies InventoryReleased; a reservation asked for later is refused."""

    order_id: UUID
    reason: str
