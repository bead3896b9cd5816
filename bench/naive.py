"""The naive baseline: what a user would write instead of our messaging layer.

The same apps, the same service functions (so the same domain writes, to the
same tables, with the same locks), and the same message graph: every handler
that our choreography subscribes to an event has a twin here, a plain Celery
task on the app's own queue (``naive_<app>``). What is left out is the
reliability machinery:

- no outbox: ``publish`` is replaced, in the naive processes only, by
  ``task.delay_on_commit(payload)`` for each subscriber (a message is lost if
  the process dies between the commit and the publish);
- no inbox: a redelivered message takes effect again as far as the service
  lets it;
- no envelope and no schema validation on receipt: the payload is a plain
  dict read by hand;
- no publisher confirms (``BENCH_NAIVE`` turns them off in bench.settings).

Retries are Celery's plain ``autoretry_for`` with backoff, as a user would.
Only choreography is mirrored: the saga's commands have no twin.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from decimal import Decimal
from importlib import import_module
from uuid import UUID

from celery import shared_task
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging import consumers
from messaging import publishing as messaging_publishing
from messaging.messages import Event, registry

CHOREOGRAPHY = "choreography"
# The apps whose handlers the baseline mirrors (bench's own probe is not one).
APPS = ["orders", "payments", "inventory", "shipping", "notifications"]

TWINS: dict[str, Callable] = {}


def twin(handler_name: str):
    """Declare the naive twin of one of our handlers, on its app's naive queue."""
    app_label = handler_name.split(".", 1)[0]

    def decorate(fn: Callable) -> Callable:
        task = shared_task(
            name=f"naive.{handler_name}",
            queue=f"naive_{app_label}",
            autoretry_for=(Exception,),
            retry_backoff=True,
            max_retries=5,
            # The same Celery settings as our handlers: no result row per delivery.
            ignore_result=True,
        )(fn)
        TWINS[handler_name] = task
        return task

    return decorate


def _lines(payload: dict, *keys: str) -> list[dict]:
    return [{key: line[key] for key in keys} for line in payload["lines"]]


# --- orders -------------------------------------------------------------------


@twin("orders.update_catalog")
def update_catalog(p: dict) -> None:
    from orders import services

    services.catalog_item_apply(
        sku=p["sku"],
        name=p["name"],
        price=Decimal(p["price"]),
        currency=p["currency"],
        available=p["available"],
        is_active=p.get("is_active", True),
        as_of=parse_datetime(p["occurred_at"]),
    )


@twin("orders.mark_paid")
def mark_paid(p: dict) -> None:
    from orders import services

    services.order_mark_paid(order_id=UUID(p["order_id"]), amount=Decimal(p["amount"]))


@twin("orders.cancel_unpaid")
def cancel_unpaid(p: dict) -> None:
    from orders import services

    services.order_mark_payment_failed(
        order_id=UUID(p["order_id"]), reason_code=p["reason_code"], reason=p["reason"]
    )


@twin("orders.mark_reserved")
def mark_reserved(p: dict) -> None:
    from orders import services

    services.order_mark_reserved(order_id=UUID(p["order_id"]))


@twin("orders.record_refund")
def record_refund(p: dict) -> None:
    from orders import services

    services.order_mark_refunded(
        order_id=UUID(p["order_id"]),
        amount=Decimal(p["amount"]),
        reason_code=p.get("reason_code", "staff"),
        reason=p["reason"],
    )


@twin("orders.complete_shipped")
def complete_shipped(p: dict) -> None:
    from orders import services

    services.order_record_shipment(
        order_id=UUID(p["order_id"]), carrier=p["carrier"], tracking_number=p["tracking_number"]
    )


@twin("orders.advance_saga")
def advance_saga(p: dict) -> None:
    # Our orders app receives every reply event for its saga, under
    # choreography too, where it does nothing; the twin keeps that hop.
    if p.get("workflow") != CHOREOGRAPHY:
        raise NotImplementedError("the naive baseline runs choreography only")


# --- payments -----------------------------------------------------------------


@twin("payments.charge_for_order")
def charge_for_order(p: dict) -> None:
    from payments import services

    if p.get("workflow", CHOREOGRAPHY) != CHOREOGRAPHY:
        return
    services.payment_charge(
        order_id=UUID(p["order_id"]),
        amount=Decimal(p["total"]),
        currency=p["currency"],
        card_token=p["card_token"],
        card_last4=p["card_last4"],
    )


def _refund(p: dict, reason_code: str, *, void_uncharged: bool = False) -> None:
    from payments import services

    services.payment_refund(
        order_id=UUID(p["order_id"]),
        reason_code=reason_code,
        reason=p["reason"],
        void_uncharged=void_uncharged,
    )


@twin("payments.refund_when_out_of_stock")
def refund_when_out_of_stock(p: dict) -> None:
    if p.get("workflow", CHOREOGRAPHY) == CHOREOGRAPHY:
        _refund(p, "out_of_stock")


@twin("payments.refund_when_unshippable")
def refund_when_unshippable(p: dict) -> None:
    if p.get("workflow", CHOREOGRAPHY) == CHOREOGRAPHY:
        _refund(p, "shipping_failed")


@twin("payments.refund_when_cancelled")
def refund_when_cancelled(p: dict) -> None:
    _refund(p, "order_cancelled", void_uncharged=True)


# --- inventory ----------------------------------------------------------------


@twin("inventory.remember_order_lines")
def remember_order_lines(p: dict) -> None:
    from inventory import services

    services.order_request_record(order_id=UUID(p["order_id"]), lines=_lines(p, "sku", "quantity"))


@twin("inventory.reserve_stock")
def reserve_stock(p: dict) -> None:
    from inventory import services

    if p.get("workflow", CHOREOGRAPHY) == CHOREOGRAPHY:
        services.stock_reserve(order_id=UUID(p["order_id"]))


@twin("inventory.ship_stock")
def ship_stock(p: dict) -> None:
    from inventory import services

    services.stock_ship(order_id=UUID(p["order_id"]))


@twin("inventory.release_unshippable")
def release_unshippable(p: dict) -> None:
    from inventory import services

    if p.get("workflow", CHOREOGRAPHY) == CHOREOGRAPHY:
        services.stock_release(order_id=UUID(p["order_id"]))


@twin("inventory.release_stock")
def release_stock(p: dict) -> None:
    from inventory import services

    services.stock_release(order_id=UUID(p["order_id"]))


# --- shipping -----------------------------------------------------------------


@twin("shipping.remember_destination")
def remember_destination(p: dict) -> None:
    from shipping import services

    services.shipment_request_record(
        order_id=UUID(p["order_id"]),
        address=p["shipping_address"],
        lines=_lines(p, "sku", "name", "quantity"),
    )


@twin("shipping.ship_reserved_order")
def ship_reserved_order(p: dict) -> None:
    from shipping import services

    if p.get("workflow", CHOREOGRAPHY) == CHOREOGRAPHY:
        services.shipment_create(order_id=UUID(p["order_id"]))


# --- notifications ------------------------------------------------------------


@twin("notifications.confirm_order")
def confirm_order(p: dict) -> None:
    from notifications import services
    from notifications.models import SentEmail

    order_id = UUID(p["order_id"])
    services.recipient_record(order_id=order_id, email=p["email"])
    lines = "\n".join(
        f"  {line['quantity']} × {line['name']} ({line['sku']}) at {line['unit_price']} "
        f"{p['currency']}"
        for line in p["lines"]
    )
    services.email_send(
        order_id=order_id,
        kind=SentEmail.Kind.PLACED,
        subject=f"We received your order {services.short_id(order_id)}",
        body=f"Thank you for your order.\n\n{lines}\n\nTotal: {p['total']} {p['currency']}\n",
    )


@twin("notifications.announce_completion")
def announce_completion(p: dict) -> None:
    from notifications import services
    from notifications.models import SentEmail

    order_id = UUID(p["order_id"])
    services.email_send(
        order_id=order_id,
        kind=SentEmail.Kind.COMPLETED,
        subject=f"Your order {services.short_id(order_id)} is on its way",
        body=f"Your order has shipped. Tracking number: {p.get('tracking_number', '')}\n",
    )


@twin("notifications.announce_cancellation")
def announce_cancellation(p: dict) -> None:
    from notifications import services
    from notifications.models import SentEmail

    order_id = UUID(p["order_id"])
    services.email_send(
        order_id=order_id,
        kind=SentEmail.Kind.CANCELLED,
        subject=f"Your order {services.short_id(order_id)} was cancelled",
        body=f"We are sorry: your order was cancelled.\n\nReason: {p['reason']}\n",
    )


@twin("notifications.announce_refund")
def announce_refund(p: dict) -> None:
    from notifications import services
    from notifications.models import SentEmail

    order_id = UUID(p["order_id"])
    services.email_send(
        order_id=order_id,
        kind=SentEmail.Kind.REFUNDED,
        subject=f"Refund for order {services.short_id(order_id)}",
        body=f"We refunded {p['amount']} {p['currency']} to your card.\n\nReason: {p['reason']}\n",
    )


# --- wiring -------------------------------------------------------------------

ROUTES: dict[type[Event], list] = {}


def routes() -> dict[type[Event], list]:
    """Each event class → (our handler, its naive twin) for each handler our apps subscribe.

    The handler comes along for its ``when`` filter: the baseline makes the
    same hops as our flow, no more.

    Raises ImproperlyConfigured when one of our apps subscribes a handler to
    an event that has no twin here, so the baseline cannot silently drift
    from the flow it is compared with.
    """
    table: dict[type[Event], list] = {}
    missing = []
    for message_class in registry:
        if message_class.kind != "event":
            continue
        for handler in consumers.handlers_for(message_class):
            if handler.name.split(".", 1)[0] not in APPS:
                continue
            if handler.name not in TWINS:
                missing.append(f"{handler.name} <- {message_class.message_type}")
                continue
            table.setdefault(message_class, []).append((handler, TWINS[handler.name]))
    if missing:
        raise ImproperlyConfigured(
            "the naive baseline has no twin for: " + ", ".join(sorted(missing))
        )
    return table


def naive_publish(event: Event, *, correlation_id: str | None = None) -> None:
    """``publish`` as a user would write it: delay_on_commit to each subscriber."""
    payload = event.model_dump(mode="json")
    payload["occurred_at"] = timezone.now().isoformat()
    for handler, task in ROUTES.get(type(event), ()):
        if handler.wants(event):
            task.delay_on_commit(payload)


def install() -> None:
    """Make this process's apps publish the naive way (called from BenchConfig.ready)."""
    for app in APPS:
        with contextlib.suppress(ImportError):
            import_module(f"{app}.services")
    ROUTES.clear()
    ROUTES.update(routes())
    for name, module in list(sys.modules.items()):
        if name.split(".", 1)[0] not in APPS or module is None:
            continue
        if getattr(module, "publish", None) is messaging_publishing.publish:
            module.publish = naive_publish
