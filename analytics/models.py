"""Stream processing's tables: each processor's position, and the projections it keeps.

Every projection row carries a ``slot``: ``live`` is what the processor keeps
current, ``shadow`` what a replay rebuilds beside it (``replay_events``) to
compare and, with ``--swap``, to make live.
"""

from django.db import models


class Slot(models.TextChoices):
    LIVE = "live"
    SHADOW = "shadow"


def _slot_field():
    return models.CharField(max_length=6, choices=Slot.choices, default=Slot.LIVE)


class ProcessorState(models.Model):
    """Where a processor is in the log, committed with its projection's changes."""

    processor = models.CharField(max_length=50)
    slot = _slot_field()
    # The offset of the last entry taken into the projection; None: none yet.
    offset = models.BigIntegerField(null=True, blank=True)
    # A processor's own small state (its watermark, say), committed with the offset.
    state = models.JSONField(default=dict, blank=True)
    entries_processed = models.BigIntegerField(default=0)
    entries_skipped = models.BigIntegerField(default=0)
    duplicates_skipped = models.BigIntegerField(default=0)
    last_entry_occurred_at = models.DateTimeField(null=True, blank=True)
    # The log's last offset when last looked at, and the lag it gave.
    head_offset = models.BigIntegerField(null=True, blank=True)
    lag_entries = models.BigIntegerField(default=0)
    lag_seconds = models.FloatField(default=0.0)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # Written by a running processor every few seconds, busy or idle.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "stream processor"
        constraints = [
            models.UniqueConstraint(fields=["processor", "slot"], name="processor_state_once")
        ]

    def __str__(self) -> str:
        return f"{self.processor} ({self.slot}) at {self.offset}"


class SkippedEntry(models.Model):
    """A log entry a processor could not take, with why; it went on with the next."""

    processor = models.CharField(max_length=50)
    slot = _slot_field()
    offset = models.BigIntegerField()
    message_id = models.UUIDField(null=True, blank=True)
    message_type = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=30)
    error = models.TextField()
    raw = models.TextField(blank=True)
    skipped_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "skipped entries"
        ordering = ["-id"]
        indexes = [models.Index(fields=["processor", "slot", "offset"], name="skipped_position")]

    def __str__(self) -> str:
        return f"{self.processor} skipped {self.offset}: {self.reason}"


class SeenMessage(models.Model):
    """A message a processor has taken: a copy appended again (a relay resend) is skipped."""

    processor = models.CharField(max_length=50)
    slot = _slot_field()
    message_id = models.UUIDField()
    occurred_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["processor", "slot", "message_id"], name="seen_once_per_processor"
            )
        ]
        indexes = [models.Index(fields=["processor", "slot", "occurred_at"], name="seen_by_time")]

    def __str__(self) -> str:
        return f"{self.processor} saw {self.message_id}"


# --- Aggregates --------------------------------------------------------------


class MinuteFigure(models.Model):
    """One figure for one minute of event time: orders placed, money captured, …

    ``key`` splits a figure (a cancellation reason, a currency, a SKU, a
    duration bucket); rolling windows add minutes up when read.
    """

    slot = _slot_field()
    minute = models.DateTimeField()
    metric = models.CharField(max_length=40)
    key = models.CharField(max_length=100, blank=True)
    value = models.DecimalField(max_digits=20, decimal_places=2)

    class Meta:
        # Its admin page shows the figures, not the rows.
        verbose_name = verbose_name_plural = "live figures"
        constraints = [
            models.UniqueConstraint(
                fields=["slot", "minute", "metric", "key"], name="minute_figure_once"
            )
        ]
        indexes = [models.Index(fields=["slot", "metric", "minute"], name="figure_by_metric")]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.metric}[{self.key}] = {self.value}"


class OpenOrder(models.Model):
    """An order placed and not yet ended, as the aggregates need it at its end."""

    slot = _slot_field()
    order_id = models.UUIDField()
    placed_at = models.DateTimeField()
    # SKU -> units, counted as sold when the order completes.
    units = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["slot", "order_id"], name="open_order_once")]

    def __str__(self) -> str:
        return f"open order {self.order_id}"


# --- Fraud screening ---------------------------------------------------------


class KeyKind(models.TextChoices):
    CARD = "card", "Card fingerprint"
    EMAIL = "email", "Customer email"


class FraudObservation(models.Model):
    """An order, or a declined payment, seen for a card or an email at an event time."""

    class Kind(models.TextChoices):
        ORDER = "order"
        DECLINE = "decline"

    slot = _slot_field()
    key_kind = models.CharField(max_length=5, choices=KeyKind.choices)
    key = models.CharField(max_length=254)
    kind = models.CharField(max_length=7, choices=Kind.choices)
    order_id = models.UUIDField()
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["slot", "key_kind", "key", "kind", "occurred_at"], name="fraud_velocity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.key_kind} at {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class ScreenedOrder(models.Model):
    """Who placed an order (for its declines to be counted against them), and the verdict."""

    slot = _slot_field()
    order_id = models.UUIDField()
    email = models.CharField(max_length=254)
    card_fingerprint = models.CharField(max_length=128, blank=True)
    placed_at = models.DateTimeField()
    verdict = models.CharField(max_length=20)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["slot", "order_id"], name="screened_order_once")
        ]

    def __str__(self) -> str:
        return f"order {self.order_id}: {self.verdict}"


class FraudFlag(models.Model):
    """A velocity rule that fired for an order: which, for whom, and the numbers behind it."""

    slot = _slot_field()
    order_id = models.UUIDField()
    rule = models.CharField(max_length=30)
    key_kind = models.CharField(max_length=5, choices=KeyKind.choices)
    key = models.CharField(max_length=254)
    count = models.PositiveIntegerField()
    limit = models.PositiveIntegerField()
    window_seconds = models.PositiveIntegerField()
    reason = models.TextField()
    fired_at = models.DateTimeField()

    class Meta:
        ordering = ["-fired_at"]
        constraints = [models.UniqueConstraint(fields=["slot", "order_id"], name="fraud_flag_once")]

    def __str__(self) -> str:
        return self.reason


class FraudClearance(models.Model):
    """Staff cleared a card or an email: what it did before ``cleared_at`` no longer counts."""

    key_kind = models.CharField(max_length=5, choices=KeyKind.choices)
    key = models.CharField(max_length=254)
    cleared_at = models.DateTimeField()
    cleared_by = models.CharField(max_length=150)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-cleared_at"]
        indexes = [models.Index(fields=["key_kind", "key", "cleared_at"], name="clearance_key")]

    def __str__(self) -> str:
        return f"{self.get_key_kind_display()} cleared by {self.cleared_by}"
