from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from messaging.context import log_fields_add

from . import idempotency, selectors, services
from .forms import OrderForm
from .models import Order, PlacementKey

# Where an error order_place finds shows on the form: "items.<index>.<field>" on the
# quantity of that line's product, these on their field, anything else above the form.
FORM_FIELDS_BY_SERVICE_FIELD = {
    "shipping_address.country": "country",
    "card_number": "card_number",
    "workflow": "workflow",
}


def form_field_of(service_field: str, *, form: OrderForm, skus: list[str]) -> str | None:
    """The form's field for an error order_place gave about ``service_field`` (None: the form's
    own errors), given the SKU of each line it was sent, in order."""
    parts = service_field.split(".")
    if parts[0] == "items" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(skus):
        return form.quantity_field(skus[int(parts[1])])
    return FORM_FIELDS_BY_SERVICE_FIELD.get(service_field)


@require_http_methods(["GET", "POST"])
def storefront(request: HttpRequest) -> HttpResponse:
    """The catalog with price and availability, and the order form."""
    if selectors.catalog_is_loading():
        # Right after a fresh start: the page reloads itself once the catalog is in.
        retry_after = selectors.CATALOG_RETRY_AFTER
        response = render(
            request, "orders/catalog_loading.html", {"retry_after": retry_after}, status=503
        )
        response["Retry-After"] = str(retry_after)
        return response
    if request.method == "POST" and (placed := _placed_by_form(request)):
        # A resubmit (back, then submit again), whatever it now says: the order it placed.
        return redirect("orders:detail", order_id=placed)
    products = list(selectors.catalog_for_sale())
    form = OrderForm(request.POST or None, products=products)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        items = [services.OrderItem(sku=s, quantity=q) for s, q in form.chosen_items()]

        def place() -> tuple[Order, int, dict]:
            order = services.order_place(
                email=data["email"],
                items=items,
                shipping_address={
                    "name": data["name"],
                    "line1": data["line1"],
                    "city": data["city"],
                    "postal_code": data["postal_code"],
                    "country": data["country"],
                },
                card_number=data["card_number"],
                workflow=data["workflow"] or None,
            )
            return order, 303, {}

        try:
            # A double submit's second request waits here for the first, then gets its order.
            answer = idempotency.order_place_once(
                source=PlacementKey.Source.STOREFRONT,
                key=str(data["placement_token"]),
                fingerprint="",
                place=place,
            )
        except services.OrderRejected as rejected:
            skus = [item.sku for item in items]
            for field, messages in rejected.errors.items():
                for message in messages:
                    form.add_error(form_field_of(field, form=form, skus=skus), message)
        except idempotency.KeyInFlight:
            form.add_error(
                None, "This order is still being placed: send the form again in a moment to see it."
            )
        else:
            return redirect("orders:detail", order_id=answer.order_id)
    return render(
        request, "orders/storefront.html", {"form": form}, status=200 if not form.errors else 400
    )


def _placed_by_form(request: HttpRequest) -> UUID | None:
    """The order the form's one-time token already placed, if it did."""
    try:
        token = UUID(request.POST.get("placement_token", ""))
    except ValueError:
        return None
    return selectors.placement_key_order(source=PlacementKey.Source.STOREFRONT, key=str(token))


def order_detail(request: HttpRequest, order_id: UUID) -> HttpResponse:
    """The order's own page: status and timeline, updating live while the flow runs."""
    order = selectors.order_get(order_id=order_id)
    if order is None:
        raise Http404("No such order")
    log_fields_add(order_id=order.id, correlation_id=order.id)
    snapshot = selectors.order_as_dict(order=order)
    return render(
        request,
        "orders/order_detail.html",
        {
            "order": order,
            "snapshot": snapshot,
            "steps": [entry for entry in snapshot["timeline"] if entry["kind"] == "event"],
            "progress": [s for s in Order.Status.choices if s[0] != Order.Status.CANCELLED],
        },
    )


@staff_member_required
def stuck_orders(request: HttpRequest) -> HttpResponse:
    """Orders still open after STUCK_ORDER_AGE seconds, either workflow, and what they wait on."""
    age = timedelta(seconds=settings.STUCK_ORDER_AGE)
    return render(
        request,
        "orders/stuck_orders.html",
        {"rows": selectors.stuck_orders(older_than=age), "age": age},
    )


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The site's 400 page: says why, in words a customer can act on."""
    if isinstance(exception, RequestDataTooBig):
        limit_kb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        reason = f"What you sent is larger than the {limit_kb} KB a form may carry: shorten it."
    else:
        reason = "The request was malformed. Reload the page and try again."
    return render(request, "orders/bad_request.html", {"reason": reason}, status=400)
