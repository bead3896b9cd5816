"""The staff stream's ticket: a signed, expiring proof that a staff member opened the dashboard.

The streaming server may run on another origin than the pages, where the
session cookie does not follow an EventSource without CORS credentials; a
ticket in the URL, signed with SECRET_KEY, needs neither. An order's stream
needs none: its unguessable id is the capability, as for its page.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing

SALT = "live.staff-stream"
MAX_AGE = 12 * 3600


def staff_ticket(user: AbstractBaseUser | AnonymousUser) -> str:
    return signing.dumps({"user": user.pk}, salt=SALT, compress=True)


def staff_ticket_user(ticket: str) -> int | str | None:
    """The primary key of the user a valid, unexpired ticket was given to; None otherwise."""
    try:
        return signing.loads(ticket, salt=SALT, max_age=MAX_AGE)["user"]
    except (signing.BadSignature, KeyError, TypeError):  # BadSignature: also an expired one
        return None
