"""Settings: read from the environment with errors that say what is wrong, no side effects on
import, the production profile passes Django's deploy checks, SQLite is set for concurrency.
"""

import json
import os
import secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings.environment import Env
from tests.support.paths import ROOT


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ALLOWED_HOSTS"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter whose environment holds only PATH and env."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_production_profile_passes_check_deploy_without_warnings(tmp_path):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="shop.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_production_profile_refuses_the_development_secret_key(tmp_path):
    result = manage(
        "check",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        ALLOWED_HOSTS="shop.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_default_sqlite_database_uses_wal_and_immediate_transactions(tmp_path):
    script = (
        "from django.db import connection;"
        "cursor = connection.cursor();"
        "print(cursor.execute('PRAGMA journal_mode').fetchone()[0],"
        " connection.settings_dict['OPTIONS']['transaction_mode'],"
        " cursor.execute('PRAGMA busy_timeout').fetchone()[0])"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", script],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.base", "VAR_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "IMMEDIATE", "30000"]


# --- Reading the environment -------------------------------------------------


def environment(**variables: str) -> Env:
    reader = Env()
    reader.ENVIRON = variables
    return reader


def test_a_bad_value_stops_the_start_naming_the_variable_and_the_value():
    result = manage("check", MESSAGING_MAX_RETRIES="abc")

    assert result.returncode != 0
    assert "ImproperlyConfigured: MESSAGING_MAX_RETRIES='abc' is not an integer" in result.stderr


@pytest.mark.parametrize(
    ("read", "value", "message"),
    [
        (Env.int, "5.0", "X='5.0' is not an integer"),
        (Env.float, "2s", "X='2s' is not a number"),
        (Env.bool, "maybe", "X='maybe' is not a boolean (1, true, yes, on or 0, false, no, off)"),
    ],
)
def test_a_value_that_does_not_parse_is_named_with_its_variable(read, value, message):
    with pytest.raises(ImproperlyConfigured) as error:
        read(environment(X=value), "X", default=None)
    assert str(error.value) == message


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "On"])
def test_true_is_spelled_as_it_always_was(value):
    assert environment(X=value).bool("X", default=False) is True


@pytest.mark.parametrize("value", ["0", "false", "No", "OFF"])
def test_false_is_spelled_as_it_always_was(value):
    assert environment(X=value).bool("X", default=True) is False


def test_an_empty_value_means_the_default_except_for_a_string():
    env = environment(N="", F="", B="", L="", S="")

    assert env.int("N", default=5) == 5
    assert env.float("F", default=0.3) == 0.3
    assert env.bool("B", default=True) is True
    assert env.list("L", default=["AQ"]) == ["AQ"]
    assert env.str("S", default="EUR") == ""


def test_floats_lists_and_strings_are_read_as_written():
    env = environment(F="1e-3", L=" AQ, FR ,,", S="$OTHER", OTHER="not this")

    assert env.float("F", default=0.0) == 0.001
    assert env.list("L", default=[]) == ["AQ", "FR"]
    # django-environ would follow "$OTHER"; a secret key may start with "$".
    assert env.str("S", default="") == "$OTHER"


def test_a_required_variable_that_is_unset_is_named():
    with pytest.raises(ImproperlyConfigured, match="Set the X environment variable"):
        environment().str("X")


def test_a_database_url_that_does_not_parse_is_named_without_its_password():
    result = manage("check", DATABASE_URL="postgres://shop:s3cret@db:port/shop")

    assert result.returncode != 0
    assert "DATABASE_URL='postgres://shop:***@db:port/shop' is not a database URL" in result.stderr
    assert "s3cret" not in result.stderr


# --- No side effects on import ------------------------------------------------

# The module itself, not django.conf.settings: loading those, Django sets TZ.
IMPORT_SETTINGS = """
import importlib, json, os, socket

def refuse(*args, **kwargs):
    raise AssertionError("a settings module opened a socket")

socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
before = dict(os.environ)
importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
print(json.dumps(sorted(k for k in {*before, *os.environ} if before.get(k) != os.environ.get(k))))
"""

PRODUCTION = {"SECRET_KEY": "p" * 64, "ALLOWED_HOSTS": "shop.example.com"}


@pytest.mark.parametrize(
    ("module", "env"),
    [
        ("config.settings.base", {}),
        ("config.settings.production", PRODUCTION),
        ("config.settings.test", {}),
        # SQLite and the file-system broker, whose folders must not be made on import.
        ("config.settings.test", {"DATABASE_URL": "sqlite:///{var}/db.sqlite3"}),
        ("config.settings.test", {"CELERY_BROKER_URL": "filesystem://"}),
    ],
)
def test_importing_settings_makes_no_folder_opens_no_socket_and_leaves_the_environment(
    tmp_path, module, env
):
    var = tmp_path / "var"
    env = {name: value.format(var=var) for name, value in env.items()}

    result = run_python(IMPORT_SETTINGS, DJANGO_SETTINGS_MODULE=module, VAR_DIR=str(var), **env)

    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
    assert json.loads(result.stdout) == []


def test_the_sqlite_folder_is_made_when_the_first_connection_opens(tmp_path):
    var = tmp_path / "var"
    code = (
        "import django; django.setup()\n"
        "from django.db import connections\n"
        "connections['default'].ensure_connection()\n"
    )

    result = run_python(code, DJANGO_SETTINGS_MODULE="config.settings.base", VAR_DIR=str(var))

    assert result.returncode == 0, result.stderr
    assert (var / "db.sqlite3").exists()


def test_the_broker_folders_are_made_when_its_channel_starts(tmp_path):
    var = tmp_path / "var"
    code = (
        "import django; django.setup()\n"
        "from config.celery import app\n"
        "with app.connection_for_write() as connection:\n"
        "    connection.default_channel\n"
    )

    result = run_python(code, DJANGO_SETTINGS_MODULE="config.settings.base", VAR_DIR=str(var))

    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (var / "broker").iterdir()) == ["control", "messages"]


# --- The test settings ---------------------------------------------------------

SHOW_TEST_SETTINGS = """
from django.conf import settings
print(settings.DATABASES["default"]["HOST"], settings.DATABASES["default"]["NAME"])
print(settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS["confirm_publish"])
print(settings.PAYMENT_GATEWAY_BREAKER_REDIS_URL)
for name in [
    "MESSAGING_MAX_RETRIES", "MESSAGING_RETRY_BACKOFF", "MESSAGING_RETRY_BACKOFF_MAX",
    "MESSAGING_RELAY_INTERVAL", "MESSAGING_RELAY_GRACE", "PAYMENT_GATEWAY_LATENCY",
    "PAYMENT_GATEWAY_BREAKER_RESET", "FRAUD_SCREENING",
]:
    print(name, getattr(settings, name))
print("beat schedules", sorted(settings.CELERY_BEAT_SCHEDULE))
print("workers relay", settings.MESSAGING_WORKER_RELAY)
"""


def test_the_test_settings_default_to_the_local_servers_and_quick_timings():
    result = run_python(SHOW_TEST_SETTINGS, DJANGO_SETTINGS_MODULE="config.settings.test")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "127.0.0.1 test",
        "amqp://guest:guest@127.0.0.1:5672// True",
        "redis://127.0.0.1:6379/0",
        "MESSAGING_MAX_RETRIES 3",
        "MESSAGING_RETRY_BACKOFF 0.2",
        "MESSAGING_RETRY_BACKOFF_MAX 1.0",
        "MESSAGING_RELAY_INTERVAL 1.0",
        "MESSAGING_RELAY_GRACE 1.0",
        "PAYMENT_GATEWAY_LATENCY 0.0",
        "PAYMENT_GATEWAY_BREAKER_RESET 1.0",
        "FRAUD_SCREENING False",
        "beat schedules ['orders.placement_keys_purge', 'orders.saga_check_deadlines', "
        "'orders.watchdog_sweep']",
        "workers relay False",
    ]


def test_the_environment_overrides_the_test_settings_defaults():
    result = run_python(
        SHOW_TEST_SETTINGS,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/elsewhere",
        CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/elsewhere",
        PAYMENT_GATEWAY_BREAKER_REDIS_URL="redis://127.0.0.1:6379/5",
        MESSAGING_MAX_RETRIES="7",
        MESSAGING_RELAY_INTERVAL="4",
        FRAUD_SCREENING="1",
        MESSAGING_WORKER_RELAY="1",
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "127.0.0.1 elsewhere",
        "amqp://guest:guest@127.0.0.1:5672/elsewhere True",
        "redis://127.0.0.1:6379/5",
        "MESSAGING_MAX_RETRIES 7",
    ]
    assert "MESSAGING_RELAY_INTERVAL 4.0" in lines
    assert "FRAUD_SCREENING True" in lines
    assert lines[-1] == "workers relay True"


SHOW_FRAUD_SETTINGS = """
from django.conf import settings
for name in ["FRAUD_SCREENING", "FRAUD_MAX_ORDERS", "FRAUD_MAX_DECLINES", "FRAUD_WINDOW_SECONDS"]:
    print(name, getattr(settings, name))
"""


def test_payments_charges_only_screened_orders_unless_told_otherwise():
    shown = run_python(SHOW_FRAUD_SETTINGS, DJANGO_SETTINGS_MODULE="config.settings.base")
    overridden = run_python(
        SHOW_FRAUD_SETTINGS,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        FRAUD_SCREENING="off",
        FRAUD_MAX_ORDERS="9",
    )

    assert shown.returncode == overridden.returncode == 0, shown.stderr + overridden.stderr
    assert shown.stdout.splitlines() == [
        "FRAUD_SCREENING True",
        "FRAUD_MAX_ORDERS 5",
        "FRAUD_MAX_DECLINES 3",
        "FRAUD_WINDOW_SECONDS 600",
    ]
    assert overridden.stdout.splitlines()[:2] == ["FRAUD_SCREENING False", "FRAUD_MAX_ORDERS 9"]


# --- The event log's Redis ------------------------------------------------------

SHOW_REDIS_LOG_SETTINGS = """
from django.conf import settings
for name in ["EVENT_LOG_BACKEND", "EVENT_LOG_REDIS_URL", "EVENT_LOG_REDIS_NAMESPACE",
             "EVENT_LOG_REDIS_KEY", "EVENT_LOG_REDIS_MAX_LENGTH"]:
    print(name, getattr(settings, name) or "-")
"""


def test_the_redis_log_takes_its_own_url_else_redis_url():
    own = run_python(
        SHOW_REDIS_LOG_SETTINGS,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        EVENT_LOG_BACKEND="redis",
        EVENT_LOG_REDIS_URL="redis://log:6379/3",
        REDIS_URL="redis://breaker:6379/0",
    )
    shared = run_python(
        SHOW_REDIS_LOG_SETTINGS,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        REDIS_URL="redis://breaker:6379/0",
        EVENT_LOG_REDIS_MAX_LENGTH="5000",
    )

    assert own.returncode == shared.returncode == 0, own.stderr + shared.stderr
    assert own.stdout.splitlines() == [
        "EVENT_LOG_BACKEND redis",
        "EVENT_LOG_REDIS_URL redis://log:6379/3",
        "EVENT_LOG_REDIS_NAMESPACE eventshop",
        "EVENT_LOG_REDIS_KEY events",
        "EVENT_LOG_REDIS_MAX_LENGTH 1000000",
    ]
    assert shared.stdout.splitlines()[:2] == [
        "EVENT_LOG_BACKEND database",
        "EVENT_LOG_REDIS_URL redis://breaker:6379/0",
    ]
    assert shared.stdout.splitlines()[-1] == "EVENT_LOG_REDIS_MAX_LENGTH 5000"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"EVENT_LOG_REDIS_URL": "http://u:s3cret@log:6379/0"},
            "EVENT_LOG_REDIS_URL='http://u:***@log:6379/0' is not a Redis URL",
        ),
        ({"REDIS_URL": "log:6379"}, "REDIS_URL='log:6379' is not a Redis URL"),
        ({"EVENT_LOG_REDIS_MAX_LENGTH": "0"}, "EVENT_LOG_REDIS_MAX_LENGTH='0' is not a number"),
        ({"EVENT_LOG_BACKEND": "kafka"}, "EVENT_LOG_BACKEND='kafka' is not a log backend"),
    ],
)
def test_a_redis_log_setting_that_does_not_parse_is_named(env, message):
    result = manage("check", DJANGO_SETTINGS_MODULE="config.settings.base", **env)

    assert result.returncode != 0
    assert message in result.stderr
    assert "s3cret" not in result.stderr


def test_the_redis_log_without_a_redis_fails_the_checks():
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "EVENT_LOG_"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.base",
             "EVENT_LOG_BACKEND": "redis"},
    )  # fmt: skip

    assert result.returncode != 0
    assert "messaging.E005" in result.stderr
    assert "neither EVENT_LOG_REDIS_URL nor REDIS_URL is set" in result.stderr


# --- Email ----------------------------------------------------------------------


def test_emails_link_to_the_shop_where_make_run_serves_it_unless_told_otherwise():
    code = "from django.conf import settings; print(settings.SHOP_URL)"
    shown = run_python(code, DJANGO_SETTINGS_MODULE="config.settings.base")
    told = run_python(
        code, DJANGO_SETTINGS_MODULE="config.settings.base", SHOP_URL="https://shop.example.com/"
    )

    assert shown.returncode == told.returncode == 0, shown.stderr + told.stderr
    assert (shown.stdout, told.stdout) == ("http://127.0.0.1:8000\n", "https://shop.example.com\n")


SHOW_EMAIL_SETTINGS = """
from django.conf import settings
for name in ["EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER",
             "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS", "EMAIL_USE_SSL", "EMAIL_TIMEOUT"]:
    print(name, getattr(settings, name) or "-")
"""


def email_settings(**env: str) -> dict[str, str]:
    result = run_python(SHOW_EMAIL_SETTINGS, DJANGO_SETTINGS_MODULE="config.settings.base", **env)
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def test_without_a_mail_server_emails_are_logged():
    assert email_settings() == {
        "EMAIL_BACKEND": "notifications.mail.LoggingEmailBackend",
        "EMAIL_HOST": "localhost",
        "EMAIL_PORT": "25",
        "EMAIL_HOST_USER": "-",
        "EMAIL_HOST_PASSWORD": "-",
        "EMAIL_USE_TLS": "-",
        "EMAIL_USE_SSL": "-",
        "EMAIL_TIMEOUT": "10.0",
    }


@pytest.mark.parametrize(
    ("url", "server"),
    [
        (
            "smtp+tls://shop%40example.com:s3cr%2Ft@smtp.example.com:587",
            ("smtp.example.com", "587", "shop@example.com", "s3cr/t", "True", "-"),
        ),
        ("smtps://u:p@smtp.example.com:587", ("smtp.example.com", "587", "u", "p", "True", "-")),
        ("smtp+ssl://u:p@smtp.example.com:465", ("smtp.example.com", "465", "u", "p", "-", "True")),
        ("smtp://127.0.0.1:1025", ("127.0.0.1", "1025", "-", "-", "-", "-")),
    ],
)
def test_email_url_names_the_smtp_server(url, server):
    shown = email_settings(EMAIL_URL=url)

    assert shown["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    names = ["HOST", "PORT", "HOST_USER", "HOST_PASSWORD", "USE_TLS", "USE_SSL"]
    assert tuple(shown[f"EMAIL_{name}"] for name in names) == server


def test_an_email_backend_of_its_own_wins_over_email_url():
    shown = email_settings(
        EMAIL_URL="smtp+tls://u:p@smtp.example.com:587",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
    )

    assert shown["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert shown["EMAIL_HOST"] == "smtp.example.com"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"EMAIL_URL": "http://shop:s3cret@smtp.example.com:587"},
            "EMAIL_URL='http://shop:***@smtp.example.com:587' is not an email URL",
        ),
        ({"EMAIL_URL": "smtp://smtp.example.com:port"}, "EMAIL_URL='smtp://smtp.example.com:port'"),
        ({"SHOP_URL": "shop.example.com"}, "SHOP_URL='shop.example.com' is not the shop's address"),
        ({"SHOP_URL": "https://example.com/shop"}, "SHOP_URL='https://example.com/shop' is not"),
    ],
)
def test_an_email_setting_that_does_not_parse_is_named(env, message):
    result = manage("check", DJANGO_SETTINGS_MODULE="config.settings.base", **env)

    assert result.returncode != 0
    assert message in result.stderr
    assert "s3cret" not in result.stderr


# --- Logging --------------------------------------------------------------------


def test_a_record_of_django_is_logged_once_when_debug_is_on():
    code = (
        "import django; django.setup()\n"
        "import logging; logging.getLogger('django.request').warning('Not Found: /nowhere')\n"
    )
    result = run_python(code, DJANGO_SETTINGS_MODULE="config.settings.base", DEBUG="1")

    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Not Found: /nowhere") == 1, result.stderr


# --- A broker of several nodes -------------------------------------------------

SHOW_BROKER = """
from django.conf import settings
print(settings.CELERY_BROKER_URL)
print(settings.CELERY_BROKER_TRANSPORT_OPTIONS["confirm_publish"], settings.EVENT_LOG_BACKEND)
"""


def test_a_broker_url_may_list_several_nodes():
    nodes = "amqp://guest:guest@127.0.0.1:5672/shop ; amqp://guest:guest@127.0.0.1:5673/shop"

    result = run_python(
        SHOW_BROKER, DJANGO_SETTINGS_MODULE="config.settings.base", CELERY_BROKER_URL=nodes
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "amqp://guest:guest@127.0.0.1:5672/shop;amqp://guest:guest@127.0.0.1:5673/shop",
        "True",
        "rabbitmq",
    ]


def test_a_broker_list_that_mixes_transports_stops_the_process_and_names_the_setting():
    result = run_python(
        SHOW_BROKER,
        DJANGO_SETTINGS_MODULE="config.settings.base",
        CELERY_BROKER_URL="amqp://guest:secret@127.0.0.1:5672//;filesystem://",
    )

    assert result.returncode != 0
    assert "CELERY_BROKER_URL" in result.stderr and "mixes transports" in result.stderr
    assert "secret" not in result.stderr


# --- Queue types ----------------------------------------------------------------

SHOW_QUEUES = """
from django.conf import settings
print(settings.MESSAGING_QUEUE_TYPE)
for queue in settings.CELERY_TASK_QUEUES:
    print(queue.name, sorted((queue.queue_arguments or {}).items()))
"""
PRODUCTION = {
    "SECRET_KEY": "x" * 64,
    "ALLOWED_HOSTS": "shop.example.com",
}


def test_queues_are_quorum_in_production_and_classic_elsewhere():
    base = run_python(SHOW_QUEUES, DJANGO_SETTINGS_MODULE="config.settings.base")
    production = run_python(
        SHOW_QUEUES, DJANGO_SETTINGS_MODULE="config.settings.production", **PRODUCTION
    )
    test = run_python(SHOW_QUEUES, DJANGO_SETTINGS_MODULE="config.settings.test")

    assert base.returncode == production.returncode == test.returncode == 0, (
        base.stderr + production.stderr + test.stderr
    )
    assert base.stdout.splitlines()[:2] == ["classic", "orders []"]
    assert test.stdout.splitlines()[0] == "classic"
    assert production.stdout.splitlines()[:2] == [
        "quorum",
        "orders [('x-dead-letter-exchange', ''), ('x-dead-letter-routing-key', 'dead_letters'), "
        "('x-dead-letter-strategy', 'at-least-once'), ('x-delivery-limit', 10), "
        "('x-overflow', 'reject-publish'), ('x-queue-type', 'quorum')]",
    ]


def test_the_test_settings_declare_the_probe_queues_as_quorum_when_asked():
    shown = run_python(
        SHOW_QUEUES,
        DJANGO_SETTINGS_MODULE="config.settings.test",
        MESSAGING_QUEUE_TYPE="quorum",
        MESSAGING_DELIVERY_LIMIT="3",
    )

    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len(lines) == 1 + 6 + 5  # the type, the app queues, the probe queues
    assert all("('x-queue-type', 'quorum')" in line for line in lines[1:])
    assert all("('x-delivery-limit', 3)" in line for line in lines[1:])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"MESSAGING_QUEUE_TYPE": "mirrored"},
            "MESSAGING_QUEUE_TYPE='mirrored' is not a queue type: quorum (replicated, for "
            "production) or classic",
        ),
        (
            {"MESSAGING_DELIVERY_LIMIT": "0"},
            "MESSAGING_DELIVERY_LIMIT='0' is not a number of deliveries: 1 or more",
        ),
    ],
)
def test_a_queue_setting_that_does_not_parse_is_named(env, message):
    shown = run_python(SHOW_QUEUES, DJANGO_SETTINGS_MODULE="config.settings.production",
                       **PRODUCTION, **env)  # fmt: skip

    assert shown.returncode != 0
    assert f"ImproperlyConfigured: {message}" in shown.stderr
