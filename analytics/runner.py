"""Running a processor: read the log from its committed offset, take it in batches, report lag.

One runner per processor, each in a thread of ``stream_processor`` (or of a
replay). A batch gathers entries for up to ANALYTICS_BATCH_SIZE entries or
the processor's ``batch_seconds`` while more keep coming, and commits at
once when the log goes quiet, so an idle processor is never behind.

Before it reads from its committed offset a runner checks that the log still
holds it: a committed offset past the log's head means the log lost entries
(a Redis that keeps nothing on disk restarted), and the runner records that
as its last error and waits, rather than wait in silence for an offset that
may never come; a first entry past it means entries it never read are gone,
which it records before reading on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from messaging.eventlog import EventLog, LogEntry, LogError, LogReader, Start, event_log
from messaging.eventlog.readahead import ReadAhead
from messaging.publishing import dispatch_together

from .models import ProcessorState, SeenMessage, Slot
from .processing import (
    BatchResult,
    Fenced,
    Processor,
    batch_commit,
    batch_commit_one_by_one,
    offset_commit,
)

logger = logging.getLogger(__name__)

# Seconds between two looks at the log's head (the lag) and two heartbeats.
HEARTBEAT_INTERVAL = 5.0
# Backoff after an error, doubling up to the maximum.
ERROR_BACKOFF = 1.0
ERROR_BACKOFF_MAX = 30.0
# A log that counts its entries one by one (Redis) counts the lag up to this many.
LAG_COUNT_LIMIT = 10_000


class LogLost(LogError):
    """The log no longer holds entries this processor's committed offset says it had."""


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
            except LogLost as exc:
                logger.error("%s Trying again in %ss.", exc, backoff)
                self._record_error(exc)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, ERROR_BACKOFF_MAX)
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
        # The offset committed with the projection, and how far this runner
        # has read: entries with nothing for the processor move only the
        # latter, until the next batch or heartbeat commits it.
        self.committed = self.position = state.offset
        self.position_occurred_at: datetime | None = None
        if state.offset is not None:
            self._log_check(state.offset)
        processor = self._processor(state)
        reader = ReadAhead(
            self.log.reader(state.offset + 1 if state.offset is not None else self.start),
            batch=settings.ANALYTICS_BATCH_SIZE,
        )
        delivered = False
        # The first beat says where the log ends before anything is read;
        # the next come from a thread of their own.
        self._beat()
        self._heartbeat_due = time.monotonic() + HEARTBEAT_INTERVAL
        following = threading.Event()
        watcher = threading.Thread(
            target=self._watch, args=(following,), name=f"{self.name}-heartbeat", daemon=True
        )
        watcher.start()
        try:
            while not self.stop.is_set():
                self._heartbeat(processor)
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
                    processor = self._take(processor, batch)
                if beyond or (
                    self.until is not None
                    and self.position is not None
                    and self.position >= self.until
                ):
                    self.finished = True
                    return
        finally:
            following.set()
            reader.close()
            self._commit_position(processor)
            watcher.join(timeout=HEARTBEAT_INTERVAL)

    def _log_check(self, offset: int) -> None:
        """Say so when the log no longer holds what the committed offset says it held."""
        head = self.log.head()
        if head is None or head < offset:
            raise LogLost(
                f"{self.name}: its committed offset {offset} is past the log's head "
                f"({'the log is empty' if head is None else head}): the log lost entries it held "
                "(a Redis that keeps nothing on disk restarted?). Its figures stand, but a replay "
                "from first can no longer rebuild them. It waits for the log to pass its offset."
            )
        first = self.log.first()
        if first is not None and first > offset + 1:
            gap = LogLost(
                f"{self.name}: the log's first entry ({first}) comes after {offset}, the last it "
                "took: what came before was lost (a Redis that keeps nothing on disk restarted?) "
                "or trimmed before it was read, so any entry it had not read yet is missing from "
                "its figures, and a replay from first can no longer rebuild them. It reads on "
                f"from {first}."
            )
            logger.error("%s", gap)
            self._record_error(gap)

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

    def _take(self, processor: Processor, batch: list[LogEntry]) -> Processor:
        try:
            # What the batch publishes goes out after its commit in one
            # dispatch, with one wait for the broker's confirms.
            with dispatch_together():
                result = batch_commit(
                    processor, expected_offset=self.committed, entries=batch, defer_idle=True
                )
        except Fenced:
            raise
        except Exception:
            logger.exception(
                "%s: a batch of %s failed; taking its entries one by one", self.name, len(batch)
            )
            if self._state().offset != self.committed:
                raise Fenced(f"{self.name} moved on while its batch failed") from None
            offset, processor = batch_commit_one_by_one(
                lambda: self._processor(self._state()),
                expected_offset=self.committed,
                entries=batch,
            )
            assert offset is not None  # the offset of the batch's last entry
            result = BatchResult(offset=offset, processed=len(batch))
        self.position = result.offset
        if result.last_occurred_at is not None:
            self.position_occurred_at = result.last_occurred_at
        if result.written:
            self.committed = result.offset
        self.processed += result.processed
        if self.on_batch is not None:
            self.on_batch(Progress(result.offset, self.processed, self.until))
        return processor

    def _commit_position(self, processor: Processor) -> None:
        """Commit how far the runner has read, where that is past its last commit."""
        if self.position == self.committed or self.position is None:
            return
        try:
            offset_commit(
                processor,
                expected_offset=self.committed,
                offset=self.position,
                last_occurred_at=self.position_occurred_at,
            )
        except Fenced as exc:
            logger.info("%s: its position was not committed: %s", self.name, exc)
            return
        except Exception:
            # Those entries had nothing to write: they are read again, harmlessly.
            logger.exception("%s: its position could not be committed", self.name)
            return
        self.committed = self.position

    def _heartbeat(self, processor: Processor) -> None:
        """In the reading loop, only what must be: the position read past its commit."""
        now = time.monotonic()
        if now < self._heartbeat_due:
            return
        self._heartbeat_due = now + HEARTBEAT_INTERVAL
        self._commit_position(processor)

    def _watch(self, following: threading.Event) -> None:
        """Beat every HEARTBEAT_INTERVAL in a thread of its own while the runner follows the log.

        Asking the log for its head takes a broker round trip or more (a
        stream is read from its last chunk): the reading loop never waits
        for it.
        """
        try:
            while not following.wait(HEARTBEAT_INTERVAL):
                try:
                    self._beat()
                except Exception:
                    logger.exception("%s: its heartbeat failed", self.name)
        finally:
            connection.close()

    def _beat(self) -> None:
        """Record the log's head, how far behind the committed offset is, and that it runs."""
        head = self.log.head()
        state = self._state()
        offset = self.committed
        behind = 0
        if head is not None:
            after = offset
            if after is None:
                # Before its first commit a processor has the whole log ahead of
                # it, which need not begin at 0 (the stream drops its oldest entries).
                first = self.log.first()
                after = first - 1 if first is not None else None
            counted = self.log.entries_between(after, head, limit=LAG_COUNT_LIMIT)
            behind = counted if counted is not None else LAG_COUNT_LIMIT
        lag_seconds = 0.0
        if behind and state.last_entry_occurred_at:
            lag_seconds = max(0.0, (timezone.now() - state.last_entry_occurred_at).total_seconds())
        ProcessorState.objects.filter(pk=state.pk).update(
            head_offset=head,
            lag_entries=behind,
            lag_seconds=lag_seconds,
            heartbeat_at=timezone.now(),
        )
        self._forget_old_ids(state)

    def _forget_old_ids(self, state: ProcessorState) -> None:
        # A copy appended again comes soon after the first (a relay resend):
        # ids older than the dedup window, by event time, are not kept.
        if state.last_entry_occurred_at is None:
            return
        horizon = state.last_entry_occurred_at - timedelta(seconds=settings.ANALYTICS_DEDUP_WINDOW)
        SeenMessage.objects.filter(
            processor=self.name, slot=self.slot, occurred_at__lt=horizon
        ).delete()

    def _record_error(self, exc: Exception) -> None:
        try:
            ProcessorState.objects.filter(processor=self.name, slot=self.slot).update(
                last_error=f"{type(exc).__name__}: {exc}"[:2000], last_error_at=timezone.now()
            )
        except Exception:
            logger.exception("%s: its error could not be recorded", self.name)
