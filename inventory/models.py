from django.conf import settings
from django.db import models


class Product(models.Model):
    """A product of the catalog with its stock.

    ``on_hand`` counts the units in the warehouse; ``reserved`` of them are
    promised to paid orders; ``shipped`` counts units that left.
    """

    sku = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    on_hand = models.PositiveIntegerField(default=0)
    reserved = models.PositiveIntegerField(default=0)
    shipped = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reserved__lte=models.F("on_hand")),
                name="inventory_reserved_within_on_hand",
            ),
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="inventory_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def currency(self) -> str:
        return settings.SHOP_CURRENCY


class OrderRequest(models.Model):
    """The lines of a placed order, kept until its payment says to reserve them."""

    order_id = models.UUIDField(unique=True)
    lines = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.order_id)


class Reservation(models.Model):
    class Status(models.TextChoices):
        RESERVED = "reserved"
        SHIPPED = "shipped"
        RELEASED = "released"

    order_id = models.UUIDField(unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RESERVED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.order_id} {self.status}"


class ReservationLine(models.Model):
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product.sku}"
