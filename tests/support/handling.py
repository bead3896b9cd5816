"""A message handed to a handler as a delivery hands it over, for the handler tests of every app."""

import uuid
from collections.abc import Callable

from django.db import transaction

from messaging.context import handling
from messaging.messages import Envelope, Message
from messaging.subscriptions import Handler
from orders.events import Workflow
from tests.support.envelopes import envelope_of


def handle(handler: Handler, message: Message) -> Envelope:
    """Deliver ``message`` to ``handler`` once, in its order's conversation; the envelope it had.

    As in a delivery: in a transaction of its own, and what the handler publishes follows from it.
    """
    envelope = envelope_of(message, correlation_id=str(message.order_id))
    with transaction.atomic(), handling(envelope):
        handler(message, envelope)
    return envelope


def assert_workflows_taken(
    handler: Handler, message_of: Callable[..., Message], *, orchestration: bool
) -> None:
    """The handler takes the message of a choreographed order, and that of an orchestrated one
    only if ``orchestration`` (its ``when`` filter: the saga sends commands instead).

    ``message_of(order_id=..., workflow=...)`` builds the message: a factory, say.
    """
    order_id = uuid.uuid4()
    assert handler.wants(message_of(order_id=order_id, workflow=Workflow.CHOREOGRAPHY))
    assert handler.wants(message_of(order_id=order_id, workflow=Workflow.ORCHESTRATION)) is (
        orchestration
    )
