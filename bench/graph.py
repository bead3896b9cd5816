"""The message graph of one successful order under choreography, for the two floors.

Each node is one task delivery on one app's queue; its children are the
deliveries its published event fans out to (every subscriber of our apps
whose ``when`` filter takes a choreographed order's messages). The floors
replay this graph with no-op work, so that they make the same number of
hops, on the same queues, with the same critical path as our flow:
OrderPlaced → payments → inventory → shipping → orders (completed) →
notifications.

``graph_check()`` compares it with the subscriptions of the real apps.
"""

from __future__ import annotations

START = "order_placed"
# The delivery that completes the order (orders.complete_shipped): the floors
# report it done there, as our flow sets the order's closed_at there.
DONE = "orders.complete_shipped"

# node -> (queue app, [children]); children are node names.
GRAPH: dict[str, tuple[str, list[str]]] = {
    # OrderPlaced, published by the web request
    START: ("", [
        "payments.charge_for_order",
        "inventory.remember_order_lines",
        "shipping.remember_destination",
        "notifications.confirm_order",
    ]),
    # PaymentProcessed
    "payments.charge_for_order": ("payments", [
        "orders.mark_paid", "inventory.reserve_stock",
    ]),
    # ProductUpdated (one per reserved product), InventoryReserved
    "inventory.reserve_stock": ("inventory", [
        "orders.update_catalog",
        "orders.mark_reserved", "shipping.ship_reserved_order",
    ]),
    # ShipmentCreated
    "shipping.ship_reserved_order": ("shipping", [
        "orders.complete_shipped", "inventory.ship_stock",
    ]),
    # OrderCompleted
    "orders.complete_shipped": ("orders", ["notifications.announce_completion"]),
}  # fmt: skip

# The events each publishing node publishes, in the order of GRAPH's children.
EVENTS = {
    START: ["OrderPlaced"],
    "payments.charge_for_order": ["PaymentProcessed"],
    "inventory.reserve_stock": ["ProductUpdated", "InventoryReserved"],
    "shipping.ship_reserved_order": ["ShipmentCreated"],
    "orders.complete_shipped": ["OrderCompleted"],
}


def queue_of(node: str) -> str:
    """The app whose queue carries this delivery."""
    if node in GRAPH and GRAPH[node][0]:
        return GRAPH[node][0]
    return node.split(".", 1)[0]


def children(node: str) -> list[str]:
    return GRAPH.get(node, ("", []))[1]


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
    parents = {child: parent for parent, (_, kids) in GRAPH.items() for child in kids}
    while node != START:
        path.append(node)
        node = parents[node]
    return list(reversed(path))


def graph_check() -> list[str]:
    """Differences between GRAPH and what our apps subscribe (empty when they agree)."""
    from types import SimpleNamespace

    from messaging.consumers import handlers_for
    from messaging.messages import registry

    # What the ``when`` filters see of a choreographed order's message.
    choreographed = SimpleNamespace(workflow="choreography")
    problems = []
    for node, events in EVENTS.items():
        expected = sorted(child.split("#", 1)[0] for child in children(node))
        actual = sorted(
            handler.name
            for event in events
            for handler in handlers_for(registry.get(event, 1))
            if handler.name.split(".", 1)[0] != "bench"
            and (handler.when is None or handler.when(choreographed))
        )
        if expected != actual:
            problems.append(f"{'/'.join(events)}: graph {expected} != subscribed {actual}")
    return problems
