"""The benchmark harness: ``python -m bench`` (or ``make bench``).

It starts what it needs (Celery workers per app queue for our flow, the
naive baseline and the bare Celery floor, raw kombu consumers for the
transport floor, gunicorn for the web), measures every scenario several
times, interleaving the scenarios run by run so that each ratio compares
figures taken side by side, and writes docs/benchmarks.md and
docs/benchmarks.json. Every process it started is stopped at the end (by its
own process group); RabbitMQ and PostgreSQL are only read from.

The broker vhost and the database come from CELERY_BROKER_URL and
DATABASE_URL (defaults: the ``bench`` vhost and the ``bench`` database). The
database is emptied between runs, so its name must say it is for this
(contain "bench", or start with "test").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .stats import median, percentile

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/bench"

FLOWS = ["ours", "orchestration", "naive"]
FLOORS = ["celery", "kombu"]
SCENARIOS = [*FLOWS, *FLOORS]
TITLES = {
    "ours": "Our flow, choreography",
    "orchestration": "Our flow, orchestration",
    "naive": "Naive baseline (delay_on_commit)",
    "celery": "Bare Celery floor (no-op tasks)",
    "kombu": "Transport floor (raw kombu, confirms)",
}
LOAD_LEVELS = [25, 50, 75]
EXPERIMENTS = ["db_reuse", "no_results"]
N_SKUS = 20


@dataclass
class Options:
    orders: int = 300
    runs: int = 3
    latency_seconds: float = 10.0
    web_seconds: float = 10.0
    web_rate: float = 100.0
    web_concurrency: int = 8
    web_workers: int = 4
    backlog: int = 10_000
    memory_messages: int = 100_000
    concurrency: int = 1
    floor_factor: int = 4
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    phases: list[str] = field(default_factory=lambda: ["web", "recovery", "flows", "memory"])
    out: Path = ROOT / "docs"
    profile: Path | None = None
    experiments: list[str] = field(default_factory=list)
    levels: list[int] = field(default_factory=lambda: list(LOAD_LEVELS))
    mode: str = "full"


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, help="orders per saturation run (default 300)")
    parser.add_argument("--runs", type=int, help="runs of each scenario (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sizes: about two minutes")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves it runs")
    parser.add_argument("--latency-seconds", type=float, help="length of each open-loop run")
    parser.add_argument("--web-seconds", type=float, help="length of each web run")
    parser.add_argument("--backlog", type=int, help="outbox backlog to drain (default 10000)")
    parser.add_argument(
        "--memory-messages", type=int, help="messages through the memory worker (default 100000)"
    )
    parser.add_argument("--concurrency", type=int, help="pool processes per app worker (1)")
    parser.add_argument("--web-workers", type=int, help="gunicorn workers (default 4)")
    parser.add_argument(
        "--scenarios", help=f"comma-separated subset of {','.join(SCENARIOS)} (default all)"
    )
    parser.add_argument(
        "--phases", help="comma-separated subset of web,recovery,flows,memory (default all)"
    )
    parser.add_argument("--out", type=Path, help="where the report goes (default docs/)")
    parser.add_argument(
        "--profile",
        type=Path,
        help="also record py-spy profiles of one saturation run per flow into this folder",
    )
    parser.add_argument(
        "--experiment",
        help="comma-separated configuration experiments, for what-if runs only: "
        f"{', '.join(EXPERIMENTS)} (see bench/settings.py)",
    )
    args = parser.parse_args(argv)
    options = Options()
    if args.quick:
        options = Options(
            orders=60, runs=1, latency_seconds=3, web_seconds=3, backlog=2000,
            memory_messages=3000, mode="quick",
        )  # fmt: skip
    if args.smoke:
        options = Options(
            orders=4, runs=1, latency_seconds=1, web_seconds=1, web_rate=10, web_concurrency=2,
            web_workers=1, backlog=30, memory_messages=20, floor_factor=1, levels=[50],
            mode="smoke",
        )  # fmt: skip
    for name in (
        "orders", "runs", "latency_seconds", "web_seconds", "backlog", "memory_messages",
        "concurrency", "web_workers", "out", "profile",
    ):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            setattr(options, name, value)
    if args.scenarios:
        options.scenarios = [s for s in args.scenarios.split(",") if s]
        unknown = set(options.scenarios) - set(SCENARIOS)
        if unknown:
            parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.phases:
        options.phases = [p for p in args.phases.split(",") if p]
    if args.experiment:
        options.experiments = [x for x in args.experiment.split(",") if x]
        unknown = set(options.experiments) - set(EXPERIMENTS)
        if unknown:
            parser.error(f"unknown experiments: {', '.join(sorted(unknown))}")
    return options


# --- environment ------------------------------------------------------------------


def setup_environment(options: Options) -> None:
    os.environ["BENCH_EXPERIMENTS"] = ",".join(options.experiments)
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("BENCH_NAIVE", None)
    os.environ.pop("BENCH_NO_CONFIRMS", None)
    ensure_vhost_and_database()
    import django

    django.setup()


def ensure_vhost_and_database() -> None:
    """Create the benchmark's database and broker vhost when they are missing.

    The database through PostgreSQL's ``postgres`` database; the vhost with
    ``rabbitmqctl`` when the broker is on this machine (elsewhere it must
    exist already).
    """
    database = urlsplit(os.environ["DATABASE_URL"])
    name = database.path.lstrip("/")
    if database.scheme.startswith("postgres") and name:
        import psycopg
        from psycopg import sql

        admin = urlunsplit(database._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not found:
                print(f"  creating database {name}", flush=True)
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    broker = urlsplit(os.environ["CELERY_BROKER_URL"])
    vhost = broker.path[1:] or "/"
    local = broker.hostname in ("127.0.0.1", "localhost", "::1")
    if not broker.scheme.startswith(("amqp", "pyamqp")) or vhost == "/" or not local:
        return
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        return

    def ctl(*args: str) -> str:
        return subprocess.run(  # noqa: S603
            [rabbitmqctl, "-q", *args], capture_output=True, text=True, timeout=60, check=True
        ).stdout

    if vhost not in ctl("list_vhosts").split():
        print(f"  creating RabbitMQ vhost {vhost}", flush=True)
        ctl("add_vhost", vhost)
        ctl("set_permissions", "-p", vhost, broker.username or "guest", ".*", ".*", ".*")


def child_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
    }
    for key in ("BENCH_NAIVE", "BENCH_NO_CONFIRMS"):
        env.pop(key, None)
    env.update(extra)
    return env


SCENARIO_ENV = {
    "ours": {},
    "orchestration": {},
    "naive": {"BENCH_NAIVE": "1"},
    "celery": {"BENCH_NO_CONFIRMS": "1"},
    "kombu": {},
}


def database_name() -> str:
    from django.conf import settings

    return settings.DATABASES["default"]["NAME"]


def check_database() -> None:
    name = database_name()
    if "bench" not in name and not name.startswith("test"):
        raise SystemExit(
            f"The benchmark empties its database between runs; {name!r} does not look like one "
            "made for it. Point DATABASE_URL at a database whose name contains 'bench'."
        )


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("migrate", database="gateway", interactive=False, verbosity=0)


BENCH_TABLE_APPS = [
    "orders", "payments", "inventory", "shipping", "notifications", "messaging",
    "django_celery_results",
]  # fmt: skip


def reset_database() -> None:
    """Empty every table the flow writes, on each database alias."""
    from django.apps import apps
    from django.db import connections

    def truncate(alias: str, labels: list[str]) -> None:
        tables = [
            model._meta.db_table
            for label in labels
            for model in apps.get_app_config(label).get_models()
            if not model._meta.proxy and model._meta.managed
        ]
        with connections[alias].cursor() as cursor:
            quoted = ", ".join(connections[alias].ops.quote_name(t) for t in tables)
            cursor.execute(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")

    truncate("default", BENCH_TABLE_APPS)
    truncate("gateway", ["gateway"])


def seed_catalog() -> list[str]:
    """Products with stock for every order of a run, in inventory and in orders' catalog."""
    from decimal import Decimal

    from django.utils import timezone

    from inventory.models import Product
    from orders.models import CatalogItem

    skus = [f"BENCH-{i:02d}" for i in range(N_SKUS)]
    now = timezone.now()
    Product.objects.bulk_create(
        Product(sku=sku, name=f"Bench product {sku}", price=Decimal("10.00"), on_hand=10**9)
        for sku in skus
    )
    CatalogItem.objects.bulk_create(
        CatalogItem(
            sku=sku, name=f"Bench product {sku}", price=Decimal("10.00"), currency="EUR",
            available=10**9, as_of=now,
        )
        for sku in skus
    )  # fmt: skip
    return skus


def fresh() -> list[str]:
    reset_database()
    return seed_catalog()


def all_queues() -> list:
    from django.conf import settings
    from kombu import Exchange, Queue

    from . import kombu_floor
    from .doneq import done_queue

    return [
        *settings.CELERY_TASK_QUEUES,
        *[kombu_floor.queue(app) for app in settings.APP_QUEUES],
        done_queue(),
        Queue("celery", Exchange("celery", "direct"), routing_key="celery"),
    ]


def broker_connection():
    from kombu import Connection

    return Connection(os.environ["CELERY_BROKER_URL"])


def purge_queues(names: list[str] | None = None) -> None:
    """Declare the benchmark's queues in its vhost and empty them."""
    with broker_connection() as conn:
        channel = conn.channel()
        for queue in all_queues():
            if names is None or queue.name in names:
                bound = queue(channel)
                bound.declare()
                bound.purge()


def queue_depths(names: list[str]) -> dict[str, int]:
    """Ready messages per queue; while the broker cannot be reached, each counts as busy."""
    try:
        with broker_connection() as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            return {
                name: channel.queue_declare(queue=name, passive=True).message_count
                for name in names
            }
    except (OSError, *broker_connection().connection_errors):
        time.sleep(1)
        return dict.fromkeys(names, 1)


def wait_queues_empty(names: list[str], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3:
        quiet = quiet + 1 if not any(queue_depths(names).values()) else 0
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# --- what the report says about the machine ------------------------------------------


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
    import kombu
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
        "kombu": kombu.__version__,
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
        "publisher_confirms": {
            "ours": True, "orchestration": True, "naive": False, "celery": False, "kombu": True,
        },
    }  # fmt: skip


# --- workers ------------------------------------------------------------------------


class Fleet:
    """The worker processes of each scenario, started once and kept for the whole run."""

    def __init__(self, options: Options, log_dir: Path):
        self.options = options
        self.log_dir = log_dir
        self.groups: dict[str, list] = {}
        self.rss_at_start: dict[str, float] = {}

    def start(self, scenarios: list[str]) -> None:
        from django.conf import settings

        from . import procs

        started = []
        for scenario in scenarios:
            if scenario == "orchestration":
                continue  # it runs on our workers
            group = []
            for app in settings.APP_QUEUES:
                name = f"{scenario}-{app}"
                env = child_env(**SCENARIO_ENV[scenario])
                if scenario == "kombu":
                    argv = [procs.python(), "-m", "bench.kombu_floor", app]
                    group.append(procs.Managed(name, argv, env, self.log_dir))
                    continue
                queue = {"ours": app, "naive": f"naive_{app}", "celery": f"floor_{app}"}[scenario]
                group.append(
                    procs.celery_worker(name, [queue], env, self.log_dir, self.options.concurrency)
                )
            if scenario == "ours":
                # Our flow with all its guarantees includes the relay (beat runs
                # it in production): it sends what a failed after-commit
                # dispatch left in the outbox, e.g. when the broker dropped a
                # connection. Its CPU counts as ours.
                argv = [procs.python(), "manage.py", "relay_outbox", "--loop"]
                group.append(procs.Managed("ours-relay", argv, child_env(), self.log_dir))
            self.groups[scenario] = group
            started.extend(group)
        for managed in started:
            if managed.name == "ours-relay":
                managed.wait_for_log("Outbox relay")
            elif managed.name.startswith("kombu-"):
                managed.wait_for_log("ready.")
            else:
                managed.wait_for_log(procs.READY_MARKER)
        time.sleep(1)  # let the pool children finish importing
        for managed in started:
            self.rss_at_start[managed.name] = {
                "rss_mb": procs.rss_mb(managed.processes()),
                "pss_mb": procs.pss_mb(managed.processes()),
            }

    def of(self, scenario: str) -> list:
        return self.groups["ours" if scenario == "orchestration" else scenario]

    def processes(self, scenario: str):
        return lambda: [p for m in self.of(scenario) for p in m.processes()]

    def queues(self, scenario: str) -> list[str]:
        from django.conf import settings

        from . import kombu_floor

        apps = settings.APP_QUEUES
        return {
            "ours": apps,
            "orchestration": apps,
            "naive": [f"naive_{a}" for a in apps],
            "celery": [f"floor_{a}" for a in apps],
            "kombu": [kombu_floor.queue(a).name for a in apps],
        }[scenario]

    def stop(self) -> None:
        for group in self.groups.values():
            for managed in group:
                managed.stop()


def meter_for(processes) -> object:
    from . import procs

    database = database_name()
    return procs.CpuMeter(
        {
            "python": processes,
            "postgres_backends": lambda: procs.postgres_processes(database)[0],
            "postgres_shared": lambda: procs.postgres_processes(database)[1],
            "postgres_ended": lambda: procs.postmaster(procs.postgres_processes(database)[1]),
            "rabbitmq": procs.rabbitmq_processes,
        },
        reaped=["postgres_ended"],
        live_only=["postgres_backends"],
    )


def cpu_summary(cpu: dict, extra_python: float, units: int) -> dict:
    postgres = cpu["postgres_backends"] + cpu["postgres_ended"] + cpu["postgres_shared"]
    total = cpu["python"] + extra_python + postgres + cpu["rabbitmq"]
    return {
        "cpu_ms_per_order": 1000 * total / units if units else None,
        "python_ms_per_order": 1000 * (cpu["python"] + extra_python) / units if units else None,
        "postgres_ms_per_order": 1000 * postgres / units if units else None,
        "rabbitmq_ms_per_order": 1000 * cpu["rabbitmq"] / units if units else None,
        # Busy CPU of the whole machine not accounted to any of the above:
        # the harness itself and whatever else runs (another engineer's tests).
        "unaccounted_cpu_s": cpu["system_busy"] - total,
        "window_s": cpu["wall"],
    }


def run_injector(scenario: str, orders: int, rate: float, skus: list[str]) -> dict:
    from . import procs

    mode = scenario
    argv = [
        procs.python(), "-m", "bench.inject", mode, "--orders", str(orders),
        "--rate", str(rate), "--skus", ",".join(skus),
    ]  # fmt: skip
    env = child_env(**SCENARIO_ENV[scenario])
    done = subprocess.run(  # noqa: S603
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"injector failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class DoneListener:
    """Collects the floors' completion reports from the bench_done queue."""

    def __init__(self):
        from .doneq import done_queue

        self.conn = broker_connection()
        self.queue = self.conn.SimpleQueue(done_queue())

    def collect(self, count: int, timeout: float) -> list[tuple[float, float]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            try:
                message = self.queue.get(timeout=0.5)
            except self.queue.Empty:
                continue
            body = message.payload if isinstance(message.payload, dict) else None
            if body is None:
                body = json.loads(message.body)
            out.append((body["t0"], body["t1"]))
            message.ack()
        return out

    def close(self) -> None:
        self.queue.close()
        self.conn.close()


def wait_flow_done(scenario: str, orders: int, timeout: float) -> tuple[list, bool]:
    """(created/closed times of the completed orders, whether every order completed)."""
    from orders.models import Order

    deadline = time.monotonic() + timeout
    while True:
        rows = list(
            Order.objects.filter(status=Order.Status.COMPLETED).values_list(
                "created_at", "closed_at"
            )
        )
        if len(rows) >= orders or time.monotonic() > deadline:
            return [(a.timestamp(), b.timestamp()) for a, b in rows], len(rows) >= orders
        time.sleep(0.2)


def wait_flow_settled(orders: int, timeout: float) -> bool:
    """Every delivery of the order graph done: the last emails sent, the stock shipped."""
    from inventory.models import Reservation
    from notifications.models import SentEmail

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        emails = SentEmail.objects.filter(kind=SentEmail.Kind.COMPLETED).count()
        shipped = Reservation.objects.filter(status=Reservation.Status.SHIPPED).count()
        if emails >= orders and shipped >= orders:
            return True
        time.sleep(0.2)
    return False


def flow_counts(orders: int) -> dict:
    """Messages and rows per order, counted in the database after a run."""
    from django_celery_results.models import TaskResult

    from messaging.models import InboxRecord, OutboxMessage

    if not orders:
        return {}
    return {
        "outbox_rows_per_order": OutboxMessage.objects.count() / orders,
        "inbox_rows_per_order": InboxRecord.objects.count() / orders,
        "task_results_per_order": TaskResult.objects.count() / orders,
    }


def measure(fleet: Fleet, scenario: str, orders: int, rate: float, listener) -> dict:
    """One run: inject, wait until every order completed and every hop is done, read the figures."""
    skus = fresh()
    queues = fleet.queues(scenario)
    meter = meter_for(fleet.processes(scenario)).start()
    injected = run_injector(scenario, orders, rate, skus)
    expected = injected["sent"]
    # Long enough for the relay to send what a dropped broker connection left behind.
    timeout = 40 + 2 * expected / max(rate, 5)
    if scenario in FLOWS:
        times, complete = wait_flow_done(scenario, expected, timeout)
        settled = wait_flow_settled(expected, 60) if complete else False
    else:
        times = listener.collect(expected, timeout)
        complete = settled = len(times) >= expected
    settled = wait_queues_empty(queues, 30) and settled
    cpu = meter.stop()
    result = {
        "orders": orders,
        "injected": expected,
        "completed": len(times),
        "complete": complete,
        "settled": settled,
        "injector": injected,
        "cpu": cpu,
        **cpu_summary(cpu, injected["cpu_s"], len(times)),
    }
    if times:
        first = min(t0 for t0, _ in times)
        last = max(t1 for _, t1 in times)
        latencies = sorted(1000 * (t1 - t0) for t0, t1 in times)
        result.update(
            {
                "orders_per_s": len(times) / (last - first) if last > first else None,
                "p50_ms": percentile(latencies, 50),
                "p95_ms": percentile(latencies, 95),
                "p99_ms": percentile(latencies, 99),
                "max_ms": latencies[-1],
            }
        )
    if scenario in FLOWS:
        result.update(flow_counts(len(times)))
        result["deliveries_by_worker"] = deliveries_by_worker()
    if not complete:
        print(f"    ! {scenario}: only {len(times)} of {expected} completed", flush=True)
    return result


def deliveries_by_worker() -> dict[str, int]:
    from django.db.models import Count

    from messaging.models import InboxRecord

    out: dict[str, int] = {}
    for row in InboxRecord.objects.values("handler").annotate(n=Count("id")):
        app = row["handler"].split(".", 1)[0]
        out[app] = out.get(app, 0) + row["n"]
    return out


# --- phases -------------------------------------------------------------------------


def phase_flows(options: Options, fleet: Fleet, results: dict, profile_dir: Path | None) -> None:
    scenarios = options.scenarios
    listener = DoneListener() if set(scenarios) & set(FLOORS) else None
    try:
        for run in range(options.runs):
            for scenario in scenarios:
                orders = options.orders * (options.floor_factor if scenario in FLOORS else 1)
                print(f"  saturation run {run + 1}/{options.runs}: {scenario}", flush=True)
                outcome = measure(fleet, scenario, orders, 0, listener)
                results[scenario]["saturation"].append(outcome)
                print(
                    f"    {fmt(outcome.get('orders_per_s'))} orders/s, "
                    f"{fmt(outcome.get('cpu_ms_per_order'))} CPU ms/order",
                    flush=True,
                )
        saturation = {
            s: median([r.get("orders_per_s") for r in results[s]["saturation"]]) for s in scenarios
        }
        for run in range(options.runs):
            for level in options.levels:
                for scenario in scenarios:
                    if not saturation[scenario]:
                        continue
                    rate = saturation[scenario] * level / 100
                    orders = max(4, round(rate * options.latency_seconds))
                    print(
                        f"  latency run {run + 1}/{options.runs}: {scenario} at {level}% "
                        f"({rate:.1f}/s, {orders} orders)",
                        flush=True,
                    )
                    outcome = measure(fleet, scenario, orders, rate, listener)
                    outcome["level"], outcome["rate"] = level, rate
                    results[scenario]["latency"].setdefault(str(level), []).append(outcome)
                    print(
                        f"    p50 {fmt(outcome.get('p50_ms'))} ms, "
                        f"p99 {fmt(outcome.get('p99_ms'))} ms",
                        flush=True,
                    )
        if profile_dir is not None:
            for scenario in [s for s in scenarios if s in ("ours", "naive", "orchestration")]:
                profile_run(options, fleet, scenario, profile_dir, listener)
    finally:
        if listener is not None:
            listener.close()


def profile_run(options: Options, fleet: Fleet, scenario: str, folder: Path, listener) -> None:
    """One more saturation run with py-spy attached to every worker process of the scenario."""
    folder.mkdir(parents=True, exist_ok=True)
    spies = []
    for managed in fleet.of(scenario):
        label = f"{scenario}-{managed.name.split('-', 1)[1]}"
        spies.extend(spy_on(managed, label, folder, fleet.log_dir))
    time.sleep(2)
    print(f"  profile run: {scenario} ({len(spies)} processes under py-spy)", flush=True)
    outcome = measure(fleet, scenario, options.orders, 0, listener)
    print(f"    {fmt(outcome.get('orders_per_s'))} orders/s under the profiler", flush=True)
    stop_spies(spies)


def spy_on(managed, label: str, folder: Path, log_dir: Path) -> list:
    """py-spy recording each process of a managed process (collapsed stacks, wall clock)."""
    from . import procs

    spies = []
    for process in managed.processes():
        argv = [
            str(Path(procs.python()).with_name("py-spy")), "record", "--pid", str(process.pid),
            "--rate", "250", "--format", "raw", "--nonblocking",
            "-o", str(folder / f"{label}-{process.pid}.txt"),
        ]  # fmt: skip
        spies.append(procs.Managed(f"py-spy-{label}-{process.pid}", argv, child_env(), log_dir))
    return spies


def stop_spies(spies: list) -> None:
    import signal

    for spy in spies:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(spy.pid, signal.SIGINT)
    for spy in spies:
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.process.wait(timeout=30)
        spy.stop()


# The web phase's servers: ours, and the naive baseline's when it is benchmarked.
WEB_SCENARIOS = {"ours": "web", "naive": "web_naive"}


def web_scenarios(options: Options) -> list[str]:
    return ["ours", *(["naive"] if "naive" in options.scenarios else [])]


def phase_web(options: Options, log_dir: Path, results: dict) -> None:
    """POST /api/orders/ through gunicorn: ours and the naive baseline's, run by run in turn."""
    from . import procs

    # scenario -> (server, its port)
    servers: dict[str, tuple[procs.Managed, int]] = {}
    try:
        for scenario in web_scenarios(options):
            port = procs.free_port()
            env = child_env(
                DJANGO_SETTINGS_MODULE="bench.settings_production",
                SECRET_KEY=secrets.token_urlsafe(64),
                ALLOWED_HOSTS="127.0.0.1,localhost",
                LOG_LEVEL="WARNING",
                **SCENARIO_ENV[scenario],
            )
            argv = [
                procs.python(), "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}",
                "-w", str(options.web_workers), "--log-level", "warning",
            ]  # fmt: skip
            servers[scenario] = (procs.Managed(f"gunicorn-{scenario}", argv, env, log_dir), port)
        for server, port in servers.values():
            server.wait_for_port(port)
        for run in range(options.runs):
            for scenario, (server, port) in servers.items():
                url = orders_url(port)
                web_run(options, scenario, server, url, results[WEB_SCENARIOS[scenario]], run)
        if options.profile is not None:
            server, port = servers["ours"]
            url = orders_url(port)
            options.profile.mkdir(parents=True, exist_ok=True)
            spies = spy_on(server, "web-gunicorn", options.profile, log_dir)
            time.sleep(2)
            skus = fresh()
            outcome = load(url, skus, ["--concurrency", str(options.web_concurrency)], 10)
            stop_spies(spies)
            print(f"  web profile run: {fmt(outcome['rps'])} req/s under the profiler", flush=True)
        purge_queues(web_queues())
    finally:
        for server, _ in servers.values():
            server.stop()


def orders_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api/orders/"


def web_run(options: Options, scenario: str, server, url: str, into: dict, run: int) -> None:
    """One run of every load against one server, from a fresh database."""
    skus = fresh()
    purge_queues(web_queues())
    # Warm every gunicorn worker's connections before measuring.
    load(url, skus, ["--concurrency", str(options.web_workers * 2)], 1)
    for kind in ["closed", *(["closed_wrk"] if WRK else []), "open"]:
        meter = meter_for(server.processes).start()
        outcome = web_load(kind, url, skus, options)
        cpu = meter.stop()
        outcome.update(cpu_summary(cpu, 0.0, outcome["requests"]))
        outcome["cpu"] = cpu
        into[kind].append(outcome)
        print(
            f"  web run {run + 1}/{options.runs} {scenario} {kind}: {fmt(outcome['rps'])} req/s, "
            f"p50 {fmt(outcome['p50_ms'])} ms, p99 {fmt(outcome['p99_ms'])} ms, "
            f"{outcome['errors']} errors",
            flush=True,
        )


def web_load(kind: str, url: str, skus: list[str], options: Options) -> dict:
    """One web run: closed loop (Python client or wrk) or open loop at the set rate."""
    if kind == "closed_wrk":
        return load_wrk(url, skus, options.web_concurrency, options.web_seconds)
    if kind == "closed":
        flags = ["--concurrency", str(options.web_concurrency)]
    else:
        flags = ["--rate", str(options.web_rate)]
    return load(url, skus, flags, options.web_seconds)


def web_queues() -> list[str]:
    """Where the web servers' orders go: our apps' queues and the naive twins'."""
    from django.conf import settings

    return [*settings.APP_QUEUES, *settings.NAIVE_QUEUES]


def load(url: str, skus: list[str], flags: list[str], seconds: float) -> dict:
    from . import procs

    argv = [
        procs.python(), "-m", "bench.loadgen", url, "--skus", ",".join(skus),
        "--seconds", str(seconds), *flags,
    ]  # fmt: skip
    before = children_cpu_seconds()
    done = subprocess.run(  # noqa: S603
        argv, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-3000:]}")
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    outcome["generator"] = "python -m bench.loadgen"
    outcome["generator_cpu_ms_per_request"] = per_request(
        children_cpu_seconds() - before, outcome["requests"]
    )
    return outcome


# wrk (Debian's package), when installed: a load generator in C that takes a
# small share of the two cores it shares with the server.
WRK = shutil.which("wrk")


def load_wrk(url: str, skus: list[str], connections: int, seconds: float) -> dict:
    """Closed loop through wrk: each connection sends its next order once the last answered."""
    argv = [
        WRK, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
        "-s", str(ROOT / "bench" / "wrk_orders.lua"), url, "--", ",".join(skus),
    ]  # fmt: skip
    before = children_cpu_seconds()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    failures = {
        key: raw[key]
        for key in ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx_3xx")
        if raw[key]
    }
    return {
        **{k: raw[k] for k in ("requests", "seconds", "p50_ms", "p95_ms", "p99_ms", "max_ms")},
        "rps": raw["requests"] / raw["seconds"] if raw["seconds"] else 0.0,
        "errors": sum(failures.values()),
        "first_error": ", ".join(f"{key}: {count}" for key, count in failures.items()),
        "generator": f"wrk -t1 -c{connections}",
        "generator_cpu_ms_per_request": per_request(
            children_cpu_seconds() - before, raw["requests"]
        ),
    }


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def per_request(cpu_seconds: float, requests: int) -> float | None:
    return 1000 * cpu_seconds / requests if requests else None


def build_backlog(count: int) -> None:
    """Outbox rows as publish() writes them, left pending as if the broker had been down."""
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from messaging.messages import Envelope
    from messaging.models import OutboxMessage

    from .probe import BenchPinged

    then = timezone.now() - timedelta(minutes=5)
    rows = []
    for i in range(count):
        message = BenchPinged(seq=i, note="backlog")
        message_id = uuid.uuid4()
        envelope = Envelope(
            message_id=message_id, kind=message.kind, type=message.message_type,
            version=message.message_version, occurred_at=then, correlation_id=str(message_id),
            causation_id=None, payload=message.model_dump(mode="json"),
        )  # fmt: skip
        rows.append(OutboxMessage.from_envelope(envelope))
    OutboxMessage.objects.bulk_create(rows, batch_size=1000)


def phase_recovery(options: Options, log_dir: Path, results: dict) -> None:
    from django.conf import settings

    from messaging.models import OutboxMessage

    from . import procs

    for run in range(options.runs):
        fresh()
        purge_queues([settings.PROBE_QUEUE])
        # 1. Orders taken while the broker is unreachable for the producer
        #    (a closed port): what it costs the producer, and they wait in the outbox.
        parts = urlsplit(os.environ["CELERY_BROKER_URL"])
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{procs.free_port()}"
        netloc = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        unreachable = urlunsplit(parts._replace(netloc=netloc))
        skus = [f"BENCH-{i:02d}" for i in range(N_SKUS)]
        down = run_injector_env("ours", 3, skus, CELERY_BROKER_URL=unreachable)
        pending = OutboxMessage.objects.filter(dispatched_at__isnull=True).count()
        # 2. The backlog: events written while dispatch could not happen.
        fresh()
        build_backlog(options.backlog)
        argv = [procs.python(), "-m", "bench.relay_drain"]
        relay = procs.Managed(f"relay-{run}", argv, child_env(), log_dir)
        meter = meter_for(relay.processes).start()
        relay.process.wait(timeout=1800)
        cpu = meter.stop()
        relay.stop()
        lines = relay.log_path.read_text().strip().splitlines()
        try:
            drained = json.loads(lines[-1])
        except (IndexError, ValueError) as exc:
            raise RuntimeError(f"relay drain failed:\n{relay.log()}") from exc
        left = OutboxMessage.objects.filter(dispatched_at__isnull=True).count()
        depth = queue_depths([settings.PROBE_QUEUE])[settings.PROBE_QUEUE]
        outcome = {
            **drained,
            "left_pending": left,
            "queued": depth,
            "cpu_ms_per_event": 1000
            * (
                drained["cpu_s"]
                + cpu["postgres_backends"]
                + cpu["postgres_ended"]
                + cpu["postgres_shared"]
                + cpu["rabbitmq"]
            )
            / max(1, drained["dispatched"]),
            "cpu": cpu,
            "broker_down_orders": down["sent"] + down["errors"],
            "broker_down_errors": down["errors"],
            "broker_down_first_error": down["first_error"],
            "broker_down_s_per_order": (down["t_end"] - down["t_start"]) / max(1, down["sent"]),
            "broker_down_pending_after": pending,
        }
        results["recovery"].append(outcome)
        purge_queues([settings.PROBE_QUEUE])
        print(
            f"  outbox drain run {run + 1}/{options.runs}: {fmt(drained['events_per_s'])} "
            f"events/s ({drained['dispatched']} in {fmt(drained['seconds'])} s); an order with "
            f"the broker unreachable took {fmt(outcome['broker_down_s_per_order'])} s",
            flush=True,
        )


def run_injector_env(scenario: str, orders: int, skus: list[str], **extra: str) -> dict:
    from . import procs

    argv = [
        procs.python(), "-m", "bench.inject", scenario, "--orders", str(orders),
        "--skus", ",".join(skus),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603
        argv, cwd=ROOT, env=child_env(**extra), capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"injector failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def phase_memory(options: Options, fleet: Fleet | None, log_dir: Path, results: dict) -> None:
    """RSS of a worker of our messaging layer before and after many handled messages."""
    import uuid

    from django.conf import settings
    from django.utils import timezone

    from messaging.messages import Envelope
    from messaging.models import InboxRecord

    from . import procs
    from .probe import BenchPinged, record_ping

    fresh()
    purge_queues([settings.PROBE_QUEUE])
    worker = procs.celery_worker("memory-probe", [settings.PROBE_QUEUE], child_env(), log_dir)
    samples = []
    try:
        worker.wait_for_log(procs.READY_MARKER)
        time.sleep(1)

        def sample(handled: int) -> dict:
            rss = procs.rss_mb(worker.processes())
            pss = procs.pss_mb(worker.processes())
            point = {"handled": handled, "rss_mb": rss, "pss_mb": pss}
            samples.append(point)
            return point

        sample(0)
        total = options.memory_messages
        chunk = max(1, min(5000, total // 10 or 1))
        sent = 0
        start = time.perf_counter()
        meter = meter_for(worker.processes).start()
        with broker_connection() as conn, conn.Producer() as producer:
            while sent < total:
                batch = min(chunk, total - sent)
                for i in range(batch):
                    message = BenchPinged(seq=sent + i)
                    message_id = uuid.uuid4()
                    envelope = Envelope(
                        message_id=message_id, kind="event", type=message.message_type,
                        version=1, occurred_at=timezone.now(), correlation_id=str(message_id),
                        payload=message.model_dump(mode="json"),
                    )  # fmt: skip
                    record_ping.task.apply_async(
                        kwargs={"envelope": envelope.to_wire()},
                        queue=settings.PROBE_QUEUE,
                        producer=producer,
                    )
                sent += batch
                deadline = time.monotonic() + 60 + batch / 20
                while True:
                    handled = InboxRecord.objects.filter(handler=record_ping.name).count()
                    if handled >= sent or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                point = sample(handled)
                print(
                    f"  memory: {handled} handled, worker PSS {fmt(point['pss_mb'])} MB "
                    f"(RSS {' + '.join(fmt(x) for x in point['rss_mb'])} MB)",
                    flush=True,
                )
                if handled < sent:
                    break
        cpu = meter.stop()
        elapsed = time.perf_counter() - start
        handled = samples[-1]["handled"]
        results["memory"]["probe_worker"] = {
            "messages": total,
            "handled": handled,
            "samples": samples,
            # PSS of the worker (main process + pool child), RSS of its largest process.
            "start_mb": samples[0]["pss_mb"],
            "end_mb": samples[-1]["pss_mb"],
            "growth_mb": samples[-1]["pss_mb"] - samples[min(1, len(samples) - 1)]["pss_mb"],
            "max_process_rss_mb": max(max(s["rss_mb"] or [0]) for s in samples),
            "messages_per_s": handled / elapsed if elapsed else None,
            "cpu": cpu,
            **{k.replace("order", "message"): v for k, v in cpu_summary(cpu, 0.0, handled).items()},
        }
    finally:
        worker.stop()
        purge_queues([settings.PROBE_QUEUE])


# --- the report ---------------------------------------------------------------------


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def summarize(options: Options, results: dict, fleet_rss: dict) -> dict:
    scen = {}
    for scenario in options.scenarios:
        runs = results[scenario]
        sat = runs["saturation"]
        entry = {
            "title": TITLES[scenario],
            "orders_per_s": median([r.get("orders_per_s") for r in sat]),
            "orders_per_s_runs": [r.get("orders_per_s") for r in sat],
            "cpu_ms_per_order": median([r.get("cpu_ms_per_order") for r in sat]),
            "python_ms_per_order": median([r.get("python_ms_per_order") for r in sat]),
            "postgres_ms_per_order": median([r.get("postgres_ms_per_order") for r in sat]),
            "rabbitmq_ms_per_order": median([r.get("rabbitmq_ms_per_order") for r in sat]),
            "all_complete": all(r["complete"] for r in sat)
            and all(r["complete"] for lv in runs["latency"].values() for r in lv),
            "latency": {},
        }
        for key in ("outbox_rows_per_order", "inbox_rows_per_order", "task_results_per_order"):
            if sat and key in sat[0]:
                entry[key] = median([r.get(key) for r in sat])
        for level, lruns in runs["latency"].items():
            entry["latency"][level] = {
                "rate": median([r["rate"] for r in lruns]),
                "achieved_rate": median([r["injector"]["achieved_rate"] for r in lruns]),
                "orders": median([r["injected"] for r in lruns]),
                "p50_ms": median([r.get("p50_ms") for r in lruns]),
                "p95_ms": median([r.get("p95_ms") for r in lruns]),
                "p99_ms": median([r.get("p99_ms") for r in lruns]),
                "p99_ms_runs": [r.get("p99_ms") for r in lruns],
                "cpu_ms_per_order": median([r.get("cpu_ms_per_order") for r in lruns]),
            }
        scen[scenario] = entry

    def ratio(a: str, b: str, key: str = "orders_per_s"):
        x = scen.get(a, {}).get(key)
        y = scen.get(b, {}).get(key)
        return x / y if x and y else None

    ratios = {
        "throughput_ours_over_naive": ratio("ours", "naive"),
        "throughput_ours_over_celery": ratio("ours", "celery"),
        "throughput_ours_over_kombu": ratio("ours", "kombu"),
        "throughput_orchestration_over_naive": ratio("orchestration", "naive"),
        "cpu_per_order_ours_over_naive": ratio("ours", "naive", "cpu_ms_per_order"),
        "cpu_per_order_ours_over_celery": ratio("ours", "celery", "cpu_ms_per_order"),
        "cpu_per_order_ours_over_kombu": ratio("ours", "kombu", "cpu_ms_per_order"),
    }
    # Per-run ratios (each from one interleaved round), to show their spread.
    if "ours" in results and "naive" in results:
        ratios["throughput_ours_over_naive_runs"] = [
            (a.get("orders_per_s") or 0) / b["orders_per_s"] if b.get("orders_per_s") else None
            for a, b in zip(
                results["ours"]["saturation"], results["naive"]["saturation"], strict=False
            )
        ]
    web = web_summary(results["web"])
    web_naive = web_summary(results.get("web_naive", {}))
    closed, closed_naive = (
        (w.get("closed_wrk") or w.get("closed") or {}).get("rps") for w in (web, web_naive)
    )
    ratios["web_ours_over_naive"] = closed / closed_naive if closed and closed_naive else None
    recovery = {}
    if results["recovery"]:
        rr = results["recovery"]
        recovery = {
            "events": options.backlog,
            "events_per_s": median([r["events_per_s"] for r in rr]),
            "events_per_s_runs": [r["events_per_s"] for r in rr],
            "cpu_ms_per_event": median([r["cpu_ms_per_event"] for r in rr]),
            "left_pending": max(r["left_pending"] for r in rr),
            "broker_down_s_per_order": median([r["broker_down_s_per_order"] for r in rr]),
            "broker_down_pending_after": median([r["broker_down_pending_after"] for r in rr]),
        }
    memory = dict(results["memory"])
    if fleet_rss:
        memory["app_workers"] = fleet_rss
    targets = targets_for(scen, ratios, web, recovery, memory)
    return {
        "scenarios": scen,
        "ratios": ratios,
        "web": web,
        "web_naive": web_naive,
        "recovery": recovery,
        "memory": memory,
        "targets": targets,
    }


def web_summary(by_kind: dict) -> dict:
    """The medians of one server's web runs, per kind of load."""
    web = {}
    for kind in ("closed", "closed_wrk", "open"):
        wruns = by_kind.get(kind)
        if wruns:
            web[kind] = {
                "generator": wruns[0]["generator"],
                "rps": median([r["rps"] for r in wruns]),
                "p50_ms": median([r["p50_ms"] for r in wruns]),
                "p99_ms": median([r["p99_ms"] for r in wruns]),
                "errors": sum(r["errors"] for r in wruns),
                "cpu_ms_per_request": median([r["cpu_ms_per_order"] for r in wruns]),
                "generator_cpu_ms_per_request": median(
                    [r["generator_cpu_ms_per_request"] for r in wruns]
                ),
                "rps_runs": [r["rps"] for r in wruns],
                "p99_ms_runs": [r["p99_ms"] for r in wruns],
            }
    return web


def targets_for(scen, ratios, web, recovery, memory) -> list[dict]:
    def check(name, target, measured, ok):
        status = "n/a" if measured is None else ("PASS" if ok(measured) else "MISS")
        return {"target": name, "goal": target, "measured": measured, "status": status}

    latency50 = scen.get("ours", {}).get("latency", {}).get("50", {})
    probe = memory.get("probe_worker", {})
    app_workers = memory.get("app_workers", {})
    peak = (
        max(
            [probe.get("end_mb") or 0, probe.get("start_mb") or 0]
            + [w.get("end_pss_mb") or 0 for w in app_workers.values()]
            + [w.get("start_pss_mb") or 0 for w in app_workers.values()]
        )
        or None
    )
    # Requests per second from the lightest load generator at hand: it shares
    # the machine's cores with the server it measures.
    closed = web.get("closed_wrk") or web.get("closed") or {}
    return [
        check(
            "Throughput, ours ÷ naive", "≥ 0.8 (aim 1.0)",
            ratios.get("throughput_ours_over_naive"), lambda v: v >= 0.8,
        ),
        check(
            "Latency p50 at 50% of saturation (ours)", "≤ 25 ms",
            latency50.get("p50_ms"), lambda v: v <= 25,
        ),
        check(
            "Latency p99 at 50% of saturation (ours)", "≤ 100 ms",
            latency50.get("p99_ms"), lambda v: v <= 100,
        ),
        check(
            f"Web: POST /api/orders/ requests/s ({closed.get('generator', 'closed loop')})",
            "≥ 300", closed.get("rps"), lambda v: v >= 300,
        ),
        check(
            "Web: p99 at 100 requests/s", "≤ 50 ms",
            web.get("open", {}).get("p99_ms"), lambda v: v <= 50,
        ),
        check(
            "Outbox drain, events/s", "≥ 2,000",
            recovery.get("events_per_s"), lambda v: v >= 2000,
        ),
        check(
            "Worker memory, largest worker (PSS, main process + pool child)", "≤ 150 MB",
            peak, lambda v: v <= 150,
        ),
        check(
            "Worker memory growth over the probe run", "≤ 10 MB (our reading of 'worth the name')",
            probe.get("growth_mb"), lambda v: v <= 10,
        ),
    ]  # fmt: skip


def write_report(options: Options, meta: dict, summary: dict, results: dict) -> tuple[Path, Path]:
    from .report import markdown

    options.out.mkdir(parents=True, exist_ok=True)
    document = {**meta, "summary": summary, "runs": results}
    json_path = options.out / "benchmarks.json"
    md_path = options.out / "benchmarks.md"
    json_path.write_text(json.dumps(document, indent=1, default=str) + "\n")
    md_path.write_text(markdown(document))
    return md_path, json_path


def _stop_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    import signal

    # Killed (make bench interrupted), stop every process started, as on Ctrl-C.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    options = parse(argv)
    began = time.time()
    setup_environment(options)
    check_database()
    print(f"Benchmark ({options.mode}): migrating {database_name()}", flush=True)
    migrate()
    from . import graph

    problems = graph.graph_check()
    if problems:
        raise SystemExit("bench/graph.py no longer matches the apps: " + "; ".join(problems))
    purge_queues()
    meta = {
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
    results: dict = {s: {"saturation": [], "latency": {}} for s in options.scenarios}
    results.update(
        {key: {"closed": [], "closed_wrk": [], "open": []} for key in WEB_SCENARIOS.values()}
    )
    results.update({"recovery": [], "memory": {}})
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    print(f"  process logs in {log_dir}", flush=True)
    fleet_rss: dict = {}
    fleet = None
    try:
        if "web" in options.phases:
            print("Web (gunicorn)", flush=True)
            phase_web(options, log_dir, results)
        if "recovery" in options.phases:
            print("Recovery (outbox drain)", flush=True)
            phase_recovery(options, log_dir, results)
        if "flows" in options.phases and options.scenarios:
            print("Flows: starting workers", flush=True)
            fleet = Fleet(options, log_dir)
            fleet.start(options.scenarios)
            phase_flows(options, fleet, results, options.profile)
            from . import procs

            for group in fleet.groups.values():
                for managed in group:
                    start = fleet.rss_at_start.get(managed.name, {})
                    fleet_rss[managed.name] = {
                        "start_rss_mb": start.get("rss_mb"),
                        "start_pss_mb": start.get("pss_mb"),
                        "end_rss_mb": procs.rss_mb(managed.processes()),
                        "end_pss_mb": procs.pss_mb(managed.processes()),
                    }
            fleet.stop()
            fleet = None
        if "memory" in options.phases:
            print("Memory (our messaging layer, no-op handler)", flush=True)
            phase_memory(options, fleet, log_dir, results)
    finally:
        if fleet is not None:
            fleet.stop()
        from . import procs

        procs.stop_all()
        with contextlib.suppress(Exception):
            purge_queues()
    meta["duration_s"] = round(time.time() - began, 1)
    summary = summarize(options, results, fleet_rss)
    md_path, json_path = write_report(options, meta, summary, results)
    print(f"Wrote {md_path} and {json_path} in {meta['duration_s']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
