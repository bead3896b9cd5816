"""The start-up checks of the subscription table: a handler that can never run fails them."""

import subprocess
import sys
from pathlib import Path

import pytest

from messaging import subscriptions
from messaging.checks import subscriptions_check
from messaging.messages import Event
from messaging.subscriptions import Handler, subscribe
from tests.probe.events import ProbePinged
from tests.support.paths import ROOT


class NeverPublished(Event):
    probe_id: str


def noop(message, envelope) -> None:
    pass


@pytest.fixture
def table(monkeypatch):
    """An empty subscription table for one test; the real one is put back after it."""
    monkeypatch.setattr(subscriptions, "_by_name", {})
    monkeypatch.setattr(subscriptions, "_by_message", {})


def errors_of(check_id: str) -> list[str]:
    return [error.msg for error in subscriptions_check() if error.id == check_id]


def test_the_project_passes_its_checks_at_start_up():
    command = [sys.executable, "manage.py", "check"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


def test_a_handler_of_a_message_nothing_publishes_fails(table):
    # Given a handler of an event no module publishes
    subscribe(Handler(noop, (NeverPublished,), queue="probe_a", name="probe.never_runs"))

    # Then the check names the handler and the message
    assert errors_of("messaging.E001") == [
        "probe.never_runs subscribes to NeverPublished v1, which nothing publishes"
    ]


def test_a_handler_of_a_published_message_passes(table):
    # Given a handler of an event the probe's helpers publish
    subscribe(Handler(noop, (ProbePinged,), queue="probe_a", name="probe.runs"))

    # Then nothing is said about it
    assert [msg for msg in errors_of("messaging.E001") if "probe.runs" in msg] == []


def test_a_handler_of_a_class_without_a_schema_fails(table):
    # Given a handler of the abstract Event, which no message is registered as
    subscribe(Handler(noop, (Event,), queue="probe_a", name="probe.of_nothing"))

    # Then the check says it has no schema
    (error,) = errors_of("messaging.E002")
    assert error.startswith("probe.of_nothing subscribes to ")
    assert error.endswith("which has no registered schema")


def test_a_command_that_is_sent_but_has_no_handler_fails(table):
    # Given no handler at all, while the saga sends ChargePayment
    # Then the command is named
    assert "the command ChargePayment is sent, but no handler takes it" in errors_of(
        "messaging.E003"
    )


def test_an_app_whose_handlers_module_was_never_imported_fails(monkeypatch):
    # Given payments' handlers module was never imported
    monkeypatch.delitem(sys.modules, "payments.handlers")

    # Then the check says none of its handlers is subscribed
    assert errors_of("messaging.E004") == [
        "payments.handlers was never imported: none of its handlers is subscribed"
    ]


def test_installed_packages_are_not_taken_for_the_projects_apps(settings):
    # Given a project whose folder holds its virtualenv too (.venv, as `make install` makes it)
    settings.BASE_DIR = Path("/")

    # Then Django's own apps are not checked as ours
    assert errors_of("messaging.E004") == []
