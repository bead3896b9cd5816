"""Vhosts of a test's own, and this process publishing to one with quorum or classic queues.

A queue's type is fixed when it is first declared, so the tests of quorum
queues run on a vhost of their own next to the suite's (whose queues are
classic), made and deleted around them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

from django.conf import settings

from config.settings.base import task_queues
from tests.support.broker import broker_vhost


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        [shutil.which("rabbitmqctl") or "rabbitmqctl", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


def url_on_vhost(url: str, vhost: str) -> str:
    return urlsplit(url)._replace(path="/" + quote(vhost, safe="")).geturl()


@contextlib.contextmanager
def vhost_of_its_own(suffix: str) -> Iterator[str]:
    """A new vhost named after the tests' own, with ``suffix``: its broker URL. Deleted after."""
    name = f"{broker_vhost(settings.CELERY_BROKER_URL)}_{suffix}"
    with contextlib.suppress(subprocess.CalledProcessError):
        rabbitmqctl("delete_vhost", name)  # left by a run that was killed
    rabbitmqctl("add_vhost", name)
    user = urlsplit(settings.CELERY_BROKER_URL).username or "guest"
    rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    try:
        yield url_on_vhost(settings.CELERY_BROKER_URL, name)
    finally:
        rabbitmqctl("delete_vhost", name)


@contextlib.contextmanager
def publishing_to(url: str, *, queue_type: str, delivery_limit: int) -> Iterator[None]:
    """This process publishes to ``url``, declaring its queues as a process with these settings.

    The tests' own publishing goes through the session's proxy: afterwards it does again.
    """
    from config.celery import app

    # A confirm channel kept open to the other vhost is closed by the next
    # send (messaging.transport takes only one to the broker it uses).
    saved_environ = os.environ.get("CELERY_BROKER_URL")
    saved = (
        app.conf.broker_url,
        settings.MESSAGING_QUEUE_TYPE,
        settings.MESSAGING_DELIVERY_LIMIT,
        app.amqp.queues,
    )

    def switch(broker_url: str, kind: str, limit: int, queues) -> None:
        app.conf.broker_url = broker_url
        settings.MESSAGING_QUEUE_TYPE, settings.MESSAGING_DELIVERY_LIMIT = kind, limit
        app.amqp.queues = queues

    queues = task_queues(
        [*settings.MESSAGING_QUEUES], queue_type=queue_type, delivery_limit=delivery_limit
    )
    os.environ["CELERY_BROKER_URL"] = url
    switch(url, queue_type, delivery_limit, app.amqp.Queues(queues))
    try:
        yield
    finally:
        if saved_environ is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_environ
        switch(*saved)
