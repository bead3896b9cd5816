"""The staff dashboard's pages: the dashboard itself, and its figures as JSON for the timer."""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .dashboard import snapshot
from .streams import STAFF_STREAM_PATH
from .tokens import staff_ticket

# How often the page asks for figures.json when it has no stream, or the stream failed.
REFRESH_SECONDS = 5
# An order id the page swaps for a step's own, to link it to the order's admin page.
ANY_ORDER = "00000000-0000-0000-0000-000000000000"


def staff_stream_url(request: HttpRequest) -> str | None:
    """The staff stream of the ASGI server, with this user's ticket; None without Redis."""
    if not settings.REDIS_URL:
        return None
    return f"{settings.LIVE_STREAM_URL}{STAFF_STREAM_PATH}?ticket={staff_ticket(request.user)}"


@require_GET
@never_cache
@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The live operations dashboard: the figures now, then pushed (or fetched on a timer)."""
    return render(
        request,
        "live/dashboard.html",
        {
            "snapshot": snapshot(),
            "config": {
                "stream_url": staff_stream_url(request),
                "figures_url": reverse("live_dashboard:figures"),
                "refresh_seconds": REFRESH_SECONDS,
                "order_admin_url": reverse("admin:orders_order_change", args=[ANY_ORDER]),
                "any_order": ANY_ORDER,
            },
        },
    )


@require_GET
@never_cache
@staff_member_required
def figures(request: HttpRequest) -> JsonResponse:
    """The dashboard's figures now, as ``live.dashboard.snapshot`` gives them."""
    return JsonResponse(snapshot())
