"""Staff's fraud flags: who may clear one, and that a flag's numbers cannot be edited."""

import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from analytics.models import FraudClearance, FraudFlag

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:analytics_fraudflag_changelist"
REASON = "Suspected fraud: 6 orders from this card within 10 minutes (more than 5 allowed)"


@pytest.fixture
def flag() -> FraudFlag:
    return FraudFlag.objects.create(
        order_id=uuid.uuid4(),
        rule="orders_per_card",
        key_kind="card",
        key="fp_flagged",
        count=6,
        limit=5,
        window_seconds=600,
        reason=REASON,
        fired_at=timezone.now(),
    )


def staff(client, *codenames: str) -> User:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def clear(client, flag: FraudFlag):
    return client.post(reverse(CHANGELIST), {"action": "clear", "_selected_action": [flag.pk]})


def test_staff_who_may_clear_flags_clear_one(client, flag):
    # Given staff who may see flags and clear them
    staff(client, "view_fraudflag", "add_fraudclearance")

    # When they clear a flag
    response = clear(client, flag)

    # Then its card is cleared in their name
    assert response.status_code == 302
    assert FraudClearance.objects.filter(key_kind="card", key="fp_flagged").count() == 1


def test_staff_who_may_only_see_flags_cannot_clear_one(client, flag):
    # Given staff who may see the flags, no more
    staff(client, "view_fraudflag")

    # When they try to clear one (the action is not offered; they post it anyway)
    page = client.get(reverse(CHANGELIST)).content.decode()
    clear(client, flag)

    # Then it is not offered, and nothing is cleared: the card's next order is not charged
    assert not FraudClearance.objects.exists()
    assert 'value="clear"' not in page


def test_a_flags_numbers_cannot_be_edited_even_by_who_may_clear_it(client, flag):
    # Given staff who may clear flags
    staff(client, "view_fraudflag", "add_fraudclearance")

    # When they post new numbers to the flag's page
    client.post(
        reverse("admin:analytics_fraudflag_change", args=[flag.pk]),
        {
            "order_id": str(flag.order_id), "rule": "none", "key_kind": "email", "key": "x",
            "count": 1, "limit": 99, "window_seconds": 1, "reason": "edited", "slot": "live",
            "fired_at_0": "2020-01-01", "fired_at_1": "00:00:00",
        },
    )  # fmt: skip

    # Then the flag says what the screen found
    flag.refresh_from_db()
    assert (flag.rule, flag.key, flag.count, flag.limit, flag.reason) == (
        "orders_per_card", "fp_flagged", 6, 5, REASON,
    )  # fmt: skip
