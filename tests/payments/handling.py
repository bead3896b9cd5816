"""A message handed to a handler as a delivery hands it over, for the handler tests of every app.

Here beside payments' factories, as the orders' messages are, until tests/support takes them.
"""

from django.db import transaction

from messaging.context import handling
from messaging.messages import Envelope, Message
from messaging.subscriptions import Handler
from tests.support.envelopes import envelope_of


def handle(handler: Handler, message: Message) -> Envelope:
    """Deliver ``message`` to ``handler`` once, in its order's conversation; the envelope it had.

    As in a delivery: in a transaction of its own, and what the handler publishes follows from it.
    """
    envelope = envelope_of(message, correlation_id=str(message.order_id))
    with transaction.atomic(), handling(envelope):
        handler(message, envelope)
    return envelope
