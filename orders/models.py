import uuid

from django.db import models


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

    class Workflow(models.TextChoices):
        CHOREOGRAPHY = "choreography"

    # Random, so an order's URL cannot be guessed or enumerated.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField()
    ship_name = models.CharField("name", max_length=200)
    ship_line1 = models.CharField("address", max_length=200)
    ship_city = models.CharField("city", max_length=100)
    ship_postal_code = models.CharField("postal code", max_length=20)
    ship_country = models.CharField("country", max_length=2)
    workflow = models.CharField(
        max_length=20, choices=Workflow.choices, default=Workflow.CHOREOGRAPHY
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PLACED, db_index=True
    )
    cancel_reason_code = models.CharField(max_length=30, blank=True)
    cancel_reason = models.CharField(max_length=300, blank=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    card_last4 = models.CharField(max_length=4)
    payment_status = models.CharField(max_length=10, default="pending")
    amount_charged = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    amount_refunded = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    carrier = models.CharField(max_length=40, blank=True)
    tracking_number = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Order {str(self.id)[:8]} ({self.status})"

    @property
    def is_closed(self) -> bool:
        return self.status in {self.Status.COMPLETED, self.Status.CANCELLED}


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
