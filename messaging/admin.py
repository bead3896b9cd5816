from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .dead_letters import dead_letters_redrive
from .models import DeadLetter, InboxRecord, OutboxMessage, RelayRun


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
        "correlation_id",
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
    list_display = ["id", "handler", "message_id", "processed_at"]
    list_filter = ["handler"]
    search_fields = ["message_id", "handler"]
    date_hierarchy = "processed_at"


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "reason",
        "handler",
        "message_type",
        "attempts",
        "first_failed_at",
        "last_failed_at",
        "redriven_at",
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

    @admin.display(description="error")
    def short_error(self, obj: DeadLetter) -> str:
        return obj.error if len(obj.error) <= 120 else obj.error[:117] + "..."

    @admin.action(
        description="Redrive selected dead letters to their handler", permissions=["change"]
    )
    def redrive(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        result = dead_letters_redrive(ids=queryset.values_list("pk", flat=True))
        level = messages.SUCCESS if not result.skipped else messages.WARNING
        self.message_user(request, f"Redrive: {result}", level)


@admin.register(RelayRun)
class RelayRunAdmin(ReadOnlyAdmin):
    list_display = ["name", "ran_at", "runner", "dispatched", "failed"]
