import uuid

from django.db import models


class Payment(models.Model):
    """The money side of one order: captured once, refunded at most once."""

    class Status(models.TextChoices):
        # Only ever seen inside the charging transaction.
        PROCESSING = "processing"
        CAPTURED = "captured"
        FAILED = "failed"
        REFUNDED = "refunded"
        # Cancelled before any charge: a charge asked for later is refused.
        VOIDED = "voided"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    card_last4 = models.CharField(max_length=4)
    status = models.CharField(max_length=10, choices=Status.choices)
    failure_code = models.CharField(max_length=30, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    gateway_charge_id = models.CharField(max_length=40, blank=True)
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_refunded__lte=models.F("amount")),
                name="payments_refund_within_charge",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} for {self.order_id} ({self.status})"

    @property
    def was_captured(self) -> bool:
        return self.status in {self.Status.CAPTURED, self.Status.REFUNDED}


class Refund(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="refund")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    # Why the money went back: out_of_stock, order_cancelled, staff...
    reason_code = models.CharField(max_length=30, blank=True)
    reason = models.CharField(max_length=300)
    gateway_refund_id = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.amount} back for {self.payment.order_id}"
