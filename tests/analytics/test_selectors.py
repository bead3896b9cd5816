"""Reads of the fraud screen's flags: those staff have not cleared."""

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.selectors import fraud_flag_is_cleared, fraud_flags_not_cleared
from tests.analytics.factories import FraudClearanceFactory, FraudFlagFactory

pytestmark = pytest.mark.django_db


def test_flags_not_cleared_leave_out_those_cleared_since_they_fired():
    # Given flags for three cards, one of them cleared after its flag fired and
    # one cleared only before (a clearance does not cover what came after it)
    now = timezone.now()
    open_flag = FraudFlagFactory(key="fp_open", fired_at=now - timedelta(minutes=2))
    cleared = FraudFlagFactory(key="fp_cleared", fired_at=now - timedelta(minutes=5))
    FraudClearanceFactory(key="fp_cleared", cleared_at=now - timedelta(minutes=1))
    fired_again = FraudFlagFactory(key="fp_again", fired_at=now)
    FraudClearanceFactory(key="fp_again", cleared_at=now - timedelta(hours=1))
    FraudFlagFactory(key="fp_shadow", slot="shadow")

    # When the flags not cleared are read
    flags = list(fraud_flags_not_cleared())

    # Then they are the live ones not cleared, latest first, as each flag's own rule says
    assert flags == [fired_again, open_flag]
    assert fraud_flag_is_cleared(cleared)
    assert not any(fraud_flag_is_cleared(flag) for flag in flags)
