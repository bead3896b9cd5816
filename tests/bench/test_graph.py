"""The floors' message graph is read from the apps' subscriptions, not copied by hand."""

import pytest

from bench import graph


@pytest.fixture(autouse=True)
def _graph_read_afresh(monkeypatch):
    monkeypatch.delenv(graph.ENV, raising=False)
    graph._table.cache_clear()
    yield
    graph._table.cache_clear()


def test_every_event_the_graph_declares_still_has_its_deliveries():
    assert graph.graph_check() == []


def test_a_choreographed_order_is_charged_then_reserved_then_shipped_then_completed():
    # when
    path = graph.critical_path()

    # then
    assert path == [
        "payments.charge_for_order",
        "inventory.reserve_stock",
        "shipping.ship_reserved_order",
        "orders.complete_shipped",
    ]
    assert graph.children(graph.DONE) == ["notifications.announce_completion"]


def test_each_delivery_is_a_subscribed_handler_on_its_apps_queue_once():
    # when
    deliveries = graph.deliveries()

    # then
    assert len(deliveries) == len(set(deliveries))
    assert {graph.queue_of(d) for d in deliveries} == {
        "orders", "payments", "inventory", "shipping", "notifications",
    }  # fmt: skip
    assert all(graph.queue_of(d) == d.split(".", 1)[0] for d in deliveries)
    # The saga's handler of every reply event filters out a choreographed order's.
    assert "orders.advance_saga" not in deliveries


def test_the_harness_hands_down_the_graph_it_read(monkeypatch):
    # given what the harness read
    read = graph.deliveries()
    handed = graph.handed_down()

    # when a process that cannot read the subscriptions is given it
    def unreadable(message_class):
        raise AssertionError("the subscriptions were read again")

    monkeypatch.setattr(graph, "_subscribed", unreadable)
    monkeypatch.setenv(graph.ENV, handed)
    graph._table.cache_clear()

    # then it replays the same graph
    assert graph.deliveries() == read
    assert [graph.queue_of(d) for d in read] == [d.split(".", 1)[0] for d in read]
