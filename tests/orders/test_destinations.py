"""orders.destinations: where the shop delivers, and why a code is refused, in words."""

import pytest

from orders.destinations import country_problem, shippable_countries


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("FR", None),
        ("GB", None),
        ("AQ", "We cannot deliver to Antarctica (AQ): our carrier does not go there."),
        ("aq", "We cannot deliver to Antarctica (AQ): our carrier does not go there."),
        ("ZZ", "'ZZ' is not an ISO 3166 country code; use two capital letters, e.g. FR."),
        ("FRA", "'FRA' is not an ISO 3166 country code; use two capital letters, e.g. FR."),
        ("Fr", "Write the country code in capitals: 'FR'."),
        ("fr", "Write the country code in capitals: 'FR'."),
    ],
)
def test_a_code_is_refused_with_the_reason_a_customer_can_act_on(code, problem):
    assert country_problem(code) == problem


def test_the_countries_served_are_every_iso_country_but_the_unserved(settings):
    settings.SHIPPING_UNSERVED_COUNTRIES = ["AQ", "gs"]

    served = dict(shippable_countries())

    assert {"FR", "GB", "JP"} <= set(served)
    assert not {"AQ", "GS"} & set(served)
    assert served["FR"] == "France"
    assert country_problem("GS") == (
        "We cannot deliver to South Georgia (GS): our carrier does not go there."
    )
