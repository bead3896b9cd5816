"""payments.receivers: a payment put off while the gateway is down is announced to its order."""

import pytest

from messaging.signals import delivery_retried, notify
from orders.events import Workflow
from payments.commands import ChargePayment
from tests.support.envelopes import envelope_of, published
from tests.support.order_messages import OrderPlacedFactory

pytestmark = pytest.mark.django_db


def put_off(handler: str, message, *, deferrals: int, deferred: bool = True) -> None:
    """Send delivery_retried as the backbone does once it has put a delivery off."""
    envelope = envelope_of(message, correlation_id=str(message.order_id))
    notify(
        delivery_retried,
        handler=handler,
        envelope=envelope,
        attempt=1,
        countdown=1.0,
        queue="payments",
        deferred=deferred,
        deferrals=deferrals,
    )


def test_the_first_deferral_of_a_charge_tells_its_order_under_either_workflow():
    # Given a choreographed order's charge and a saga's ChargePayment
    placed = OrderPlacedFactory(workflow=Workflow.CHOREOGRAPHY)
    command = ChargePayment(
        order_id=OrderPlacedFactory().order_id, amount="5.00", currency="EUR",
        card_token="tok_x", card_last4="4242",
    )  # fmt: skip

    # When each is put off once, then again
    for handler, message in [
        ("payments.charge_for_order", placed),
        ("payments.charge_payment", command),
    ]:
        put_off(handler, message, deferrals=1)
        put_off(handler, message, deferrals=2)

    # Then PaymentDeferred is published once for each, in its order's conversation and workflow
    deferred = [
        (row.correlation_id, row.payload["workflow"]) for row in published("PaymentDeferred")
    ]
    assert deferred == [
        (str(placed.order_id), "choreography"),
        (str(command.order_id), "orchestration"),
    ]
    assert published("PaymentDeferred")[0].payload["reason"] == "the card gateway is unavailable"


def test_a_failed_retry_or_another_apps_deferral_announces_nothing():
    placed = OrderPlacedFactory()
    put_off("payments.charge_for_order", placed, deferrals=0, deferred=False)
    put_off("inventory.remember_order_lines", placed, deferrals=1)
    assert published("PaymentDeferred") == []
