"""RabbitMQ as the tests see it: whether it answers, its queues, a proxy to cut it off."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from django.conf import settings

from tests.support.tcp_proxy import TcpProxy


def broker_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 5672), timeout=1):
            return True
    except OSError:
        return False


def broker_vhost(url: str) -> str:
    """The virtual host an AMQP URL names: amqp://host// and amqp://host/ both mean "/"."""
    return unquote(urlsplit(url).path[1:]) or "/"


def proxied_url(url: str, proxy: TcpProxy) -> str:
    """The same broker URL, reached through the proxy."""
    parts = urlsplit(url)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    return parts._replace(netloc=netloc).geturl()


@contextlib.contextmanager
def publishing_through_proxy(url: str) -> Iterator[TcpProxy]:
    """Route this process's publishing through a proxy a test can cut."""
    from config.celery import app

    parts = urlsplit(url)
    proxy = TcpProxy((parts.hostname, parts.port or 5672))
    proxy.start()
    # Celery reads CELERY_BROKER_URL from the environment before its settings.
    os.environ["CELERY_BROKER_URL"] = app.conf.broker_url = proxied_url(url, proxy)
    try:
        yield proxy
    finally:
        proxy.stop()


def purge_queues(names: list[str]) -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in app.amqp.queues.values():
            if queue.name in names:
                queue(channel).declare()
                queue(channel).purge()


def list_queues(vhost: str, *fields: str) -> list[dict]:
    """``rabbitmqctl list_queues -p vhost fields...``: one dict per queue."""
    listed = subprocess.run(
        [shutil.which("rabbitmqctl") or "rabbitmqctl", "list_queues", *fields,
         "-p", vhost, "--formatter", "json", "--quiet"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(listed.stdout)


def queue_depths(names: list[str], vhost: str | None = None) -> dict[str, int]:
    """Messages ready or in flight (unacknowledged) per queue, its retry queues' included.

    Counted on the vhost the tests use unless told: rabbitmqctl alone would count "/".
    """
    depths = dict.fromkeys(names, 0)
    seen = set()
    for queue in list_queues(vhost or broker_vhost(settings.CELERY_BROKER_URL), "name", "messages"):
        app_queue = queue["name"].split(".retry.")[0]
        if app_queue in depths:
            seen.add(app_queue)
            depths[app_queue] += queue["messages"]
    return {name: depth for name, depth in depths.items() if name in seen}
