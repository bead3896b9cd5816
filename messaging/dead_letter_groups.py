"""A whole group of dead letters redriven or discarded, in batches, each letter at most once.

Staff ask for a run from the group's page; a task on the messaging queue
does it a batch at a time, each batch one transaction that commits the run's
progress with it, so a group of ten thousand is never one web request and
its page shows how far it got. A batch takes its letters with ``FOR UPDATE
SKIP LOCKED`` and only those still pending: two runs of one group at once
(two staff clicking) share the letters between them, and none is sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import transport
from .dead_letters import audit_fields, dead_letter_state, redrive_targets
from .models import DeadLetter, DeadLetterAction, DeadLetterAudit, DeadLetterGroup
from .models import DeadLetterGroupRun as Run

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


class RunRefused(Exception):
    """A run that cannot be started as asked: the message says why."""


def dead_letter_group_run_start(
    *,
    group: DeadLetterGroup,
    action: str,
    reason: str,
    actor: Any,
    enqueue: Callable[[int], object],
) -> Run:
    """Ask for a redrive or discard of every pending letter of a group, done elsewhere.

    ``enqueue`` hands the run's id to what does it (the task
    ``messaging.dead_letter_group_act``), once the run is committed.
    """
    if action not in (DeadLetterAction.REDRIVE, DeadLetterAction.DISCARD):
        raise RunRefused(f"a group can be redriven or discarded, not {action!r}")
    reason = reason.strip()
    if not reason:
        raise RunRefused("say why: the reason is kept in every letter's audit record")
    pending = _pending(group).count()
    if not pending:
        raise RunRefused("the group has no pending dead letters (all redriven or discarded)")
    with transaction.atomic():
        run = Run.objects.create(
            group=group,
            action=action,
            reason=reason,
            requested_by=actor if getattr(actor, "pk", None) else None,
            requested_at=timezone.now(),
            total=pending,
        )
        transaction.on_commit(lambda: enqueue(run.pk))
    return run


def dead_letter_group_run(*, run_id: int, batch_size: int = BATCH_SIZE) -> Run:
    """Do a run, a batch per transaction, until no pending letter of its group is left."""
    run = Run.objects.select_related("group", "requested_by").get(pk=run_id)
    after = 0
    try:
        while run.finished_at is None:
            after = _batch(run, after=after, batch_size=batch_size)
    except Exception as exc:
        logger.exception("Run %s of dead letter group %s failed", run.pk, run.group_id)
        Run.objects.filter(pk=run.pk).update(
            finished_at=timezone.now(), outcome=f"stopped: {type(exc).__name__}: {exc}"
        )
        raise
    return run


def _batch(run: Run, *, after: int, batch_size: int) -> int:
    """One batch of a run, committed with the run's progress; the last letter id it saw."""
    with transaction.atomic():
        letters = list(
            _pending(run.group)
            .filter(pk__gt=after)
            .order_by("pk")
            .select_for_update(skip_locked=True)[:batch_size]
        )
        if not letters:
            run.finished_at = timezone.now()
            Run.objects.filter(pk=run.pk).update(finished_at=run.finished_at)
            return after
        now = timezone.now()
        acted, skipped = _act(run, letters, now)
        DeadLetterAudit.objects.bulk_create(
            DeadLetterAudit(
                **audit_fields(
                    letter,
                    action=run.action,
                    actor=run.requested_by,
                    reason=run.reason,
                    before=before,
                    at=now,
                )
            )
            for letter, before in acted
        )
        progress: dict[str, Any] = {
            "done": F("done") + len(acted),
            "skipped": F("skipped") + len(skipped),
        }
        if skipped:
            notes = "".join(f"#{pk}: {why}\n" for pk, why in skipped.items())
            run.outcome = progress["outcome"] = (run.outcome + notes)[-10_000:]
        Run.objects.filter(pk=run.pk).update(**progress)
    return letters[-1].pk


def _act(
    run: Run, letters: list[DeadLetter], now
) -> tuple[list[tuple[DeadLetter, dict[str, Any]]], dict[int, str]]:
    """Redrive or discard these locked letters; those acted on (with their state before) and
    those skipped, with why."""
    skipped: dict[int, str] = {}
    if run.action == DeadLetterAction.REDRIVE:
        copies: list[transport.Copy] = []
        sendable = []
        for letter in letters:
            targets = redrive_targets(letter) if letter.is_redrivable else "not an envelope"
            if isinstance(targets, str):
                skipped[letter.pk] = targets
                continue
            envelope = cast(dict[str, Any], letter.envelope)
            copies.extend(transport.Copy(handler, envelope) for handler in targets)
            sendable.append(letter)
        # One confirmed send per batch; on failure the batch rolls back, still pending.
        transport.send(copies)
        letters = sendable
    acted = [(letter, dead_letter_state(letter)) for letter in letters]
    for letter in letters:
        if run.action == DeadLetterAction.REDRIVE:
            letter.redriven_at = now
            letter.redrive_count += 1
        else:
            letter.discarded_at = now
    ids = [letter.pk for letter in letters]
    if run.action == DeadLetterAction.REDRIVE:
        DeadLetter.objects.filter(pk__in=ids).update(
            redriven_at=now, redrive_count=F("redrive_count") + 1
        )
    else:
        DeadLetter.objects.filter(pk__in=ids).update(discarded_at=now)
    return acted, skipped


def _pending(group: DeadLetterGroup):
    return DeadLetter.objects.filter(
        fingerprint=group.fingerprint, redriven_at__isnull=True, discarded_at__isnull=True
    )
