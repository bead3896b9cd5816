"""The metrics this process counts as things happen, each a prometheus_client object.

Every one has labels (see ``metrics.groups``: a Celery worker switches to
counting in files after this module was imported, which is safe only for
labelled metrics), and every label takes few values: handler names, message
types and dead-letter reasons the code declares, never what a message says
(``metrics.receivers`` puts "unknown" for anything else).

They are registered in a registry of their own, not prometheus_client's
default one, which is scraped only where this process is alone (runserver,
a management command); in a group the files are (``metrics.groups``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

registry = CollectorRegistry(auto_describe=True)

# From a few milliseconds (a skipped duplicate) to the gateway's slow calls
# and a handler near its soft time limit.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

messages_published = Counter(
    "eventshop_messages_published",
    "Messages committed to the outbox by a producer's transaction (publish or send).",
    ["type", "kind"],
    registry=registry,
)
messages_confirmed = Counter(
    "eventshop_messages_confirmed",
    "Messages the broker confirmed, by the dispatch after commit or by the relay.",
    ["type", "kind"],
    registry=registry,
)
deliveries = Counter(
    "eventshop_deliveries",
    "Deliveries of a message to a handler, by what became of each: handled, duplicate "
    "(skipped by the inbox), filtered (not wanted), retried, deferred, dead-lettered.",
    ["handler", "type", "outcome"],
    registry=registry,
)
handler_duration = Histogram(
    "eventshop_handler_duration_seconds",
    "How long a delivery that took effect took: the handler, its commit and the dispatch of "
    "what it published.",
    ["handler", "type"],
    buckets=DURATION_BUCKETS,
    registry=registry,
)
dead_letters = Counter(
    "eventshop_dead_letters",
    "Dead letters recorded, from deliveries and from messages no handler could be given.",
    ["handler", "type", "reason"],
    registry=registry,
)
relay_runs = Counter(
    "eventshop_relay_runs",
    "Runs of the outbox relay: idle (nothing to send), sent (all sent) or failed (some not).",
    ["outcome"],
    registry=registry,
)
relay_messages = Counter(
    "eventshop_relay_messages",
    "Messages the outbox relay sent (dispatched) or could not send (failed).",
    ["outcome"],
    registry=registry,
)

ALL = (
    messages_published,
    messages_confirmed,
    deliveries,
    handler_duration,
    dead_letters,
    relay_runs,
    relay_messages,
)
