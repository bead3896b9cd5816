"""The redrive phase: a group of dead letters of one cause redriven, beside two baselines.

Each run takes, side by side on the same broker and database:

- the group: ``--redrive-letters`` (10,000) dead letters of one cause,
  redriven as the group's task does it (``messaging.dead_letter_groups``: 500
  letters per transaction, locked, sent with one wait for the confirms,
  marked and audited), in this process;
- the letter-by-letter redrive that came before (``dead_letters_redrive``,
  what the admin's action and ``manage.py redrive_dead_letters`` run: one
  transaction and one confirmed send per letter), on up to 1,000 letters;
- the publish floor: the same copies sent in the same batches by
  ``transport.send`` alone, with no database work.

Every letter goes to the bench's probe queue, which nobody consumes during
the phase (it is counted, then purged).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from ..broker import purge_queues, queue_depths
from ..cli import Options
from ..environment import fresh
from ..report import fmt

# The letter-by-letter baseline is a hundred times slower: a sample is enough.
ONE_BY_ONE_MAX = 1000


def run(options: Options, log_dir: Path, results: dict) -> None:
    from django.conf import settings

    queue = settings.PROBE_QUEUE
    for n in range(options.runs):
        fresh()
        purge_queues([queue])
        letters = options.redrive_letters
        group = letters_of_one_cause(letters, cause="group")
        group_s = timed(redrive_group, group)
        queued = queue_depths([queue])[queue]
        purge_queues([queue])

        sample = min(letters, ONE_BY_ONE_MAX)
        one_by_one = letters_of_one_cause(sample, cause="one by one")
        one_by_one_s = timed(redrive_one_by_one, one_by_one)
        purge_queues([queue])

        floor_s = publish_floor(letters)
        purge_queues([queue])

        outcome = {
            "letters": letters,
            "queued": queued,
            "group_per_s": letters / group_s,
            "one_by_one_letters": sample,
            "one_by_one_per_s": sample / one_by_one_s,
            "floor_per_s": letters / floor_s,
        }
        results["redrive"].append(outcome)
        print(
            f"  redrive run {n + 1}/{options.runs}: a group of {letters}: "
            f"{fmt(outcome['group_per_s'])} letters/s; one by one "
            f"{fmt(outcome['one_by_one_per_s'])}/s; publish floor {fmt(outcome['floor_per_s'])}/s",
            flush=True,
        )


def timed(work, *args) -> float:
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


def letters_of_one_cause(count: int, *, cause: str):
    """``count`` dead letters of the bench's probe handler, as a delivery records them."""
    from django.utils import timezone

    from messaging.dead_letters import dead_letter_record
    from messaging.models import DeadLetter, DeadLetterGroup
    from messaging.subscriptions import handlers_for

    from ..probe import BenchPinged, ping_envelope

    [handler] = handlers_for(BenchPinged)
    now = timezone.now()
    # The first through the recording service (it makes the group), the rest as rows like it.
    first = dead_letter_record(
        reason=DeadLetter.Reason.RETRIES_EXHAUSTED,
        error=f"RuntimeError: {cause} failed on ping 0",
        handler_name=handler.name,
        queue=handler.queue,
        envelope=ping_envelope(BenchPinged(seq=0), now).to_wire(),
    )
    rows = [
        DeadLetter(
            message_id=uuid.uuid4(),
            message_type=first.message_type,
            handler=first.handler,
            queue=first.queue,
            reason=first.reason,
            error=f"RuntimeError: {cause} failed on ping {i}",
            envelope=ping_envelope(BenchPinged(seq=i), now).to_wire(),
            first_failed_at=now,
            last_failed_at=now,
            fingerprint=first.fingerprint,
        )
        for i in range(1, count)
    ]
    DeadLetter.objects.bulk_create(rows, batch_size=1000)
    return DeadLetterGroup.objects.get(fingerprint=first.fingerprint)


def redrive_group(group) -> None:
    from messaging.dead_letter_groups import dead_letter_group_run, dead_letter_group_run_start

    run = dead_letter_group_run_start(
        group=group, action="redrive", reason="benchmark", actor=None, enqueue=id
    )
    dead_letter_group_run(run_id=run.pk)


def redrive_one_by_one(group) -> None:
    from messaging.dead_letters import dead_letters_redrive

    dead_letters_redrive(ids=list(group.dead_letters().values_list("pk", flat=True)))


def publish_floor(count: int) -> float:
    """Seconds to send the group's copies in its batches, with no database work at all."""
    from django.utils import timezone

    from messaging import transport
    from messaging.dead_letter_groups import BATCH_SIZE
    from messaging.subscriptions import handlers_for

    from ..probe import BenchPinged, ping_envelope

    [handler] = handlers_for(BenchPinged)
    now = timezone.now()
    copies = [
        transport.Copy(handler, ping_envelope(BenchPinged(seq=i), now).to_wire())
        for i in range(count)
    ]
    started = time.perf_counter()
    for start in range(0, count, BATCH_SIZE):
        transport.send(copies[start : start + BATCH_SIZE])
    return time.perf_counter() - started
