"""A real stream processor process: ``python manage.py stream_processor``, on the test database.

A test starts it with the environment of its workers (``worker_env``) plus
what it wants to change (the fraud screen's limits, say), waits for its
heartbeat, and may pause it (SIGSTOP), stop it (SIGTERM: it finishes the
batch at hand) or kill it (SIGKILL) and start another, which resumes from the
committed offset.

The events stream outlives the test database, which is flushed after every
test: a processor with no committed offset would read every event earlier
tests left in the log (their orders would count against this test's cards,
and their OrderScreened verdicts reach the payments worker).
``processors_start_at_head`` makes the processors begin where the log ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator

from django.utils import timezone

from tests.support.processes import LoggedProcess


def processors_start_at_head(names: list[str]) -> int | None:
    """Commit the log's current head as the live offset of each processor; returns the head."""
    from analytics.models import ProcessorState, Slot
    from messaging.eventlog import event_log

    head = event_log().head()
    for name in names:
        ProcessorState.objects.update_or_create(
            processor=name, slot=Slot.LIVE, defaults={"offset": head, "heartbeat_at": None}
        )
    return head


class StreamProcessorProcess(LoggedProcess):
    """``manage.py stream_processor --only NAME ...`` in its own process group, its output kept."""

    def __init__(self, env: dict[str, str], only: list[str]) -> None:
        self.only = list(only)
        self.started_at = timezone.now()
        arguments = [arg for name in self.only for arg in ("--only", name)]
        super().__init__(
            f"stream_processor --only {' --only '.join(self.only)}",
            [sys.executable, "manage.py", "stream_processor", *arguments],
            env,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Return once each of its processors wrote a heartbeat: it is reading the log."""
        from analytics.models import ProcessorState, Slot

        deadline = time.monotonic() + timeout
        while ProcessorState.objects.filter(
            processor__in=self.only, slot=Slot.LIVE, heartbeat_at__gte=self.started_at
        ).count() < len(self.only):
            if not self.is_running or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not start:\n{self.log()}")
            time.sleep(0.1)

    def pause(self) -> None:
        """Freeze it (SIGSTOP): alive, its connections open, reading nothing."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM, as an operator stops it: the batch at hand commits. Returns its exit status."""
        if self.is_running:
            self.resume()  # a paused process would not see the SIGTERM, nor let go of its locks
        return super().stop(timeout)


class StreamProcessors:
    """Processor processes started with one environment, one after another; stops them all."""

    def __init__(self, env: dict[str, str], only: list[str]) -> None:
        self.env = env
        self.only = list(only)
        self.started: list[StreamProcessorProcess] = []

    def start(self) -> StreamProcessorProcess:
        """One more process, returned once it is ready (a restart resumes from the offset)."""
        processor = StreamProcessorProcess(self.env, self.only)
        self.started.append(processor)
        processor.wait_ready()
        return processor

    @property
    def current(self) -> StreamProcessorProcess:
        return self.started[-1]

    def stop_all(self) -> None:
        for processor in self.started:
            processor.stop()

    def log(self) -> str:
        return "\n".join(
            f"--- {processor.name} (pid {processor.process.pid})\n{processor.log()}"
            for processor in self.started
        )


@contextlib.contextmanager
def stream_processors_running(
    env: dict[str, str], only: list[str], *, from_head: bool = True
) -> Iterator[StreamProcessors]:
    """One ready processor process for the block (``.current``), and any the block starts;
    each stopped after it (SIGTERM, else SIGKILL).

    ``from_head``: the processors begin at the log's current head (see above).
    """
    if from_head:
        processors_start_at_head(only)
    processors = StreamProcessors(env, only)
    try:
        processors.start()
        yield processors
    finally:
        processors.stop_all()
