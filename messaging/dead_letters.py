"""Dead letters: record what can never succeed as it is, and send it again once fixed."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import transport
from .fanout import FANNED_OUT_TASK, handlers_named
from .fingerprints import fingerprint_of
from .models import DeadLetter, DeadLetterAction, DeadLetterAudit, DeadLetterGroup
from .signals import message_dead_lettered, notify
from .subscriptions import Handler, handler_named

logger = logging.getLogger(__name__)

MAX_BODY_CHARS = 64 * 1024


def dead_letter_record(
    *,
    reason: str,
    error: str,
    handler_name: str = "",
    queue: str = "",
    envelope: dict[str, Any] | None = None,
    body: str = "",
    content_type: str = "application/json",
    headers: dict[str, Any] | None = None,
    traceback_text: str = "",
    attempts: int = 1,
    first_failed_at: datetime | str | None = None,
    last_failed_at: datetime | None = None,
) -> DeadLetter:
    """Keep a message that failed for good, with everything a person needs to act on it."""
    now = timezone.now()
    if isinstance(first_failed_at, str):
        first_failed_at = parse_datetime(first_failed_at)
    envelope = _without_nul(envelope) if isinstance(envelope, dict) else None
    error, traceback_text, body = (_without_nul(x) for x in (error, traceback_text, body))
    handler_name = handler_name[:200]
    found = fingerprint_of(
        handler=handler_name, reason=reason, error=error, traceback_text=traceback_text
    )
    # ON CONFLICT DO NOTHING: two workers recording the first letters of one
    # cause at once make one group, without an error for either.
    DeadLetterGroup.objects.bulk_create(
        [
            DeadLetterGroup(
                fingerprint=found.digest,
                handler=handler_name,
                reason=reason,
                exception_type=found.exception_type[:200],
                message=found.message,
                frame=found.frame[:300],
                created_at=now,
            )
        ],
        ignore_conflicts=True,
    )
    dead_letter = DeadLetter.objects.create(
        message_id=_uuid_or_none((envelope or {}).get("message_id")),
        message_type=str((envelope or {}).get("type", ""))[:100],
        handler=handler_name,
        queue=queue[:100],
        reason=reason,
        error=error,
        traceback=traceback_text,
        envelope=envelope,
        body=body[:MAX_BODY_CHARS],
        content_type=(content_type or "")[:100],
        headers=_without_nul(_json_safe(headers or {})),
        attempts=attempts,
        first_failed_at=first_failed_at or now,
        last_failed_at=last_failed_at or now,
        fingerprint=found.digest,
    )
    # Announced once it is kept for good (at once outside a transaction).
    transaction.on_commit(lambda: notify(message_dead_lettered, dead_letter=dead_letter))
    return dead_letter


def dead_letter_record_raw(
    *, message, reason: str, error: str, read_envelope: bool = True, queue: str | None = None
) -> DeadLetter:
    """Keep a broker message that never reached a handler (undecodable, unknown task...).

    Without ``read_envelope`` (an oversized body) only the body's first
    MAX_BODY_CHARS are kept, as text. ``queue`` is the queue it arrived on,
    when the routing key does not say (a copy RabbitMQ made for a CC'd queue).
    """
    headers = dict(message.headers or {})
    raw = message.body if isinstance(message.body, bytes) else str(message.body).encode()
    envelope = (
        _envelope_in_task_body(raw)
        if read_envelope and message.content_type == "application/json"
        else None
    )
    return dead_letter_record(
        reason=reason,
        error=error,
        handler_name=str(headers.get("task") or ""),
        queue=queue or str((message.delivery_info or {}).get("routing_key") or ""),
        envelope=envelope,
        body="" if envelope else _as_text(raw[:MAX_BODY_CHARS]),
        content_type=message.content_type or "",
        headers=headers,
    )


@dataclass
class RedriveResult:
    redriven: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"{len(self.redriven)} redriven"
        if self.skipped:
            reasons = "; ".join(f"#{pk}: {why}" for pk, why in sorted(self.skipped.items()))
            text += f", {len(self.skipped)} skipped ({reasons})"
        return text


def dead_letters_redrive(
    *, ids: Iterable[int], actor: Any = None, reason: str = ""
) -> RedriveResult:
    """Send dead letters back to their handler's queue, each at most once.

    The handler's inbox makes a redrive safe even if the original delivery
    did take effect after all. ``actor`` is the user who asked (None: the
    command line), kept with ``reason`` in each letter's audit record.
    """
    result = RedriveResult()
    for pk in sorted(set(ids)):
        with transaction.atomic():
            dead_letter = DeadLetter.objects.select_for_update().filter(pk=pk).first()
            if dead_letter is None:
                result.skipped[pk] = "no such dead letter"
                continue
            if dead_letter.redriven_at is not None:
                result.skipped[pk] = (
                    f"already redriven at {dead_letter.redriven_at:%Y-%m-%d %H:%M:%S}"
                )
                continue
            if dead_letter.discarded_at is not None:
                result.skipped[pk] = f"discarded at {dead_letter.discarded_at:%Y-%m-%d %H:%M:%S}"
                continue
            if not dead_letter.is_redrivable:
                result.skipped[pk] = "the message could not be read as an envelope for a handler"
                continue
            targets = redrive_targets(dead_letter)
            if isinstance(targets, str):
                result.skipped[pk] = targets
                continue
            try:
                envelope = cast(dict[str, Any], dead_letter.envelope)  # is_redrivable: a dict
                transport.send([transport.Copy(h, envelope) for h in targets])
            except Exception as exc:
                result.skipped[pk] = f"could not publish: {type(exc).__name__}: {exc}"
                continue
            before = dead_letter_state(dead_letter)
            dead_letter.redriven_at = timezone.now()
            dead_letter.redrive_count += 1
            dead_letter.save(update_fields=["redriven_at", "redrive_count"])
            DeadLetterAudit.objects.create(
                **audit_fields(
                    dead_letter,
                    action=DeadLetterAction.REDRIVE,
                    actor=actor,
                    reason=reason,
                    before=before,
                    at=dead_letter.redriven_at,
                )
            )
            result.redriven.append(pk)
    logger.info("Redrive: %s", result)
    return result


def dead_letter_state(dead_letter: DeadLetter) -> dict[str, Any]:
    """What a redrive or discard changes on a letter, as an audit record keeps it."""
    return {
        name: (value.isoformat() if isinstance(value, datetime) else value)
        for name in ("redriven_at", "redrive_count", "discarded_at")
        for value in [getattr(dead_letter, name)]
    }


def audit_fields(
    dead_letter: DeadLetter,
    *,
    action: str,
    actor: Any,
    reason: str,
    before: dict[str, Any],
    at: datetime,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The fields of the audit record of one action on one letter (``after``: its state now)."""
    return {
        "dead_letter": dead_letter,
        "fingerprint": dead_letter.fingerprint,
        "action": action,
        "actor": actor if getattr(actor, "pk", None) else None,
        "actor_name": getattr(actor, "username", "") or "command line",
        "at": at,
        "reason": reason,
        "before": before,
        "after": after if after is not None else dead_letter_state(dead_letter),
    }


def redrive_targets(dead_letter: DeadLetter) -> list[Handler] | str:
    """The handlers a dead letter goes back to, or why there are none.

    A copy of a message published for several queues (``messaging.fanout``)
    that no handler took goes to the handler it names for the queue it
    arrived on, or else to every handler it names: the inbox skips it for
    any that took effect already.
    """
    names = [dead_letter.handler]
    if dead_letter.handler == FANNED_OUT_TASK:
        named = handlers_named(dead_letter.headers or {})
        names = [named[dead_letter.queue]] if dead_letter.queue in named else list(named.values())
    if not names:
        return "a message for several queues that names no handler"
    found = [(name, handler_named(name)) for name in names]
    unknown = [name for name, handler in found if handler is None]
    if unknown:
        return f"no handler is named {', '.join(unknown)} in this version"
    return [handler for _, handler in found if handler is not None]


def _envelope_in_task_body(raw: bytes) -> dict[str, Any] | None:
    # A Celery protocol 2 body is [args, kwargs, embed]; ours carry the
    # envelope as the keyword "envelope".
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if isinstance(body, list) and len(body) == 3 and isinstance(body[1], dict):
        envelope = body[1].get("envelope")
        return envelope if isinstance(envelope, dict) else None
    return None


def _as_text(raw: bytes) -> str:
    # Binary bodies (pickle, say) are kept as base64: a database text column
    # takes no NUL bytes.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return "base64:" + base64.b64encode(raw).decode("ascii")
    return text


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def _without_nul(value: Any) -> Any:
    # PostgreSQL takes no NUL character in text or JSON: keep it visible as \0.
    if isinstance(value, str):
        return value.replace("\x00", "\\0")
    return json.loads(json.dumps(value).replace("\\u0000", "\\\\0"))


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(value, default=str))
