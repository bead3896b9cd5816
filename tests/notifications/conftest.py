"""Every notifications test writes as a shop reached at SHOP, so a link's host is the setting's."""

import pytest

SHOP = "https://shop.example.com"


@pytest.fixture(autouse=True)
def shop_url(settings):
    settings.SHOP_URL = SHOP


def page_link(order_id) -> str:
    """How every email ends: the link to the order's page."""
    return f"\nSee your order at any time on its page:\n{SHOP}/orders/{order_id}/\n"
