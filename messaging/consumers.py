"""Declaring a consumer: ``@handler`` subscribes a function and makes it a Celery task.

An app declares each handler once, in its ``handlers.py`` (imported from its
``AppConfig.ready()``)::

    @handler(OrderPlaced)  # consumed from the app's own queue
    def charge_for_order(event: OrderPlaced, envelope: Envelope) -> None: ...

The decorator adds it to the subscription table (``messaging.subscriptions``)
and registers the task that runs each delivery (``messaging.delivery``) on
the handler's queue under the handler's name (``<app label>.<function>``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured

from .delivery import delivery_run
from .messages import Message
from .subscriptions import Handler, subscribe


def handler(
    *message_classes: type[Message],
    queue: str | None = None,
    when: Callable[[Any], bool] | None = None,  # takes a message of one of message_classes
) -> Callable[[Callable], Handler]:
    """Declare and subscribe a handler of the given messages, consumed from its app's queue.

    ``when`` filters by content: a message it returns False for is never
    put on this handler's queue, and is skipped should one arrive anyway (a
    redrive of an older message, say).
    """
    if not message_classes:
        raise TypeError("handler() needs at least one message class")

    def decorate(fn: Callable) -> Handler:
        app_config = apps.get_containing_app_config(fn.__module__)
        if app_config is None:
            raise ImproperlyConfigured(f"{fn.__module__} is not inside an installed app")
        declared = Handler(
            fn=fn,
            message_classes=message_classes,
            queue=queue or app_config.label,
            name=f"{app_config.label}.{fn.__name__}",
            when=when,
        )
        subscribe(declared)
        _register_task(declared)
        return declared

    return decorate


def _register_task(declared: Handler) -> None:
    def deliver(task, *args, **kwargs) -> str:
        return delivery_run(
            handler=declared, args=args, kwargs=kwargs, retries=task.request.retries or 0
        )

    deliver.__name__ = deliver.__qualname__ = declared.fn.__name__
    # celery-types' overloads lack retry_on_worker_lost (Celery 5.6's task option).
    shared_task(  # type: ignore[call-overload]
        bind=True,
        name=declared.name,
        queue=declared.queue,
        acks_late=True,
        reject_on_worker_lost=True,
        # A worker process that dies mid-task sends the message again as a
        # retry, so it counts towards the limit instead of looping; at once,
        # since a delay would be a countdown the worker holds (unacknowledged,
        # in its memory), which retries otherwise never are.
        retry_on_worker_lost=True,
        default_retry_delay=0,
        max_retries=None,
        # The inbox records what took effect and the dead letters what
        # failed: a result row per delivery would only cost a write.
        ignore_result=True,
        typing=False,
    )(deliver)
