from django.db import models


class Recipient(models.Model):
    """Whom to write to about an order, learnt from OrderPlaced."""

    order_id = models.UUIDField(unique=True)
    email = models.EmailField()

    def __str__(self) -> str:
        return f"{self.email} ({self.order_id})"


class SentEmail(models.Model):
    """Every email sent to a customer, one per order and moment."""

    class Kind(models.TextChoices):
        PLACED = "placed", "Order received"
        COMPLETED = "completed", "Order on its way"
        CANCELLED = "cancelled", "Order cancelled"
        REFUNDED = "refunded", "Payment refunded"

    order_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_id", "kind"], name="notifications_one_email_per_moment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.to}"
