"""Where the shop delivers: the ISO 3166 countries, less those the carrier does not serve.

Orders checks a destination before it takes an order (the form's select, the
API's 422); shipping still refuses an unserved one, as its copy of the setting
is the one that counts when the two disagree.
"""

from django.conf import settings
from django_countries import countries


def shippable_countries() -> list[tuple[str, str]]:
    """(code, name) of every country the carrier serves, sorted by name."""
    unserved = {code.upper() for code in settings.SHIPPING_UNSERVED_COUNTRIES}
    return [(code, name) for code, name in countries if code not in unserved]


def country_problem(code: str) -> str | None:
    """Why an order cannot go to this country code, in words; None when it can."""
    upper = code.upper()
    if upper not in countries:
        return f"{code!r} is not an ISO 3166 country code; use two capital letters, e.g. FR."
    # Said before the capitals, so that "aq" is told at once that it cannot be had.
    if upper in {c.upper() for c in settings.SHIPPING_UNSERVED_COUNTRIES}:
        name = countries.name(upper)
        return f"We cannot deliver to {name} ({upper}): our carrier does not go there."
    if code != upper:
        return f"Write the country code in capitals: {upper!r}."
    return None
