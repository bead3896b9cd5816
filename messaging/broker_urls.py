"""A broker URL that may name several nodes: ``amqp://a:5672//;amqp://b:5672//``.

Celery and kombu take such a list (``;`` between the URLs) and, when a
node cannot be reached, switch to the next one in turn. A connection of
ours that tries the broker once (a probe, a reader) tries each node once;
whatever logs a URL or shows it masks the password of every node, not
only the first one's, as kombu's ``maybe_sanitize_url`` would.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


class BrokerUrlError(ValueError):
    """A broker URL list that cannot be used as it is written."""


def broker_nodes(url: str) -> list[str]:
    """The URL of each node, in order, blanks around them dropped.

    Every node must use the same transport: a client fails over between
    nodes of one broker, not between kinds of broker.
    """
    nodes = [node.strip() for node in url.split(";")]
    if any(not node for node in nodes):
        raise BrokerUrlError(
            f"{sanitized(url)!r} has an empty entry: separate node URLs with one ';' each"
        )
    schemes = {urlsplit(node).scheme for node in nodes}
    if len(nodes) > 1 and (len(schemes) > 1 or not schemes <= set(AMQP_SCHEMES)):
        raise BrokerUrlError(
            f"{sanitized(url)!r} mixes transports or lists several nodes of a broker that "
            "has no cluster: list only amqp:// (RabbitMQ) URLs, one per node"
        )
    return nodes


def is_amqp(url: str) -> bool:
    """The URL (the first of its nodes) points at RabbitMQ."""
    return url.lstrip().startswith(tuple(f"{scheme}://" for scheme in AMQP_SCHEMES))


def sanitized(url: str) -> str:
    """The URL list with the password of every node masked."""
    return ";".join(maybe_sanitize_url(node.strip()) for node in url.split(";"))


def connect_once_to_each(connection: Connection, **options) -> None:
    """Connect, trying each node once (in the connection's failover order), no pause."""
    # kombu sleeps only after a full round of the nodes, which the last
    # failure ends before: so no sleep at all.
    connection.ensure_connection(max_retries=max(len(connection.alt), 1) - 1, **options)
