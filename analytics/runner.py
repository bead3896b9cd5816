"""Running a processor: read the log from its committed offset, take it in batches, report lag.

One runner per processor, each in a thread of ``stream_processor`` (or of a
replay). A batch gathers entries for up to ANALYTICS_BATCH_SIZE entries or
the processor's ``batch_seconds`` while more keep coming, and commits at
once when the log goes quiet, so an idle processor is never behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from messaging.eventlog import EventLog, LogEntry, LogReader, Start, event_log

from .models import ProcessorState, Slot
from .processing import BatchResult, Fenced, Processor, batch_commit, batch_commit_one_by_one

logger = logging.getLogger(__name__)

# Seconds between two looks at the log's head (the lag) and two heartbeats.
HEARTBEAT_INTERVAL = 5.0
# Backoff after an error, doubling up to the maximum.
ERROR_BACKOFF = 1.0
ERROR_BACKOFF_MAX = 30.0


@dataclass
class Progress:
    offset: int | None
    processed: int
    until: int | None


class Runner:
    """Keeps one processor's projection up with the log until ``stop`` is set.

    ``until`` (a replay) stops it once the committed offset reaches that
    offset. ``start`` is where a processor with no committed offset begins.
    """

    def __init__(
        self,
        processor_class: type[Processor],
        *,
        stop: threading.Event,
        slot: str = Slot.LIVE,
        replaying: bool = False,
        start: Start = "first",
        until: int | None = None,
        log: EventLog | None = None,
        on_batch: Callable[[Progress], None] | None = None,
    ) -> None:
        self.processor_class = processor_class
        self.stop = stop
        self.slot = slot
        self.replaying = replaying
        self.start = start
        self.until = until
        self.log = log or event_log()
        self.on_batch = on_batch
        self.processed = 0
        self.finished = False
        self._heartbeat_due = 0.0

    @property
    def name(self) -> str:
        return self.processor_class.name

    def run(self) -> None:
        backoff = ERROR_BACKOFF
        while not self.stop.is_set() and not self.done:
            try:
                self._follow()
                backoff = ERROR_BACKOFF
            except Fenced as exc:
                logger.info("%s reads on from its committed offset: %s", self.name, exc)
            except Exception as exc:
                logger.exception("%s failed; trying again in %ss", self.name, backoff)
                self._record_error(exc)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, ERROR_BACKOFF_MAX)
            finally:
                close_old_connections()
        connection.close()

    @property
    def done(self) -> bool:
        if self.finished or self.until is None:
            return self.finished
        offset = self._state().offset
        return offset is not None and offset >= self.until

    def _state(self) -> ProcessorState:
        state, _ = ProcessorState.objects.get_or_create(processor=self.name, slot=self.slot)
        return state

    def _processor(self, state: ProcessorState) -> Processor:
        return self.processor_class(slot=self.slot, replaying=self.replaying, state=state.state)

    def _follow(self) -> None:
        state = self._state()
        offset = state.offset
        processor = self._processor(state)
        reader = self.log.reader(offset + 1 if offset is not None else self.start)
        delivered = False
        try:
            while not self.stop.is_set():
                self._heartbeat(offset)
                batch = self._gather(reader, processor.batch_seconds)
                if self.until is not None and not batch and not delivered:
                    # Every entry up to `until` is in the log already: a reader
                    # that gives none started past the last one (a replay from
                    # a time after it), and would wait for ever.
                    self.finished = True
                    return
                delivered = delivered or bool(batch)
                beyond = False
                if self.until is not None:
                    wanted = [entry for entry in batch if entry.offset <= self.until]
                    beyond, batch = len(wanted) < len(batch), wanted
                if batch:
                    offset, processor = self._take(processor, offset, batch)
                if beyond or (
                    self.until is not None and offset is not None and offset >= self.until
                ):
                    self.finished = True
                    return
        finally:
            reader.close()

    def _gather(self, reader: LogReader, batch_seconds: float) -> list[LogEntry]:
        size = settings.ANALYTICS_BATCH_SIZE
        batch = reader.read(max_entries=size, timeout=1.0)
        if not batch:
            return batch
        deadline = time.monotonic() + batch_seconds
        while len(batch) < size and time.monotonic() < deadline:
            more = reader.read(max_entries=size - len(batch), timeout=0)
            if not more:
                break
            batch.extend(more)
        return batch

    def _take(self, processor: Processor, offset: int | None, batch: list[LogEntry]):
        try:
            result = batch_commit(processor, expected_offset=offset, entries=batch)
        except Fenced:
            raise
        except Exception:
            logger.exception(
                "%s: a batch of %s failed; taking it one by one", self.name, len(batch)
            )
            state = self._state()
            if state.offset != offset:
                raise Fenced(f"{self.name} moved on while its batch failed") from None
            offset, processor = batch_commit_one_by_one(
                lambda: self._processor(self._state()), expected_offset=offset, entries=batch
            )
            result = BatchResult(offset=offset, processed=len(batch))
        self.processed += result.processed
        if self.on_batch is not None:
            self.on_batch(Progress(result.offset, self.processed, self.until))
        return result.offset, processor

    def _heartbeat(self, offset: int | None) -> None:
        now = time.monotonic()
        if now < self._heartbeat_due:
            return
        self._heartbeat_due = now + HEARTBEAT_INTERVAL
        head = self.log.head()
        state = self._state()
        behind = 0
        if head is not None:
            # Before its first commit a processor has the whole log ahead of
            # it, which need not begin at 0 (the stream drops its oldest entries).
            before = offset if offset is not None else (self.log.first() or 0) - 1
            behind = max(0, head - before)
        lag_seconds = 0.0
        if behind and state.last_entry_occurred_at:
            lag_seconds = max(0.0, (timezone.now() - state.last_entry_occurred_at).total_seconds())
        ProcessorState.objects.filter(pk=state.pk).update(
            head_offset=head,
            lag_entries=behind,
            lag_seconds=lag_seconds,
            heartbeat_at=timezone.now(),
        )

    def _record_error(self, exc: Exception) -> None:
        try:
            ProcessorState.objects.filter(processor=self.name, slot=self.slot).update(
                last_error=f"{type(exc).__name__}: {exc}"[:2000], last_error_at=timezone.now()
            )
        except Exception:
            logger.exception("%s: its error could not be recorded", self.name)
