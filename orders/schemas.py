"""The JSON API's request and response shapes (also its OpenAPI document)."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Schema
from pydantic import ConfigDict, Field, StrictInt, field_validator


class StrictSchema(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressIn(StrictSchema):
    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166 two-letter code")


class ItemIn(StrictSchema):
    sku: str = Field(min_length=1, max_length=40)
    quantity: StrictInt = Field(ge=1, le=100)


class OrderIn(StrictSchema):
    email: str = Field(max_length=254)
    items: list[ItemIn] = Field(min_length=1, max_length=50)
    shipping_address: AddressIn
    card_number: str = Field(min_length=12, max_length=23, examples=["4242424242424242"])
    workflow: Literal["choreography", "orchestration"] | None = Field(
        None, description="How the order is run; the shop's default when left out"
    )

    @field_validator("email")
    @classmethod
    def email_is_valid(cls, value: str) -> str:
        try:
            validate_email(value)
        except DjangoValidationError:
            raise ValueError("Enter a valid email address.") from None
        return value


class OrderAccepted(Schema):
    id: str
    status: str
    status_url: str


class ErrorOut(Schema):
    detail: str
    errors: dict[str, list[str]] = {}


class LineOut(Schema):
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class PaymentOut(Schema):
    status: str
    card_last4: str
    amount_charged: Decimal
    amount_refunded: Decimal


class ShipmentOut(Schema):
    carrier: str
    tracking_number: str


class TimelineEntryOut(Schema):
    kind: Literal["event", "command"]
    type: str
    version: int
    occurred_at: datetime
    message_id: str
    correlation_id: str
    causation_id: str | None


class OrderOut(Schema):
    id: str
    status: str
    status_display: str
    is_closed: bool
    cancel_reason: str
    workflow: str
    email: str
    total: Decimal
    currency: str
    created_at: datetime
    lines: list[LineOut]
    payment: PaymentOut
    shipment: ShipmentOut | None
    timeline: list[TimelineEntryOut]
