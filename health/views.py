"""GET /healthz (liveness: the process answers) and GET /readyz (readiness: every check passes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from health_check.views import HealthCheckView

from .checks import READINESS_CHECKS

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def liveness(request: HttpRequest) -> JsonResponse:
    """The process answers requests; it reads no database and no broker."""
    return JsonResponse({"status": "ok"})


class ReadinessView(HealthCheckView):
    """django-health-check's view, answering JSON only: 200 when every check passes, else 503.

    Each check runs in a thread of its own and has READY_CHECK_TIMEOUT
    seconds; a check still blocked after that (a silent server that ignores
    its own timeouts) is reported as timed out and left to finish on its
    own: the answer does not wait for it.
    """

    checks = READINESS_CHECKS

    def get_executor(self):
        return _threads_not_waited_for(len(self.checks))

    async def get(self, request, *args, **kwargs):
        with self.get_executor() as executor:
            self.results = await asyncio.gather(
                *(check.get_result(executor) for check in self.get_checks())
            )
        failing = any(result.error for result in self.results)
        return self.render_to_response_json(503 if failing else 200)

    def render_to_response_json(self, status):
        checks = {}
        for result in self.results:
            entry = {"ok": result.error is None, "seconds": round(result.time_taken, 3)}
            if result.error is None:
                entry["detail"] = result.check.detail
            else:
                entry["error"] = str(result.error)
            checks[result.check.name] = entry
        failing = [name for name, entry in checks.items() if not entry["ok"]]
        if failing:
            logger.warning(
                "Not ready: %s",
                "; ".join(f"{name}: {checks[name]['error']}" for name in failing),
            )
        body = {
            "status": "failing" if failing else "ok",
            "failing": failing,
            "checked_at": timezone.now().isoformat(),
            "checks": checks,
        }
        return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


@contextlib.contextmanager
def _threads_not_waited_for(workers: int) -> Iterator[ThreadPoolExecutor]:
    # The event loop's default executor would be shut down, and so waited
    # for, when asgiref's loop ends: a hung check would hold the answer.
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="readyz")
    try:
        yield executor
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
