"""The JSON API: one NinjaAPI, each app contributing its router."""

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import ValidationError

from inventory.api import router as inventory_router
from orders.api import router as orders_router

api = NinjaAPI(
    title="eventshop API",
    version="1",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_router("", orders_router)
api.add_router("", inventory_router)


@api.exception_handler(ValidationError)
def validation_failed(request: HttpRequest, exc: ValidationError):
    """Errors per field, named by their path in the body ("items.0.quantity")."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "payload")]
        errors.setdefault(".".join(location) or "body", []).append(error.get("msg", "is invalid"))
    return api.create_response(
        request, {"detail": "The request is invalid.", "errors": errors}, status=422
    )
