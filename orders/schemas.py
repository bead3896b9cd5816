"""The JSON API's request and response shapes (also its OpenAPI document)."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictInt
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonDict
from pydantic_core import PydanticCustomError

from .destinations import country_problem, shippable_countries
from .events import Workflow

# Control characters (Unicode category Cc, e.g. NUL, tab, line breaks) belong
# in no name, address or SKU, and PostgreSQL cannot store NUL at all.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PRINTABLE = r"[^\x00-\x1F\x7F-\x9F]"
# What the OpenAPI document states: printable text, not only spaces
# (leading and trailing spaces are stripped).
TEXT_PATTERN = rf"^{_PRINTABLE}*[^\s\x00-\x1F\x7F-\x9F]{_PRINTABLE}*$"

COUNTRY_MESSAGE = "Enter a two-letter country code, e.g. FR."

# 12 to 19 digits, a single space or dash allowed between two of them.
CARD_NUMBER_PATTERN = r"^[0-9](?:[ -]?[0-9]){11,18}$"
CARD_NUMBER_MESSAGE = (
    "Enter a card number of 12 to 19 digits; a single space or dash may separate them."
)

MAX_LINES = 50
MAX_QUANTITY = 100

# A body that places an order against the demo catalog (inventory's
# seed_catalog: NB-006 is the product with the most stock), shown in /api/docs
# so that "Try it out" works as it stands; tests/orders/test_api.py sends it.
ITEM_EXAMPLE: JsonDict = {"sku": "NB-006", "quantity": 1}
ADDRESS_EXAMPLE: JsonDict = {
    "name": "Marie Curie",
    "line1": "36 Quai de Béthune",
    "city": "Paris",
    "postal_code": "75004",
    "country": "FR",
}
CARD_NUMBER_EXAMPLE = "4242 4242 4242 4242"
ORDER_EXAMPLE: JsonDict = {
    "email": "marie.curie@example.com",
    "items": [ITEM_EXAMPLE],
    "shipping_address": ADDRESS_EXAMPLE,
    "card_number": CARD_NUMBER_EXAMPLE,
}


def control_character_problem(value: str) -> str | None:
    """Which control character the text holds and where, in words; None when it holds none."""
    found = CONTROL_CHARACTER.search(value)
    if found is None:
        return None
    return (
        f"Remove the control character U+{ord(found.group()):04X} (character "
        f"{found.start() + 1}); only printable text is accepted."
    )


def _printable(value: str) -> str:
    problem = control_character_problem(value)
    if problem:
        raise PydanticCustomError("control_character", problem)
    return value


def _text_length(max_length: int) -> FieldInfo:
    return Field(min_length=1, max_length=max_length, json_schema_extra={"pattern": TEXT_PATTERN})


# One line of printable text, 1 to so many characters: what the model's column holds.
Text20 = Annotated[str, _text_length(20), AfterValidator(_printable)]
Text40 = Annotated[str, _text_length(40), AfterValidator(_printable)]
Text100 = Annotated[str, _text_length(100), AfterValidator(_printable)]
Text200 = Annotated[str, _text_length(200), AfterValidator(_printable)]


def _country(value: str) -> str:
    if len(value) != 2:
        raise PydanticCustomError("country", COUNTRY_MESSAGE)
    problem = country_problem(value)
    if problem:
        raise PydanticCustomError("country", problem)
    return value


def _served_countries(schema: dict) -> None:
    # Read when the document is made, so it lists what the settings say today.
    schema["enum"] = sorted(code for code, _ in shippable_countries())


def _card_number(value: str) -> str:
    if not re.fullmatch(CARD_NUMBER_PATTERN, value):
        raise PydanticCustomError("card_number", CARD_NUMBER_MESSAGE)
    return value


def _whole_number(value: object) -> object:
    """1.0 is the integer 1 in JSON (and JSON Schema); "1" and true stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _email(value: str) -> str:
    try:
        validate_email(value)
    except DjangoValidationError:
        raise PydanticCustomError("email", "Enter a valid email address.") from None
    return value


class StrictSchema(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressIn(StrictSchema):
    model_config = ConfigDict(json_schema_extra={"examples": [ADDRESS_EXAMPLE]})

    name: Text200
    line1: Text200
    city: Text100
    postal_code: Text20
    country: Annotated[
        str,
        Field(
            description="The ISO 3166-1 two-letter code, in capitals, of a country our carrier "
            "serves (those listed); another is refused before any charge.",
            json_schema_extra=_served_countries,
        ),
        AfterValidator(_country),
    ]


class ItemIn(StrictSchema):
    model_config = ConfigDict(json_schema_extra={"examples": [ITEM_EXAMPLE]})

    sku: Text40
    quantity: Annotated[StrictInt, BeforeValidator(_whole_number)] = Field(ge=1, le=MAX_QUANTITY)


class OrderIn(StrictSchema):
    model_config = ConfigDict(json_schema_extra={"examples": [ORDER_EXAMPLE]})

    email: Annotated[
        str, Field(max_length=254, json_schema_extra={"format": "email"}), AfterValidator(_email)
    ]
    items: list[ItemIn] = Field(min_length=1, max_length=MAX_LINES)
    shipping_address: AddressIn
    card_number: Annotated[
        str,
        Field(
            min_length=12,
            max_length=23,
            examples=[CARD_NUMBER_EXAMPLE],
            json_schema_extra={"pattern": CARD_NUMBER_PATTERN},
        ),
        AfterValidator(_card_number),
    ]
    workflow: Workflow | None = Field(
        None, description="How the order is run; the shop's default when left out"
    )


class ProductOut(Schema):
    sku: str
    name: str
    price: Decimal
    currency: str
    available: int


class OrderAccepted(Schema):
    id: str
    status: str
    status_url: str


class ProblemOut(Schema):
    """RFC 9457 problem details, the shape of every error the API answers."""

    type: str = Field(
        description='What kind of problem: "about:blank" when the status says it all, '
        "else one of /api/problems/... (the README lists them)",
        examples=["/api/problems/order-rejected"],
    )
    title: str = Field(description="The kind of problem in a few words, the same for each")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong this time, in words a person can act on")
    instance: str = Field(description="The path of the request that met the problem")
    errors: dict[str, list[str]] | None = Field(
        None,
        description='Each wrong field, by its path in the body ("items.0.quantity"), or the '
        "header or query parameter by its name, with what is wrong with it",
    )


# An Idempotency-Key: 1 to 255 visible ASCII characters (a UUID is a good one).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7E]{1,255}$"
IDEMPOTENCY_KEY_MESSAGE = (
    "Send an Idempotency-Key of 1 to 255 visible ASCII characters (no spaces), "
    "e.g. a UUID; this one is {problem}."
)


def idempotency_key_problem(value: str) -> str | None:
    """What is wrong with an Idempotency-Key header, in words; None when it is a good one."""
    if not value:
        return IDEMPOTENCY_KEY_MESSAGE.format(problem="empty")
    if len(value) > 255:
        return IDEMPOTENCY_KEY_MESSAGE.format(problem=f"{len(value)} characters long")
    if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, value):
        bad = next(c for c in value if not 0x21 <= ord(c) <= 0x7E)
        return IDEMPOTENCY_KEY_MESSAGE.format(problem=f"holding U+{ord(bad):04X}")
    return None


def _idempotency_key(value: str) -> str:
    if problem := idempotency_key_problem(value):
        raise PydanticCustomError("idempotency_key", problem)
    return value


IdempotencyKey = Annotated[
    str,
    Field(json_schema_extra={"minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY_PATTERN}),
    AfterValidator(_idempotency_key),
]


MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
# Far beyond any list here, and within what PostgreSQL's OFFSET takes (a bigint).
MAX_OFFSET = 1_000_000_000


class PageQuery(Schema):
    limit: int = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="How many to list, at most 100"
    )
    offset: int = Field(
        0, ge=0, le=MAX_OFFSET, description="How many to skip from the start of the list"
    )


class Page(Schema):
    count: int = Field(description="How many there are in all")
    limit: int
    offset: int
    next: str | None = Field(description="The URL of the next page; null on the last")
    previous: str | None = Field(description="The URL of the previous page; null on the first")


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
    # The step in the customer's words (orders.steps), as the order page shows it.
    title: str
    detail: str
    status: str = Field(description="The order's status after this step; empty if unchanged")
    tone: Literal["good", "bad", "neutral"]
    facts: dict[str, str]


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


class ProductPage(Page):
    results: list[ProductOut]


class OrderSummaryOut(Schema):
    id: str
    status: str
    workflow: str
    email: str
    total: Decimal
    currency: str
    created_at: datetime
    status_url: str


class OrderPage(Page):
    results: list[OrderSummaryOut]
