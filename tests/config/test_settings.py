"""Settings: read from the environment with errors that say what is wrong, the production
profile passes Django's deploy checks, SQLite is set for concurrency.
"""

import os
import secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings.environment import Env
from tests.conftest import ROOT


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ALLOWED_HOSTS"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120,
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

