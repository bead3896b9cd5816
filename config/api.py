"""The JSON API: one NinjaAPI; orders serves it (the catalog it lists is the one it sells from)."""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from orders.api import router as orders_router

api = NinjaAPI(
    title="eventshop API",
    version="1",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_router("", orders_router)


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


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError):
    """Say why a body could not be read (ninja says only "Cannot parse request body")."""
    detail, cause = str(exc), exc.__cause__
    if exc.status_code == 400 and isinstance(cause, ValueError):
        reason = str(cause)
        if isinstance(cause, json.JSONDecodeError):
            reason = f"{cause.msg} at character {cause.pos + 1}"
        detail = f"The request body is not valid JSON: {reason}."
    return api.create_response(request, {"detail": detail}, status=exc.status_code)


@api.exception_handler(RequestDataTooBig)
def body_too_large(request: HttpRequest, exc: RequestDataTooBig):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api.create_response(
        request,
        {"detail": f"The request body is larger than the {limit} bytes this API accepts."},
        status=413,
    )
