"""Errors under /api/ as RFC 9457 problem details, whatever raised them.

Every error the API answers is one JSON shape, served as
``application/problem+json``: ``type``, ``title``, ``status``, ``detail``,
``instance`` (the path asked for) and, when the body had fields that are
wrong, ``errors`` (each field's messages). The API's exception handlers make
them; ApiProblems turns what Django answers around the API (an unknown URL, a
method the URL does not take, a server error) into the same shape.
"""

import json
from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse

MEDIA_TYPE = "application/problem+json"
# The type of a problem that says no more than its status (RFC 9457 4.2.1).
BLANK = "about:blank"
# The type of a problem this API names, relative to the site (RFC 9457 3.1.1):
# the README lists them under "Errors".
TYPE_PREFIX = "/api/problems/"
API_PREFIX = "/api/"
# Headers that still hold for the problem a bare error response becomes.
KEPT_HEADERS = ("Allow", "Retry-After", "Location", "WWW-Authenticate")


class Problem(Exception):
    """An error the API answers as problem details; raise it from an operation."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type_name: str | None = None,
        title: str | None = None,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors
        self.type = f"{TYPE_PREFIX}{type_name}" if type_name else BLANK
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}

    def as_dict(self, *, instance: str) -> dict:
        body = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def problem_response(request: HttpRequest, problem: Problem) -> HttpResponse:
    body = json.dumps(problem.as_dict(instance=request.path), ensure_ascii=False)
    return HttpResponse(
        body, status=problem.status, content_type=MEDIA_TYPE, headers=problem.headers
    )


# What a bare answer from Django says, in words a client can act on.
BARE_DETAILS = {
    404: "There is nothing at this URL; /api/docs lists what there is.",
    405: "This URL does not take {method}; it takes {allow}.",
    500: "The server failed to answer; the error is logged. Try again later.",
}


def is_problem(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith(MEDIA_TYPE)


def from_bare_response(request: HttpRequest, response: HttpResponse) -> Problem:
    """The problem a bare error response (Django's 404 page, ninja's 405) stands for."""
    status = response.status_code
    allow = response.get("Allow", "")
    detail = BARE_DETAILS.get(status, HTTPStatus(status).description or HTTPStatus(status).phrase)
    detail = detail.format(method=request.method, allow=allow or "no method")
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    return Problem(status, detail, headers=headers)


class ApiProblems:
    """Middleware: an error under /api/ that is not problem details yet becomes one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not is_problem(response)
            and not getattr(response, "streaming", False)
        ):
            return problem_response(request, from_bare_response(request, response))
        return response
