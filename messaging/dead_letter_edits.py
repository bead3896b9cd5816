"""A dead letter's payload edited by staff: checked against its schema, dry-run, then kept.

A dry run runs the letter's handlers as a delivery would (the inbox claim,
then the handler) inside one transaction on every database, which is then
rolled back. What it would have changed is read from PostgreSQL's own
counters of this transaction (``pg_stat_xact_user_tables``: rows inserted,
updated and deleted per table, whatever wrote them, the ORM or raw SQL);
what it would have published is the outbox rows it added, read before the
rollback. Its messages are never dispatched: the dispatch waits for a commit
that does not come. The simulated card gateway keeps its charges in a
database of its own, rolled back with ours.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import connections, transaction
from django.db.models import Max
from django.utils import timezone
from pydantic import ValidationError

from .context import handling
from .dead_letters import audit_fields, redrive_targets
from .delivery import inbox_claim
from .messages import Envelope, Message, MessageError, envelope_read, registry
from .models import DeadLetter, DeadLetterAction, DeadLetterAudit, OutboxMessage


class EditRefused(Exception):
    """An edit that cannot be kept or run: ``errors`` maps each field to what is wrong with it."""

    def __init__(self, message: str, errors: dict[str, str] | None = None):
        super().__init__(message)
        self.errors = errors or {}


@dataclass
class DryRun:
    """What running the letter's handlers on a payload would do, none of it kept."""

    # Per table: rows inserted, updated and deleted.
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    # The messages it would publish: type, version and payload, in order.
    published: list[dict[str, Any]] = field(default_factory=list)
    # The handler's error, if it failed: a dry run of a fix that does not fix.
    error: str = ""


def dead_letter_payload_check(*, dead_letter: DeadLetter, payload_text: str) -> dict[str, Any]:
    """The payload read from JSON, valid for the letter's type and version; or EditRefused."""
    if not dead_letter.is_pending:
        raise EditRefused("this dead letter was redriven or discarded: it can no longer be edited")
    if not isinstance(dead_letter.envelope, dict):
        raise EditRefused("this dead letter holds no envelope, so it has no payload to edit")
    try:
        payload = json.loads(payload_text)
    except ValueError as exc:
        raise EditRefused(f"the payload is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise EditRefused(f"the payload must be a JSON object, not {type(payload).__name__}")
    try:
        envelope = envelope_read({**dead_letter.envelope, "payload": payload})
        message_class = registry.get(envelope.type, envelope.version)
    except MessageError as exc:
        raise EditRefused(f"its envelope cannot be read: {exc}") from exc
    try:
        message_class.model_validate(payload)
    except ValidationError as exc:
        errors = {
            ".".join(str(p) for p in error["loc"]) or "(payload)": error["msg"]
            for error in exc.errors()
        }
        raise EditRefused(
            f"the payload does not fit {envelope.type} v{envelope.version}", errors
        ) from exc
    return payload


@transaction.atomic
def dead_letter_edit(
    *, dead_letter_id: int, payload_text: str, actor: Any, reason: str = ""
) -> DeadLetter:
    """Keep a new payload for a pending dead letter, once it fits its schema; audited."""
    dead_letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id)
    payload = dead_letter_payload_check(dead_letter=dead_letter, payload_text=payload_text)
    envelope = cast(dict[str, Any], dead_letter.envelope)
    before = {"payload": envelope.get("payload")}
    dead_letter.envelope = {**envelope, "payload": payload}
    dead_letter.save(update_fields=["envelope"])
    DeadLetterAudit.objects.create(
        **audit_fields(
            dead_letter,
            action=DeadLetterAction.EDIT,
            actor=actor,
            reason=reason,
            before=before,
            after={"payload": payload},
            at=timezone.now(),
        )
    )
    return dead_letter


class _RollBack(Exception):
    pass


def dead_letter_dry_run(*, dead_letter: DeadLetter, payload_text: str) -> DryRun:
    """Run the letter's handlers on this payload in a transaction that is rolled back."""
    if connections["default"].vendor != "postgresql":
        # The rows it would change are read from PostgreSQL's own counters.
        raise EditRefused("a dry run needs PostgreSQL (DATABASE_URL); this database is not")
    payload = dead_letter_payload_check(dead_letter=dead_letter, payload_text=payload_text)
    targets = redrive_targets(dead_letter)
    if isinstance(targets, str):
        raise EditRefused(f"it cannot be run: {targets}")
    try:
        envelope = envelope_read({**cast(dict[str, Any], dead_letter.envelope), "payload": payload})
        message = registry.read(envelope)
    except MessageError as exc:
        raise EditRefused(f"it cannot be run: {exc}") from exc
    result = DryRun()
    # Every database is in the transaction that is rolled back; PostgreSQL's are counted.
    aliases = [alias for alias in connections if connections[alias].vendor == "postgresql"]
    try:
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(transaction.atomic(using=alias))
            counts = {alias: _row_counts(alias) for alias in aliases}
            last_outbox = OutboxMessage.objects.aggregate(last=Max("id"))["last"] or 0
            result.error = _handle_all(targets, envelope, message)
            for alias in aliases:
                result.changes.update(_changed(alias, counts[alias]))
            # Its own: what others committed meanwhile is visible here too.
            added = OutboxMessage.objects.filter(
                id__gt=last_outbox, causation_id=envelope.message_id
            )
            result.published = [
                dict(row)
                for row in added.order_by("id").values("type", "version", "kind", "payload")
            ]
            raise _RollBack
    except _RollBack:
        pass
    return result


def _handle_all(targets, envelope: Envelope, message: Message) -> str:
    # As a delivery does (messaging.delivery._handle), each in a savepoint
    # so that one failing leaves the others' effects to be counted.
    errors = []
    for handler in targets:
        if not handler.wants(message):
            errors.append(f"{handler.name} does not take this message (its filter)")
            continue
        try:
            with transaction.atomic():
                if not inbox_claim(message_id=envelope.message_id, handler_name=handler.name):
                    errors.append(f"{handler.name} took effect for this message already")
                    continue
                with handling(envelope):
                    handler.fn(message, envelope)
        except Exception as exc:
            errors.append(f"{handler.name}: {type(exc).__name__}: {exc}")
    return "; ".join(errors)


_COUNTS = (
    "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables "
    "WHERE n_tup_ins + n_tup_upd + n_tup_del > 0"
)


def _row_counts(alias: str) -> dict[str, tuple[int, int, int]]:
    # This transaction's rows written so far, per table (PostgreSQL's own counters).
    with connections[alias].cursor() as cursor:
        cursor.execute(_COUNTS)
        return {name: (ins, upd, dele) for name, ins, upd, dele in cursor.fetchall()}


def _changed(alias: str, before: dict[str, tuple[int, int, int]]) -> dict[str, dict[str, int]]:
    changed = {}
    for name, counts in _row_counts(alias).items():
        was = before.get(name, (0, 0, 0))
        inserted, updated, deleted = (now - then for now, then in zip(counts, was, strict=True))
        if inserted or updated or deleted:
            label = name if alias == "default" else f"{alias}: {name}"
            changed[label] = {"inserted": inserted, "updated": updated, "deleted": deleted}
    return changed
