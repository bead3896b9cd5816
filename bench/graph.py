"""The message graph of one successful order under choreography, for the two floors.

Each node is one task delivery on one app's queue; its children are the
deliveries its published events fan out to: every handler of our apps
subscribed to them whose ``when`` filter takes a choreographed order's
messages, read from the apps' real subscriptions. What each delivery
publishes is declared here (``EVENTS``: what the services publish on the way
of a successful order). The floors replay this graph with no-op work, so
that they make the same number of hops, on the same queues, with the same
critical path as our flow: OrderPlaced → payments → inventory → shipping →
orders (completed) → notifications.

Reading the table needs the apps loaded: the harness reads it once and hands
the graph to the processes it starts (``BENCH_GRAPH``), so that the kombu
floor's, which have no Django, replay the same graph.
"""

from __future__ import annotations

import functools
import json
import os
from types import SimpleNamespace

START = "order_placed"
# The delivery that completes the order (orders.complete_shipped): the floors
# report it done there, as our flow sets the order's closed_at there.
DONE = "orders.complete_shipped"

# The events each publishing delivery publishes (the start: the web request).
EVENTS = {
    START: ["OrderPlaced"],
    "payments.charge_for_order": ["PaymentProcessed"],
    "inventory.reserve_stock": ["ProductUpdated", "InventoryReserved"],
    "shipping.ship_reserved_order": ["ShipmentCreated"],
    "orders.complete_shipped": ["OrderCompleted"],
}

# What the ``when`` filters see of a choreographed order's message.
CHOREOGRAPHED = SimpleNamespace(workflow="choreography")
# The graph as the harness read it, in the environment of the processes it starts.
ENV = "BENCH_GRAPH"


def _subscribed(message_class) -> list:
    """The handlers subscribed to a message class: the one place the bench reads the table."""
    from messaging.subscriptions import handlers_for

    return handlers_for(message_class)


@functools.cache
def _table() -> tuple[dict[str, list[str]], dict[str, str]]:
    """(node → its children, delivery → its queue), as the harness handed it down, else read."""
    handed = os.environ.get(ENV)
    if handed:
        children, queues = json.loads(handed)
        return children, queues
    return _read()


def _read() -> tuple[dict[str, list[str]], dict[str, str]]:
    """(node → its children, delivery → its queue), from the apps' subscriptions."""
    from messaging.messages import registry

    children: dict[str, list[str]] = {}
    queues: dict[str, str] = {}
    for node, events in EVENTS.items():
        handlers = [
            handler
            for event in events
            for handler in _subscribed(registry.get(event, 1))
            if handler.name.split(".", 1)[0] != "bench" and handler.wants(CHOREOGRAPHED)
        ]
        children[node] = [handler.name for handler in handlers]
        queues.update((handler.name, handler.queue) for handler in handlers)
    return children, queues


def handed_down() -> str:
    """The graph for ``BENCH_GRAPH``, read from the subscriptions (the apps must be loaded)."""
    return json.dumps(_read())


def queue_of(node: str) -> str:
    """The queue (its app's) that carries this delivery."""
    return _table()[1][node]


def children(node: str) -> list[str]:
    return _table()[0].get(node, [])


def deliveries() -> list[str]:
    """Every delivery of one order (the start is a publish, not a delivery)."""
    out, todo = [], [START]
    while todo:
        node = todo.pop(0)
        if node != START:
            out.append(node)
        todo.extend(children(node))
    return out


def critical_path() -> list[str]:
    path, node = [], DONE
    parents = {child: parent for parent in EVENTS for child in children(parent)}
    while node != START:
        path.append(node)
        node = parents[node]
    return list(reversed(path))


def graph_check() -> list[str]:
    """What in EVENTS no longer fits our apps' subscriptions (empty when all does)."""
    from messaging.messages import MessageError, registry

    problems = []
    for node, events in EVENTS.items():
        for event in events:
            try:
                registry.get(event, 1)
            except MessageError as exc:
                problems.append(f"{node} publishes {event}: {exc}")
    if problems:
        return problems
    reached = set(deliveries())
    for node in [*EVENTS, DONE]:
        if node != START and node not in reached:
            problems.append(f"{node} is no longer a delivery of a choreographed order")
    return problems
