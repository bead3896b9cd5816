"""How a UUID reads to people: the short reference the emails, the admin and staff use."""

from __future__ import annotations

from uuid import UUID


def short_reference(value: UUID | str) -> str:
    """A UUID's first group in capitals ("1A2B3C4D"); anything that is not a UUID, as it is.

    Eight hex digits tell records apart for a person reading a list or an email, and fit
    a list's column where the 36 characters of the whole id wrap; the admin's searches
    take either.
    """
    try:
        return str(UUID(str(value))).split("-")[0].upper()
    except ValueError:
        return str(value)
