import uuid

from django.db import models

from analytics.events import Verdict


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


class Screening(models.Model):
    """The fraud screen's verdict on one order, and the charge that waits for it.

    The charge request and the verdict come in either order, maybe at once in
    two worker processes: each is written with this row locked, so whichever
    comes second finds the other and settles the charge (made if cleared,
    refused if suspected), exactly once.
    """

    order_id = models.UUIDField(primary_key=True)
    # Empty until the verdict comes; the first verdict is kept.
    verdict = models.CharField(
        max_length=20, choices=[(v.value, v.value.replace("_", " ")) for v in Verdict], blank=True
    )
    rule = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    screened_at = models.DateTimeField(null=True, blank=True)
    # The charge asked for before the verdict, kept to be made (or refused) when it comes,
    # and the workflow its answer goes to.
    requested_at = models.DateTimeField(null=True, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    card_token = models.CharField(max_length=40, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    workflow = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"screening of {self.order_id} ({self.verdict or 'no verdict yet'})"

    @property
    def has_verdict(self) -> bool:
        return bool(self.verdict)

    @property
    def is_suspected(self) -> bool:
        return self.verdict == Verdict.SUSPECTED_FRAUD

    @property
    def is_charge_waiting(self) -> bool:
        """A charge was asked for and the verdict is not in yet."""
        return self.requested_at is not None and not self.has_verdict


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
