"""Settings shared by every environment, read from the process environment.

Every value has a default that is safe to run with on a laptop: SQLite and a
file-system broker when DATABASE_URL and CELERY_BROKER_URL are unset, DEBUG
off unless asked for. config.settings.production tightens what production
needs on top of this module, config.settings.test what the tests need.

Importing it has no side effect: it reads the environment (config/settings/
environment.py) and nothing else. The folders var/ needs are made by what
uses them: SQLite's when a connection opens, the file-system broker's when
its channel starts (messaging/filesystem.py).
"""

import re
import sqlite3
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from messaging.broker_urls import BrokerUrlError, broker_nodes, is_amqp
from messaging.queues import app_queue, queue_type_read

from .environment import env, without_password

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

# --- Core ------------------------------------------------------------------

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str(
    "SECRET_KEY", default="django-insecure-local-development-only-never-use-this-key"
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Applications ----------------------------------------------------------

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "django_celery_results",
    "django_celery_beat",
    "ninja",
    "health_check",
]
LOCAL_APPS = [
    "messaging",
    "orders",
    "payments",
    "inventory",
    "shipping",
    "notifications",
    "analytics",
    "live",
    "health",
    "metrics",
    "tracing",
    # A stand-in for a third-party card processor, not one of our apps.
    "gateway",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost but for security's headers: every error under /api/ leaves as
    # problem details, whichever middleware or view answered it.
    "config.problems.ApiProblems",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Browser libraries installed from npm by `make install` (package-lock.json
# pins them), served under a prefix: {% static "vendor/chart.js/chart.umd.js" %}.
STATICFILES_DIRS = [("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist")]

# --- Database --------------------------------------------------------------


class FolderCreatingConnection(sqlite3.Connection):
    """An SQLite connection that first makes the folder its file goes in.

    SQLite creates a missing file but not a missing folder. Making it here, as
    the connection opens, keeps importing the settings free of side effects
    and works for every process, whichever opens the database first.
    """

    def __init__(self, database, *args, **kwargs):
        name = str(database)
        if name != ":memory:" and not name.startswith("file:"):
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(database, *args, **kwargs)


def sqlite_tuned(database: dict[str, Any]) -> dict[str, Any]:
    """SQLite set up for several processes writing at once.

    The web server, the workers and beat write to one file at once: WAL lets
    readers run beside the writer, IMMEDIATE takes the write lock when a
    transaction starts (so it waits instead of failing half-way), and the
    timeout is how long it waits for that lock.
    """
    if database["ENGINE"] != "django.db.backends.sqlite3":
        return database
    return {
        **database,
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            "factory": FolderCreatingConnection,
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=30),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def database_from_env(name: str, *, default: str, **options) -> dict[str, Any]:
    """The database whose dj-database-url URL the variable holds."""
    url = env.str(name, default=default)
    try:
        # A plain dict: Django's settings entry, and no TypedDict (DBConfig) to keep.
        return dict(
            dj_database_url.parse(
                url, conn_max_age=env.int("DB_CONN_MAX_AGE", default=60), **options
            )
        )
    except ValueError as error:
        raise ImproperlyConfigured(
            f"{name}={without_password(url)!r} is not a database URL: {error}"
        ) from None


def databases(*, default_url: str) -> dict:
    """The default database (DATABASE_URL, else default_url) and the simulated gateway's.

    The simulated card gateway keeps its own records on a connection of its
    own, so what it did survives when the caller's transaction rolls back, as
    a real processor's would. It shares the database on PostgreSQL and has a
    file of its own on SQLite (whose one writer at a time would otherwise wait
    on itself).
    """
    default = sqlite_tuned(
        database_from_env("DATABASE_URL", default=default_url, conn_health_checks=True)
    )
    if "GATEWAY_DATABASE_URL" in env:
        gateway = sqlite_tuned(database_from_env("GATEWAY_DATABASE_URL", default=""))
    elif default["ENGINE"] == "django.db.backends.sqlite3":
        gateway = {**default, "NAME": str(Path(default["NAME"]).with_name("gateway.sqlite3"))}
    else:
        gateway = dict(default)
    return {"default": default, "gateway": gateway}


DATABASES = databases(default_url=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASE_ROUTERS = ["gateway.routers.GatewayRouter"]

# --- Authentication --------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Email -----------------------------------------------------------------


def shop_url() -> str:
    """SHOP_URL without its trailing slash: where customers reach the shop, scheme and host."""
    url = env.str("SHOP_URL", default="http://127.0.0.1:8000").rstrip("/")
    if not re.fullmatch(r"https?://[^/\s]+", url):
        raise ImproperlyConfigured(
            f"SHOP_URL={url!r} is not the shop's address: http:// or https:// and the host "
            "(and port), no path, e.g. https://shop.example.com"
        )
    return url


def email_server() -> dict:
    """django-environ's reading of EMAIL_URL (e.g. smtp+tls://user:pass@host:587), {} if unset.

    smtp:// is plain, smtp+tls:// and smtps:// use STARTTLS, smtp+ssl:// TLS
    from the start.
    """
    url = env.str("EMAIL_URL", default="")
    if not url:
        return {}
    try:
        return env.email_url_config(url)
    except (ImproperlyConfigured, ValueError) as error:
        raise ImproperlyConfigured(
            f"EMAIL_URL={without_password(url)!r} is not an email URL: {error}"
        ) from None


# Every email links to its order's page under SHOP_URL (the default is where
# `make run` serves): that unguessable URL is the customer's only way back.
SHOP_URL = shop_url()
# The mail server EMAIL_URL names; without one, each email is logged at INFO
# (and its body kept in the admin's mailbox). EMAIL_BACKEND, if set, wins.
# (Lower case: not a setting, it holds the password.)
_email_server = email_server()
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default=_email_server.get("EMAIL_BACKEND", "notifications.mail.LoggingEmailBackend"),
)
EMAIL_HOST = _email_server.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email_server.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email_server.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email_server.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email_server.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email_server.get("EMAIL_USE_SSL"))
# Seconds a silent mail server may hold a worker before the send fails (and the
# delivery is retried); Django's default is to wait for ever.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="shop@example.com")

# --- Shop ------------------------------------------------------------------

SHOP_CURRENCY = env.str("SHOP_CURRENCY", default="EUR")
# Seconds the simulated card gateway takes per call, and how many calls for
# its "timeout" test card time out before one succeeds.
PAYMENT_GATEWAY_LATENCY = env.float("PAYMENT_GATEWAY_LATENCY", default=0.3)
PAYMENT_GATEWAY_TIMEOUTS = env.int("PAYMENT_GATEWAY_TIMEOUTS", default=2)
# The circuit breaker in front of the gateway (payments/breaker.py): it opens
# after this many failed calls in a row and tries again this many seconds
# later. Its state is shared through Redis when a URL is set; otherwise each
# worker process keeps its own.
PAYMENT_GATEWAY_BREAKER_FAILURES = env.int("PAYMENT_GATEWAY_BREAKER_FAILURES", default=5)
PAYMENT_GATEWAY_BREAKER_RESET = env.float("PAYMENT_GATEWAY_BREAKER_RESET", default=30.0)
PAYMENT_GATEWAY_BREAKER_REDIS_URL = env.str(
    "PAYMENT_GATEWAY_BREAKER_REDIS_URL", default=env.str("REDIS_URL", default="")
)
PAYMENT_GATEWAY_BREAKER_NAMESPACE = env.str(
    "PAYMENT_GATEWAY_BREAKER_NAMESPACE", default="eventshop"
)
# Destinations the carrier does not serve: a shipment there fails (and the
# order is compensated). AQ is Antarctica.
SHIPPING_UNSERVED_COUNTRIES = env.list("SHIPPING_UNSERVED_COUNTRIES", default=["AQ"])

# Orders run by choreography (apps react to events) or orchestration (an
# order saga sends commands); this is the default, the API and the form can
# choose per order.
ORDERS_DEFAULT_WORKFLOW = env.str("ORDERS_DEFAULT_WORKFLOW", default="choreography")
# Each saga step waits this long for its reply, is sent this many times in
# all, then the saga compensates (or, if compensating, needs attention).
SAGA_STEP_TIMEOUT = env.float("SAGA_STEP_TIMEOUT", default=60.0)
SAGA_STEP_ATTEMPTS = env.int("SAGA_STEP_ATTEMPTS", default=3)
SAGA_DEADLINE_CHECK_INTERVAL = env.float("SAGA_DEADLINE_CHECK_INTERVAL", default=5.0)
# Every order, under either workflow, ends by this many seconds after it was
# placed: the watchdog (beat, every SAGA_DEADLINE_CHECK_INTERVAL) undoes what
# an order still open did and cancels it, and the apps refuse its steps
# from then on. A saga step waiting out an outage is not timed out before it.
ORDER_DEADLINE_SECONDS = env.float("ORDER_DEADLINE_SECONDS", default=900.0)
# How long an order's Idempotency-Key (or the storefront form's one-time token)
# is remembered: a client retrying within it gets the first answer; beat purges
# older keys every hour, after which the key may place a new order.
IDEMPOTENCY_KEY_RETENTION = env.float("IDEMPOTENCY_KEY_RETENTION", default=24 * 3600.0)
if IDEMPOTENCY_KEY_RETENTION <= 0:
    raise ImproperlyConfigured(
        f"IDEMPOTENCY_KEY_RETENTION={IDEMPOTENCY_KEY_RETENTION!r} is not a number of seconds "
        "above 0"
    )
# An order still open after this many seconds is listed as stuck.
STUCK_ORDER_AGE = env.float("STUCK_ORDER_AGE", default=300.0)

# --- Fraud -----------------------------------------------------------------

# Payments charges an order only once the fraud screen (the stream processor
# in analytics/) has cleared it, and never one it suspects; while the
# processor is down, charges wait. Off: payments charges at once and ignores
# the verdicts.
FRAUD_SCREENING = env.bool("FRAUD_SCREENING", default=True)
# The processor's velocity rules, per card and per customer email: an order
# is suspected when, with it, more than FRAUD_MAX_ORDERS orders were placed
# within FRAUD_WINDOW_SECONDS, or more than FRAUD_MAX_DECLINES payments were
# declined within that window before it.
FRAUD_MAX_ORDERS = env.int("FRAUD_MAX_ORDERS", default=5)
FRAUD_MAX_DECLINES = env.int("FRAUD_MAX_DECLINES", default=3)
FRAUD_WINDOW_SECONDS = env.int("FRAUD_WINDOW_SECONDS", default=600)

# --- Celery ----------------------------------------------------------------

# Without CELERY_BROKER_URL the project runs on kombu's file-system transport,
# which needs no server and works across the processes of one machine. The
# README says what it does not guarantee (publisher confirms, redelivery of a
# message held by a killed worker); production uses RabbitMQ.
BROKER_DIR = VAR_DIR / "broker"


def broker_url_setting(url: str) -> str:
    """CELERY_BROKER_URL checked: one URL, or a RabbitMQ cluster's nodes separated by ";".

    Celery and kombu fail over to the next node of the list when one cannot
    be reached (messaging/broker_urls.py).
    """
    try:
        return ";".join(broker_nodes(url))
    except BrokerUrlError as error:
        raise ImproperlyConfigured(f"CELERY_BROKER_URL: {error}") from None


def broker_transport(url: str) -> tuple[str | None, dict]:
    """The transport class (None: the URL's own) and its options for this broker URL."""
    if url.startswith("filesystem://"):
        # kombu's transport, made safe for several processes; its channel
        # makes these folders when it starts (messaging/filesystem.py).
        return "messaging.filesystem:Transport", {
            "data_folder_in": str(BROKER_DIR / "messages"),
            "data_folder_out": str(BROKER_DIR / "messages"),
            "control_folder": str(BROKER_DIR / "control"),
            "polling_interval": 0.1,
        }
    if is_amqp(url):
        # Every publish waits for the broker's confirm: a message the broker did
        # not take raises at the publisher instead of vanishing.
        # A silent broker (hung, or the network dropping packets) must not hang
        # anyone: every blocking socket read or write to it, a confirm awaited
        # included, gives up after MESSAGING_BROKER_SOCKET_TIMEOUT seconds.
        socket_timeout = env.float("MESSAGING_BROKER_SOCKET_TIMEOUT", default=10.0)
        return None, {
            "confirm_publish": True,
            "read_timeout": socket_timeout,
            "write_timeout": socket_timeout,
        }
    return None, {}


CELERY_BROKER_URL = broker_url_setting(env.str("CELERY_BROKER_URL", default="filesystem://"))
CELERY_BROKER_TRANSPORT, CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport(CELERY_BROKER_URL)
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_BROKER_HEARTBEAT = env.int("CELERY_BROKER_HEARTBEAT", default=30)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A publish that cannot reach the broker gives up quickly; the outbox keeps the
# message and the relay sends it later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = env.int("CELERY_RESULT_EXPIRES", default=7 * 24 * 3600)

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A task killed at the hard time limit goes back to the queue rather than
# being acknowledged and lost; the soft limit before it lets handlers fail
# normally (and be retried, then dead-lettered) in all but stuck cases.
CELERY_TASK_ACKS_ON_TIMEOUT = False
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_WORKER_CONSUMER = "messaging.worker:Consumer"

# One durable queue per app, named after it; "messaging" carries the
# backbone's own housekeeping (the outbox relay). Quorum queues are replicated
# across a cluster's nodes (RabbitMQ 4 has no other replicated kind); classic
# ones live on one node, and are what the embedded default and development
# use. A queue's type cannot change in place: the README says how to move.
MESSAGING_QUEUE_TYPE = queue_type_read(env.str("MESSAGING_QUEUE_TYPE", default="classic"))
# A quorum queue dead-letters a message delivered this many times without an
# ack (its worker died each time): a second guard, after the retries' own count,
# against a message that kills whoever handles it.
MESSAGING_DELIVERY_LIMIT = env.int("MESSAGING_DELIVERY_LIMIT", default=10)
if MESSAGING_DELIVERY_LIMIT < 1:
    raise ImproperlyConfigured(
        f"MESSAGING_DELIVERY_LIMIT={str(MESSAGING_DELIVERY_LIMIT)!r} is not a number of "
        "deliveries: 1 or more"
    )
MESSAGING_QUEUES = ["orders", "payments", "inventory", "shipping", "notifications", "messaging"]


def task_queues(names: list[str], *, queue_type: str, delivery_limit: int) -> list[Queue]:
    """The queues workers consume, declared alike everywhere (messaging.queues)."""
    return [app_queue(name, queue_type=queue_type, delivery_limit=delivery_limit) for name in names]


CELERY_TASK_QUEUES = task_queues(
    MESSAGING_QUEUES, queue_type=MESSAGING_QUEUE_TYPE, delivery_limit=MESSAGING_DELIVERY_LIMIT
)
CELERY_TASK_DEFAULT_QUEUE = "messaging"
CELERY_TASK_DEFAULT_EXCHANGE = "messaging"
CELERY_TASK_DEFAULT_ROUTING_KEY = "messaging"

CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Workers keep their database connections from one task to the next (Celery's
# Django fixup would otherwise close them after every task) and, as Django
# does between requests, close one that broke or is older than
# DB_CONN_MAX_AGE before and after each task (config/celery.py).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# Handlers store no result (the inbox and the dead letters say what became of
# each message); a failure of any other task is still kept.
CELERY_TASK_STORE_ERRORS_EVEN_IF_IGNORED = True

# --- Messaging backbone ----------------------------------------------------

# Retries of a failing handler: exponential backoff with full jitter,
# base * 2**attempt seconds capped at the maximum, then a dead letter.
MESSAGING_MAX_RETRIES = env.int("MESSAGING_MAX_RETRIES", default=5)
MESSAGING_RETRY_BACKOFF = env.float("MESSAGING_RETRY_BACKOFF", default=2.0)
MESSAGING_RETRY_BACKOFF_MAX = env.float("MESSAGING_RETRY_BACKOFF_MAX", default=300.0)
# A message that came before what it depends on (RetryLater: a payment before
# its order's lines, say, when the broker failed half way through the order's
# dispatch and the relay sends the rest) waits this many seconds for it,
# backing off, without using its retries; then they count as any failure's.
MESSAGING_RETRY_LATER_WINDOW = env.float("MESSAGING_RETRY_LATER_WINDOW", default=900.0)
# Seconds to wait for the broker's confirm of one publish.
MESSAGING_CONFIRM_TIMEOUT = env.float("MESSAGING_CONFIRM_TIMEOUT", default=5.0)
# An event for several queues is published once and RabbitMQ copies it into
# each (the CC header); each worker names its own queue's handler. Off: one
# message per subscriber, which workers of a version without fan-out can
# read (turn it on once every worker runs this one).
MESSAGING_FAN_OUT = env.bool("MESSAGING_FAN_OUT", default=True)
# After a dispatch failed, committed messages are left to the relay for this
# many seconds instead of each waiting for the broker's timeouts.
MESSAGING_DISPATCH_PAUSE = env.float("MESSAGING_DISPATCH_PAUSE", default=5.0)
# The largest message, in bytes: a larger one is refused when published and,
# if one arrives anyway, dead-lettered without being read.
MESSAGING_MAX_MESSAGE_BYTES = env.int("MESSAGING_MAX_MESSAGE_BYTES", default=256 * 1024)
# The relay sends what the after-commit dispatch did not: every
# MESSAGING_RELAY_INTERVAL seconds it takes up to MESSAGING_RELAY_BATCH
# messages older than MESSAGING_RELAY_GRACE seconds that are still pending.
MESSAGING_RELAY_INTERVAL = env.float("MESSAGING_RELAY_INTERVAL", default=5.0)
MESSAGING_RELAY_GRACE = env.float("MESSAGING_RELAY_GRACE", default=10.0)
MESSAGING_RELAY_BATCH = env.int("MESSAGING_RELAY_BATCH", default=500)
# Every worker runs the relay on a timer of its own (messaging.worker.RelayTimer),
# so it runs wherever any worker does. Off: only `manage.py relay_outbox --loop`
# (or a worker of the messaging queue asked to) relays.
MESSAGING_WORKER_RELAY = env.bool("MESSAGING_WORKER_RELAY", default=True)


# --- Health ----------------------------------------------------------------

# GET /readyz (health/): each check has READY_CHECK_TIMEOUT seconds (the
# broker's connection also stops at CELERY_BROKER_CONNECTION_TIMEOUT). It
# fails when the oldest message still pending in the outbox is older than
# READY_OUTBOX_MAX_AGE seconds, when the relay last ran more than
# READY_RELAY_MAX_AGE seconds ago (by default three of its intervals and 10 s
# of slack), and when more than READY_DEAD_LETTER_MAX dead letters were
# recorded in the last READY_DEAD_LETTER_WINDOW seconds.
READY_CHECK_TIMEOUT = env.float("READY_CHECK_TIMEOUT", default=3.0)
READY_OUTBOX_MAX_AGE = env.float("READY_OUTBOX_MAX_AGE", default=60.0)
READY_RELAY_MAX_AGE = env.float("READY_RELAY_MAX_AGE", default=3 * MESSAGING_RELAY_INTERVAL + 10)
READY_DEAD_LETTER_WINDOW = env.float("READY_DEAD_LETTER_WINDOW", default=300.0)
READY_DEAD_LETTER_MAX = env.int("READY_DEAD_LETTER_MAX", default=10)
# Each worker writes a heartbeat file in WORKER_HEARTBEAT_DIR every
# WORKER_HEARTBEAT_INTERVAL seconds from its event loop (messaging/liveness.py);
# `manage.py worker_alive` calls a worker dead once its file is older than
# WORKER_HEARTBEAT_MAX_AGE seconds or its process is gone.
WORKER_HEARTBEAT_DIR = Path(env.str("WORKER_HEARTBEAT_DIR", default=str(VAR_DIR / "workers")))
WORKER_HEARTBEAT_INTERVAL = env.float("WORKER_HEARTBEAT_INTERVAL", default=5.0)
WORKER_HEARTBEAT_MAX_AGE = env.float("WORKER_HEARTBEAT_MAX_AGE", default=60.0)


# --- Metrics ---------------------------------------------------------------

# Prometheus metrics (metrics/): GET /metrics on the web, and an exporter in
# each Celery worker's main process on METRICS_WORKER_ADDRESS:METRICS_WORKER_PORT
# (0: a free port, logged). Each process group (a gunicorn, a worker) counts
# in files of its own under METRICS_DIR, emptied when it starts. Off, nothing
# is counted or served (the benchmark compares the two).
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=True)
METRICS_DIR = Path(env.str("METRICS_DIR", default=str(VAR_DIR / "metrics")))
METRICS_WORKER_ADDRESS = env.str("METRICS_WORKER_ADDRESS", default="127.0.0.1")
METRICS_WORKER_PORT = env.int("METRICS_WORKER_PORT", default=9808)


# --- Event log -------------------------------------------------------------

# Every dispatched event is kept in an ordered log that stream processors
# read and replay (messaging.eventlog): a RabbitMQ stream queue named
# "events" on RabbitMQ, the outbox table itself otherwise, or a Redis stream
# when asked for.
EVENT_LOG_BACKENDS = ("rabbitmq", "database", "redis")


def event_log_backend(broker_url: str) -> str:
    """EVENT_LOG_BACKEND, else the stream on RabbitMQ and the outbox table elsewhere."""
    default = "rabbitmq" if is_amqp(broker_url) else "database"
    backend = env.str("EVENT_LOG_BACKEND", default=default)
    if backend not in EVENT_LOG_BACKENDS:
        raise ImproperlyConfigured(
            f"EVENT_LOG_BACKEND={backend!r} is not a log backend: {' or '.join(EVENT_LOG_BACKENDS)}"
        )
    return backend


EVENT_LOG_BACKEND = event_log_backend(CELERY_BROKER_URL)
# How long the stream keeps entries, and how large it may grow: RabbitMQ drops
# the oldest segments past either. A replay from "first" starts at the oldest
# entry still kept. They are the stream's arguments when it is first
# declared; change them on a running broker with a policy (README).
EVENT_LOG_MAX_AGE = env.str("EVENT_LOG_MAX_AGE", default="7D")
if not re.fullmatch(r"[1-9][0-9]*[YMDhms]", EVENT_LOG_MAX_AGE):
    raise ImproperlyConfigured(
        f"EVENT_LOG_MAX_AGE={EVENT_LOG_MAX_AGE!r} is not an age: a number and a unit of "
        "Y, M, D, h, m or s, e.g. 7D"
    )
EVENT_LOG_MAX_LENGTH_BYTES = env.int("EVENT_LOG_MAX_LENGTH_BYTES", default=5 * 1024**3)


def event_log_redis_url(*, default: str = "") -> str:
    """The Redis of the redis backend: EVENT_LOG_REDIS_URL, else REDIS_URL, else ``default``.

    Empty when there is none (messaging.checks then fails the redis backend).
    """
    name = next((n for n in ("EVENT_LOG_REDIS_URL", "REDIS_URL") if env.str(n, default="")), "")
    url = env.str(name) if name else default
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"{name or 'EVENT_LOG_REDIS_URL'}={without_password(url)!r} is not a Redis URL: "
            "redis://, rediss:// or unix://"
        )
    return url


# The redis backend: a stream on this Redis, whose key is
# "<namespace>:<database name>:<key>" (sites sharing a Redis keep apart), and
# about how many entries it keeps (XADD MAXLEN ~, the oldest go first).
EVENT_LOG_REDIS_URL = event_log_redis_url()
EVENT_LOG_REDIS_NAMESPACE = env.str("EVENT_LOG_REDIS_NAMESPACE", default="eventshop")
EVENT_LOG_REDIS_KEY = env.str("EVENT_LOG_REDIS_KEY", default="events")
if not EVENT_LOG_REDIS_KEY:
    raise ImproperlyConfigured("EVENT_LOG_REDIS_KEY='' is not a key: leave it unset for 'events'")
EVENT_LOG_REDIS_MAX_LENGTH = env.int("EVENT_LOG_REDIS_MAX_LENGTH", default=1_000_000)
if EVENT_LOG_REDIS_MAX_LENGTH < 1:
    raise ImproperlyConfigured(
        f"EVENT_LOG_REDIS_MAX_LENGTH={str(EVENT_LOG_REDIS_MAX_LENGTH)!r} is not a number of "
        "entries: 1 or more"
    )

# --- Stream processing -----------------------------------------------------

# A processor commits its projection and its offset together, every
# ANALYTICS_BATCH_SIZE entries at most (or sooner, when the log goes quiet).
ANALYTICS_BATCH_SIZE = env.int("ANALYTICS_BATCH_SIZE", default=500)
# Seconds after a minute's end, by event time, before its figures are final;
# an entry for an earlier minute still counts there, and as a late entry.
ANALYTICS_ALLOWED_LATENESS = env.int("ANALYTICS_ALLOWED_LATENESS", default=300)
# Seconds of event time for which a processor remembers the message ids it
# took, to skip a copy the relay appended again.
ANALYTICS_DEDUP_WINDOW = env.int("ANALYTICS_DEDUP_WINDOW", default=24 * 3600)


# Beat purges the placement keys older than IDEMPOTENCY_KEY_RETENTION this often (seconds).
PLACEMENT_KEYS_PURGE_INTERVAL = 3600.0


def beat_schedule(*, deadline_check_interval: float) -> dict:
    """Beat's periodic tasks: the saga's deadline check, the order watchdog and the purge of old
    placement keys.

    The outbox relay is not one of them: every worker runs it on its own timer
    (MESSAGING_WORKER_RELAY), so that it needs neither beat nor a worker of
    the messaging queue.
    """
    return {
        "orders.saga_check_deadlines": {
            "task": "orders.saga_check_deadlines",
            "schedule": deadline_check_interval,
            "options": {"queue": "orders", "expires": deadline_check_interval * 2},
        },
        "orders.watchdog_sweep": {
            "task": "orders.watchdog_sweep",
            "schedule": deadline_check_interval,
            "options": {"queue": "orders", "expires": deadline_check_interval * 2},
        },
        "orders.placement_keys_purge": {
            "task": "orders.placement_keys_purge",
            "schedule": PLACEMENT_KEYS_PURGE_INTERVAL,
            "options": {"queue": "orders", "expires": PLACEMENT_KEYS_PURGE_INTERVAL},
        },
    }


CELERY_BEAT_SCHEDULE = beat_schedule(deadline_check_interval=SAGA_DEADLINE_CHECK_INTERVAL)

# --- Real time -------------------------------------------------------------

# With a Redis, every step of an order is pushed to its page and the staff
# dashboard through Redis pub/sub (``python manage.py live_push`` publishes,
# the ASGI server ``config.asgi`` streams); without one the pages poll.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"REDIS_URL={without_password(REDIS_URL)!r} is not a Redis URL: "
        "redis://, rediss:// or unix://"
    )
# Where browsers reach the streaming (ASGI) server, e.g. http://127.0.0.1:8001;
# empty when it is the site's own origin (a proxy sends /live/ to it).
LIVE_STREAM_URL = env.str("LIVE_STREAM_URL", default="").rstrip("/")
# Seconds between the dashboard's figures while someone watches them.
LIVE_FIGURES_INTERVAL = env.float("LIVE_FIGURES_INTERVAL", default=2.0)
# Seconds between keep-alive comments on an idle stream (proxies close silent ones).
LIVE_KEEPALIVE = env.float("LIVE_KEEPALIVE", default=15.0)

# --- Tracing ---------------------------------------------------------------

# OpenTelemetry traces of every order, across processes (tracing/): spans of
# the web requests and of every hop, sent where the standard OTEL_* variables
# say (OTLP when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER is set).
# Unset: on exactly when they name an exporter, so that by default nothing is
# instrumented at all. 1: instrumented even without one (spans to the API's
# no-op tracer; a caller's trace context still passes through envelopes).
# 0, or the SDK's own OTEL_SDK_DISABLED=true: never.
TRACING_ENABLED = (
    False
    if env.bool("OTEL_SDK_DISABLED", default=False)
    else env.bool("TRACING_ENABLED", default=None)
)
# Each SQL statement as a span of its own (opentelemetry-instrumentation-psycopg),
# where spans are exported. Off by default: an order runs some hundred
# statements, and their spans would cost more than all the others together.
TRACING_SQL = env.bool("TRACING_SQL", default=False)

# --- Logging ---------------------------------------------------------------

# Readable text by default; LOG_FORMAT=json writes one JSON object per line,
# in the web and the workers alike (messaging/logs.py), each line of a
# delivery carrying its correlation id, message id, handler, task id and the
# payload fields MESSAGING_LOG_FIELDS names.
LOG_FORMAT = env.str("LOG_FORMAT", default="text").lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is not a log format: text or json")
MESSAGING_LOG_FIELDS = env.list("MESSAGING_LOG_FIELDS", default=["order_id"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "messaging.logs.ContextFilter"},
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "messaging.logs.JsonFormatter"},
        # runserver's request lines, as Django's default logging prints them.
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server" if LOG_FORMAT == "text" else "json",
            "filters": ["context"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Without handlers of its own: Django's default console handler would
        # print each of its records a second time when DEBUG is on (the root
        # prints them), and its mail_admins handler has no ADMINS to write to.
        # Configuring it resets django.server, configured again as Django does.
        "django": {"handlers": [], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # django-health-check logs each failing check with a traceback; /readyz
        # logs one line naming them (health/views.py) and its answer says why.
        "health_check": {"level": "ERROR"},
    },
}
