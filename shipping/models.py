import uuid

from django.db import models


class ShipmentRequest(models.Model):
    """Where a placed order goes and what it holds, kept until its stock is reserved."""

    order_id = models.UUIDField(unique=True)
    address = models.JSONField()
    lines = models.JSONField()
    # The order's deadline (from OrderPlaced): no parcel is made for it after then.
    deadline = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.order_id)


class Shipment(models.Model):
    class Status(models.TextChoices):
        CREATED = "created"
        # The carrier would not take it; kept so that asking again gets the same answer.
        REFUSED = "refused"
        # Cancelled before it was made (by the order saga, the order's cancellation
        # or its deadline passing): a later request is refused.
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CREATED)
    failure_reason = models.CharField(max_length=200, blank=True)
    carrier = models.CharField(max_length=40)
    tracking_number = models.CharField(max_length=40, unique=True, null=True, blank=True)
    address = models.JSONField()
    lines = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}"
