from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django_celery_results.admin import TaskResultAdmin as CeleryTaskResultAdmin
from django_celery_results.models import TaskResult

from .dead_letters import dead_letters_redrive
from .models import DeadLetter, InboxRecord, OutboxMessage, RelayRun
from .references import short_reference


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
        "is_redriven",
        "short_error",
    ]
    list_filter = ["reason", "handler", ("redriven_at", admin.EmptyFieldListFilter)]
    search_fields = ["message_id", "handler", "message_type", "error"]
    date_hierarchy = "last_failed_at"
    actions = ["redrive"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

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
    # whether, not when.
    @admin.display(boolean=True, description="redriven", ordering="redriven_at")
    def is_redriven(self, obj: DeadLetter) -> bool:
        return obj.redriven_at is not None

    @admin.display(description="error")
    def short_error(self, obj: DeadLetter) -> str:
        return obj.error if len(obj.error) <= 120 else obj.error[:117] + "..."

    @admin.action(
        description="Redrive selected dead letters to their handler", permissions=["redrive"]
    )
    def redrive(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        result = dead_letters_redrive(ids=queryset.values_list("pk", flat=True))
        level = messages.SUCCESS if not result.skipped else messages.WARNING
        self.message_user(request, f"Redrive: {result}", level)


# Celery's own record of a task's result, every field read-only: a page without save buttons.
admin.site.unregister(TaskResult)


@admin.register(TaskResult)
class TaskResultAdmin(CeleryTaskResultAdmin):
    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(RelayRun)
class RelayRunAdmin(ReadOnlyAdmin):
    list_display = ["name", "ran_at", "runner", "dispatched", "failed"]
