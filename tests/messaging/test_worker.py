"""The worker's timer sweep (messaging/worker.py)."""

from kombu.asynchronous.timer import Timer

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
