"""GET /metrics: the web's counters, added up over its processes, and the shop's gauges."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from . import instruments
from .collectors import ShopCollector
from .groups import group_registry, is_multiprocess


def scrape_registry() -> CollectorRegistry:
    """What one scrape of the web reads: the web's own counts, then the shop's gauges.

    Under gunicorn every worker process counts in the group's files, and
    whichever answers adds them all up; a process alone (runserver) is
    read from its own memory.
    """
    if is_multiprocess():
        registry = group_registry()
    else:
        registry = CollectorRegistry()
        registry.register(instruments.registry)
    registry.register(ShopCollector())
    return registry


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_ENABLED:
        raise Http404("Metrics are off (METRICS_ENABLED)")
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
