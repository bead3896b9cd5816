"""The project's own answers, which belong to no app."""

from django.http import HttpRequest, HttpResponse


def no_icon(request: HttpRequest) -> HttpResponse:
    """The pages name no icon, so browsers ask for /favicon.ico: none, rather than a logged 404."""
    return HttpResponse(status=204, headers={"Cache-Control": "max-age=86400"})
