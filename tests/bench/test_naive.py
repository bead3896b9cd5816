"""The naive baseline's twins run our handlers' own functions, with none of the machinery around.

Pure handler wiring: each twin is called in this process, no broker, no
worker and no database (the handler's function is replaced by a recorder).
"""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bench import naive
from inventory.events import ProductUpdated
from orders.events import OrderPlaced
from payments.handlers import charge_for_order

ADDRESS = {
    "name": "Ada",
    "line1": "1 Street",
    "city": "London",
    "postal_code": "N1",
    "country": "GB",
}


def order_placed(workflow: str = "choreography") -> OrderPlaced:
    return OrderPlaced(
        order_id=uuid.uuid4(), email="ada@example.com",
        lines=[{"sku": "S-1", "name": "Thing", "quantity": 1, "unit_price": "10.00"}],
        total=Decimal("10.00"), currency="EUR", shipping_address=ADDRESS,
        card_token="tok", card_last4="4242", workflow=workflow,
    )  # fmt: skip


@pytest.fixture
def routes(monkeypatch):
    """Every (handler, twin) pair, with each handler's function recording its calls."""
    table = naive.routes()
    calls = []
    for pairs in table.values():
        for handler, _ in pairs:
            monkeypatch.setattr(
                handler, "fn", lambda m, e, name=handler.name: calls.append((name, m, e))
            )
    monkeypatch.setattr(naive, "ROUTES", table)
    return table, calls


def twin(table, handler_name: str):
    return next(t for pairs in table.values() for h, t in pairs if h.name == handler_name)


def test_each_handler_of_our_apps_has_one_twin_on_its_apps_naive_queue(routes):
    table, _ = routes
    pairs = [(h, t) for ps in table.values() for h, t in ps]
    assert {h.name.split(".", 1)[0] for h, _ in pairs} == set(naive.APPS)
    assert all(t.name == f"naive.{h.name}" for h, t in pairs)
    assert all(t.queue == f"naive_{h.queue}" for h, t in pairs)


def test_a_twin_reads_the_payload_into_the_event_and_calls_our_handlers_function(routes):
    # given
    table, calls = routes
    event = order_placed()
    occurred_at = datetime(2024, 5, 1, 12, tzinfo=UTC)

    # when
    twin(table, "payments.charge_for_order")(
        "OrderPlaced", event.model_dump(mode="json"), occurred_at.isoformat()
    )

    # then
    [(name, message, envelope)] = calls
    assert name == "payments.charge_for_order"
    assert message == event
    assert (envelope.type, envelope.occurred_at) == ("OrderPlaced", occurred_at)


def test_the_envelope_carries_when_the_event_occurred_for_the_catalog(routes):
    # given
    table, calls = routes
    event = ProductUpdated(sku="S-1", name="Thing", price="10.00", currency="EUR", available=3)

    # when
    twin(table, "orders.update_catalog")(
        "ProductUpdated", event.model_dump(mode="json"), "2024-05-01T12:00:00+00:00"
    )

    # then
    [(_, message, envelope)] = calls
    assert message.available == 3
    assert envelope.occurred_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_a_twin_skips_what_its_handlers_when_filter_refuses(routes):
    # given
    table, calls = routes
    payload = order_placed(workflow="orchestration").model_dump(mode="json")

    # when
    twin(table, charge_for_order.name)("OrderPlaced", payload, "2024-05-01T12:00:00+00:00")

    # then
    assert calls == []


def test_the_naive_publish_sends_the_event_to_each_subscriber_that_wants_it(routes, monkeypatch):
    # given
    table, _ = routes
    sent = []
    for pairs in table.values():
        for _, t in pairs:
            monkeypatch.setattr(
                t, "delay_on_commit", lambda *a, name=t.name: sent.append((name, a))
            )
    event = order_placed()

    # when
    naive.naive_publish(event)

    # then
    assert sorted(name for name, _ in sent) == [
        "naive.inventory.remember_order_lines",
        "naive.notifications.confirm_order",
        "naive.payments.charge_for_order",
        "naive.shipping.remember_destination",
    ]
    assert all(args[:2] == ("OrderPlaced", event.model_dump(mode="json")) for _, args in sent)


def test_the_naive_publish_refuses_an_orchestrated_order(routes):
    with pytest.raises(NotImplementedError):
        naive.naive_publish(order_placed(workflow="orchestration"))
