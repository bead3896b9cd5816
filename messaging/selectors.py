from datetime import datetime
from typing import TypedDict

from django.db.models import Count, Max, Min, OuterRef, QuerySet, Subquery

from .models import DeadLetter, OutboxMessage, RelayRun

# The model, beside this module's older DeadLetterGroup (a count per handler and reason).
from .models import DeadLetterGroup as CauseGroup


def conversation_messages(*, correlation_id: str) -> QuerySet[OutboxMessage]:
    """Every message of one business conversation (an order, say), oldest first."""
    return OutboxMessage.objects.filter(correlation_id=correlation_id).order_by("id")


def outbox_oldest_pending() -> OutboxMessage | None:
    """The oldest message not yet dispatched (read on the outbox_pending partial index)."""
    return (
        OutboxMessage.objects.filter(dispatched_at__isnull=True)
        .order_by("id")
        .only("id", "type", "message_id", "occurred_at", "dispatch_attempts", "last_dispatch_error")
        .first()
    )


def outbox_pending_count(*, up_to: int) -> int:
    """How many messages wait to be dispatched, counted up to ``up_to`` (a bounded read)."""
    pending = OutboxMessage.objects.filter(dispatched_at__isnull=True).order_by()
    return pending[:up_to].count()


def relay_last_run() -> RelayRun | None:
    """The outbox relay's record of its last run, if it ever ran on this database."""
    return RelayRun.objects.filter(name=RelayRun.OUTBOX).first()


class DeadLetterGroup(TypedDict):
    handler: str
    reason: str
    count: int


def dead_letters_recorded_since(since: datetime) -> list[DeadLetterGroup]:
    """Dead letters recorded since then, counted per handler and reason (most first)."""
    return list(
        DeadLetter.objects.filter(last_failed_at__gte=since)
        .values("handler", "reason")
        .annotate(count=Count("id"))
        .order_by("-count", "handler", "reason")
    )


def dead_letter_groups_counted(
    groups: QuerySet[CauseGroup],
) -> QuerySet[CauseGroup]:
    """The groups with their letters counted (all, and pending) and first and last seen.

    Read from the letters on each call (on their fingerprint's index), so never stale.
    """
    letters = DeadLetter.objects.filter(fingerprint=OuterRef("fingerprint")).order_by()
    pending = letters.filter(redriven_at__isnull=True, discarded_at__isnull=True)
    return groups.annotate(
        letter_count=_aggregated(letters, Count("id")),
        pending_count=_aggregated(pending, Count("id")),
        first_seen_at=_aggregated(letters, Min("first_failed_at")),
        last_seen_at=_aggregated(letters, Max("last_failed_at")),
    )


def dead_letter_group_message_types(group: CauseGroup) -> list[str]:
    """The message types among a group's letters ("?" for a body that named none)."""
    types = group.dead_letters().order_by().values_list("message_type", flat=True).distinct()
    return sorted(t or "?" for t in types[:20])


def dead_letter_group_sample(group: CauseGroup) -> DeadLetter | None:
    """The group's latest letter, its sample."""
    return group.dead_letters().order_by("-last_failed_at", "-id").first()


def _aggregated(letters: QuerySet[DeadLetter], aggregate) -> Subquery:
    # One aggregate of the group's letters, as a column of the group's row.
    return Subquery(letters.values("fingerprint").annotate(value=aggregate).values("value")[:1])
