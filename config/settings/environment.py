"""The process environment, read through django-environ.

Every setting reads its variable with ``env``, e.g.
``env.int("MESSAGING_MAX_RETRIES", default=5)``. A value that does not parse
stops the process at start with an error that names the variable and the
value: ``MESSAGING_MAX_RETRIES='abc' is not an integer``.
"""

import re

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_SPELLINGS = frozenset({"1", "true", "yes", "on"})
FALSE_SPELLINGS = frozenset({"0", "false", "no", "off"})

EXPECTED = {
    int: "an integer",
    float: "a number",
    bool: "a boolean (1, true, yes, on or 0, false, no, off)",
}


def without_password(url: str) -> str:
    """The URL with its password masked, fit for an error message or a log."""
    return re.sub(r"(://[^/@:]*:)[^/]*@", r"\1***@", url)


def _boolean(value: str) -> bool:
    spelling = value.strip().lower()
    if spelling in TRUE_SPELLINGS:
        return True
    if spelling in FALSE_SPELLINGS:
        return False
    raise ValueError(value)


class Env(environ.Env):
    """django-environ's reader, keeping the meanings these settings have always had.

    An empty value means the default, as if unset, except for a string, which
    is read as given. A value is taken literally: django-environ would read one
    starting with "$" as the name of another variable, and a secret key may
    well start with "$". Booleans are 1/true/yes/on or 0/false/no/off in any
    case; floats are written as Python writes them (django-environ's own cast
    would drop stray characters, reading "2s" as 2.0); lists are
    comma-separated, blanks around each item dropped.
    """

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        value = self.ENVIRON.get(var)
        if value is None or (value == "" and cast is not str):
            if default is self.NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable")
            return default
        try:
            return self.parse_value(value, cast)
        except ValueError:
            raise ImproperlyConfigured(
                f"{var}={value!r} is not {EXPECTED.get(cast, 'valid')}"
            ) from None

    @classmethod
    def parse_value(cls, value, cast):
        if cast is bool:
            return _boolean(value)
        if cast is float:
            return float(value)
        if cast is list:
            return [item.strip() for item in value.split(",") if item.strip()]
        return super().parse_value(value, cast)


env = Env()
