from functools import wraps
from uuid import UUID

from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from ninja import Router, Status
from ninja.decorators import decorate_view

from messaging.context import log_fields_add

from . import selectors, services
from .schemas import ErrorOut, OrderAccepted, OrderIn, OrderOut, ProductOut

router = Router(tags=["orders"])

CATALOG_LOADING = {
    "detail": "The catalog is loading (the shop has just started); try again in a few seconds."
}


def catalog_loading(response: HttpResponse):
    response["Retry-After"] = str(selectors.CATALOG_RETRY_AFTER)
    return Status(503, CATALOG_LOADING)


def json_body_required(run):
    """Refuse a body that is not declared as JSON (a form post, text) before reading it."""

    @wraps(run)
    def checked(request, *args, **kwargs):
        content_type = request.content_type or ""
        if content_type != "application/json" and not content_type.endswith("+json"):
            sent = f"this request's is {content_type}" if content_type else "this request has none"
            detail = f"Send the order as JSON, with Content-Type: application/json ({sent})."
            return JsonResponse({"detail": detail}, status=415)
        return run(request, *args, **kwargs)

    return checked


@router.post(
    "/orders/",
    response={
        202: OrderAccepted,
        400: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        422: ErrorOut,
        503: ErrorOut,
    },
    summary="Place an order",
    description="Answers once the order is committed and its OrderPlaced event is "
    "handed to the broker; payment, stock and shipping follow asynchronously. "
    "A body that is not JSON is refused with 400 (415 when not sent as JSON, 413 "
    "when too large); one that is JSON but invalid with 422, naming each field "
    "that is wrong and why. An order that cannot be had as the shop's catalog "
    "stands (a product not for sale, more than is available or than one order "
    "may hold, a country the carrier does not serve) is refused the same way, "
    "before any charge. Right after a fresh start, while the catalog is still "
    "loading, 503 with a Retry-After header.",
)
@decorate_view(json_body_required)
def order_create(request, payload: OrderIn, response: HttpResponse):
    if selectors.catalog_is_loading():
        return catalog_loading(response)
    try:
        order = services.order_place(
            email=payload.email,
            items=[services.OrderItem(sku=i.sku, quantity=i.quantity) for i in payload.items],
            shipping_address=payload.shipping_address.model_dump(),
            card_number=payload.card_number,
            workflow=payload.workflow,
        )
    except services.OrderRejected as rejected:
        return Status(422, {"detail": "The order was not placed.", "errors": rejected.errors})
    status_url = request.build_absolute_uri(reverse("api:order_detail", args=[order.id]))
    return Status(202, {"id": str(order.id), "status": order.status, "status_url": status_url})


@router.get(
    "/orders/{order_id}/",
    response={200: OrderOut, 404: ErrorOut, 422: ErrorOut},
    url_name="order_detail",
    summary="An order's status, payment, shipment and event timeline",
)
def order_detail(request, order_id: UUID):
    order = selectors.order_get(order_id=order_id)
    if order is None:
        return Status(404, {"detail": "No such order."})
    log_fields_add(order_id=order.id, correlation_id=order.id)
    return Status(200, selectors.order_as_dict(order=order))


@router.get(
    "/products/",
    response={200: list[ProductOut], 503: ErrorOut},
    tags=["catalog"],
    summary="The products for sale, with the stock available",
    description="The catalog orders takes orders from, as the storefront shows it. "
    "Right after a fresh start, while it is still loading, 503 with a Retry-After header.",
)
def products(request, response: HttpResponse):
    if selectors.catalog_is_loading():
        return catalog_loading(response)
    return Status(200, list(selectors.catalog_for_sale()))
