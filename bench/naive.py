"""The naive baseline: what a user would write instead of our messaging layer.

The same apps, the same handlers and services (so the same domain writes, to
the same tables, with the same locks), and the same message graph: every
handler our apps subscribe to an event has a twin here, a plain Celery task
on the app's own queue (``naive_<app>``) that reads the payload into the
event's class and calls our handler's function. What is left out is the
reliability machinery:

- no outbox: ``publish`` is replaced, in the naive processes only, by
  ``twin.delay_on_commit(type, payload, occurred_at)`` for each subscriber
  whose ``when`` filter takes the event (a message is lost if the process
  dies between the commit and the publish);
- no inbox: a redelivered message takes effect again as far as the service
  lets it;
- no envelope: the task gets the event's type, payload and time, unchecked;
  the handler is handed an envelope of only these (no message id,
  correlation or causation);
- no publisher confirms (``BENCH_NAIVE`` turns them off in bench.settings).

Retries are Celery's plain ``autoretry_for`` with backoff, as a user would,
and there are no dead letters. What else still differs from our delivery:
the handler runs in no transaction of its own, so each service it calls
commits on its own (notifications.confirm_order's two in two), and what a
service publishes goes out at its commit, each copy on its own, where ours
sends a delivery's messages together once it committed. The payload is
validated by the event's class (Pydantic), as the handlers take typed
events; the twins were written by hand before, reading the dict themselves.

Only choreography is mirrored: the saga's commands have no twin, and an
orchestrated order's event is refused.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from datetime import datetime
from importlib import import_module

from celery import shared_task
from django.utils import timezone

from messaging import publishing as messaging_publishing
from messaging.messages import Envelope, Event, registry
from messaging.subscriptions import handlers_for
from orders.events import Workflow

# The apps whose handlers the baseline mirrors (bench's own probe is not one).
APPS = ["orders", "payments", "inventory", "shipping", "notifications"]

# Each event class → (our handler, its naive twin) for each handler our apps subscribe.
ROUTES: dict[type[Event], list] = {}


@functools.cache
def twin_of(handler):
    """The naive twin of one of our handlers: a plain Celery task on its app's naive queue."""
    classes = {c.message_type: c for c in handler.message_classes}

    def run(message_type: str, payload: dict, occurred_at: str) -> None:
        message_class = classes[message_type]
        event = message_class.model_validate(payload)
        if not handler.wants(event):
            return
        envelope = Envelope.model_construct(
            kind=message_class.kind, type=message_type, version=message_class.message_version,
            occurred_at=datetime.fromisoformat(occurred_at), payload=payload,
        )  # fmt: skip
        handler.fn(event, envelope)

    return shared_task(
        name=f"naive.{handler.name}",
        queue=f"naive_{handler.queue}",
        autoretry_for=(Exception,),
        retry_backoff=True,
        max_retries=5,
        # The same Celery settings as our handlers: no result row per delivery.
        ignore_result=True,
    )(run)


def routes() -> dict[type[Event], list]:
    """Each event class → (our handler, its twin) for each handler our apps subscribe to it.

    The handler comes along for its ``when`` filter: the baseline makes the
    same hops as our flow, no more.
    """
    table: dict[type[Event], list] = {}
    for message_class in registry:
        if message_class.kind != "event":
            continue
        for handler in handlers_for(message_class):
            if handler.name.split(".", 1)[0] in APPS:
                table.setdefault(message_class, []).append((handler, twin_of(handler)))
    return table


def naive_publish(event: Event, *, correlation_id: str | None = None) -> None:
    """``publish`` as a user would write it: delay_on_commit to each subscriber."""
    if getattr(event, "workflow", Workflow.CHOREOGRAPHY) != Workflow.CHOREOGRAPHY:
        raise NotImplementedError("the naive baseline runs choreography only")
    payload = event.model_dump(mode="json")
    occurred_at = timezone.now().isoformat()
    for handler, twin in ROUTES.get(type(event), ()):
        if handler.wants(event):
            twin.delay_on_commit(event.message_type, payload, occurred_at)


def install() -> None:
    """Make this process's apps publish the naive way (called from BenchConfig.ready)."""
    for app in APPS:
        with contextlib.suppress(ImportError):
            import_module(f"{app}.services")
    ROUTES.clear()
    ROUTES.update(routes())
    for name, module in list(sys.modules.items()):
        if name.split(".", 1)[0] not in APPS or module is None:
            continue
        if getattr(module, "publish", None) is messaging_publishing.publish:
            module.publish = naive_publish  # type: ignore[attr-defined]  # it imported publish
