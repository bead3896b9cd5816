"""The worker's consumer (messaging/worker.py): its timer sweep, and fanned-out copies."""

import uuid
from types import SimpleNamespace

from kombu.asynchronous.timer import Timer

from messaging.fanout import FANNED_OUT_HANDLERS, FANNED_OUT_TASK
from messaging.models import DeadLetter
from messaging.worker import Consumer, drop_cancelled_timer_entries


def test_sweep_drops_cancelled_entries_and_keeps_the_rest_in_order():
    timer = Timer()
    fired = []
    entries = [timer.call_after(60 + i, fired.append, (i,)) for i in range(10)]
    for entry in entries[::2]:
        entry.cancel()
    queue = timer._queue

    assert drop_cancelled_timer_entries(timer) == 5
    assert timer._queue is queue
    assert [s.entry for s in timer.queue] == entries[1::2]
    assert drop_cancelled_timer_entries(timer) == 0


def test_the_consumer_runs_the_sweep():
    assert "messaging.worker:TimerSweep" in Consumer.Blueprint.default_steps


class _Message:
    """Just what the consumer reads of a kombu message, and what it does to it."""

    def __init__(self, *, consumer_tag: str, redelivered: bool = False, handlers=None):
        self.headers = {"task": FANNED_OUT_TASK, "id": str(uuid.uuid4()), "CC": ["probe_d"]}
        self.headers[FANNED_OUT_HANDLERS] = handlers or {"probe_c": "probe.fanned_record"}
        self.delivery_info = {
            "consumer_tag": consumer_tag,
            "redelivered": redelivered,
            "exchange": "",
            "routing_key": "probe_c",
        }
        self.rejected: list[bool] = []

    def reject_log_error(self, logger, errors, requeue=False) -> None:
        self.rejected.append(requeue)


class _Consumer:
    """The consumer's parts `_addressed` uses: its queues' consumer tags, the dead letters."""

    connection_errors = ()

    def __init__(self):
        self.task_consumer = SimpleNamespace(_active_tags={"probe_c": "tag-c", "probe_d": "tag-d"})
        self.kept: list[tuple] = []

    def _queue_consumed_by(self, consumer_tag):
        return Consumer._queue_consumed_by(self, consumer_tag)

    def _kept(self, message, reason, error, *, queue=None, **kwargs) -> bool:
        self.kept.append((reason, error, queue))
        return True


def test_a_fanned_out_copy_becomes_the_delivery_of_the_handler_its_queue_is_named_with():
    handlers = {"probe_c": "probe.fanned_record", "probe_d": "probe.fanned_fail_while_switched_on"}
    consumer, message = _Consumer(), _Message(consumer_tag="tag-d", handlers=handlers)
    published_id = message.headers["id"]

    assert Consumer._addressed(consumer, message) is True
    assert message.headers["task"] == "probe.fanned_fail_while_switched_on"
    assert message.headers["id"] == str(uuid.uuid5(uuid.UUID(published_id), "probe_d"))
    assert "CC" not in message.headers and FANNED_OUT_HANDLERS not in message.headers
    assert message.delivery_info["routing_key"] == "probe_d"
    assert not consumer.kept and not message.rejected


def test_a_copy_from_a_consumer_being_cancelled_goes_back_to_its_queue():
    # kombu forgets a queue's consumer tag before the broker stops delivering to it
    consumer, message = _Consumer(), _Message(consumer_tag="tag-gone")

    assert Consumer._addressed(consumer, message) is False
    assert message.rejected == [True]
    assert not consumer.kept
    assert message.headers["task"] == FANNED_OUT_TASK


def test_a_redelivered_copy_of_an_unknown_consumer_or_for_no_handler_is_dead_lettered():
    gone = _Message(consumer_tag="tag-gone", redelivered=True)
    unnamed = _Message(consumer_tag="tag-d")  # names a handler for probe_c only
    for message, queue in ((gone, None), (unnamed, "probe_d")):
        consumer = _Consumer()
        assert Consumer._addressed(consumer, message) is False
        assert message.rejected == [False]
        [(reason, error, kept_queue)] = consumer.kept
        assert reason == DeadLetter.Reason.UNKNOWN_TASK
        assert kept_queue == queue
        assert f"arrived on {queue or 'an unknown queue'}" in error
