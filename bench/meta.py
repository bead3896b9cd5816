"""What the report says about the run: the command, the code, the machine, versions, settings."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from . import graph
from .broker import broker_connection
from .cli import ROOT, Options


def run_meta(options: Options, argv: list[str] | None) -> dict:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in ["python", "-m", "bench", *(argv or [])]),
        "git": git_state(),
        "machine": machine(),
        "versions": versions(),
        "settings": settings_used(options),
        "graph": {
            "deliveries_per_order": len(graph.deliveries()),
            "critical_path": graph.critical_path(),
        },
    }


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_state() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(  # noqa: S603
                ["git", *args],  # noqa: S607
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--short"))}


def versions() -> dict:
    from importlib.metadata import version

    import celery
    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    with broker_connection() as conn:
        conn.ensure_connection(max_retries=3)
        props = conn.connection.server_properties
        rabbit = props.get("version")
        rabbit = rabbit.decode() if isinstance(rabbit, bytes) else rabbit
    return {
        "python": platform.python_version(),
        "django": django.get_version(),
        "celery": celery.__version__,
        "kombu": version("kombu"),
        "amqp": version("amqp"),
        "psycopg": version("psycopg"),
        "pydantic": version("pydantic"),
        "gunicorn": version("gunicorn"),
        "rabbitmq": rabbit,
        "postgresql": postgres,
    }


def machine() -> dict:
    import psutil

    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def settings_used(options: Options) -> dict:
    from django.conf import settings
    from kombu.utils.url import maybe_sanitize_url

    db = settings.DATABASES["default"]
    return {
        "mode": options.mode,
        "experiments": options.experiments,
        "database": f"{db['NAME']} on {db.get('HOST') or 'local'}:{db.get('PORT') or ''}",
        "broker": maybe_sanitize_url(settings.CELERY_BROKER_URL),
        "orders_per_saturation_run": options.orders,
        "floor_orders_per_saturation_run": options.orders * options.floor_factor,
        "runs": options.runs,
        "latency_seconds_per_run": options.latency_seconds,
        "load_levels_pct_of_saturation": options.levels,
        "workers": "one `celery -A config worker -Q <app>` per app queue (5), "
        f"prefork, concurrency {options.concurrency}, log level WARNING",
        "worker_prefetch_multiplier": settings.CELERY_WORKER_PREFETCH_MULTIPLIER,
        "task_acks_late": settings.CELERY_TASK_ACKS_LATE,
        "result_backend": settings.CELERY_RESULT_BACKEND,
        "db_conn_max_age": db.get("CONN_MAX_AGE"),
        "payment_gateway_latency_s": settings.PAYMENT_GATEWAY_LATENCY,
        "email_backend": settings.EMAIL_BACKEND,
        "order": "1 line, quantity 1, one of 20 products with ample stock, card 4242...",
        "web": f"gunicorn config.wsgi, {options.web_workers} sync workers, "
        "config.settings.production plus the bench app (bench.settings_production; "
        "X-Forwarded-Proto: https), no app workers running",
        "web_closed_loop_concurrency": options.web_concurrency,
        "web_open_loop_rate": options.web_rate,
        "web_seconds_per_run": options.web_seconds,
        "outbox_backlog": options.backlog,
        "memory_messages": options.memory_messages,
        "live_pages": options.live_pages,
        "live_seconds_per_run": options.live_seconds,
        "live_idle_streams": options.live_idle,
        "live_idle_hold_seconds": options.live_hold,
        "live": "manage.py live_push and uvicorn config.asgi:application (1 process, uvloop, "
        "httptools) with REDIS_URL; the bench's asyncio clients read the streams and polls",
        "publisher_confirms": {
            "ours": True, "screened": True, "orchestration": True, "naive": False,
            "celery": False, "kombu": True,
        },
    }  # fmt: skip
