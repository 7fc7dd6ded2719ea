"""Admin pages: read-mostly views of the mirror, with secrets never shown."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from calcache.models import (
    AvailabilityStat,
    CacheComparison,
    CalendarCache,
    CalendarEvent,
    CalendarSyncToken,
    Credential,
    RolloutEvent,
    SelectedCalendar,
)
from flags.admin import CheckedModelAdmin


class ReadOnlyAdmin(CheckedModelAdmin):
    """Rows written only by the sync: visible to operators, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SelectedCalendarInline(admin.TabularInline):
    model = SelectedCalendar
    extra = 0
    fields = ("calendar_id", "time_zone", "is_primary", "enabled")
    readonly_fields = ("calendar_id", "time_zone", "is_primary")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Credential)
class CredentialAdmin(CheckedModelAdmin):
    list_display = ("id", "user", "provider", "account_email", "invalid", "updated_at")
    list_filter = ("provider", "invalid")
    search_fields = ("account_email", "user__username", "user__email")
    raw_id_fields = ("user",)
    # encrypted_token is not editable and never listed here.
    fields = (
        "user",
        "provider",
        "account_email",
        "token_summary",
        "invalid",
        "invalid_reason",
        "invalidated_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "user",
        "provider",
        "account_email",
        "token_summary",
        "invalidated_at",
        "created_at",
        "updated_at",
    )
    inlines = [SelectedCalendarInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # accounts are connected through OAuth, not typed in

    @admin.display(description="Token")
    def token_summary(self, obj: Credential) -> str:
        """What an operator may know about the token: that it exists and its scopes."""
        try:
            token = obj.token
        except Exception as exc:  # shown, not raised: the page must still render
            return f"cannot be decrypted ({type(exc).__name__})"
        scopes = token.get("scopes") or []
        return (
            f"encrypted; refresh token {'present' if token.get('refresh_token') else 'missing'}; "
            f"scopes: {', '.join(scopes) if scopes else 'unknown'}; "
            f"expiry: {token.get('expiry') or 'unknown'}"
        )


@admin.register(SelectedCalendar)
class SelectedCalendarAdmin(CheckedModelAdmin):
    list_display = ("calendar_id", "credential", "time_zone", "is_primary", "enabled")
    list_filter = ("enabled", "is_primary")
    search_fields = ("calendar_id", "credential__account_email")
    raw_id_fields = ("credential",)
    readonly_fields = ("credential", "calendar_id", "longest_event", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Users choose their calendars on calendars/ from what Google lists for the
        # account; a hand-typed id would name a calendar the sync cannot read.
        return False


class CalendarIdFilter(admin.SimpleListFilter):
    """Calendars from the small SelectedCalendar table, not a DISTINCT over every event."""

    title = "calendar"
    parameter_name = "calendar_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        ids = (
            SelectedCalendar.objects.order_by("calendar_id")
            .values_list("calendar_id", flat=True)
            .distinct()
        )
        return [(calendar_id, calendar_id) for calendar_id in ids]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value():
            return queryset.filter(calendar_id=self.value())
        return queryset


@admin.register(CalendarEvent)
class CalendarEventAdmin(ReadOnlyAdmin):
    list_display = (
        "google_event_id",
        "calendar_id",
        "credential",
        "start_time",
        "end_time",
        "status",
        "transparency",
        "self_response_status",
        "is_all_day",
    )
    list_filter = ("status", "transparency", "is_all_day", "credential", CalendarIdFilter)
    search_fields = ("google_event_id", "calendar_id", "ical_uid", "recurring_event_id")
    date_hierarchy = "start_time"
    raw_id_fields = ("credential", "user")
    list_select_related = ("credential",)
    # The changelist's COUNT(*) over millions of rows is slow on PostgreSQL.
    show_full_result_count = False


@admin.register(CalendarSyncToken)
class CalendarSyncTokenAdmin(ReadOnlyAdmin):
    list_display = (
        "calendar_id",
        "credential",
        "last_sync_at",
        "last_full_sync_at",
        "window_start",
        "window_end",
        "last_error_at",
    )
    list_filter = ("credential",)
    search_fields = ("calendar_id", "credential__account_email", "last_error")
    raw_id_fields = ("credential",)


@admin.register(CalendarCache)
class CalendarCacheAdmin(ReadOnlyAdmin):
    list_display = ("id", "credential", "expires_at", "updated_at")
    search_fields = ("key",)
    raw_id_fields = ("credential",)
    show_full_result_count = False


@admin.register(AvailabilityStat)
class AvailabilityStatAdmin(ReadOnlyAdmin):
    list_display = ("minute", "source", "requests", "errors", "mean_ms", "max_ms")
    list_filter = ("source",)
    date_hierarchy = "minute"
    ordering = ("-minute", "source")

    @admin.display(description="mean ms")
    def mean_ms(self, obj: AvailabilityStat) -> str:
        return f"{obj.mean_ms:.2f}"


@admin.register(CacheComparison)
class CacheComparisonAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        "source_a",
        "source_b",
        "equal",
        "latency_a_ms",
        "latency_b_ms",
    )
    list_filter = ("equal", "source_a", "source_b")
    date_hierarchy = "created_at"
    raw_id_fields = ("user",)
    show_full_result_count = False


@admin.register(RolloutEvent)
class RolloutEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "reason", "actor")
    list_filter = ("action",)
    date_hierarchy = "created_at"
