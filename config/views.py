"""The project's own answers, which belong to no app."""

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from config.problems import API_PREFIX, Problem, problem_response
from orders import views as orders_views


def no_icon(request: HttpRequest) -> HttpResponse:
    """The pages name no icon, so browsers ask for /favicon.ico: none, rather than a logged 404."""
    return HttpResponse(status=204, headers={"Cache-Control": "max-age=86400"})


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 (a bad Host header, say), as problem details under /api/, else the site's
    page. It is raised before ApiProblems sees the request: the tracing middleware, outermost,
    reads the host first."""
    if not request.path.startswith(API_PREFIX):
        return orders_views.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        detail = "The Host header names a host this server does not serve (ALLOWED_HOSTS)."
    else:
        detail = "The request was malformed; check its headers and body, and send it again."
    return problem_response(request, Problem(400, detail))
