"""The backbone's extension points: connect here instead of patching it.

- ``message_published`` is sent once a producer's transaction committed
  messages to the outbox (``publish`` or ``send``), before their dispatch,
  with ``envelopes`` (a list of Envelope). A rolled-back transaction sends
  nothing.
- ``message_confirmed`` is sent once the broker has confirmed the messages of
  one dispatch (after a producer's commit, or by the relay), with
  ``envelopes`` (a list of Envelope). On a broker without publisher confirms
  (the file-system transport) it is sent once they were handed over.
- ``delivery_handled`` is sent after a delivery took effect and its
  transaction committed, with ``handler`` (the handler's name) and
  ``envelope``. A duplicate, skipped by the inbox, sends nothing.
- ``delivery_retried`` is sent once a failed delivery's retry was published
  back to its queue, with ``handler`` (the handler's name), ``envelope``,
  ``attempt`` (the attempt that failed, from 1; a delivery put off while a
  dependency is down repeats its number), ``countdown`` (seconds until the
  retry is delivered), ``queue`` (the handler's queue), ``deferred`` (put
  off, not failed) and ``deferrals`` (how many times the message was put off
  so far, this one included: 1 the first time). A delivery that goes to the
  dead letters instead, or that Celery sends again because its worker died,
  sends nothing.
- ``delivery_finished`` is sent once per delivery, whatever became of it,
  with ``handler`` (the handler's name), ``envelope`` (None when the message
  could not be read as one), ``outcome`` (``messaging.delivery.Outcome``:
  handled, duplicate, filtered, retried, deferred or dead-lettered) and
  ``seconds`` (how long the delivery took, its commit and the dispatch of
  what it published included).
- ``message_dead_lettered`` is sent once a dead letter was recorded (and its
  transaction committed), from a delivery or from the worker's consumer for
  a message no handler could be given, with ``dead_letter`` (the DeadLetter).
- ``relay_ran`` is sent after each run of the outbox relay, with
  ``dispatched`` and ``failed`` (how many messages) and ``runner``.

Receivers run in the publishing or consuming process, after the fact, and are
called robustly: one that raises is logged and changes nothing for the
message, which is committed, confirmed and handled either way. They must be
quick: the producer, or the worker, waits for them.
"""

import logging

from django.dispatch import Signal

logger = logging.getLogger(__name__)

message_published = Signal()
message_confirmed = Signal()
delivery_handled = Signal()
delivery_retried = Signal()
delivery_finished = Signal()
message_dead_lettered = Signal()
relay_ran = Signal()


def notify(signal: Signal, **kwargs) -> None:
    """Send ``signal`` to its receivers; one that fails is logged, not raised."""
    if not signal.has_listeners():
        return
    for receiver, result in signal.send_robust(sender=None, **kwargs):
        if isinstance(result, Exception):
            logger.error("Backbone signal receiver %r failed", receiver, exc_info=result)
