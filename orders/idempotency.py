"""Placing an order once per key, however often a client sends it.

A key is claimed by inserting its row in the transaction that places the
order: a second request under the same key waits on that INSERT (PostgreSQL's
unique index), then finds the first's answer once it commits, or claims the
key itself if the first was refused and rolled back. Nothing is checked
before it is inserted, so there is no window in which two requests both see
the key as free.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .models import Order, PlacementKey

# How long a request waits for another under the same key to finish placing
# its order (placing one takes milliseconds) before it is told to retry.
KEY_WAIT_SECONDS = 10
LOCK_NOT_AVAILABLE = "55P03"


class KeyReused(Exception):
    """The key placed an order for another body: it cannot stand for this one."""


class KeyInFlight(Exception):
    """Another request under the key is still placing its order."""


@dataclass(frozen=True)
class Answer:
    """What the first request under a key was answered, to answer its retries with."""

    order_id: UUID
    status_code: int
    body: dict
    is_replay: bool


def placement_fingerprint(data: dict) -> str:
    """A keyed hash of a request's data, the same for the same data sent again.

    Keyed with SECRET_KEY so that the card number in the data cannot be
    recovered by hashing candidates.
    """
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return salted_hmac("orders.placement_key", canonical, algorithm="sha256").hexdigest()


def order_place_once(
    *,
    source: str,
    key: str,
    fingerprint: str,
    place: Callable[[], tuple[Order, int, dict]],
) -> Answer:
    """Place an order under a key, or give the answer the key already has.

    ``place`` places the order and says what to answer (status code and body);
    it runs at most once per key. An exception from it (the order refused)
    leaves the key free. Raises KeyReused when an API key comes with another
    body (the storefront's token stands for the order whatever is resubmitted),
    KeyInFlight when the first request is still placing the order after
    KEY_WAIT_SECONDS.
    """
    try:
        with transaction.atomic():
            _wait_at_most(KEY_WAIT_SECONDS)
            _forget_expired(source=source, key=key)
            try:
                with transaction.atomic():
                    claim = PlacementKey.objects.create(
                        source=source, key=key, fingerprint=fingerprint
                    )
            except IntegrityError:
                _wait_at_most(None)
                return _answer_given(source=source, key=key, fingerprint=fingerprint)
            _wait_at_most(None)
            order, status_code, body = place()
            claim.order, claim.status_code, claim.body = order, status_code, body
            claim.save(update_fields=["order", "status_code", "body"])
            return Answer(order_id=order.id, status_code=status_code, body=body, is_replay=False)
    except OperationalError as error:
        cause = error.__cause__
        if getattr(cause, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise KeyInFlight(key) from error
        raise


def _wait_at_most(seconds: int | None) -> None:
    """Bound this transaction's lock waits (None: as configured), so that only the wait for
    the key is reported as KeyInFlight."""
    # SQLite has one writer at a time: a second request waits on the database as a whole.
    if connection.vendor == "postgresql":
        value = "DEFAULT" if seconds is None else f"'{int(seconds)}s'"
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout TO {value}")


def _forget_expired(*, source: str, key: str) -> None:
    """A key older than the retention is forgotten even before beat purges it."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_RETENTION)
    PlacementKey.objects.filter(source=source, key=key, created_at__lt=cutoff).delete()


def _answer_given(*, source: str, key: str, fingerprint: str) -> Answer:
    given = PlacementKey.objects.get(source=source, key=key)
    if source == PlacementKey.Source.API and given.fingerprint != fingerprint:
        raise KeyReused(key)
    assert given.order_id is not None  # committed rows always name their order
    return Answer(
        order_id=given.order_id, status_code=given.status_code, body=given.body, is_replay=True
    )


def placement_keys_purge() -> int:
    """Delete the keys older than IDEMPOTENCY_KEY_RETENTION; how many there were."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_RETENTION)
    deleted, _ = PlacementKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
