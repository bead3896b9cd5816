import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django_celery_results.admin import TaskResultAdmin as CeleryTaskResultAdmin
from django_celery_results.models import TaskResult

from .dead_letter_edits import EditRefused, dead_letter_dry_run, dead_letter_edit
from .dead_letter_groups import RunRefused, dead_letter_group_run_start
from .dead_letters import dead_letters_redrive
from .models import (
    DeadLetter,
    DeadLetterAction,
    DeadLetterAudit,
    DeadLetterGroup,
    DeadLetterGroupRun,
    InboxRecord,
    OutboxMessage,
    RelayRun,
)
from .references import short_reference
from .selectors import (
    dead_letter_group_message_types,
    dead_letter_group_sample,
    dead_letter_groups_counted,
)
from .tasks import dead_letter_group_act


# Any: the admin shows None as its empty value, which django-stubs' list_display (str | bool) omits.
def short_id_column(field: str, description: str) -> Callable[[Model], Any]:
    """A list column showing the id in ``field`` by its short reference, the whole id on hover.

    A whole UUID wraps onto five lines in a list's column and pushes the columns after it
    out of a 1,280 px window; the change page still shows it whole.
    """

    @admin.display(description=description, ordering=field)
    def column(obj: Model) -> str | None:
        value = getattr(obj, field)
        if value in (None, ""):
            return None  # the admin's empty value
        return format_html('<span title="{}">{}</span>', value, short_reference(value))

    column.__name__ = field
    return column


def wrappable_path(path: str) -> SafeString:
    """A handler's dotted path that may wrap after a dot: whole, it is wider than its column."""
    return format_html_join(mark_safe(".<wbr>"), "{}", ((part,) for part in path.split(".")))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened: looked at, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "type",
        "version",
        "kind",
        short_id_column("correlation_id", "correlation"),
        "occurred_at",
        "is_dispatched",
        "dispatch_attempts",
    ]
    list_filter = ["kind", "type", ("dispatched_at", admin.EmptyFieldListFilter), "occurred_at"]
    search_fields = ["message_id", "correlation_id", "causation_id", "type"]
    date_hierarchy = "occurred_at"

    @admin.display(boolean=True, description="dispatched")
    def is_dispatched(self, obj: OutboxMessage) -> bool:
        return obj.is_dispatched


@admin.register(InboxRecord)
class InboxRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "handler_path", short_id_column("message_id", "message"), "processed_at"]
    list_filter = ["handler"]
    search_fields = ["message_id", "handler"]
    date_hierarchy = "processed_at"

    @admin.display(description="handler", ordering="handler")
    def handler_path(self, obj: InboxRecord) -> SafeString:
        return wrappable_path(obj.handler)


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "last_failed_at",
        "reason",
        "handler_path",
        "message_type",
        "attempts",
        "state",
        "short_error",
    ]
    list_filter = [
        "reason",
        "handler",
        ("redriven_at", admin.EmptyFieldListFilter),
        ("discarded_at", admin.EmptyFieldListFilter),
    ]
    search_fields = ["message_id", "handler", "message_type", "error"]
    date_hierarchy = "last_failed_at"
    actions = ["redrive"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        fields = [f.name for f in self.model._meta.fields]
        if obj is not None and self.has_edit_permission(request):
            fields.insert(0, "edit_payload")
        return [*fields, "audit_trail"]

    def has_edit_permission(self, request: HttpRequest) -> bool:
        """Editing a payload and its dry run: a permission of its own, messaging.edit_deadletter."""
        return request.user.has_perm("messaging.edit_deadletter")

    def get_urls(self):
        edit = self.admin_site.admin_view(self.edit_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_edit"
        return [path("<int:object_id>/edit/", edit, name=name), *super().get_urls()]

    def edit_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Edit a letter's payload: checked against its schema, dry-run, or kept."""
        if not self.has_edit_permission(request):
            raise PermissionDenied
        dead_letter = get_object_or_404(DeadLetter, pk=object_id)
        envelope = dead_letter.envelope if isinstance(dead_letter.envelope, dict) else {}
        payload_text = json.dumps(envelope.get("payload"), indent=2, sort_keys=True)
        refused, dry_run = None, None
        if request.method == "POST":
            payload_text = request.POST.get("payload", "")
            try:
                if "dry_run" in request.POST:
                    dry_run = dead_letter_dry_run(
                        dead_letter=dead_letter, payload_text=payload_text
                    )
                else:
                    dead_letter_edit(
                        dead_letter_id=dead_letter.pk,
                        payload_text=payload_text,
                        actor=request.user,
                        reason=request.POST.get("reason", ""),
                    )
                    self.message_user(request, "The payload was saved; redrive it to send it.")
                    return HttpResponseRedirect(
                        reverse("admin:messaging_deadletter_change", args=[dead_letter.pk])
                    )
            except EditRefused as exc:
                refused = exc
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Edit the payload of dead letter #{dead_letter.pk}",
            "dead_letter": dead_letter,
            "payload_text": payload_text,
            "refused": refused,
            "dry_run": dry_run,
        }
        return TemplateResponse(request, "admin/messaging/deadletter/edit.html", context)

    @admin.display(description="edit")
    def edit_payload(self, obj: DeadLetter) -> str:
        if not obj.is_pending or not isinstance(obj.envelope, dict):
            return "Only a pending dead letter with an envelope can be edited."
        url = reverse("admin:messaging_deadletter_edit", args=[obj.pk])
        return format_html('<a href="{}">Edit the payload, dry-run it</a>', url)

    @admin.display(description="audit trail")
    def audit_trail(self, obj: DeadLetter) -> str:
        records = obj.audits.order_by("at", "id")
        if not records:
            return "Nothing done to it yet."
        return format_html_join(
            mark_safe("<br>"),
            "{} {} by {}: {}",
            (
                (r.at.strftime("%Y-%m-%d %H:%M:%S"), r.action, r.actor_name, r.reason or "-")
                for r in records
            ),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # The page is for reading; staff act on a letter with the redrive action.
        return False

    def has_redrive_permission(self, request: HttpRequest) -> bool:
        """Redriving marks the letter redriven: the dead letter's change permission."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.display(description="handler", ordering="handler")
    def handler_path(self, obj: DeadLetter) -> SafeString:
        return wrappable_path(obj.handler)

    # When it first failed and when it was redriven are on its page: the list has room for
    # what became of it, not when.
    @admin.display(description="state", ordering="redriven_at")
    def state(self, obj: DeadLetter) -> str:
        if obj.redriven_at is not None:
            return "redriven"
        return "discarded" if obj.discarded_at is not None else "pending"

    @admin.display(description="error")
    def short_error(self, obj: DeadLetter) -> str:
        return obj.error if len(obj.error) <= 120 else obj.error[:117] + "..."

    @admin.action(
        description="Redrive selected dead letters to their handler", permissions=["redrive"]
    )
    def redrive(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        result = dead_letters_redrive(
            ids=queryset.values_list("pk", flat=True), actor=request.user, reason="admin action"
        )
        level = messages.SUCCESS if not result.skipped else messages.WARNING
        self.message_user(request, f"Redrive: {result}", level)


@admin.register(DeadLetterGroup)
class DeadLetterGroupAdmin(admin.ModelAdmin):
    """The dead letters by cause; a group's page redrives or discards all its pending letters."""

    list_display = [
        "cause",
        "handler_path",
        "message_types",
        "letters",
        "pending",
        "first_seen",
        "last_seen",
    ]
    list_filter = ["reason", "handler"]
    search_fields = ["handler", "exception_type", "message", "frame"]
    readonly_fields = [
        "fingerprint", "handler", "reason", "exception_type", "message", "frame", "created_at",
        "letters_link", "pending", "first_seen", "last_seen", "message_types", "sample",
    ]  # fmt: skip
    fields = list(readonly_fields)
    change_form_template = "admin/messaging/deadlettergroup/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeadLetterGroup]:
        return dead_letter_groups_counted(super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_act_permission(self, request: HttpRequest) -> bool:
        """Redriving or discarding a group changes its letters: the dead letter's change."""
        return request.user.has_perm("messaging.change_deadletter")

    def get_urls(self):
        act = self.admin_site.admin_view(self.act_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_act"
        return [path("<int:object_id>/act/", act, name=name), *super().get_urls()]

    def act_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Start a redrive or discard of the group's pending letters, then back to its page."""
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse("admin:messaging_deadlettergroup_change", args=[object_id])
            )
        if not self.has_act_permission(request):
            raise PermissionDenied
        group = get_object_or_404(DeadLetterGroup, pk=object_id)
        try:
            run = dead_letter_group_run_start(
                group=group,
                action=request.POST.get("action", ""),
                reason=request.POST.get("reason", ""),
                actor=request.user,
                enqueue=dead_letter_group_act.delay,
            )
        except RunRefused as exc:
            self.message_user(request, f"Nothing was started: {exc}.", messages.ERROR)
        else:
            self.message_user(
                request,
                f"{run.get_action_display()} of {run.total} dead letters started; "
                "its progress is below.",
            )
        return HttpResponseRedirect(
            reverse("admin:messaging_deadlettergroup_change", args=[group.pk])
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        group = get_object_or_404(DeadLetterGroup, pk=object_id)
        runs = list(group.runs.select_related("requested_by")[:20])
        extra_context = {
            **(extra_context or {}),
            "runs": runs,
            "is_running": any(run.is_running for run in runs),
            "may_act": self.has_act_permission(request),
            "actions_choices": [DeadLetterAction.REDRIVE, DeadLetterAction.DISCARD],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="cause", ordering="exception_type")
    def cause(self, obj: DeadLetterGroup) -> str:
        text = f"{obj.exception_type or obj.get_reason_display()}: {obj.message}"
        return text if len(text) <= 120 else text[:117] + "..."

    @admin.display(description="handler", ordering="handler")
    def handler_path(self, obj: DeadLetterGroup) -> SafeString:
        return wrappable_path(obj.handler)

    @admin.display(description="message types")
    def message_types(self, obj: DeadLetterGroup) -> str:
        return ", ".join(dead_letter_group_message_types(obj))

    @admin.display(description="dead letters", ordering="letter_count")
    def letters(self, obj: DeadLetterGroup) -> int:
        return getattr(obj, "letter_count", 0) or 0

    @admin.display(description="pending", ordering="pending_count")
    def pending(self, obj: DeadLetterGroup) -> int:
        return getattr(obj, "pending_count", 0) or 0

    @admin.display(description="first seen", ordering="first_seen_at")
    def first_seen(self, obj: DeadLetterGroup) -> str | None:
        return _when(getattr(obj, "first_seen_at", None))

    @admin.display(description="last seen", ordering="last_seen_at")
    def last_seen(self, obj: DeadLetterGroup) -> str | None:
        return _when(getattr(obj, "last_seen_at", None))

    @admin.display(description="its dead letters")
    def letters_link(self, obj: DeadLetterGroup) -> str:
        url = reverse("admin:messaging_deadletter_changelist") + f"?fingerprint={obj.fingerprint}"
        return format_html('<a href="{}">{} dead letters</a>', url, self.letters(obj))

    @admin.display(description="sample (the latest)")
    def sample(self, obj: DeadLetterGroup) -> str:
        letter = dead_letter_group_sample(obj)
        if letter is None:
            return "-"
        url = reverse("admin:messaging_deadletter_change", args=[letter.pk])
        return format_html(
            '<a href="{}">#{}</a> {}<pre style="white-space: pre-wrap">{}</pre>',
            url,
            letter.pk,
            letter.error,
            letter.traceback or "(no traceback: it failed before reaching its handler)",
        )


@admin.register(DeadLetterAudit)
class DeadLetterAuditAdmin(ReadOnlyAdmin):
    list_display = ["at", "action", "actor_name", "dead_letter", "reason"]
    list_filter = ["action", "actor_name"]
    search_fields = ["fingerprint", "reason", "actor_name", "dead_letter__id"]
    date_hierarchy = "at"


@admin.register(DeadLetterGroupRun)
class DeadLetterGroupRunAdmin(ReadOnlyAdmin):
    list_display = ["requested_at", "action", "group_cause", "progress", "finished_at"]
    list_filter = ["action"]
    list_select_related = ["group"]

    @admin.display(description="group")
    def group_cause(self, obj: DeadLetterGroupRun) -> str:
        text = str(obj.group)
        return text if len(text) <= 60 else text[:57] + "..."

    @admin.display(description="progress")
    def progress(self, obj: DeadLetterGroupRun) -> str:
        skipped = f", {obj.skipped:,} skipped" if obj.skipped else ""
        return f"{obj.done:,} of {obj.total:,} done{skipped}"


def _when(value: datetime | None) -> str | None:
    # An annotation, which the admin shows as it is: in the list's own format.
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M:%S}" if value else None


# Celery's own record of a task's result, every field read-only: a page without save buttons.
admin.site.unregister(TaskResult)


@admin.register(TaskResult)
class TaskResultAdmin(CeleryTaskResultAdmin):
    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(RelayRun)
class RelayRunAdmin(ReadOnlyAdmin):
    list_display = ["name", "ran_at", "runner", "dispatched", "failed"]
