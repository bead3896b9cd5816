"""Settings shared by every environment, read from the process environment.

Every value has a default that is safe to run with on a laptop: SQLite and a
file-system broker when DATABASE_URL and CELERY_BROKER_URL are unset, DEBUG
off unless asked for. config.settings.production tightens what production
needs on top of this module.
"""

import os
from pathlib import Path

import dj_database_url
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


# --- Core ------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get(
    "SECRET_KEY", "django-insecure-local-development-only-never-use-this-key"
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

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
]
LOCAL_APPS = [
    "messaging",
    "orders",
    "payments",
    "inventory",
    "shipping",
    "notifications",
    # A stand-in for a third-party card processor, not one of our apps.
    "gateway",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Database --------------------------------------------------------------

DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}


def sqlite_tuned(database: dict) -> dict:
    """SQLite set up for several processes writing at once.

    The web server, the workers and beat write to one file at once: WAL lets
    readers run beside the writer, IMMEDIATE takes the write lock when a
    transaction starts (so it waits instead of failing half-way), and the
    timeout is how long it waits for that lock.
    """
    if database["ENGINE"] != "django.db.backends.sqlite3":
        return database
    Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    return {
        **database,
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": env_int("SQLITE_BUSY_TIMEOUT", 30),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES["default"] = sqlite_tuned(DATABASES["default"])

# The simulated card gateway keeps its own records on a connection of its own,
# so what it did survives when the caller's transaction rolls back, as a real
# processor's would. It shares the database on PostgreSQL and has a file of
# its own on SQLite (whose one writer at a time would otherwise wait on itself).
if "GATEWAY_DATABASE_URL" in os.environ:
    DATABASES["gateway"] = sqlite_tuned(
        dj_database_url.parse(
            os.environ["GATEWAY_DATABASE_URL"], conn_max_age=env_int("DB_CONN_MAX_AGE", 60)
        )
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["gateway"] = {
        **DATABASES["default"],
        "NAME": str(Path(DATABASES["default"]["NAME"]).with_name("gateway.sqlite3")),
    }
else:
    DATABASES["gateway"] = dict(DATABASES["default"])
DATABASE_ROUTERS = ["gateway.routers.GatewayRouter"]

# --- Authentication --------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Email -----------------------------------------------------------------

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "shop@example.com")

# --- Shop ------------------------------------------------------------------

SHOP_CURRENCY = os.environ.get("SHOP_CURRENCY", "EUR")
# Seconds the simulated card gateway takes per call, and how many calls for
# its "timeout" test card time out before one succeeds.
PAYMENT_GATEWAY_LATENCY = env_float("PAYMENT_GATEWAY_LATENCY", 0.3)
PAYMENT_GATEWAY_TIMEOUTS = env_int("PAYMENT_GATEWAY_TIMEOUTS", 2)
# The circuit breaker in front of the gateway (payments/breaker.py): it opens
# after this many failed calls in a row and tries again this many seconds
# later. Its state is shared through Redis when a URL is set; otherwise each
# worker process keeps its own.
PAYMENT_GATEWAY_BREAKER_FAILURES = env_int("PAYMENT_GATEWAY_BREAKER_FAILURES", 5)
PAYMENT_GATEWAY_BREAKER_RESET = env_float("PAYMENT_GATEWAY_BREAKER_RESET", 30.0)
PAYMENT_GATEWAY_BREAKER_REDIS_URL = os.environ.get(
    "PAYMENT_GATEWAY_BREAKER_REDIS_URL", os.environ.get("REDIS_URL", "")
)
PAYMENT_GATEWAY_BREAKER_NAMESPACE = os.environ.get("PAYMENT_GATEWAY_BREAKER_NAMESPACE", "eventshop")
# Destinations the carrier does not serve: a shipment there fails (and the
# order is compensated). AQ is Antarctica.
SHIPPING_UNSERVED_COUNTRIES = env_list("SHIPPING_UNSERVED_COUNTRIES", ["AQ"])

# Orders run by choreography (apps react to events) or orchestration (an
# order saga sends commands); this is the default, the API and the form can
# choose per order.
ORDERS_DEFAULT_WORKFLOW = os.environ.get("ORDERS_DEFAULT_WORKFLOW", "choreography")
# Each saga step waits this long for its reply, is sent this many times in
# all, then the saga compensates (or, if compensating, needs attention).
SAGA_STEP_TIMEOUT = env_float("SAGA_STEP_TIMEOUT", 60.0)
SAGA_STEP_ATTEMPTS = env_int("SAGA_STEP_ATTEMPTS", 3)
SAGA_DEADLINE_CHECK_INTERVAL = env_float("SAGA_DEADLINE_CHECK_INTERVAL", 5.0)
# An order still open after this many seconds is listed as stuck.
STUCK_ORDER_AGE = env_float("STUCK_ORDER_AGE", 300.0)

# --- Celery ----------------------------------------------------------------

# Without CELERY_BROKER_URL the project runs on kombu's file-system transport,
# which needs no server and works across the processes of one machine. The
# README says what it does not guarantee (publisher confirms, redelivery of a
# message held by a killed worker); production uses RabbitMQ.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for folder in ("messages", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    # kombu's transport, made safe for several processes (messaging/filesystem.py).
    CELERY_BROKER_TRANSPORT = "messaging.filesystem:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "messages"),
        "data_folder_out": str(BROKER_DIR / "messages"),
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # Every publish waits for the broker's confirm: a message the broker did
    # not take raises at the publisher instead of vanishing.
    # A silent broker (hung, or the network dropping packets) must not hang
    # anyone: every blocking socket read or write to it, a confirm awaited
    # included, gives up after MESSAGING_BROKER_SOCKET_TIMEOUT seconds.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "confirm_publish": True,
        "read_timeout": env_float("MESSAGING_BROKER_SOCKET_TIMEOUT", 10.0),
        "write_timeout": env_float("MESSAGING_BROKER_SOCKET_TIMEOUT", 10.0),
    }
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 2.0)
CELERY_BROKER_HEARTBEAT = env_int("CELERY_BROKER_HEARTBEAT", 30)
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
CELERY_RESULT_EXPIRES = env_int("CELERY_RESULT_EXPIRES", 7 * 24 * 3600)

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A task killed at the hard time limit goes back to the queue rather than
# being acknowledged and lost; the soft limit before it lets handlers fail
# normally (and be retried, then dead-lettered) in all but stuck cases.
CELERY_TASK_ACKS_ON_TIMEOUT = False
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 90)
CELERY_WORKER_CONSUMER = "messaging.worker:Consumer"

# One durable queue per app, named after it; "messaging" carries the
# backbone's own housekeeping (the outbox relay).
MESSAGING_QUEUES = ["orders", "payments", "inventory", "shipping", "notifications", "messaging"]
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True)
    for name in MESSAGING_QUEUES
]
CELERY_TASK_DEFAULT_QUEUE = "messaging"
CELERY_TASK_DEFAULT_EXCHANGE = "messaging"
CELERY_TASK_DEFAULT_ROUTING_KEY = "messaging"

CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Workers keep their database connections from one task to the next (Celery's
# Django fixup would otherwise close them after every task) and, as Django
# does between requests, close one that broke or is older than
# DB_CONN_MAX_AGE before and after each task (config/celery.py).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
# Handlers store no result (the inbox and the dead letters say what became of
# each message); a failure of any other task is still kept.
CELERY_TASK_STORE_ERRORS_EVEN_IF_IGNORED = True

# --- Messaging backbone ----------------------------------------------------

# Retries of a failing handler: exponential backoff with full jitter,
# base * 2**attempt seconds capped at the maximum, then a dead letter.
MESSAGING_MAX_RETRIES = env_int("MESSAGING_MAX_RETRIES", 5)
MESSAGING_RETRY_BACKOFF = env_float("MESSAGING_RETRY_BACKOFF", 2.0)
MESSAGING_RETRY_BACKOFF_MAX = env_float("MESSAGING_RETRY_BACKOFF_MAX", 300.0)
# Seconds to wait for the broker's confirm of one publish.
MESSAGING_CONFIRM_TIMEOUT = env_float("MESSAGING_CONFIRM_TIMEOUT", 5.0)
# An event for several queues is published once and RabbitMQ copies it into
# each (the CC header); each worker names its own queue's handler. Off: one
# message per subscriber, which workers of a version without fan-out can
# read (turn it on once every worker runs this one).
MESSAGING_FAN_OUT = env_bool("MESSAGING_FAN_OUT", True)
# After a dispatch failed, committed messages are left to the relay for this
# many seconds instead of each waiting for the broker's timeouts.
MESSAGING_DISPATCH_PAUSE = env_float("MESSAGING_DISPATCH_PAUSE", 5.0)
# The largest message, in bytes: a larger one is refused when published and,
# if one arrives anyway, dead-lettered without being read.
MESSAGING_MAX_MESSAGE_BYTES = env_int("MESSAGING_MAX_MESSAGE_BYTES", 256 * 1024)
# The relay sends what the after-commit dispatch did not: every
# MESSAGING_RELAY_INTERVAL seconds it takes up to MESSAGING_RELAY_BATCH
# messages older than MESSAGING_RELAY_GRACE seconds that are still pending.
MESSAGING_RELAY_INTERVAL = env_float("MESSAGING_RELAY_INTERVAL", 5.0)
MESSAGING_RELAY_GRACE = env_float("MESSAGING_RELAY_GRACE", 10.0)
MESSAGING_RELAY_BATCH = env_int("MESSAGING_RELAY_BATCH", 500)

CELERY_BEAT_SCHEDULE = {
    "messaging.relay_outbox": {
        "task": "messaging.relay_outbox",
        "schedule": MESSAGING_RELAY_INTERVAL,
        "options": {"queue": "messaging", "expires": MESSAGING_RELAY_INTERVAL * 2},
    },
    "orders.saga_check_deadlines": {
        "task": "orders.saga_check_deadlines",
        "schedule": SAGA_DEADLINE_CHECK_INTERVAL,
        "options": {"queue": "orders", "expires": SAGA_DEADLINE_CHECK_INTERVAL * 2},
    },
}

# --- Logging ---------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}
