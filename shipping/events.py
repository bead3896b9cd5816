"""What shipping publishes."""

from uuid import UUID

from messaging.messages import Event


class ShipmentCreated(Event):
    order_id: UUID
    shipment_id: UUID
    carrier: str
    tracking_number: str
    # Added in place (optional): which workflow the order runs under.
    workflow: str = "choreography"


class ShipmentFailed(Event):
    order_id: UUID
    reason: str
    workflow: str = "choreography"
