"""The backbone's tables: the event log / outbox, the inbox, the dead letters, the relay's runs."""

from django.conf import settings
from django.db import models

from .messages import Envelope

# The envelope's fields, each a column of the outbox row of the same name.
ENVELOPE_FIELDS = tuple(Envelope.model_fields)


class OutboxMessage(models.Model):
    """Every message published, written in the producer's own transaction.

    It is the event log (ordered by ``id``, kept after delivery) and the
    outbox: ``dispatched_at`` stays empty until every subscriber's task was
    confirmed by the broker, and the relay re-sends what stays empty.
    """

    class Kind(models.TextChoices):
        EVENT = "event"
        COMMAND = "command"

    message_id = models.UUIDField(unique=True, editable=False)
    kind = models.CharField(max_length=7, choices=Kind.choices)
    type = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    occurred_at = models.DateTimeField(db_index=True)
    correlation_id = models.CharField(max_length=100)
    causation_id = models.UUIDField(null=True, blank=True)
    payload = models.JSONField()
    # The trace context of the span that recorded it, for the relay's sending
    # and every delivery to carry on the same trace (messaging.spans).
    # NULL, as in the envelope, is "none": and adding a nullable column is
    # only a change to the catalog, however long the table.
    traceparent = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    tracestate = models.TextField(null=True, blank=True)  # noqa: DJ001
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_attempts = models.PositiveIntegerField(default=0)
    last_dispatch_error = models.TextField(blank=True)

    class Meta:
        verbose_name = "event log / outbox entry"
        verbose_name_plural = "event log / outbox"
        ordering = ["-id"]
        # Every index costs each publish (insert) and each dispatch (the mark
        # is not a HOT update, since outbox_pending's condition reads
        # dispatched_at): only those a query uses. A conversation's messages
        # are read by correlation_id (equality; no LIKE 'prefix%', so no
        # varchar_pattern_ops copy), the admin's date hierarchy by occurred_at.
        indexes = [
            models.Index(fields=["correlation_id"], name="outbox_correlation"),
            models.Index(
                fields=["id"],
                condition=models.Q(dispatched_at__isnull=True),
                name="outbox_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} v{self.version} {self.message_id}"

    @property
    def is_dispatched(self) -> bool:
        return self.dispatched_at is not None

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> "OutboxMessage":
        """An unsaved row holding this envelope."""
        return cls(**{name: getattr(envelope, name) for name in ENVELOPE_FIELDS})

    def to_envelope(self) -> Envelope:
        return Envelope(**{name: getattr(self, name) for name in ENVELOPE_FIELDS})


class InboxRecord(models.Model):
    """A message one handler has taken effect for; written with the handler's effects."""

    message_id = models.UUIDField()
    handler = models.CharField(max_length=200)
    processed_at = models.DateTimeField()

    class Meta:
        verbose_name = "inbox record"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["message_id", "handler"], name="inbox_once_per_handler")
        ]
        # The deliveries of the last seconds, per handler (the staff dashboard's rate):
        # a time-ordered index, so each delivery's insert only appends to its right edge.
        indexes = [models.Index(fields=["processed_at"], name="inbox_processed_at")]

    def __str__(self) -> str:
        return f"{self.handler} ← {self.message_id}"


class DeadLetter(models.Model):
    """A message that can never succeed as it is, kept with why, for a person to act on."""

    class Reason(models.TextChoices):
        UNDECODABLE = "undecodable", "Body could not be decoded"
        REJECTED_CONTENT = "rejected_content", "Content type not accepted"
        UNKNOWN_TASK = "unknown_task", "No such handler"
        UNKNOWN_FORMAT = "unknown_format", "Not a task message"
        MALFORMED = "malformed", "Malformed envelope"
        UNKNOWN_MESSAGE = "unknown_message", "Unknown message type or version"
        INVALID_PAYLOAD = "invalid_payload", "Payload fails its schema"
        PERMANENT_ERROR = "permanent_error", "Handler failed permanently"
        RETRIES_EXHAUSTED = "retries_exhausted", "Handler failed after all retries"
        # No longer recorded (an unpublishable retry goes back to the broker);
        # kept for the letters recorded before.
        RETRY_FAILED = "retry_failed", "Retry could not be scheduled"
        OVERSIZED = "oversized", "Message larger than the limit"
        # Dead-lettered by RabbitMQ (a quorum queue's), drained from dead_letters.
        DELIVERY_LIMIT = "delivery_limit", "Delivered past the queue's delivery limit"
        BROKER = "broker", "Dead-lettered by the broker"

    message_id = models.UUIDField(null=True, blank=True, db_index=True)
    message_type = models.CharField(max_length=100, blank=True)
    handler = models.CharField(max_length=200, blank=True, db_index=True)
    queue = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=20, choices=Reason.choices, db_index=True)
    error = models.TextField()
    traceback = models.TextField(blank=True)
    # The envelope when the body could be read as one (what a redrive sends
    # again), else the raw body as text.
    envelope = models.JSONField(null=True, blank=True)
    body = models.TextField(blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField(db_index=True)
    redriven_at = models.DateTimeField(null=True, blank=True)
    redrive_count = models.PositiveIntegerField(default=0)
    # Its cause (messaging.fingerprints): the letters of one DeadLetterGroup.
    fingerprint = models.CharField(max_length=32, db_index=True, blank=True)
    # Given up on by staff: never redriven (the reason is in its audit record).
    discarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_failed_at"]
        permissions = [("edit_deadletter", "Can edit a dead letter's payload and dry-run it")]

    def __str__(self) -> str:
        return f"{self.get_reason_display()}: {self.message_type or '?'} → {self.handler or '?'}"

    @property
    def is_redrivable(self) -> bool:
        return bool(self.handler and self.queue and isinstance(self.envelope, dict))

    @property
    def is_pending(self) -> bool:
        """Neither redriven nor discarded: still waiting for a person."""
        return self.redriven_at is None and self.discarded_at is None


class DeadLetterGroup(models.Model):
    """The dead letters of one cause (their fingerprint), acted on together.

    A table of its own rather than a changelist aggregated on the fly: a
    group has a page, which shows its runs' progress and its sample, and the
    admin's changelist, filters and permissions work on it as on any model.
    Its counts and dates are still read from its letters (they cannot drift).
    """

    fingerprint = models.CharField(max_length=32, unique=True)
    handler = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=20, choices=DeadLetter.Reason.choices)
    exception_type = models.CharField(max_length=200, blank=True)
    # The error with its values replaced by placeholders (messaging.fingerprints).
    message = models.TextField(blank=True)
    # The innermost frame of our code, path:function.
    frame = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "dead letter group"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        cause = self.exception_type or self.get_reason_display()
        return f"{cause} in {self.handler or '?'}: {self.message[:80]}"

    def dead_letters(self) -> models.QuerySet[DeadLetter]:
        return DeadLetter.objects.filter(fingerprint=self.fingerprint)


class DeadLetterAction(models.TextChoices):
    EDIT = "edit"
    REDRIVE = "redrive"
    DISCARD = "discard"


class DeadLetterGroupRun(models.Model):
    """A redrive or discard of a whole group, done in batches by a task: its progress."""

    group = models.ForeignKey(DeadLetterGroup, on_delete=models.CASCADE, related_name="runs")
    action = models.CharField(max_length=10, choices=DeadLetterAction.choices)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField()
    # The group's pending letters when it was asked for; done and skipped so far.
    total = models.PositiveIntegerField()
    done = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why it stopped early, or what it skipped, in words.
    outcome = models.TextField(blank=True)

    class Meta:
        verbose_name = "dead letter group run"
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} of {self.total}: {self.done} done"

    @property
    def is_running(self) -> bool:
        return self.finished_at is None


class DeadLetterAudit(models.Model):
    """Who edited, redrove or discarded a dead letter, when, why, what it was before and after."""

    dead_letter = models.ForeignKey(
        DeadLetter, null=True, on_delete=models.SET_NULL, related_name="audits"
    )
    fingerprint = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=10, choices=DeadLetterAction.choices)
    # The user, and their name as it was (a user deleted later leaves it readable).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    at = models.DateTimeField(db_index=True)
    reason = models.TextField(blank=True)
    before = models.JSONField()
    after = models.JSONField()

    class Meta:
        verbose_name = "dead letter audit record"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.get_action_display().lower()} #{self.dead_letter_id}"


class RelayRun(models.Model):
    """When the outbox relay last ran, and who ran it: one row per relay, updated by every run.

    Readiness and the staff dashboard read it to tell a relay that runs from
    one nobody started. Every process can read it (a database row), and it
    says when the relay ran, not when someone asked it to (beat's own record
    of a periodic task is the sending, saved every few minutes).
    """

    # The outbox relay's row (the only relay there is).
    OUTBOX = "outbox"

    name = models.CharField(max_length=50, unique=True)
    ran_at = models.DateTimeField()
    # The worker's node name, or host and pid for a command, of the last run.
    runner = models.CharField(max_length=200)
    dispatched = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "relay run"

    def __str__(self) -> str:
        return f"{self.name} relay, last run {self.ran_at:%Y-%m-%d %H:%M:%S} by {self.runner}"
