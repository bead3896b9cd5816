from collections.abc import Callable, Iterable
from functools import wraps
from typing import Annotated, Any
from uuid import UUID

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import urlencode
from ninja import Header, Path, Query, Router, Status
from ninja.decorators import decorate_view
from pydantic import WithJsonSchema

from config.problems import Problem, problem_response
from messaging.context import log_fields_add

from . import idempotency, selectors, services
from .models import Order, PlacementKey
from .schemas import (
    MAX_PAGE_SIZE,
    IdempotencyKey,
    OrderAccepted,
    OrderIn,
    OrderOut,
    OrderPage,
    PageQuery,
    ProblemOut,
    ProductPage,
)

router = Router(tags=["orders"])
# An order id is a UUID, as documented; the view reads it (see order_detail).
UUID_SCHEMA = {"type": "string", "format": "uuid", "title": "Order Id"}

CATALOG_LOADING = "The catalog is loading (the shop has just started); try again in a few seconds."


def catalog_loading() -> Problem:
    return Problem(
        503,
        CATALOG_LOADING,
        type_name="catalog-loading",
        title="The catalog is loading",
        headers={"Retry-After": str(selectors.CATALOG_RETRY_AFTER)},
    )


def json_body_required(run):
    """Refuse a body that is not declared as JSON (a form post, text) before reading it."""

    @wraps(run)
    def checked(request, *args, **kwargs):
        content_type = request.content_type or ""
        if content_type != "application/json" and not content_type.endswith("+json"):
            sent = f"this request's is {content_type}" if content_type else "this request has none"
            detail = f"Send the order as JSON, with Content-Type: application/json ({sent})."
            # Outside the operation: ninja's exception handlers do not see what this raises.
            return problem_response(request, Problem(415, detail))
        return run(request, *args, **kwargs)

    return checked


def page_of(
    request: HttpRequest,
    rows: QuerySet,
    query: PageQuery,
    response: HttpResponse,
    serialize: Callable[[Any], Any] = lambda row: row,
) -> dict:
    """One page of ``rows`` as ``query`` asks, with the URLs of the pages either side
    (also in a Link header, RFC 8288)."""
    count = rows.count()
    results: Iterable = rows[query.offset : query.offset + query.limit]

    def url(offset: int) -> str:
        params = urlencode({"limit": query.limit, "offset": offset})
        return request.build_absolute_uri(f"{request.path}?{params}")

    after = query.offset + query.limit
    next_url = url(after) if after < count else None
    previous_url = url(max(query.offset - query.limit, 0)) if query.offset > 0 else None
    links = [f'<{u}>; rel="{rel}"' for rel, u in (("next", next_url), ("prev", previous_url)) if u]
    if links:
        response["Link"] = ", ".join(links)
    return {
        "count": count,
        "limit": query.limit,
        "offset": query.offset,
        "next": next_url,
        "previous": previous_url,
        "results": [serialize(row) for row in results],
    }


def status_url(request: HttpRequest, order_id: UUID) -> str:
    return request.build_absolute_uri(reverse("api:order_detail", args=[order_id]))


IDEMPOTENCY_KEY = Header(
    None,
    alias="Idempotency-Key",
    description="Any string of 1 to 255 visible ASCII characters the client makes up, "
    "a UUID for one, sent again with the same body when it retries: the order is "
    "placed once and every retry is answered as the first request was (with an "
    "Idempotent-Replayed: true header), for IDEMPOTENCY_KEY_RETENTION seconds (24 "
    "hours by default). The same key with another body is refused with 422; while "
    "the first request is still placing the order, a retry waits for it, or after "
    "10 s is answered 409 with Retry-After.",
)


@router.post(
    "/orders/",
    response={
        202: OrderAccepted,
        400: ProblemOut,
        409: ProblemOut,
        413: ProblemOut,
        415: ProblemOut,
        422: ProblemOut,
        503: ProblemOut,
    },
    summary="Place an order",
    openapi_extra={
        "responses": {
            202: {
                "headers": {
                    "Location": {
                        "description": "The order's URL, the same as status_url",
                        "schema": {"type": "string", "format": "uri"},
                    },
                    "Idempotent-Replayed": {
                        "description": "With an Idempotency-Key: true when this is the "
                        "answer given before under the key, false when the order was placed now",
                        "schema": {"type": "string", "enum": ["true", "false"]},
                    },
                }
            },
            409: {"headers": {"Retry-After": {"schema": {"type": "integer"}}}},
            503: {"headers": {"Retry-After": {"schema": {"type": "integer"}}}},
        }
    },
    description="Answers once the order is committed and its OrderPlaced event is "
    "handed to the broker; payment, stock and shipping follow asynchronously. The "
    "Location header is the order's URL, as status_url. "
    "A body that is not JSON is refused with 400 (415 when not sent as JSON, 413 "
    "when too large); one that is JSON but invalid with 422, naming each field "
    "that is wrong and why. An order that cannot be had as the shop's catalog "
    "stands (a product not for sale, more than is available or than one order "
    "may hold, a country the carrier does not serve) is refused the same way, "
    "before any charge. Right after a fresh start, while the catalog is still "
    "loading, 503 with a Retry-After header. With an Idempotency-Key, a retry "
    "places no second order.",
)
@decorate_view(json_body_required)
def order_create(
    request,
    payload: OrderIn,
    response: HttpResponse,
    idempotency_key: IdempotencyKey | None = IDEMPOTENCY_KEY,
):
    if selectors.catalog_is_loading():
        raise catalog_loading()

    def place() -> tuple[Order, int, dict]:
        try:
            order = services.order_place(
                email=payload.email,
                items=[services.OrderItem(sku=i.sku, quantity=i.quantity) for i in payload.items],
                shipping_address=payload.shipping_address.model_dump(),
                card_number=payload.card_number,
                workflow=payload.workflow,
            )
        except services.OrderRejected as rejected:
            raise Problem(
                422,
                "The order was not placed.",
                type_name="order-rejected",
                title="The order cannot be placed",
                errors=rejected.errors,
            ) from rejected
        body = {"id": str(order.id), "status": order.status}
        return order, 202, {**body, "status_url": status_url(request, order.id)}

    if idempotency_key is None:
        _, status_code, body = place()
    else:
        answer = _placed_once(idempotency_key, payload, place)
        status_code, body = answer.status_code, answer.body
        response["Idempotent-Replayed"] = "true" if answer.is_replay else "false"
    response["Location"] = body["status_url"]
    return Status(status_code, body)


def _placed_once(key: str, payload: OrderIn, place) -> idempotency.Answer:
    try:
        return idempotency.order_place_once(
            source=PlacementKey.Source.API,
            key=key,
            fingerprint=idempotency.placement_fingerprint(payload.model_dump(mode="json")),
            place=place,
        )
    except idempotency.KeyReused:
        raise Problem(
            422,
            "This Idempotency-Key was used for an order with a different body. Send that "
            "order's body again to get its answer, or use a new key for a new order.",
            type_name="idempotency-key-reused",
            title="The Idempotency-Key was used for another request",
            errors={"Idempotency-Key": ["Already used with a different body."]},
        ) from None
    except idempotency.KeyInFlight:
        raise Problem(
            409,
            "An order under this Idempotency-Key is still being placed; retry in a moment "
            "with the same key and body to get its answer.",
            type_name="idempotency-key-in-flight",
            title="A request with this Idempotency-Key is in progress",
            headers={"Retry-After": "1"},
        ) from None


@router.get(
    "/orders/",
    response={200: OrderPage, 403: ProblemOut, 422: ProblemOut},
    summary="Every order, the latest first (staff only)",
    description="For a staff member signed in (the admin's session): a page of "
    f"orders, limit (at most {MAX_PAGE_SIZE}) from offset, with the URLs of the "
    "next and previous pages (null at either end; also in a Link header). Anyone "
    "else is refused with 403: a customer reads their own order at the status_url "
    "placing it answered.",
)
def orders_list(request, response: HttpResponse, query: Query[PageQuery]):
    if not (request.user.is_authenticated and request.user.is_staff):
        raise Problem(
            403,
            "Listing orders is for staff: sign in at /admin/ first. A customer reads their "
            "own order at the status_url (the Location) placing it answered.",
        )

    def summary(order: Order) -> dict:
        return {
            "id": str(order.id),
            "status": order.status,
            "workflow": order.workflow,
            "email": order.email,
            "total": order.total,
            "currency": order.currency,
            "created_at": order.created_at,
            "status_url": status_url(request, order.id),
        }

    return Status(200, page_of(request, selectors.orders_newest_first(), query, response, summary))


@router.get(
    "/orders/{order_id}/",
    response={200: OrderOut, 404: ProblemOut},
    url_name="order_detail",
    summary="An order's status, payment, shipment and event timeline",
)
def order_detail(request, order_id: Annotated[str, Path(), WithJsonSchema(UUID_SCHEMA)]):
    # Read here, not by ninja: an id that is not a UUID names no order (404),
    # as the order pages and the order streams answer, rather than a 422.
    try:
        order = selectors.order_get(order_id=UUID(order_id))
    except ValueError:
        order = None
    if order is None:
        raise Problem(404, "No such order.")
    log_fields_add(order_id=order.id, correlation_id=order.id)
    return Status(200, selectors.order_as_dict(order=order))


@router.get(
    "/products/",
    response={200: ProductPage, 422: ProblemOut, 503: ProblemOut},
    tags=["catalog"],
    summary="The products for sale, with the stock available",
    description="The catalog orders takes orders from, as the storefront shows it, "
    f"by SKU: a page of limit products (at most {MAX_PAGE_SIZE}) from offset, with "
    "the URLs of the next and previous pages (null at either end; also in a Link "
    "header). Right after a fresh start, while it is still loading, 503 with a "
    "Retry-After header.",
)
def products(request, response: HttpResponse, query: Query[PageQuery]):
    if selectors.catalog_is_loading():
        raise catalog_loading()
    return Status(200, page_of(request, selectors.catalog_for_sale(), query, response))
