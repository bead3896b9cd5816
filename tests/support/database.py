"""The test database, as the processes a test starts are told of it."""

from django.conf import settings
from django.db import connections

# The database settings name before pytest-django swaps in the test database;
# tests/conftest.py imports this module before any fixture runs.
CONFIGURED_DATABASE = settings.DATABASES["default"]["NAME"]


def is_test_database() -> bool:
    """Whether the default connection points at the test database already."""
    return connections["default"].settings_dict["NAME"] != CONFIGURED_DATABASE


def database_url(alias: str = "default") -> str:
    """The connection's database as a DATABASE_URL another process can use."""
    db = connections[alias].settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db["USER"] or ""
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return (
        f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
