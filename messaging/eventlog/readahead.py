"""Reading a log ahead, in a thread of its own, while the entries already read are taken.

A processor spends a batch's time in two waits: for the broker to deliver
the entries, and for the database to commit what it made of them. A reader
that runs ahead overlaps the two: the next batch is read and parsed while
this one commits. The underlying reader is used by that thread alone.
"""

from __future__ import annotations

import queue
import threading

from django.db import connection

from .entries import LogEntry, LogReader

# Reads held ready for the taker; past this the thread waits for it.
DEPTH = 4
# How long one read in the thread waits, so that it sees a close promptly.
POLL = 0.2


class ReadAhead:
    def __init__(self, reader: LogReader, *, batch: int) -> None:
        self.reader = reader
        self.batch = batch
        self.ready: queue.Queue[list[LogEntry] | BaseException] = queue.Queue(maxsize=DEPTH)
        self.closed = threading.Event()
        self.left: list[LogEntry] = []
        self.thread = threading.Thread(target=self._run, name="log-read-ahead", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.closed.is_set():
                entries = self.reader.read(max_entries=self.batch, timeout=POLL)
                while entries and not self.closed.is_set():
                    try:
                        self.ready.put(entries, timeout=POLL)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # handed to the taker, who raises it
            self.ready.put(exc)
        finally:
            self.reader.close()
            connection.close()  # a database log read in this thread

    def read(self, *, max_entries: int, timeout: float) -> list[LogEntry]:
        entries, self.left = self.left, []
        try:
            while len(entries) < max_entries:
                wait = timeout if not entries else 0
                got = self.ready.get(timeout=wait) if wait > 0 else self.ready.get_nowait()
                if isinstance(got, BaseException):
                    raise got
                entries.extend(got)
        except queue.Empty:
            pass
        entries, self.left = entries[:max_entries], entries[max_entries:]
        return entries

    def close(self) -> None:
        self.closed.set()
        self.thread.join(timeout=POLL * 5)
