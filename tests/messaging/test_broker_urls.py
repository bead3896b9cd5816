"""Broker URLs of several nodes: parsed, checked, masked; a connection passes over dead ones."""

import socket
import time

import pytest
from kombu import Connection
from kombu.exceptions import OperationalError

from messaging.broker_urls import BrokerUrlError, broker_nodes, connect_once_to_each, sanitized


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_single_url_is_one_node():
    assert broker_nodes("amqp://guest:guest@127.0.0.1:5672//") == [
        "amqp://guest:guest@127.0.0.1:5672//"
    ]


def test_nodes_are_split_on_semicolons_blanks_dropped():
    url = " amqp://u:p@a:5672/shop ; amqp://u:p@b:5673/shop;amqp://u:p@c:5674/shop "

    assert broker_nodes(url) == [
        "amqp://u:p@a:5672/shop",
        "amqp://u:p@b:5673/shop",
        "amqp://u:p@c:5674/shop",
    ]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("amqp://u:secret@a//;;amqp://u:secret@b//", "empty entry"),
        ("amqp://u:secret@a//;", "empty entry"),
        ("amqp://u:secret@a//;redis://:secret@b:6379/0", "mixes transports"),
        ("filesystem://;filesystem://", "mixes transports"),
    ],
)
def test_a_list_that_cannot_work_is_refused_with_the_passwords_masked(url, says):
    with pytest.raises(BrokerUrlError, match=says) as refused:
        broker_nodes(url)

    assert "secret" not in str(refused.value)


def test_sanitized_masks_the_password_of_every_node():
    masked = sanitized("amqp://u:one@a:5672//;amqp://u:two@b:5673//")

    assert masked == "amqp://u:**@a:5672//;amqp://u:**@b:5673//"


def test_a_connection_passes_over_nodes_that_are_down(rabbitmq):
    down = [f"amqp://guest:guest@127.0.0.1:{closed_port()}//" for _ in range(2)]
    url = ";".join([*down, rabbitmq])
    connection = Connection(url, connect_timeout=2)
    try:
        connect_once_to_each(connection)

        assert connection.connected
        assert connection.as_uri(include_password=True) == rabbitmq
    finally:
        connection.release()


def test_a_connection_to_a_list_of_dead_nodes_fails_after_one_try_each_without_a_pause():
    url = ";".join(f"amqp://guest:guest@127.0.0.1:{closed_port()}//" for _ in range(3))
    connection = Connection(url, connect_timeout=2)
    started = time.monotonic()

    with pytest.raises(OperationalError, match="Connection refused"):
        connect_once_to_each(connection)

    # kombu pauses 2 s after each full round of the nodes; the one round ends before.
    assert time.monotonic() - started < 1.5
