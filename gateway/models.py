from django.db import models


class CardToken(models.Model):
    """A card number exchanged for a token the shop can keep."""

    token = models.CharField(max_length=40, unique=True)
    card_number = models.CharField(max_length=19)
    last4 = models.CharField(max_length=4)
    # HMAC-SHA256 of the card number (client.card_fingerprint): one card, one fingerprint.
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.token} (…{self.last4})"


class Charge(models.Model):
    """One charge request, remembered by its idempotency key."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        DECLINED = "declined"
        TIMED_OUT = "timed_out"

    charge_id = models.CharField(max_length=40, unique=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    token = models.CharField(max_length=40)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices)
    decline_code = models.CharField(max_length=30, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    refunded = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.charge_id} {self.amount} {self.currency} {self.status}"


class Refund(models.Model):
    refund_id = models.CharField(max_length=40, unique=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    charge = models.ForeignKey(Charge, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.refund_id} {self.amount}"


class Outage(models.Model):
    """While an outage is on, the gateway's charging API refuses every connection.

    For drills and tests: start one in the admin, end it there too. Card
    tokenization is a separate service of the processor and stays up.
    """

    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    refused_calls = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"outage from {self.started_at:%Y-%m-%d %H:%M:%S}" + (
            f" to {self.ended_at:%H:%M:%S}" if self.ended_at else " (on)"
        )

    @property
    def is_on(self) -> bool:
        return self.ended_at is None
