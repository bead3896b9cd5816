"""orders.saga: for each step and each reply, what the saga does next and what becomes of the order.

Each test gives a saga at a step (tests/orders/factories.py), hands it one
reply as orders' ``advance_saga`` handler would (through
``orders.services.order_saga_advance``), a passing deadline or a staff
action, then reads what a person would: the saga's row and history, the
command it sent (an outbox row), and the order.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.events import (
    InventoryReleased,
    InventoryReleaseFailed,
    InventoryReservationFailed,
    InventoryReserved,
)
from messaging.messages import Envelope
from orders import services
from orders.models import Order, OrderSaga, SagaEntry
from orders.saga import EXPECTED, saga_check_deadlines, saga_compensate, saga_retry_step
from payments.events import PaymentFailed, PaymentProcessed, PaymentRefunded, PaymentVoided
from shipping.events import (
    ShipmentCancelFailed,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentFailed,
)
from tests.orders.factories import OrderSagaFactory, reply
from tests.support.envelopes import envelope_of, published

pytestmark = pytest.mark.django_db

Step = OrderSaga.Step

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "London",
    "postal_code": "N1 7AA",
    "country": "GB",
}
# Which step each of the factory's traits leaves the saga at.
STEP_OF = {
    "charging": Step.CHARGE_PAYMENT,
    "reserving": Step.RESERVE_INVENTORY,
    "shipping": Step.CREATE_SHIPMENT,
    "cancelling_shipment": Step.CANCEL_SHIPMENT,
    "releasing": Step.RELEASE_INVENTORY,
    "refunding": Step.REFUND_PAYMENT,
}


def saga_at(*traits: str, **fields) -> OrderSaga:
    """A saga in the state the traits name, for an order of two mugs."""
    return OrderSagaFactory(
        **dict.fromkeys(traits, True), order__line__sku="MUG", order__line__name="Mug", **fields
    )


def handle(saga: OrderSaga, message_class, **fields) -> Envelope:
    """Hand the saga a reply as orders' advance_saga handler does; returns its envelope."""
    message = reply(message_class, order=saga.order, **fields)
    envelope = envelope_of(message, correlation_id=str(saga.order_id))
    services.order_saga_advance(order_id=saga.order_id, reply=message, envelope=envelope)
    return envelope


def position(saga: OrderSaga) -> tuple[str, str, int]:
    saga = OrderSaga.objects.get(pk=saga.pk)
    return (saga.state, saga.step, saga.attempts)


def history(saga: OrderSaga) -> list[tuple[str, str, str]]:
    """The saga's history: what happened, at which step, with which message."""
    return list(SagaEntry.objects.filter(saga=saga).values_list("kind", "step", "message_type"))


def notes(saga: OrderSaga, kind: str) -> list[str]:
    return list(SagaEntry.objects.filter(saga=saga, kind=kind).values_list("note", flat=True))


def commands_sent(saga: OrderSaga) -> list[tuple[str, dict]]:
    """The commands written to the outbox: each type, and its payload but for the order's id.

    Each must be about the saga's order and belong to the order's conversation.
    """
    rows = [row for row in published() if row.kind == "command"]
    order_id = str(saga.order_id)
    assert all(
        (row.correlation_id, row.payload["order_id"]) == (order_id, order_id) for row in rows
    )
    return [(row.type, {k: v for k, v in row.payload.items() if k != "order_id"}) for row in rows]


def order_of(saga: OrderSaga, *fields: str) -> dict:
    return Order.objects.values(*fields).get(pk=saga.order_id)


# --- The decision table: each step, each reply ------------------------------------------

MOVES_ON = [
    pytest.param(
        "charging", PaymentProcessed, {},
        ("running", "reserve_inventory"),
        ("ReserveInventory", {"lines": [{"sku": "MUG", "quantity": 2}]}),
        id="charge_payment + PaymentProcessed: reserve",
    ),
    pytest.param(
        "reserving", InventoryReserved, {},
        ("running", "create_shipment"),
        ("CreateShipment",
         {"address": ADDRESS, "lines": [{"sku": "MUG", "name": "Mug", "quantity": 2}]}),
        id="reserve_inventory + InventoryReserved: ship",
    ),
    pytest.param(
        "reserving", InventoryReservationFailed, {"reason": "Not enough MUG in stock."},
        ("compensating", "refund_payment"),
        ("RefundPayment", {"reason_code": "out_of_stock", "reason": "Not enough MUG in stock."}),
        id="reserve_inventory + InventoryReservationFailed: refund, nothing to release",
    ),
    pytest.param(
        "shipping", ShipmentFailed,
        {"reason": "We do not ship to AQ."},
        ("compensating", "release_inventory"),
        ("ReleaseInventory", {"reason": "We do not ship to AQ."}),
        id="create_shipment + ShipmentFailed: release, nothing to cancel",
    ),
    pytest.param(
        "cancelling_shipment", ShipmentCancelled, {},
        ("compensating", "release_inventory"),
        ("ReleaseInventory", {"reason": "No reply to Create Shipment in time"}),
        id="cancel_shipment + ShipmentCancelled: release",
    ),
    pytest.param(
        "releasing", InventoryReleased, {},
        ("compensating", "refund_payment"),
        ("RefundPayment", {"reason_code": "shipping_failed", "reason": "We do not ship to AQ."}),
        id="release_inventory + InventoryReleased: refund",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("given", "message_class", "fields", "then", "command"), MOVES_ON)
def test_a_reply_moves_the_saga_to_its_next_step_and_sends_that_step_s_command(
    given, message_class, fields, then, command
):
    # Given a saga waiting at a step, its command sent twice
    saga = saga_at(given, attempts=2)
    order_before = order_of(saga, "status", "cancel_reason")

    # When the reply comes
    envelope = handle(saga, message_class, **fields)

    # Then the saga is at the next step, its first attempt, waiting until a deadline
    assert position(saga) == (*then, 1)
    assert OrderSaga.objects.get(pk=saga.pk).deadline > timezone.now()
    # And it sent that step's command, in the order's conversation
    assert commands_sent(saga) == [command]
    # And its history says what came, whether it compensates now, and what it sent
    compensating = [("compensating", STEP_OF[given], "")] if then[0] != saga.state else []
    assert history(saga) == [
        ("received", STEP_OF[given], message_class.__name__),
        *compensating,
        ("sent", then[1], command[0]),
    ]
    assert SagaEntry.objects.filter(kind="received").get().message_id == envelope.message_id
    # And the order is left to the other services' news
    assert order_of(saga, "status", "cancel_reason") == order_before


ENDS = [
    pytest.param(
        "charging", "cancelled", "OrderCancelled",
        PaymentFailed,
        {"reason_code": "card_declined", "reason": "Your card was declined."},
        {"status": "cancelled", "cancel_reason_code": "card_declined",
         "cancel_reason": "Payment failed: Your card was declined."},
        id="charge_payment + PaymentFailed: cancelled, nothing to undo",
    ),
    pytest.param(
        "shipping", "completed", "OrderCompleted",
        ShipmentCreated, {"carrier": "DHL", "tracking_number": "JD01"},
        {"status": "completed", "carrier": "DHL", "tracking_number": "JD01"},
        id="create_shipment + ShipmentCreated: completed",
    ),
    pytest.param(
        "cancelling_shipment", "completed", "OrderCompleted",
        ShipmentCancelFailed,
        {"reason": "It already left", "carrier": "DHL", "tracking_number": "JD01"},
        {"status": "completed", "carrier": "DHL", "tracking_number": "JD01",
         "cancel_reason": ""},
        id="cancel_shipment + ShipmentCancelFailed: completed after all (forward recovery)",
    ),
    *[
        pytest.param(
            "refunding", "cancelled", "OrderCancelled",
            message_class, {},
            {"status": "cancelled", "cancel_reason_code": "out_of_stock",
             "cancel_reason": reason},
            id=f"refund_payment + {message_class.__name__}: cancelled, {how}",
        )
        for message_class, reason, how in [
            (PaymentRefunded, "Not enough SKU-0001 in stock; the payment was refunded", "refunded"),
            (PaymentVoided, "Not enough SKU-0001 in stock.", "nothing was charged"),
        ]
    ],
]  # fmt: skip


@pytest.mark.parametrize(("given", "state", "event", "message_class", "fields", "order"), ENDS)
def test_a_reply_that_ends_the_saga_ends_the_order_the_same_way(
    given, state, event, message_class, fields, order
):
    # Given a saga waiting at a step
    saga = saga_at(given)

    # When the reply that ends it comes
    handle(saga, message_class, **fields)

    # Then the saga is done, waiting for nothing, and sends nothing more
    saga = OrderSaga.objects.get(pk=saga.pk)
    assert (saga.state, saga.step, saga.deadline) == (state, "done", None)
    assert commands_sent(saga) == []
    assert history(saga)[0] == ("received", STEP_OF[given], message_class.__name__)
    # And the order ended as the saga did, and everyone is told
    assert order_of(saga, *order) == order
    assert [row.type for row in published()] == [event]


def test_a_shipment_that_left_before_its_cancel_completes_the_order_saying_why():
    # Given a saga cancelling a shipment whose reply was late
    saga = saga_at("cancelling_shipment")

    # When shipping says the parcel already left
    handle(saga, ShipmentCancelFailed, reason="It already left", tracking_number="JD01")

    # Then the saga went forward instead of undoing: no failure is left on it, and its
    # history says why
    assert OrderSaga.objects.get(pk=saga.pk).failure_code == ""
    assert notes(saga, "compensating") == ["It already left: completing the order instead"]


PARKS = [
    pytest.param(
        "releasing", InventoryReleaseFailed, {"reason": "The units already shipped."},
        "cannot release inventory: The units already shipped.",
        id="release_inventory + InventoryReleaseFailed: needs attention",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("given", "message_class", "fields", "note"), PARKS)
def test_a_compensation_that_cannot_be_done_parks_the_saga_for_a_person(
    given, message_class, fields, note
):
    # Given a saga undoing a step
    saga = saga_at(given)

    # When the app says it cannot undo it
    handle(saga, message_class, **fields)

    # Then the saga stops and waits for a person, saying why; the order stays open
    saga = OrderSaga.objects.get(pk=saga.pk)
    assert (saga.state, saga.step, saga.deadline) == ("needs_attention", STEP_OF[given], None)
    assert history(saga) == [
        ("received", STEP_OF[given], message_class.__name__),
        ("attention", STEP_OF[given], ""),
    ]
    assert notes(saga, "attention") == [note]
    assert published() == []
    assert order_of(saga, "status")["status"] == "reserved"


def test_the_table_covers_every_reply_the_saga_expects():
    # Given the saga's decision table (step -> reply -> reaction)
    expected = {
        (step, message_class) for step, table in EXPECTED.items() for message_class in table
    }

    # Then every entry of it has a case above
    covered = {(STEP_OF[case.values[0]], case.values[1]) for case in MOVES_ON + PARKS} | {
        (STEP_OF[case.values[0]], case.values[3]) for case in ENDS
    }
    assert covered == expected


# --- Late and duplicate replies -------------------------------------------------------------


@pytest.mark.parametrize(
    ("message_class", "then", "command"),
    [
        (PaymentProcessed, "refund_payment",
         ("RefundPayment",
          {"reason_code": "out_of_stock", "reason": "Not enough SKU-0001 in stock."})),
        (InventoryReserved, "release_inventory",
         ("ReleaseInventory", {"reason": "Not enough SKU-0001 in stock."})),
    ],
    ids=["charged after cancelling: refund", "reserved after cancelling: release"],
)  # fmt: skip
def test_an_effect_that_comes_after_the_saga_cancelled_is_undone(message_class, then, command):
    # Given a saga that cancelled its order
    saga = saga_at("cancelled")

    # When money is captured, or stock reserved, for it after all
    handle(saga, message_class)

    # Then the saga compensates again, tracked like any other step
    assert position(saga) == ("compensating", then, 1)
    assert OrderSaga.objects.get(pk=saga.pk).deadline is not None
    assert commands_sent(saga) == [command]
    assert history(saga) == [("late", "done", message_class.__name__), ("sent", then, command[0])]
    # And the order stays cancelled for its first reason
    assert order_of(saga, "status", "cancel_reason_code") == {
        "status": "cancelled",
        "cancel_reason_code": "out_of_stock",
    }


def test_a_late_charge_refunded_leaves_the_saga_cancelled_and_the_order_told_once():
    # Given a saga that cancelled its order, then heard of a late charge
    saga = saga_at("cancelled")
    handle(saga, PaymentProcessed)

    # When the refund it asked for is done
    handle(saga, PaymentRefunded)

    # Then the saga is cancelled again, and the order's cancellation is not published twice
    assert position(saga)[:2] == ("cancelled", "done")
    assert order_of(saga, "cancel_reason") == {
        "cancel_reason": "Not enough SKU-0001 in stock; the payment was refunded"
    }
    assert [row.type for row in published()] == ["RefundPayment"]


@pytest.mark.parametrize(
    ("given", "message_class"),
    [
        ("reserving", PaymentProcessed),
        ("shipping", InventoryReserved),
        ("refunding", InventoryReleased),
        ("completed", PaymentProcessed),
        ("completed", InventoryReserved),
        ("cancelled", PaymentFailed),
        ("cancelled", PaymentRefunded),
        ("charging", ShipmentCancelled),
    ],
    ids=[
        "the charge's reply again, while reserving",
        "the reservation's reply again, while shipping",
        "the release's reply again, while refunding",
        "the charge's reply again, after completing",
        "the reservation's reply again, after completing",
        "the failed charge's reply again, after cancelling",
        "the refund's reply again, after cancelling",
        "a reply to nothing it asked",
    ],
)
def test_a_duplicate_or_stray_reply_is_ignored(given, message_class):
    # Given a saga at some point
    saga = saga_at(given)
    before = (position(saga), order_of(saga, "status", "cancel_reason"))

    # When a reply it no longer waits for comes
    handle(saga, message_class)

    # Then the saga, the order and the outbox are as they were, the history says why
    assert (position(saga), order_of(saga, "status", "cancel_reason")) == before
    assert history(saga) == [("late", saga.step, message_class.__name__)]
    assert notes(saga, "late") == ["already handled or undone next: ignored"]
    assert published() == []


@pytest.mark.parametrize(
    ("given", "completing"),
    [("shipping", ShipmentCreated), ("cancelling_shipment", ShipmentCancelFailed)],
    ids=["ShipmentCreated delivered twice", "ShipmentCreated after ShipmentCancelFailed"],
)
def test_a_shipment_reply_after_the_saga_completed_leaves_it_completed(given, completing):
    # Given a saga completed by the shipment's reply, or by its cancel failing
    saga = saga_at(given)
    handle(saga, completing, tracking_number="JD01")

    # When (another copy of) the shipment's reply comes
    handle(saga, ShipmentCreated, tracking_number="JD01")

    # Then the saga stays completed, asking no person for anything, and sends nothing
    assert position(saga)[:2] == ("completed", "done")
    assert notes(saga, "attention") == []
    assert commands_sent(saga) == []
    assert order_of(saga, "status") == {"status": "completed"}


def test_a_shipment_created_while_its_cancel_is_pending_waits_for_the_cancel_s_reply():
    # Given a saga cancelling a shipment
    saga = saga_at("cancelling_shipment")

    # When the shipment's own (late) reply comes
    handle(saga, ShipmentCreated, tracking_number="JD01")

    # Then the saga keeps waiting for the cancel's reply, which will decide
    assert position(saga) == ("compensating", "cancel_shipment", 1)
    assert notes(saga, "late") == ["the cancel's reply will decide"]
    assert published() == []


def test_a_shipment_created_for_a_cancelled_order_parks_the_saga_for_a_person():
    # Given a saga that cancelled its order
    saga = saga_at("cancelled")

    # When a shipment is reported created for it
    envelope = handle(saga, ShipmentCreated, tracking_number="JD01")

    # Then the saga waits for a person, saying which shipment; the order stays cancelled
    assert position(saga)[:2] == ("needs_attention", "done")
    assert notes(saga, "attention") == ["shipment JD01 was created for a cancelled order"]
    assert SagaEntry.objects.get(kind="attention").message_id == envelope.message_id
    assert order_of(saga, "status") == {"status": "cancelled"}
    assert published() == []


def test_the_reply_a_parked_compensation_waited_for_resumes_it():
    # Given a saga parked after its release got no reply in time
    saga = saga_at("releasing", "parked", attempts=3)

    # When the release's reply comes after all
    handle(saga, InventoryReleased)

    # Then the compensation goes on, to the refund
    assert position(saga) == ("compensating", "refund_payment", 1)
    assert [command for command, _ in commands_sent(saga)] == ["RefundPayment"]


def test_a_reply_about_an_order_without_a_saga_is_ignored():
    # Given an orchestrated order whose saga is gone
    saga = saga_at("charging")
    order = saga.order
    saga.delete()

    # When a reply about it comes
    message = reply(PaymentProcessed, order=order)
    ended = services.order_saga_advance(
        order_id=order.id, reply=message, envelope=envelope_of(message)
    )

    # Then nothing is written
    assert ended is None
    assert published() == []
    assert not SagaEntry.objects.exists()


# --- Deadlines ---------------------------------------------------------------------------------


@pytest.fixture
def attempts(settings) -> int:
    settings.SAGA_STEP_ATTEMPTS = 3
    return 3


def after_the_deadline(settings) -> int:
    """Run the deadline check as beat would, once every step's deadline has passed."""
    later = timezone.now() + timedelta(seconds=settings.SAGA_STEP_TIMEOUT + 1)
    return saga_check_deadlines(now=later)


@pytest.mark.parametrize(
    ("given", "command"),
    [("charging", "ChargePayment"), ("refunding", "RefundPayment")],
    ids=["a step", "a compensation"],
)
def test_a_step_without_reply_is_sent_again(settings, attempts, given, command):
    # Given a saga whose step was sent once
    saga = saga_at(given)
    deadline = saga.deadline

    # When its deadline passes
    overdue = after_the_deadline(settings)

    # Then the same command goes again, with a new deadline
    assert overdue == 1
    assert position(saga) == (saga.state, STEP_OF[given], 2)
    assert OrderSaga.objects.get(pk=saga.pk).deadline > deadline
    assert [sent for sent, _ in commands_sent(saga)] == [command]
    assert history(saga) == [("timed_out", STEP_OF[given], ""), ("sent", STEP_OF[given], command)]
    assert notes(saga, "timed_out") == ["no reply after attempt 1"]


@pytest.mark.parametrize(
    ("given", "then", "command"),
    [
        ("charging", "refund_payment",
         ("RefundPayment",
          {"reason_code": "timeout", "reason": "No reply to Charge Payment in time"})),
        ("reserving", "release_inventory",
         ("ReleaseInventory", {"reason": "No reply to Reserve Inventory in time"})),
        ("shipping", "cancel_shipment",
         ("CancelShipment", {"reason": "No reply to Create Shipment in time"})),
    ],
    ids=["charge_payment", "reserve_inventory", "create_shipment"],
)  # fmt: skip
def test_a_step_without_reply_after_its_last_attempt_is_compensated(
    settings, attempts, given, then, command
):
    # Given a saga whose step was sent as often as it may be
    saga = saga_at(given, attempts=attempts)

    # When its deadline passes once more
    after_the_deadline(settings)

    # Then it undoes what it asked for, newest first, saying it timed out
    assert position(saga) == ("compensating", then, 1)
    assert OrderSaga.objects.get(pk=saga.pk).failure_code == "timeout"
    assert commands_sent(saga) == [command]
    assert history(saga) == [
        ("timed_out", STEP_OF[given], ""),
        ("compensating", STEP_OF[given], ""),
        ("sent", then, command[0]),
    ]


def test_a_step_is_sent_as_often_as_saga_step_attempts_says_then_compensated(settings):
    # Given a shop that sends a step twice at most, and a charge sent once, unanswered
    settings.SAGA_STEP_ATTEMPTS = 2
    saga = saga_at("charging")

    # When its deadline passes, and passes again
    after_the_deadline(settings)
    after_the_deadline(settings)

    # Then the charge went a second time, then the saga undid it
    assert [sent for sent, _ in commands_sent(saga)] == ["ChargePayment", "RefundPayment"]
    assert [kind for kind, _, _ in history(saga)] == [
        "timed_out", "sent", "timed_out", "compensating", "sent",
    ]  # fmt: skip
    assert position(saga) == ("compensating", "refund_payment", 1)


@pytest.mark.parametrize("given", ["cancelling_shipment", "releasing", "refunding"])
def test_a_compensation_without_reply_after_its_last_attempt_parks_the_saga(
    settings, attempts, given
):
    # Given a saga whose compensation was sent as often as it may be
    saga = saga_at(given, attempts=attempts)

    # When its deadline passes once more
    after_the_deadline(settings)

    # Then it waits for a person, and nobody waits for a deadline any more
    saga = OrderSaga.objects.get(pk=saga.pk)
    assert (saga.state, saga.step, saga.deadline) == ("needs_attention", STEP_OF[given], None)
    assert notes(saga, "attention") == [f"compensation {STEP_OF[given]} got no reply"]
    assert published() == []
    assert after_the_deadline(settings) == 0


def test_only_an_active_saga_past_its_deadline_is_acted_on(settings):
    # Given a saga still within its deadline, one completed and one parked
    waiting = saga_at("charging")
    saga_at("completed")
    saga_at("releasing", "parked")

    # When the deadlines are checked before the waiting one's passes
    overdue = saga_check_deadlines(now=waiting.deadline - timedelta(seconds=1))

    # Then nothing is done to any of them
    assert overdue == 0
    assert not SagaEntry.objects.exists()
    assert published() == []


# --- Staff actions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "state", "command"),
    [
        (("releasing", "parked"), "compensating", "ReleaseInventory"),
        (("charging",), "running", "ChargePayment"),
    ],
    ids=["a parked compensation resumes", "a running step"],
)
def test_staff_retrying_a_step_sends_its_command_again_as_a_first_attempt(given, state, command):
    # Given a saga at a step, tried three times
    saga = saga_at(*given, attempts=3)
    step = STEP_OF[given[0]]

    # When staff retry it
    retried = saga_retry_step(order_id=saga.order_id, by="admin")

    # Then its command goes again, with a deadline, and the history says who asked
    assert retried is True
    assert position(saga) == (state, step, 1)
    assert OrderSaga.objects.get(pk=saga.pk).deadline is not None
    assert [sent for sent, _ in commands_sent(saga)] == [command]
    assert history(saga) == [("staff", step, ""), ("sent", step, command)]
    assert notes(saga, "staff") == [f"admin retried {step}"]


@pytest.mark.parametrize(
    ("given", "then", "command"),
    [
        ("charging", "refund_payment", "RefundPayment"),
        ("reserving", "release_inventory", "ReleaseInventory"),
        ("shipping", "cancel_shipment", "CancelShipment"),
    ],
)
def test_staff_compensating_a_running_saga_undoes_it_newest_first(given, then, command):
    # Given a saga running a step
    saga = saga_at(given)

    # When staff give up on it
    compensated = saga_compensate(order_id=saga.order_id, by="admin")

    # Then it undoes what it asked for, saying staff cancelled it
    assert compensated is True
    saga = OrderSaga.objects.get(pk=saga.pk)
    assert (saga.state, saga.step, saga.failure_code, saga.failure_reason) == (
        "compensating", then, "staff", "Cancelled by staff (admin)",
    )  # fmt: skip
    assert [sent for sent, _ in commands_sent(saga)] == [command]
    assert [kind for kind, _, _ in history(saga)] == ["staff", "compensating", "sent"]
    assert notes(saga, "staff") == ["admin asked to compensate"]


@pytest.mark.parametrize(
    ("action", "given"),
    [
        (saga_retry_step, "completed"),
        (saga_retry_step, "cancelled"),
        (saga_compensate, "refunding"),
        (saga_compensate, "completed"),
    ],
    ids=[
        "retry a completed saga",
        "retry a cancelled saga",
        "compensate a saga already compensating",
        "compensate a completed saga",
    ],
)
def test_a_staff_action_that_does_not_apply_changes_nothing(action, given):
    # Given a saga the action does not apply to
    saga = saga_at(given)
    before = position(saga)

    # When staff ask for it
    done = action(order_id=saga.order_id, by="admin")

    # Then it is refused, and nothing is written
    assert done is False
    assert position(saga) == before
    assert not SagaEntry.objects.exists()
    assert published() == []
