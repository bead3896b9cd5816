"""The benchmark's own vhost and database: set up, migrated, emptied and seeded between runs.

The broker vhost and the database come from CELERY_BROKER_URL and
DATABASE_URL (defaults: the ``bench`` vhost and the ``bench`` database). The
database is emptied between runs, so its name must say it is for this
(contain "bench", or start with "test").
"""

from __future__ import annotations

import os
import shutil
import subprocess
from urllib.parse import urlsplit, urlunsplit

from . import graph
from .cli import Options

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/bench"
N_SKUS = 20
SKUS = [f"BENCH-{i:02d}" for i in range(N_SKUS)]

# What each scenario's processes are told (see bench/settings.py).
SCENARIO_ENV = {
    "ours": {},
    "screened": {},
    "orchestration": {},
    "naive": {"BENCH_NAIVE": "1"},
    "celery": {"BENCH_NO_CONFIRMS": "1"},
    "kombu": {},
}


def setup_environment(options: Options) -> None:
    os.environ["BENCH_EXPERIMENTS"] = ",".join(options.experiments)
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("BENCH_NAIVE", None)
    os.environ.pop("BENCH_NO_CONFIRMS", None)
    # The harness reads the graph from this run's apps, and hands it down itself.
    os.environ.pop(graph.ENV, None)
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
    # A cluster (several nodes, ";" between them) has its vhosts made on its first node.
    broker = urlsplit(os.environ["CELERY_BROKER_URL"].split(";")[0])
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
    """The environment of a process the harness starts: the bench settings, plus ``extra``."""
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
    "orders", "payments", "inventory", "shipping", "notifications", "messaging", "analytics",
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

    now = timezone.now()
    Product.objects.bulk_create(
        Product(sku=sku, name=f"Bench product {sku}", price=Decimal("10.00"), on_hand=10**9)
        for sku in SKUS
    )
    CatalogItem.objects.bulk_create(
        CatalogItem(
            sku=sku, name=f"Bench product {sku}", price=Decimal("10.00"), currency="EUR",
            available=10**9, as_of=now,
        )
        for sku in SKUS
    )  # fmt: skip
    return list(SKUS)


def fresh() -> list[str]:
    """An empty database with the catalog seeded; returns the products' SKUs."""
    reset_database()
    return seed_catalog()
