"""What shipping publishes."""

from uuid import UUID

from messaging.messages import Event


class ShipmentCreated(Event):
    order_id: UUID
    shipment_id: UUID
    carrier: str
    tracking_number: str
