"""The JSON API: one NinjaAPI; orders serves it (the catalog it lists is the one it sells from).

Every error it answers is RFC 9457 problem details (config.problems): its
exception handlers make them, and its OpenAPI document declares them as
``application/problem+json``.
"""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from orders.api import router as orders_router

from .problems import MEDIA_TYPE, Problem, problem_response

# Where a field's error is found, not a part of its name ("body.items.0.sku" is "items.0.sku").
LOCATIONS = {"body", "payload", "header", "query", "path"}


class ProblemsApi(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        """The document, each error answer in the media type it is served as."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if int(status) >= 400 and self.renderer.media_type in content:
                        content[MEDIA_TYPE] = content.pop(self.renderer.media_type)
        return schema


api = ProblemsApi(
    title="eventshop API",
    version="1",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
    description="Every error is RFC 9457 problem details (application/problem+json): "
    "type, title, status, detail, instance, and errors (each field's messages) when "
    "fields of the request are wrong.",
)
api.add_router("", orders_router)


@api.exception_handler(Problem)
def problem(request: HttpRequest, exc: Problem):
    return problem_response(request, exc)


@api.exception_handler(ValidationError)
def validation_failed(request: HttpRequest, exc: ValidationError):
    """Errors per field, named by their path in the body ("items.0.quantity")."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        location = [str(part) for part in error.get("loc", ()) if part not in LOCATIONS]
        errors.setdefault(".".join(location) or "body", []).append(error.get("msg", "is invalid"))
    invalid = Problem(422, "The request is invalid.", type_name="invalid-request", errors=errors)
    return problem_response(request, invalid)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError):
    """Say why a body could not be read (ninja says only "Cannot parse request body")."""
    detail, cause = str(exc), exc.__cause__
    if exc.status_code == 400 and isinstance(cause, ValueError):
        reason = str(cause)
        if isinstance(cause, json.JSONDecodeError):
            reason = f"{cause.msg} at character {cause.pos + 1}"
        detail = f"The request body is not valid JSON: {reason}."
    return problem_response(request, Problem(exc.status_code, detail))


@api.exception_handler(RequestDataTooBig)
def body_too_large(request: HttpRequest, exc: RequestDataTooBig):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    detail = f"The request body is larger than the {limit} bytes this API accepts."
    return problem_response(request, Problem(413, detail))
