import uuid

from django.db import models

from messaging.references import short_reference

from .events import Workflow


class CatalogItem(models.Model):
    """Orders' own copy of the catalog, kept up to date from inventory's ProductUpdated."""

    sku = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3)
    available = models.IntegerField()
    is_active = models.BooleanField(default=True)
    # When inventory stated this; an older statement arriving late is ignored.
    as_of = models.DateTimeField()

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed"
        PAID = "paid"
        RESERVED = "reserved"
        SHIPPED = "shipped"
        COMPLETED = "completed"
        CANCELLED = "cancelled"

    class PaymentStatus(models.TextChoices):
        PENDING = "pending"
        CAPTURED = "captured"
        FAILED = "failed"
        REFUNDED = "refunded"

    # Random, so an order's URL cannot be guessed or enumerated.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField()
    ship_name = models.CharField("name", max_length=200)
    ship_line1 = models.CharField("address", max_length=200)
    ship_city = models.CharField("city", max_length=100)
    ship_postal_code = models.CharField("postal code", max_length=20)
    ship_country = models.CharField("country", max_length=2)
    workflow = models.CharField(
        max_length=20, choices=Workflow.choices(), default=Workflow.CHOREOGRAPHY
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PLACED, db_index=True
    )
    cancel_reason_code = models.CharField(max_length=30, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    card_last4 = models.CharField(max_length=4)
    payment_status = models.CharField(
        max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    amount_charged = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    carrier = models.CharField(max_length=40, blank=True)
    tracking_number = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # When the order must have ended (placed + ORDER_DEADLINE_SECONDS): the
    # watchdog ends it then, and OrderPlaced tells the other apps, which
    # refuse its steps after it. Null only for orders placed before deadlines.
    deadline = models.DateTimeField(null=True, blank=True)
    # What a step reported it waits on (e.g. the card gateway is down), until the step is done.
    waiting_because = models.CharField(max_length=200, blank=True)
    # Set when the order cannot be brought to an end by itself: a person must look.
    attention_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The watchdog's sweep: open orders not parked, by deadline. Partial,
            # so that it holds only the few open orders among all the closed ones.
            models.Index(
                fields=["deadline"],
                name="orders_open_by_deadline",
                condition=models.Q(
                    status__in=["placed", "paid", "reserved", "shipped"], attention_reason=""
                ),
            ),
            # The parked ones, for the stuck-orders page (few, whatever their status).
            models.Index(
                fields=["created_at"],
                name="orders_needing_attention",
                condition=~models.Q(attention_reason=""),
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.reference} ({self.status})"

    @property
    def reference(self) -> str:
        """What the customer's emails and the admin's lists call this order ("1A2B3C4D")."""
        return short_reference(self.id)

    @property
    def is_closed(self) -> bool:
        return self.status in {self.Status.COMPLETED, self.Status.CANCELLED}

    @property
    def needs_attention(self) -> bool:
        return bool(self.attention_reason)


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku}"

    @property
    def line_total(self):
        return self.quantity * self.unit_price


class OrderSaga(models.Model):
    """The state of one order run by orchestration: which step, until when, what was undone."""

    class State(models.TextChoices):
        RUNNING = "running"
        COMPENSATING = "compensating"
        COMPLETED = "completed"
        CANCELLED = "cancelled"
        NEEDS_ATTENTION = "needs_attention", "Needs attention"

    class Step(models.TextChoices):
        CHARGE_PAYMENT = "charge_payment"
        RESERVE_INVENTORY = "reserve_inventory"
        CREATE_SHIPMENT = "create_shipment"
        CANCEL_SHIPMENT = "cancel_shipment"
        RELEASE_INVENTORY = "release_inventory"
        REFUND_PAYMENT = "refund_payment"
        DONE = "done"

    order = models.OneToOneField(
        Order, on_delete=models.CASCADE, primary_key=True, related_name="saga"
    )
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.RUNNING, db_index=True
    )
    step = models.CharField(max_length=20, choices=Step.choices, default=Step.CHARGE_PAYMENT)
    # How many times the current step's command was sent, and until when its reply is awaited.
    attempts = models.PositiveIntegerField(default=0)
    deadline = models.DateTimeField(null=True, blank=True, db_index=True)
    card_token = models.CharField(max_length=40)
    # Whether a reservation or a shipment was asked for, so compensation
    # must undo it.
    reserve_requested = models.BooleanField(default=False)
    ship_requested = models.BooleanField(default=False)
    failure_code = models.CharField(max_length=30, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Saga of {self.order_id} ({self.state}, {self.step})"

    @property
    def is_active(self) -> bool:
        return self.state in {self.State.RUNNING, self.State.COMPENSATING}


class SagaEntry(models.Model):
    """One line of a saga's history, with the message that caused it."""

    class Kind(models.TextChoices):
        SENT = "sent", "Command sent"
        RECEIVED = "received", "Reply received"
        TIMED_OUT = "timed_out", "Step timed out"
        WAITING = "waiting", "Waiting out an outage"
        COMPENSATING = "compensating", "Compensation started"
        LATE = "late", "Late or duplicate reply"
        ATTENTION = "attention", "Needs attention"
        STAFF = "staff", "Staff action"

    saga = models.ForeignKey(OrderSaga, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    step = models.CharField(max_length=20)
    message_type = models.CharField(max_length=100, blank=True)
    message_id = models.UUIDField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message_type or self.step}"


class PlacementKey(models.Model):
    """A key a client placed an order under, and the answer it got, to give again on a retry.

    An API client's ``Idempotency-Key`` or the storefront form's one-time token;
    kept for IDEMPOTENCY_KEY_RETENTION seconds, then purged by beat.
    """

    class Source(models.TextChoices):
        API = "api", "JSON API"
        STOREFRONT = "storefront", "Storefront form"

    source = models.CharField(max_length=10, choices=Source.choices)
    key = models.CharField(max_length=255)
    # An HMAC of the request's body, so that a retry is told from another request
    # under the same key without keeping the card number.
    fingerprint = models.CharField(max_length=64)
    # Empty only inside the transaction that claims the key and places the order.
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, null=True, related_name="placement_keys"
    )
    status_code = models.PositiveSmallIntegerField(default=0)
    body = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            # What makes two requests under one key place one order: the second's
            # INSERT waits on the first's and then fails.
            models.UniqueConstraint(fields=["source", "key"], name="placement_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} key {self.key}"
