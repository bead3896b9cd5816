"""System checks of the subscription table and the event log, run at start-up (``manage.py
check``, runserver, every management command).

A handler that can never run is an error, not a silent no-op:

- messaging.E001: a handler subscribes to a message that no code publishes
  (or sends);
- messaging.E002: a handler subscribes to a class with no registered schema;
- messaging.E003: a command is sent that no handler takes;
- messaging.E004: an app's ``handlers.py`` was never imported, so none of its
  handlers is subscribed;
- messaging.E005: the event log is to be a Redis stream, but no Redis is set.

Who publishes what is read from the source of the project's own apps (and of
the modules named in MESSAGING_PUBLISHER_MODULES): a message class counts as
published where it is constructed in a module that calls ``publish`` or
``send``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core import checks

from .messages import MessageError, registry
from .subscriptions import all_handlers, handlers_for


@checks.register()
def subscriptions_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    published = _published_names()
    errors: list[checks.CheckMessage] = [*_unimported_handler_modules()]
    for handler in all_handlers():
        for message_class in handler.message_classes:
            errors.extend(_subscription_errors(handler.name, message_class, published))
    for message_class in registry:
        sent = message_class.kind == "command" and message_class.__name__ in published
        if sent and not handlers_for(message_class):
            errors.append(
                checks.Error(
                    f"the command {message_class.message_type} is sent, but no handler takes it",
                    hint="Declare one @handler for it in the app that carries it out.",
                    id="messaging.E003",
                )
            )
    return errors


@checks.register()
def event_log_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.EVENT_LOG_BACKEND == "redis" and not settings.EVENT_LOG_REDIS_URL:
        return [
            checks.Error(
                "EVENT_LOG_BACKEND='redis', but neither EVENT_LOG_REDIS_URL nor REDIS_URL is set",
                hint="Set EVENT_LOG_REDIS_URL=redis://host:6379/0, or choose another backend.",
                id="messaging.E005",
            )
        ]
    return []


def _subscription_errors(name: str, message_class, published: set[str]) -> list[checks.Error]:
    if _registered(message_class) is not message_class:
        return [
            checks.Error(
                f"{name} subscribes to {message_class!r}, which has no registered schema",
                hint="Subscribe to a subclass of messaging.messages.Event or Command.",
                id="messaging.E002",
            )
        ]
    if message_class.__name__ not in published:
        return [
            checks.Error(
                f"{name} subscribes to {message_class.message_type} "
                f"v{message_class.message_version}, which nothing publishes",
                hint="Publish it somewhere, or remove the handler.",
                id="messaging.E001",
            )
        ]
    return []


def _registered(message_class):
    message_type = getattr(message_class, "message_type", None)
    if message_type is None:
        return None  # as the registry's answer: no such message
    try:
        return registry.get(message_type, getattr(message_class, "message_version", 0))
    except MessageError:
        return None


def _unimported_handler_modules() -> list[checks.Error]:
    errors = []
    for app_config in _project_apps():
        module = f"{app_config.name}.handlers"
        if (Path(app_config.path) / "handlers.py").exists() and module not in sys.modules:
            errors.append(
                checks.Error(
                    f"{module} was never imported: none of its handlers is subscribed",
                    hint=f"Import it from {type(app_config).__name__}.ready().",
                    id="messaging.E004",
                )
            )
    return errors


def _project_apps():
    """The project's own apps: inside its folder, and not installed packages (a virtualenv in
    the project's folder holds Django's own)."""
    root = Path(settings.BASE_DIR).resolve()
    installed = {"site-packages", "dist-packages"}
    return [
        app_config
        for app_config in apps.get_app_configs()
        if (path := Path(app_config.path).resolve()).is_relative_to(root)
        and not installed & set(path.parts)
    ]


def _published_names() -> set[str]:
    """Names of the classes constructed in modules that call publish() or send()."""
    files = [
        path
        for app_config in _project_apps()
        for path in Path(app_config.path).rglob("*.py")
        if "migrations" not in path.parts
    ]
    root = Path(settings.BASE_DIR)
    files += [
        path
        for module in getattr(settings, "MESSAGING_PUBLISHER_MODULES", [])
        for path in [root / (module.replace(".", "/") + ".py")]
        if path.exists()
    ]
    names: set[str] = set()
    for path in files:
        names |= _constructed_where_published(path)
    return names


def _constructed_where_published(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    called = {_called_name(node) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    if not called & {"publish", "send"}:
        return set()
    return {name for name in called if name is not None}


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None
