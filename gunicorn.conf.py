"""How gunicorn serves the shop: `gunicorn config.wsgi` reads this file from the working directory.

Every value can be changed from the environment (GUNICORN_CMD_ARGS, or the
variables named below) without editing this file.
"""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

# Imports no Django (the master never does): only prometheus_client.
from metrics.groups import group_folder, group_start, process_dead

CHECKOUT = Path(__file__).resolve().parent
MANAGE = CHECKOUT / "manage.py"

# Loopback by default: the proxy in front is on this host (a container sets GUNICORN_BIND).
bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
# Placing an order waits on the database and the broker's confirm, not the CPU:
# two workers per core keep the cores busy while others wait.
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1) + 1))
# A request never needs this long (the broker confirm times out well before);
# a worker stuck past it is killed and replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Behind a proxy that keeps connections open to us.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycling workers bounds the memory a long-lived process can gather.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
# The proxies whose X-Forwarded-* headers are believed. Django's
# SECURE_PROXY_SSL_HEADER trusts X-Forwarded-Proto, so the proxy in front
# must set it and strip any a client sent.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# The workers' heartbeat files on memory, not on a disk that can stall.
SHM = "/dev/shm"  # noqa: S108 (gunicorn's own advice; only its heartbeat files go there)
if os.path.isdir(SHM):
    worker_tmp_dir = SHM
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"


def _metrics_folder(server) -> Path | None:
    """This gunicorn's folder under METRICS_DIR, named by where it listens; None with metrics off.

    Read from the environment as config/settings/base.py reads it: the
    master does not import Django's settings.
    """
    if os.environ.get("METRICS_ENABLED", "").strip().lower() in {"0", "false", "no", "off"}:
        return None
    var = Path(os.environ.get("VAR_DIR") or CHECKOUT / "var")
    base = Path(os.environ.get("METRICS_DIR") or var / "metrics")
    return group_folder(base, "web-" + "-".join(server.cfg.bind))


def json_logging(access_log: str) -> dict:
    """gunicorn's own lines as JSON too (LOG_FORMAT=json), as Django's are (messaging.logs).

    An access line is written before Django's request_finished, so it carries
    what the request learnt: the correlation id and order id of an order it
    placed or showed.
    """
    to_stdout = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    access = to_stdout if access_log == "-" else {
        "class": "logging.FileHandler", "filename": access_log
    }  # fmt: skip
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "messaging.logs.ContextFilter"}},
        "formatters": {"json": {"()": "messaging.logs.JsonFormatter"}},
        "handlers": {
            "console": {**to_stdout, "formatter": "json", "filters": ["context"]},
            "error_console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["context"],
            },
            "access": {**access, "formatter": "json", "filters": ["context"]},
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }


if os.environ.get("LOG_FORMAT", "text").strip().lower() == "json":
    logconfig_dict = json_logging(accesslog)


def on_starting(server):
    """Count the workers' metrics in this gunicorn's own emptied folder; collect the static files.

    Before the first worker forks, so that every worker inherits
    PROMETHEUS_MULTIPROC_DIR and a scrape of any of them adds up all
    (metrics/groups.py).

    Collect the static files before any worker serves a page.

    The production storage names each file by its hash from a manifest that
    collectstatic writes; without it the admin and the API docs answer 500.
    It runs in a process of its own, so the master never imports Django.
    Set COLLECTSTATIC=0 where the image already holds them.
    """
    folder = _metrics_folder(server)
    if folder is not None:
        group_start(folder)
    if os.environ.get("COLLECTSTATIC", "1") == "0":
        return
    # Several gunicorns starting at once on one machine (a deploy, the
    # benchmark) share STATIC_ROOT: one at a time, or one deletes what
    # another is post-processing.
    var = Path(os.environ.get("VAR_DIR") or CHECKOUT / "var")
    var.mkdir(parents=True, exist_ok=True)
    with open(var / "collectstatic.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(  # noqa: S603 (fixed arguments, no input)
            [sys.executable, str(MANAGE), "collectstatic", "--noinput", "--verbosity", "0"],
            check=True,
        )


def child_exit(server, worker):
    """A worker went (recycled, killed): drop its metrics that count only while it lives."""
    process_dead(worker.pid)
