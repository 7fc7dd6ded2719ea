"""Admin pages: read-mostly views of the mirror, with secrets never shown; and the rollout
flags' and kill switch's admins, which record every change as a ``RolloutEvent``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from waffle.models import Switch

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
from calcache.rollout.stages import (
    ROLLOUT_NAMES,
    describe_flag_change,
    flag_state,
    record_flag_change,
    record_switch_change,
)
from flags.admin import CheckedModelAdmin
from flags.models import Flag


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

    @admin.display(description=_("Token"))
    def token_summary(self, obj: Credential) -> str:
        """What an operator may know about the token: that it exists and its scopes."""
        try:
            token = obj.token
        except Exception as exc:  # shown, not raised: the page must still render
            return gettext("cannot be decrypted (%(error)s)") % {"error": type(exc).__name__}
        scopes = token.get("scopes") or []
        unknown = gettext("unknown")
        return gettext(
            "encrypted; refresh token %(refresh)s; scopes: %(scopes)s; expiry: %(expiry)s"
        ) % {
            "refresh": gettext("present") if token.get("refresh_token") else gettext("missing"),
            "scopes": ", ".join(scopes) if scopes else unknown,
            "expiry": token.get("expiry") or unknown,
        }


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

    title = _("calendar")
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

    @admin.display(description=_("mean ms"))
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


Action = Callable[[Any, HttpRequest, QuerySet[Any]], Any]


def _recording_action(action: Action, record: Callable[[Any, Any, Any], None]) -> Action:
    """``action`` (one of waffle's enable/disable actions) in a transaction that then
    calls ``record(request, before, row)`` for each selected rollout flag or switch, with
    ``before`` the row as it was."""

    def recorded(model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        with transaction.atomic():
            # The changelist's queryset may be annotated (GROUP BY): lock the rows alone.
            pks = list(queryset.filter(name__in=ROLLOUT_NAMES).values_list("pk", flat=True))
            manager = queryset.model._default_manager
            before = {row.pk: row for row in manager.select_for_update().filter(pk__in=pks)}
            snapshots = {pk: model_admin.snapshot(row) for pk, row in before.items()}
            response = action(model_admin, request, queryset)
            for row in manager.filter(pk__in=before):
                record(request, snapshots[row.pk], row)
        return response

    return recorded


class RecordingAdminMixin:
    """Wraps the enable/disable actions so that they record, like the change form."""

    recorded_actions: tuple[str, ...] = ()

    def snapshot(self, row: Any) -> Any:
        raise NotImplementedError

    def record(self, request: HttpRequest, before: Any, row: Any) -> None:
        raise NotImplementedError

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)  # type: ignore[misc]
        for name in self.recorded_actions:
            if name in actions:
                func, action_name, description = actions[name]
                actions[name] = (_recording_action(func, self.record), action_name, description)
        if "delete_individually" in actions:
            func, action_name, description = actions["delete_individually"]
            actions["delete_individually"] = (_sparing_rollout_rows(func), action_name, description)
        return actions

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a rollout flag or the kill switch would change who reads SQL with no
        # RolloutEvent (a missing switch reads as off): turn it off instead.
        if obj is not None and obj.name in ROLLOUT_NAMES:
            return False
        return super().has_delete_permission(request, obj)  # type: ignore[misc]


def _sparing_rollout_rows(action: Action) -> Action:
    """waffle's "Delete selected" without the rollout flags and the kill switch."""

    def spared(model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        kept = sorted(queryset.filter(name__in=ROLLOUT_NAMES).values_list("name", flat=True))
        if kept:
            model_admin.message_user(
                request,
                gettext("Not deleted: %(names)s. Turn a rollout flag off instead.")
                % {"names": ", ".join(kept)},
                messages.WARNING,
            )
        return action(model_admin, request, queryset.exclude(name__in=ROLLOUT_NAMES))

    return spared


class RolloutFlagAdmin(RecordingAdminMixin):
    """Mixed into the flag admin: a change of a rollout flag (its fields and, saved after
    them, its users, groups and teams) is recorded as ``calcache.rollout.stages.set_flag``
    records it, with the staff user as actor."""

    recorded_actions = ("enable_for_all", "disable_for_all")

    def snapshot(self, row: Flag) -> dict[str, Any]:
        return flag_state(row)

    def record(self, request: HttpRequest, before: dict[str, Any], row: Flag) -> None:
        change = describe_flag_change(before, flag_state(row))
        if change:
            record_flag_change(flag=row, before=before, change=change, actor=request.user)

    def save_model(self, request: HttpRequest, obj: Flag, form: ModelForm, change: bool) -> None:
        stored = Flag.objects.filter(pk=obj.pk, name__in=ROLLOUT_NAMES).first() if change else None
        # The m2m fields are saved later, in save_related: compare there.
        request._calcache_flag_before = flag_state(stored) if stored else None  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)  # type: ignore[misc]

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        before = getattr(request, "_calcache_flag_before", None)
        if before is not None:  # as stored: the form's values are not yet normalized
            self.record(request, before, Flag.objects.get(pk=form.instance.pk))


class RolloutSwitchAdmin(RecordingAdminMixin):
    """Mixed into the switch admin: turning the kill switch on or off is recorded as a
    ``RolloutEvent``, with the staff user as actor."""

    recorded_actions = ("enable_switches", "disable_switches")

    def snapshot(self, row: Switch) -> bool:
        return bool(row.active)

    def record(self, request: HttpRequest, before: bool, row: Switch) -> None:
        if before != row.active:
            record_switch_change(switch=row, before=before, actor=request.user)

    def save_model(self, request: HttpRequest, obj: Switch, form: ModelForm, change: bool) -> None:
        stored = (
            Switch.objects.filter(pk=obj.pk, name__in=ROLLOUT_NAMES).first() if change else None
        )
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        if stored is not None:
            self.record(request, bool(stored.active), obj)


def _record_in_the_registered_admins() -> None:
    """Mix the recording into whatever admin is registered for waffle's flag and switch
    (ours from ``flags.admin``, or a host's own), keeping its customizations. A host that
    registers its own admin for them after calcache's admin is loaded should base it on
    ``RolloutFlagAdmin`` / ``RolloutSwitchAdmin`` to keep the recording."""
    for model, mixin in ((Flag, RolloutFlagAdmin), (Switch, RolloutSwitchAdmin)):
        if not admin.site.is_registered(model):
            continue
        current = type(admin.site.get_model_admin(model))
        if issubclass(current, mixin):
            continue
        admin.site.unregister(model)
        admin.site.register(model, type(f"Recording{current.__name__}", (mixin, current), {}))


_record_in_the_registered_admins()
