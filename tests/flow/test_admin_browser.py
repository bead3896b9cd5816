"""Every list in the admin fits a 1,280 px window, in a real Chromium, with rows in it."""

import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from analytics.models import ProcessorState, SkippedEntry
from inventory.models import Reservation
from messaging.models import (
    DeadLetter,
    DeadLetterAudit,
    DeadLetterGroup,
    DeadLetterGroupRun,
    InboxRecord,
    OutboxMessage,
)
from payments.models import Screening
from tests.analytics.factories import FraudFlagFactory
from tests.inventory.factories import OrderRequestFactory, ProductFactory
from tests.notifications.factories import RecipientFactory, SentEmailFactory
from tests.orders.factories import CatalogItemFactory, OrderFactory, OrderSagaFactory
from tests.payments.factories import PaymentFactory
from tests.shipping.factories import ShipmentFactory, ShipmentRequestFactory
from tests.support.browser import admin_login, screenshot

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

WINDOW = (1280, 900)
# Long as they come in a real shop: an email, a handler's dotted path, an error, a fraud reason.
EMAIL = "margaret.hamilton-lovelace@analytical-engines.example.com"
HANDLER = "notifications.handlers.on_inventory_reservation_failed"
ERROR = (
    "1 validation error for InventoryReservationFailed short.0.available: Input should be "
    "greater than or equal to 0 [type=greater_than_equal, input_value=-1, input_type=int]"
)
# The lists that show an order's id, each by its short reference.
ORDER_LISTS = [
    "orders.order", "orders.ordersaga", "payments.payment", "payments.screening",
    "inventory.reservation", "inventory.orderrequest", "shipping.shipment",
    "shipping.shipmentrequest", "analytics.fraudflag", "messaging.outboxmessage",
]  # fmt: skip
REASON = "Suspected fraud: 6 orders from this card within 10 minutes (more than 5 allowed)"

# Where each list is and whether it overflows, read in the page: the page itself must not
# scroll sideways, and neither may the results' own scroller, where the admin hides the columns
# that do not fit (the page alone never overflows); each order's reference stays on one line.
MEASURE = """
const page = document.documentElement;
const table = document.getElementById('result_list');
const scroller = table && table.closest('.results');
const references = [...document.querySelectorAll('#result_list span[title]')];
return {
  page: [page.scrollWidth, page.clientWidth],
  table: table ? [Math.ceil(table.getBoundingClientRect().right), page.clientWidth] : null,
  scroller: scroller ? [scroller.scrollWidth, scroller.clientWidth] : null,
  references: references.length,
  wrapped: references.filter(r => r.getClientRects().length > 1).map(r => r.textContent),
};
"""


def rows_in_every_list() -> None:
    """Three orders' worth of rows in every app's tables, with the widest values they take."""
    now = timezone.now()
    for n in range(3):
        order = OrderFactory(email=f"{n}.{EMAIL}")
        OrderSagaFactory(order__email=f"{n}.{EMAIL}")
        CatalogItemFactory(name=f"Brass fountain pen, medium nib {n}")
        ProductFactory(name=f"Brass fountain pen, medium nib {n}")
        PaymentFactory(order_id=order.id)
        Screening.objects.create(
            order_id=order.id, verdict="flagged", rule="orders_per_card", reason=REASON,
            requested_at=now, screened_at=now, amount=20, currency="EUR",
        )  # fmt: skip
        Reservation.objects.create(order_id=order.id)
        OrderRequestFactory(order_id=order.id)
        ShipmentFactory(order_id=order.id)
        ShipmentRequestFactory(order_id=order.id)
        RecipientFactory(order_id=order.id, email=f"{n}.{EMAIL}")
        SentEmailFactory(
            order_id=order.id,
            to=f"{n}.{EMAIL}",
            subject=f"Your order {order.reference} is on its way",
        )
        FraudFlagFactory(order_id=order.id, reason=REASON)
        OutboxMessage.objects.create(
            message_id=uuid.uuid4(), kind="event", type="InventoryReservationFailed", version=1,
            occurred_at=now, correlation_id=str(order.id), causation_id=uuid.uuid4(), payload={},
            dispatch_attempts=1,
        )  # fmt: skip
        InboxRecord.objects.create(message_id=uuid.uuid4(), handler=HANDLER, processed_at=now)
        DeadLetter.objects.create(
            message_id=uuid.uuid4(), message_type="InventoryReservationFailed", handler=HANDLER,
            reason="retries_exhausted", error=ERROR, attempts=5, first_failed_at=now - timedelta(1),
            last_failed_at=now, redriven_at=now,
        )  # fmt: skip
        group = DeadLetterGroup.objects.create(
            fingerprint=uuid.uuid4().hex, handler=HANDLER, reason="retries_exhausted",
            exception_type="ValidationError", message=ERROR, created_at=now,
            frame="notifications/handlers.py:on_inventory_reservation_failed",
        )  # fmt: skip
        DeadLetterGroupRun.objects.create(
            group=group, action="redrive", reason=REASON, requested_at=now, total=10_000,
            done=4_000, skipped=3,
        )  # fmt: skip
        DeadLetterAudit.objects.create(
            dead_letter=DeadLetter.objects.first(), fingerprint=group.fingerprint,
            action="redrive", actor_name=EMAIL, at=now, reason=REASON,
            before={"redriven_at": None}, after={"redriven_at": now.isoformat()},
        )  # fmt: skip
        SkippedEntry.objects.create(
            processor="fraud", offset=n, message_id=uuid.uuid4(),
            message_type="InventoryReservationFailed", reason="invalid_payload", error=ERROR,
        )  # fmt: skip
        ProcessorState.objects.create(
            processor=f"aggregates-{n}", offset=123456, head_offset=123460, lag_entries=4,
            lag_seconds=0.4, heartbeat_at=now, entries_processed=123456, entries_skipped=3,
            duplicates_skipped=2, last_error=ERROR,
        )  # fmt: skip


def width_problems(measured: dict) -> list[str]:
    problems = []
    page, window = measured["page"]
    if page > window:
        problems.append(f"the page is {page} px wide in a window of {window}")
    if measured["table"] and measured["table"][0] > measured["table"][1]:
        problems.append(f"the list ends at {measured['table'][0]} px")
    if measured["scroller"] and measured["scroller"][0] > measured["scroller"][1]:
        problems.append("the list scrolls: {} px in {}".format(*measured["scroller"]))
    if measured["wrapped"]:
        problems.append(f"references on more than one line: {measured['wrapped']}")
    return problems


def test_every_admin_list_fits_a_1280_px_window_with_order_references_on_one_line(
    browser, live_server
):
    # Given staff signed in, and rows in every list
    get_user_model().objects.create_superuser("boss", password="boss-pw")
    rows_in_every_list()
    browser.set_window_size(*WINDOW)
    browser.get(f"{live_server.url}{reverse('admin:index')}")
    admin_login(browser, username="boss", password="boss-pw")

    # When they open each list the admin has
    problems, references = {}, {}
    for model in (m for m in apps.get_models() if admin.site.is_registered(m)):
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        browser.get(f"{live_server.url}{url}")
        measured = browser.execute_script(MEASURE)
        screenshot(browser, f"admin-list-{opts.label_lower}.png")
        if found := width_problems(measured):
            problems[opts.label_lower] = found
        references[opts.label_lower] = measured["references"]

    # Then none is wider than the window, and each order's reference stays on one line
    assert not problems
    for listed in ORDER_LISTS:
        assert references[listed] >= 3, f"{listed} shows no order references"
