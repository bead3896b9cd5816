"""The relay: send what the dispatch after commit did not (run by every worker, or a command)."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from pydantic import ValidationError

from .models import OutboxMessage, RelayRun
from .outbox import Entry, outbox_dispatch, outbox_record_failure
from .signals import notify, relay_ran

logger = logging.getLogger(__name__)

# Messages sent before the relay waits for their confirms.
RELAY_CONFIRM_CHUNK = 100


@dataclass(frozen=True)
class RelayResult:
    dispatched: int
    failed: int

    def __str__(self) -> str:
        return f"{self.dispatched} dispatched, {self.failed} failed"


def outbox_relay(
    *, batch_size: int | None = None, grace_seconds: float | None = None, runner: str = ""
) -> RelayResult:
    """Send pending messages older than the grace period, oldest first; record the run.

    Several relays may run at once (every app worker runs one): each takes
    rows the others have not locked (PostgreSQL's SKIP LOCKED), or, on
    SQLite, waits for the other's transaction (IMMEDIATE takes the write lock
    when it begins), so no row is sent by two relays at once. The rows go in
    chunks, each confirmed with one wait. Once the broker failed a chunk, it
    and the rest of the batch are recorded as failed and wait for the next
    run: the broker is then most likely unreachable. A row that cannot be
    read or routed is recorded and skipped. ``runner`` names who ran it in
    the run's record (by default this host and process).
    """
    batch_size = batch_size or settings.MESSAGING_RELAY_BATCH
    if grace_seconds is None:
        grace_seconds = settings.MESSAGING_RELAY_GRACE
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    pending = OutboxMessage.objects.filter(
        dispatched_at__isnull=True, occurred_at__lte=cutoff
    ).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        pending = pending.select_for_update(skip_locked=True)
    dispatched = failed = 0
    with transaction.atomic():
        rows = list(pending[:batch_size])
        for start in range(0, len(rows), RELAY_CONFIRM_CHUNK):
            chunk, unreadable = _entries(rows[start : start + RELAY_CONFIRM_CHUNK])
            outcome = outbox_dispatch(chunk)
            dispatched = dispatched + outcome.dispatched
            failed = failed + outcome.failed + unreadable
            if outcome.broker_error:
                rest = [row.pk for row in rows[start + RELAY_CONFIRM_CHUNK :]]
                outbox_record_failure(pks=rest, error=outcome.broker_error)
                failed += len(rest)
                logger.warning("Relay: the broker failed, the rest waits: %s", outcome.broker_error)
                break
    if dispatched or failed:
        logger.info("Outbox relay: %s dispatched, %s failed", dispatched, failed)
    result = RelayResult(dispatched=dispatched, failed=failed)
    runner = runner or f"{socket.gethostname()} pid {os.getpid()}"
    _record_run(result, runner=runner)
    notify(relay_ran, dispatched=dispatched, failed=failed, runner=runner)
    return result


def _record_run(result: RelayResult, *, runner: str) -> None:
    """Upsert the relay's one row in a single statement (every worker's relay writes it)."""
    RelayRun.objects.bulk_create(
        [
            RelayRun(
                name=RelayRun.OUTBOX,
                ran_at=timezone.now(),
                runner=runner[:200],
                dispatched=result.dispatched,
                failed=result.failed,
            )
        ],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["ran_at", "runner", "dispatched", "failed"],
    )


def _entries(rows: list[OutboxMessage]) -> tuple[list[Entry], int]:
    """The rows as entries to send, and how many could not be read as an envelope."""
    entries, unreadable = [], 0
    for row in rows:
        try:
            entries.append(Entry.of(row))
        except ValidationError as exc:
            outbox_record_failure(pks=[row.pk], error=f"not a readable envelope: {exc}")
            unreadable += 1
    return entries, unreadable
