"""inventory.services: the catalog, and stock reserved for paid orders all or nothing, shipped
once and released once; never a unit promised twice, never a count below zero."""

import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from inventory.events import ReservedLine
from inventory.models import OrderRequest, Product, Reservation
from inventory.services import (
    order_request_record,
    product_save,
    stock_release,
    stock_release_on_request,
    stock_reserve,
    stock_reserve_on_request,
    stock_ship,
)
from messaging.errors import RetryLater
from tests.inventory.factories import OrderRequestFactory, ProductFactory, ReservationFactory
from tests.support.envelopes import published, published_types

pytestmark = pytest.mark.django_db

TWO_MUGS = [{"sku": "MUG-1", "quantity": 2}]


def stock(product: Product) -> tuple[int, int, int]:
    """What a stock-keeper counts: on hand, reserved, shipped."""
    product.refresh_from_db()
    return (product.on_hand, product.reserved, product.shipped)


def availability() -> dict[str, int]:
    """The availability each ProductUpdated told the other apps, by SKU (the last one wins)."""
    return {row.payload["sku"]: row.payload["available"] for row in published("ProductUpdated")}


def requested(*lines: tuple[Product, int]) -> OrderRequest:
    """A placed order's lines, waiting for its payment."""
    return OrderRequestFactory(
        lines=[{"sku": product.sku, "quantity": quantity} for product, quantity in lines]
    )


def reply_types() -> list[str]:
    """What the order heard: every message but the catalog's own news."""
    return [kind for kind in published_types() if kind != "ProductUpdated"]


# --- product_save ---


def test_a_new_product_is_created_and_announced_in_its_own_conversation():
    # When staff add a product to the catalog
    product = product_save(sku="MUG-1", name="Mug", price=Decimal("12.50"), on_hand=5)

    # Then it is in stock, and the other apps hear of it (not as part of any order)
    assert stock(product) == (5, 0, 0)
    [updated] = published("ProductUpdated")
    assert updated.correlation_id == "product:MUG-1"
    assert updated.payload == {
        "sku": "MUG-1",
        "name": "Mug",
        "price": "12.50",
        "currency": "EUR",
        "available": 5,
        "is_active": True,
    }


def test_saving_a_product_without_a_count_changes_its_details_and_keeps_its_stock():
    # Given a product with units promised to an order
    product = ProductFactory(on_hand=10)
    ReservationFactory(holding=[(product, 3)])

    # When staff rename, reprice and withdraw it, saying nothing of its stock
    product_save(sku=product.sku, name="Big mug", price=Decimal("14.00"), is_active=False)

    # Then its stock is as it was, and the news says what is still available
    product.refresh_from_db()
    assert (product.name, product.price, product.is_active) == ("Big mug", Decimal("14"), False)
    assert stock(product) == (10, 3, 0)
    [updated] = published("ProductUpdated")
    assert (updated.payload["available"], updated.payload["is_active"]) == (7, False)


def test_a_count_below_what_is_reserved_is_refused_and_nothing_is_announced():
    # Given a product with 3 units promised
    product = ProductFactory(on_hand=10)
    ReservationFactory(holding=[(product, 3)])

    # When staff set its stock to 2
    with pytest.raises(ValidationError):
        product_save(sku=product.sku, name=product.name, price=product.price, on_hand=2)

    # Then the promised units are still there, and nobody heard otherwise
    assert stock(product) == (10, 3, 0)
    assert published_types() == []


def test_a_negative_price_for_a_product_is_refused_with_a_readable_error():
    # Given a product in the catalog
    product = ProductFactory()

    # When staff give it a negative price
    with pytest.raises(ValidationError, match="inventory_price_not_negative"):
        product_save(sku=product.sku, name=product.name, price=Decimal("-1.00"))

    # Then it keeps its price
    product.refresh_from_db()
    assert product.price == Decimal("10.00")
    assert published_types() == []


def test_a_new_product_with_a_negative_price_is_refused_with_a_readable_error():
    # When staff add a product with a negative price
    with pytest.raises(ValidationError):
        product_save(sku="NEG-1", name="Refund machine", price=Decimal("-1.00"), on_hand=1)

    # Then there is no such product
    assert not Product.objects.filter(sku="NEG-1").exists()


# --- order_request_record ---


def test_an_orders_lines_are_kept_and_the_first_copy_wins():
    # Given an order's lines kept once
    order_id = uuid.uuid4()
    order_request_record(order_id=order_id, lines=TWO_MUGS)

    # When another copy arrives, saying something else
    order_request_record(order_id=order_id, lines=[{"sku": "PEN-2", "quantity": 9}])

    # Then the first one stands
    assert OrderRequest.objects.get().lines == TWO_MUGS


# --- stock_reserve ---


def test_a_paid_orders_lines_are_reserved_and_the_order_hears_so():
    # Given a paid order for two products, whose lines arrived with OrderPlaced
    mug, pen = ProductFactory(sku="MUG-1", on_hand=5), ProductFactory(sku="PEN-2", on_hand=5)
    request = requested((pen, 1), (mug, 2))

    # When its stock is reserved
    reservation = stock_reserve(order_id=request.order_id)

    # Then each line holds its units, and the order and the catalog hear so
    assert reservation.status == Reservation.Status.RESERVED
    assert (stock(mug), stock(pen)) == ((5, 2, 0), (5, 1, 0))
    [reserved] = published("InventoryReserved")
    assert reserved.payload == {
        "order_id": str(request.order_id),
        "lines": [{"sku": "MUG-1", "quantity": 2}, {"sku": "PEN-2", "quantity": 1}],
        "workflow": "choreography",
    }
    assert availability() == {"MUG-1": 3, "PEN-2": 4}


def test_before_the_orders_lines_arrive_the_reservation_waits():
    # Given a paid order whose OrderPlaced has not reached inventory
    # When its stock is to be reserved
    with pytest.raises(RetryLater, match="have not arrived yet"), transaction.atomic():
        stock_reserve(order_id=uuid.uuid4())

    # Then nothing is reserved and nothing is said: the delivery comes again
    assert not Reservation.objects.exists()
    assert published_types() == []


def test_the_same_product_on_two_lines_is_reserved_as_one():
    # Given an order with the same product on two lines
    mug = ProductFactory(sku="MUG-1", on_hand=5)
    request = requested((mug, 1), (mug, 2))

    # When it is reserved
    stock_reserve(order_id=request.order_id)

    # Then three units are held, on one line
    assert stock(mug) == (5, 3, 0)
    [reserved] = published("InventoryReserved")
    assert reserved.payload["lines"] == [{"sku": "MUG-1", "quantity": 3}]


@pytest.mark.parametrize(
    ("make_pen", "available"),
    [
        pytest.param(lambda: ProductFactory.build(sku="PEN-2"), 0, id="unknown-sku"),
        pytest.param(lambda: ProductFactory(sku="PEN-2", is_active=False), 0, id="withdrawn"),
        pytest.param(lambda: ProductFactory(sku="PEN-2", on_hand=1), 1, id="too-few"),
    ],
)
def test_one_short_line_reserves_nothing_and_is_named(make_pen, available):
    # Given an order for a mug in stock and two pens that cannot be had
    mug, pen = ProductFactory(sku="MUG-1", on_hand=5), make_pen()
    request = requested((mug, 1), (pen, 2))

    # When its stock is to be reserved
    assert stock_reserve(order_id=request.order_id) is None

    # Then not even the mug is held, and the order hears which line was short
    assert not Reservation.objects.exists()
    assert stock(mug) == (5, 0, 0)
    [failed] = published("InventoryReservationFailed")
    assert failed.payload == {
        "order_id": str(request.order_id),
        "reason": f"Out of stock: PEN-2 (2 ordered, {available} available)",
        "short": [{"sku": "PEN-2", "requested": 2, "available": available}],
        "workflow": "choreography",
    }
    assert published_types() == ["InventoryReservationFailed"]


def test_the_last_units_go_to_one_order_and_stock_never_goes_below_zero():
    # Given two paid orders for the last three mugs
    mug = ProductFactory(sku="MUG-1", on_hand=3)
    first, second = requested((mug, 3)), requested((mug, 1))

    # When both are reserved
    stock_reserve(order_id=first.order_id)
    stock_reserve(order_id=second.order_id)

    # Then the first has them all and the second is refused: nothing is promised twice
    assert stock(mug) == (3, 3, 0)
    assert reply_types() == ["InventoryReserved", "InventoryReservationFailed"]
    assert published("InventoryReservationFailed")[0].payload["short"] == [
        {"sku": "MUG-1", "requested": 1, "available": 0}
    ]


@pytest.mark.parametrize("status", [Reservation.Status.RESERVED, Reservation.Status.RELEASED])
def test_reserving_an_order_again_changes_nothing_and_says_nothing(status):
    # Given an order reserved once, or reserved and released since
    mug = ProductFactory(on_hand=5)
    reservation = ReservationFactory(status=status, holding=[(mug, 2)])
    OrderRequestFactory(order_id=reservation.order_id, lines=[{"sku": mug.sku, "quantity": 2}])
    before = stock(mug)

    # When it is reserved (again)
    again = stock_reserve(order_id=reservation.order_id)

    # Then it is the same reservation, the stock is as it was, and nothing is published
    assert (again, again.status) == (reservation, status)
    assert stock(mug) == before
    assert published_types() == []


# --- stock_reserve_on_request ---


def test_on_request_the_stock_is_reserved_once_and_answered_every_time():
    # Given the saga asked to reserve an order's lines
    mug = ProductFactory(sku="MUG-1", on_hand=5)
    order_id, lines = uuid.uuid4(), [ReservedLine(sku="MUG-1", quantity=2)]
    first = stock_reserve_on_request(order_id=order_id, lines=lines)

    # When it asks again (its reply was late)
    again = stock_reserve_on_request(order_id=order_id, lines=lines)

    # Then two units are held once, and the saga gets the same answer twice
    assert again == first
    assert stock(mug) == (5, 2, 0)
    answers = published("InventoryReserved")
    assert [row.payload["lines"] for row in answers] == [TWO_MUGS] * 2
    assert {row.payload["workflow"] for row in answers} == {"orchestration"}


def test_on_request_a_short_order_is_refused_every_time_it_is_asked():
    # Given a product with one unit
    ProductFactory(sku="MUG-1", on_hand=1)
    order_id, lines = uuid.uuid4(), [ReservedLine(sku="MUG-1", quantity=2)]

    # When the saga asks twice for two
    for _ in range(2):
        assert stock_reserve_on_request(order_id=order_id, lines=lines) is None

    # Then it is refused twice, for the saga
    assert published_types() == ["InventoryReservationFailed"] * 2
    assert {row.payload["workflow"] for row in published()} == {"orchestration"}


def test_on_request_a_reservation_after_its_release_is_refused():
    # Given the saga released an order before its reservation came (a tombstone)
    mug = ProductFactory(on_hand=5)
    tombstone = ReservationFactory(status=Reservation.Status.RELEASED)

    # When the reservation comes
    lines = [ReservedLine(sku=mug.sku, quantity=1)]
    stock_reserve_on_request(order_id=tombstone.order_id, lines=lines)

    # Then nothing is held, and the saga hears the order was cancelled first
    assert stock(mug) == (5, 0, 0)
    [refused] = published()
    assert (refused.type, refused.payload["reason"], refused.payload["workflow"]) == (
        "InventoryReservationFailed",
        "The order was cancelled before its stock was reserved",
        "orchestration",
    )


# --- stock_ship ---


def test_shipping_takes_the_reserved_units_out_of_the_warehouse_once():
    # Given an order holding two mugs and a pen
    mug, pen = ProductFactory(on_hand=5), ProductFactory(on_hand=5)
    reservation = ReservationFactory(holding=[(mug, 2), (pen, 1)])

    # When its shipment leaves, and the news of it comes twice
    stock_ship(order_id=reservation.order_id)
    stock_ship(order_id=reservation.order_id)

    # Then the units left the shelf once, counted as shipped
    assert (stock(mug), stock(pen)) == ((3, 0, 2), (4, 0, 1))
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.SHIPPED
    assert published_types() == []


@pytest.mark.parametrize(
    "make_order_id",
    [
        pytest.param(uuid.uuid4, id="no-reservation"),
        pytest.param(
            lambda: ReservationFactory(status=Reservation.Status.RELEASED).order_id, id="released"
        ),
    ],
)
def test_shipping_an_order_with_nothing_reserved_moves_no_stock(make_order_id):
    # Given a product, and an order holding none of it
    mug = ProductFactory(on_hand=5)

    # When a shipment of that order is reported
    stock_ship(order_id=make_order_id())

    # Then the warehouse is as it was
    assert stock(mug) == (5, 0, 0)


# --- stock_release ---


@pytest.mark.parametrize(
    ("release", "answers", "workflow"),
    [
        pytest.param(stock_release, [TWO_MUGS], "choreography", id="choreography"),
        # The saga hears every time; the second time, that the order holds nothing.
        pytest.param(stock_release_on_request, [TWO_MUGS, []], "orchestration", id="on-request"),
    ],
)
def test_a_reserved_order_is_released_once_and_its_units_go_back_on_the_shelf(
    release, answers, workflow
):
    # Given an order holding two mugs
    mug = ProductFactory(sku="MUG-1", on_hand=5)
    reservation = ReservationFactory(holding=[(mug, 2)])

    # When it is released, and asked so twice
    release(order_id=reservation.order_id)
    release(order_id=reservation.order_id)

    # Then the mugs are back on the shelf once, and the catalog hears so
    assert stock(mug) == (5, 0, 0)
    reservation.refresh_from_db()
    assert reservation.status == Reservation.Status.RELEASED
    assert availability() == {"MUG-1": 5}
    # And the order hears it as its workflow wants
    released = published("InventoryReleased")
    assert [row.payload["lines"] for row in released] == answers
    assert {row.payload["workflow"] for row in released} == {workflow}
    assert {row.payload["order_id"] for row in released} == {str(reservation.order_id)}


def test_releasing_an_order_before_its_reservation_leaves_a_tombstone_that_refuses_it():
    # Given an order cancelled before its payment came through
    mug = ProductFactory(on_hand=5)
    request = requested((mug, 1))

    # When it is released, then its reservation comes late
    stock_release(order_id=request.order_id)
    late = stock_reserve(order_id=request.order_id)

    # Then nothing is ever held for it, and nothing is said
    assert late.status == Reservation.Status.RELEASED
    assert stock(mug) == (5, 0, 0)
    assert published_types() == []


def test_releasing_a_shipped_order_changes_nothing():
    # Given an order whose units have shipped
    mug = ProductFactory(on_hand=5)
    reservation = ReservationFactory(status=Reservation.Status.SHIPPED, holding=[(mug, 2)])

    # When it is released
    stock_release(order_id=reservation.order_id)

    # Then the units stay shipped
    assert stock(mug) == (3, 0, 2)
    assert Reservation.objects.get().status == Reservation.Status.SHIPPED
    assert published_types() == []


# --- stock_release_on_request ---


def test_on_request_releasing_an_order_never_reserved_leaves_a_tombstone_and_answers():
    # Given an order the saga gave up on before its reservation
    order_id = uuid.uuid4()

    # When it asks for the release
    stock_release_on_request(order_id=order_id)

    # Then a reservation that comes later is refused, and the saga hears the order holds nothing
    assert Reservation.objects.get(order_id=order_id).status == Reservation.Status.RELEASED
    [released] = published()
    assert (released.type, released.payload["lines"]) == ("InventoryReleased", [])


def test_on_request_a_shipped_order_cannot_be_released():
    # Given an order whose units have shipped
    mug = ProductFactory(on_hand=5)
    reservation = ReservationFactory(status=Reservation.Status.SHIPPED, holding=[(mug, 2)])

    # When the saga asks for its release
    stock_release_on_request(order_id=reservation.order_id)

    # Then the units stay shipped, and the saga hears why they cannot come back
    assert stock(mug) == (3, 0, 2)
    [failed] = published()
    assert failed.type == "InventoryReleaseFailed"
    assert failed.payload == {
        "order_id": str(reservation.order_id),
        "reason": "the reserved units have already shipped",
        "workflow": "orchestration",
    }
