"""The dead letters' admin through Django's test client: groups by cause, a group redriven or
discarded with a reason, payload edits for staff with the permission only, and the audit."""

import json
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from messaging.dead_letter_groups import dead_letter_group_run
from messaging.dead_letters import dead_letter_record, dead_letters_redrive
from messaging.models import DeadLetter, DeadLetterAudit, DeadLetterGroup, DeadLetterGroupRun
from messaging.tasks import dead_letter_group_act
from tests.support.dead_letters import probe_letter

pytestmark = pytest.mark.django_db

TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/.venv/lib/python3.12/site-packages/celery/app/trace.py", line 453, in trace_task
    R = retval = fun(*args, **kwargs)
  File "{root}/tests/probe/handlers.py", line 25, in record_ping
    _effect("record_ping", event.probe_id, envelope)
RuntimeError: probe {n} failed
"""


def staff_who_may(client, *codenames: str) -> User:
    user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def letter(n: int = 1, **payload) -> DeadLetter:
    from messaging.fingerprints import ROOT

    return probe_letter(n, traceback_text=TRACEBACK.format(root=ROOT, n=n), **payload)


EDITORS = ["view_deadletter", "change_deadletter", "edit_deadletter"]


def test_letters_of_one_cause_are_one_group_listed_with_its_count_sample_and_letters(client):
    # Given two letters of one cause (ids differ) and one of another
    letter(1), letter(2)
    dead_letter_record(reason="undecodable", error="not JSON", handler_name="probe.record_ping")
    staff_who_may(client, "view_deadlettergroup", "view_deadletter")

    # When staff open the groups
    listed = client.get(reverse("admin:messaging_deadlettergroup_changelist")).content.decode()

    # Then there are two, the first with both letters, its sample's traceback on its page
    assert DeadLetterGroup.objects.count() == 2
    group = DeadLetterGroup.objects.get(reason="retries_exhausted")
    assert "RuntimeError: probe &lt;n&gt; failed" in listed and ">2<" in listed
    page = client.get(reverse("admin:messaging_deadlettergroup_change", args=[group.pk]))
    text = page.content.decode()
    assert "ProbePinged" in text and "record_ping" in text and "trace_task" in text
    assert group.frame == "tests/probe/handlers.py:record_ping"
    letters = client.get(
        reverse("admin:messaging_deadletter_changelist") + f"?fingerprint={group.fingerprint}"
    )
    assert letters.context["cl"].result_count == 2


def test_a_group_is_discarded_only_with_a_reason_and_each_letter_is_audited(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    # Given a group of three, and the task run in this process (no worker here)
    for n in range(3):
        letter(n)
    group = DeadLetterGroup.objects.get()
    monkeypatch.setattr(
        dead_letter_group_act, "delay", lambda run_id: dead_letter_group_run(run_id=run_id)
    )
    user = staff_who_may(client, "view_deadlettergroup", "view_deadletter", "change_deadletter")
    url = reverse("admin:messaging_deadlettergroup_act", args=[group.pk])

    # When they discard it without saying why, then saying why
    refused = client.post(url, {"action": "discard", "reason": " "}, follow=True)
    assert "Nothing was started: say why" in refused.content.decode()
    assert not DeadLetterGroupRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "discard", "reason": "test data"}, follow=True)

    # Then every letter is discarded once, audited in their name, and a redrive skips them
    assert not group.dead_letters().filter(discarded_at__isnull=True).exists()
    audits = DeadLetterAudit.objects.filter(action="discard")
    assert audits.count() == 3
    assert {(a.actor, a.reason, a.before["discarded_at"]) for a in audits} == {
        (user, "test data", None)
    }
    assert all(a.after["discarded_at"] for a in audits)
    result = dead_letters_redrive(ids=group.dead_letters().values_list("pk", flat=True))
    assert not result.redriven and len(result.skipped) == 3
    again = client.post(url, {"action": "discard", "reason": "again"}, follow=True)
    assert "no pending dead letters" in again.content.decode()


def test_staff_who_may_only_view_cannot_act_on_a_group(client):
    group = DeadLetterGroup.objects.get(fingerprint=letter().fingerprint)
    staff_who_may(client, "view_deadlettergroup", "view_deadletter")

    page = client.get(reverse("admin:messaging_deadlettergroup_change", args=[group.pk]))
    posted = client.post(
        reverse("admin:messaging_deadlettergroup_act", args=[group.pk]),
        {"action": "redrive", "reason": "x"},
    )

    assert 'name="action"' not in page.content.decode()
    assert posted.status_code == 403
    assert not DeadLetterGroupRun.objects.exists()


def test_staff_without_the_edit_permission_see_no_edit_and_cannot_edit(client):
    # Given staff who may change dead letters (redrive them) but not edit them
    dead_letter = letter()
    staff_who_may(client, "view_deadletter", "change_deadletter")
    edit_url = reverse("admin:messaging_deadletter_edit", args=[dead_letter.pk])

    # When they open its page and the edit page, and post an edit anyway
    page = client.get(reverse("admin:messaging_deadletter_change", args=[dead_letter.pk]))
    opened = client.get(edit_url)
    posted = client.post(edit_url, {"payload": '{"probe_id": "other"}', "save": "1"})

    # Then there is no edit for them, and nothing changed
    assert edit_url not in page.content.decode()
    assert opened.status_code == posted.status_code == 403
    dead_letter.refresh_from_db()
    assert dead_letter.envelope["payload"] == {"probe_id": "probe-1"}
    assert not DeadLetterAudit.objects.exists()


@pytest.mark.parametrize(
    ("payload", "shown"),
    [
        ("{}", ["probe_id", "Field required"]),
        ('{"probe_id": 7}', ["probe_id", "Input should be a valid string"]),
        ('{"probe_id": ', ["the payload is not JSON"]),
        ("[1]", ["must be a JSON object"]),
    ],
)
def test_an_edit_that_breaks_the_schema_is_refused_with_what_is_wrong(client, payload, shown):
    dead_letter = letter()
    staff_who_may(client, *EDITORS)

    page = client.post(
        reverse("admin:messaging_deadletter_edit", args=[dead_letter.pk]),
        {"payload": payload, "save": "1"},
    ).content.decode()

    assert "Refused:" in page
    assert all(text in page for text in shown), page
    dead_letter.refresh_from_db()
    assert dead_letter.envelope["payload"] == {"probe_id": "probe-1"}
    assert not DeadLetterAudit.objects.exists()


def test_a_valid_edit_is_kept_with_who_why_before_and_after_read_only_in_the_admin(client):
    # Given a letter, and staff with the edit permission who see the edit on its page
    dead_letter = letter()
    user = staff_who_may(client, *EDITORS, "view_deadletteraudit")
    edit_url = reverse("admin:messaging_deadletter_edit", args=[dead_letter.pk])
    page = client.get(reverse("admin:messaging_deadletter_change", args=[dead_letter.pk]))
    assert edit_url in page.content.decode()

    # When they save a payload that fits the schema
    new = {"probe_id": "probe-1", "note": "fixed by hand"}
    response = client.post(
        edit_url, {"payload": json.dumps(new), "reason": "typo in the note", "save": "1"}
    )

    # Then the letter holds it (what a redrive sends), and the audit keeps before and after
    assert response.status_code == 302
    dead_letter.refresh_from_db()
    assert dead_letter.envelope["payload"] == new
    audit = DeadLetterAudit.objects.get()
    assert (audit.action, audit.actor, audit.reason) == ("edit", user, "typo in the note")
    assert (audit.before, audit.after) == ({"payload": {"probe_id": "probe-1"}}, {"payload": new})
    audit_page = client.get(reverse("admin:messaging_deadletteraudit_change", args=[audit.pk]))
    assert audit_page.status_code == 200 and 'name="_save"' not in audit_page.content.decode()
    assert (
        client.post(
            reverse("admin:messaging_deadletteraudit_change", args=[audit.pk]), {"reason": "x"}
        ).status_code
        == 403
    )


def test_a_redriven_letter_can_no_longer_be_edited(client):
    dead_letter = letter()
    dead_letters_redrive(ids=[dead_letter.pk])
    staff_who_may(client, *EDITORS)

    page = client.post(
        reverse("admin:messaging_deadletter_edit", args=[dead_letter.pk]),
        {"payload": '{"probe_id": "x"}', "save": "1"},
    ).content.decode()

    assert "can no longer be edited" in page
    assert DeadLetterAudit.objects.get().action == "redrive"
