"""Per app queue: depth and consumers (the broker), deliveries per second, retries, dead letters.

Deliveries are the inbox records written in the last 10 and 60 seconds (one
query on the processed_at index), each counted for its handler's queue.
Retries come from the Redis counters of ``live.retries``; dead letters are
those not redriven yet, and those recorded in the last hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q

from messaging.models import DeadLetter, InboxRecord
from messaging.subscriptions import handler_named

from ..retries import RetriesUnavailable, retries_recent
from .broker import BrokerReading, QueueProbe

RATE_WINDOWS = (10, 60)
RETRY_MINUTES = 5


def queue_of(handler_name: str) -> str:
    """The queue a handler consumes from; for one this process does not know, its app's."""
    handler = handler_named(handler_name)
    return handler.queue if handler is not None else handler_name.partition(".")[0]


def deliveries_per_second(*, now: datetime) -> dict[str, dict[int, float]]:
    """Per queue, the deliveries that took effect per second over each of RATE_WINDOWS."""
    short, long = RATE_WINDOWS
    rows = (
        InboxRecord.objects.filter(processed_at__gte=now - timedelta(seconds=long))
        .values_list("handler")
        .annotate(
            recent=Count("id", filter=Q(processed_at__gte=now - timedelta(seconds=short))),
            all=Count("id"),
        )
    )
    totals: dict[str, dict[int, int]] = {}
    for handler_name, recent, every in rows:
        queue = totals.setdefault(queue_of(handler_name), {short: 0, long: 0})
        queue[short] += recent
        queue[long] += every
    return {
        queue: {window: round(n / window, 2) for window, n in counts.items()}
        for queue, counts in totals.items()
    }


def dead_letters(*, now: datetime) -> dict[str, dict[str, int]]:
    """Per queue: dead letters not redriven, and dead letters recorded in the last hour."""
    rows = (
        DeadLetter.objects.filter(
            Q(redriven_at__isnull=True) | Q(last_failed_at__gte=now - timedelta(hours=1))
        )
        .values_list("queue")
        .annotate(
            pending=Count("id", filter=Q(redriven_at__isnull=True)),
            last_hour=Count("id", filter=Q(last_failed_at__gte=now - timedelta(hours=1))),
        )
    )
    return {queue: {"pending": pending, "last_hour": hour} for queue, pending, hour in rows}


def queues(*, now: datetime, probe: QueueProbe) -> dict:
    """One row per queue of MESSAGING_QUEUES, and whether broker and retry figures are known."""
    names = list(settings.MESSAGING_QUEUES)
    reading: BrokerReading = probe.read(names)
    try:
        retries: dict[str, int] | None = retries_recent(names, minutes=RETRY_MINUTES)
        retries_reason = None
    except RetriesUnavailable as exc:
        retries, retries_reason = None, str(exc)
    rates = deliveries_per_second(now=now)
    dead = dead_letters(now=now)
    short, long = RATE_WINDOWS
    rows = []
    for name in names:
        count = reading.queues.get(name)
        rate = rates.get(name, {short: 0.0, long: 0.0})
        letters = dead.get(name, {"pending": 0, "last_hour": 0})
        rows.append(
            {
                "queue": name,
                "depth": count.depth if count else None,
                "consumers": count.consumers if count else None,
                "broker_reason": count.reason if count else reading.reason,
                "deliveries_per_second_10s": rate[short],
                "deliveries_per_second_60s": rate[long],
                "retries_5m": retries.get(name, 0) if retries is not None else None,
                "dead_letters_pending": letters["pending"],
                "dead_letters_last_hour": letters["last_hour"],
            }
        )
    return {
        "broker": {"is_available": reading.is_available, "reason": reading.reason},
        "retries": {
            "minutes": RETRY_MINUTES,
            "is_counted": retries is not None,
            "reason": retries_reason,
        },
        "rows": rows,
    }
