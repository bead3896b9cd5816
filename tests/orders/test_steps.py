"""Each event as its customer reads it (orders/steps.py): the words, and the status it leads to."""

import pytest

from orders.steps import DESCRIBE, describe, reason_refunded, step_entry

ORDER = "6d1f0e0a-5c3e-4b61-9d0e-2f1a3b4c5d6e"


@pytest.mark.parametrize(
    ("message_type", "payload", "title", "status", "tone"),
    [
        ("OrderPlaced", {"lines": [{"quantity": 2}, {"quantity": 1}], "total": "37.80",
                         "currency": "EUR"}, "Order placed", "placed", "neutral"),
        ("PaymentProcessed", {"amount": "37.80", "currency": "EUR"}, "Payment received", "paid",
         "good"),
        ("InventoryReserved", {}, "In stock and set aside for you", "reserved", "good"),
        ("ShipmentCreated", {"carrier": "ParcelPost", "tracking_number": "PP1"},
         "Packed and handed to ParcelPost", "shipped", "good"),
        ("OrderCompleted", {"tracking_number": "PP1"}, "Order complete", "completed", "good"),
        ("OrderCancelled", {"reason_code": "card_declined", "reason": "Payment failed: declined"},
         "Cancelled: card declined, nothing was charged", "cancelled", "bad"),
        ("OrderCancelled", {"reason_code": "out_of_stock", "reason": "Out of stock: MUG"},
         "Cancelled: out of stock", "cancelled", "bad"),
        ("OrderCancelled", {"reason_code": "something_new", "reason": "A reason of its own"},
         "Cancelled: A reason of its own", "cancelled", "bad"),
        ("PaymentRefunded", {"amount": "37.80", "currency": "EUR", "reason": "Out of stock"},
         "Refunded 37.80 EUR", "", "neutral"),
        ("OrderScreened", {"verdict": "suspected_fraud"}, "Payment refused by our checks", "",
         "bad"),
        ("OrderScreened", {"verdict": "cleared"}, "Payment checks passed", "", "neutral"),
    ],
)  # fmt: skip
def test_a_step_reads_as_a_shop_would_say_it(message_type, payload, title, status, tone):
    step = describe(message_type, payload)
    assert (step.title, step.status, step.tone) == (title, status, tone)


def test_the_placed_step_counts_units_and_says_the_total():
    step = describe("OrderPlaced", {"lines": [{"quantity": 2}, {"quantity": 1}],
                                    "total": "37.80", "currency": "EUR"})  # fmt: skip
    assert step.detail == "3 items, 37.80 EUR"


def test_the_shipment_step_carries_the_parcel_for_the_page():
    step = describe("ShipmentCreated", {"carrier": "ParcelPost", "tracking_number": "PP1"})
    assert step.facts == {"carrier": "ParcelPost", "tracking_number": "PP1"}
    assert step.detail == "Tracking PP1"


def test_every_event_of_an_order_has_words_of_its_own():
    from messaging.messages import Event

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    order_events = {
        cls.__name__
        for cls in subclasses(Event)
        if "order_id" in cls.model_fields and cls.__module__.split(".")[0] != "tests"
    }
    assert order_events, "the order events were found"
    assert order_events <= set(DESCRIBE), f"no words for {sorted(order_events - set(DESCRIBE))}"


def test_an_event_it_does_not_know_still_shows_under_its_name():
    assert describe("SomethingNew", {}).title == "SomethingNew"


def test_a_step_entry_is_the_words_plus_the_events_identity():
    entry = step_entry(message_type="InventoryReserved", payload={}, message_id="m-1",
                       occurred_at="2026-12-01T10:00:00+00:00", order_id=ORDER)  # fmt: skip
    assert entry == {
        "type": "InventoryReserved", "message_id": "m-1",
        "occurred_at": "2026-12-01T10:00:00+00:00", "order_id": ORDER,
        "title": "In stock and set aside for you", "detail": "", "status": "reserved",
        "tone": "good", "facts": {},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "cancel_reason"),
    [
        (
            "Out of stock: PEN-005 (50 ordered, 10 available)",
            "Out of stock: PEN-005 (50 ordered, 10 available); the payment was refunded",
        ),
        ("Not enough MUG in stock.", "Not enough MUG in stock; the payment was refunded"),
        ("", "The payment was refunded"),
    ],
)
def test_a_refunded_order_says_why_and_that_the_money_went_back_in_one_sentence(
    reason, cancel_reason
):
    assert reason_refunded(reason) == cancel_reason
