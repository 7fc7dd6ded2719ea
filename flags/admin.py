"""Admin for rollout flags and teams, and the input checks every calcache admin shares.

Replaces waffle's flag admin (the swapped ``waffle.Flag`` is not registered) and
shows only the fields calcache's decisions use. ``CheckedModelAdmin`` (here, because
``flags`` imports nothing of ``calcache``; ``calcache.admin`` builds on it) answers junk in
a changelist's query string, an action's selection or a related-object field with a
message instead of letting it reach the database as a 500.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Field, QuerySet
from django.forms import ModelMultipleChoiceField
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from waffle.admin import FlagAdmin as WaffleFlagAdmin
from waffle.admin import InformativeManyToManyRawIdWidget
from waffle.admin import SampleAdmin as WaffleSampleAdmin
from waffle.admin import SwitchAdmin as WaffleSwitchAdmin
from waffle.models import Sample, Switch

from flags.models import Flag, Team
from flags.selectors import flag_audience

NUL = "\x00"


def is_valid_key(field: Field, value: Any) -> bool:
    """Whether ``value``, as typed into a form or a URL, can be looked up in ``field``
    without the database raising: it converts to the field's type, carries no NUL
    (PostgreSQL text cannot) and, for an integer, fits the column (SQLite raises
    OverflowError beyond 64 bits)."""
    if NUL in str(value):
        return False
    try:
        python = field.to_python(value)
    except ValidationError:
        return False
    if isinstance(python, int):
        low, high = connection.ops.integer_field_range(field.get_internal_type())
        return (low is None or python >= low) and (high is None or python <= high)
    return True


def _beyond_int64(text: str) -> bool:
    # A lookup such as credential__id__in or __gte takes any number the URL holds;
    # SQLite raises OverflowError past 64 bits (Django guards only exact lookups).
    stripped = text.strip().lstrip("+-")
    if not stripped.isdigit() or not stripped.isascii():
        return False
    if len(stripped) > 19:  # also spares int() Python's limit on digits
        return True
    return not -(2**63) <= int(text) < 2**63


def _period_end(start: date, *, month: bool, day: bool) -> date:
    # what Django's ChangeList computes: a day, a month (32 days on, the 1st) or a year on
    if day:
        return start + timedelta(days=1)
    if month:
        return (start + timedelta(days=32)).replace(day=1)
    return start.replace(year=start.year + 1)


def date_hierarchy_problem(field: str, params: Any) -> str | None:
    """What is wrong with the ``<field>__year/__month/__day`` parameters, if anything.

    Django builds the period's end itself and raises past year 9999; with time zone
    support it also makes both ends aware in the current time zone, which overflows
    near year 1 east of UTC. The period must lie within the calendar."""
    year = params.get(f"{field}__year")
    if year is None:
        return None
    month = params.get(f"{field}__month")
    day = params.get(f"{field}__day")
    try:
        start = date(int(year), int(month or 1), int(day or 1))
        end = _period_end(start, month=bool(month), day=bool(day))
        if settings.USE_TZ:
            for bound in (start, end):
                timezone.make_aware(datetime.combine(bound, time.min)).astimezone(UTC)
    except (ValueError, OverflowError):
        shown = "-".join(str(part)[:12] for part in (year, month, day) if part is not None)
        return gettext(
            "The date %(date)s cannot be shown: choose a day, a month or a year that "
            "exists and ends by 9999-12-31."
        ) % {"date": repr(shown)}
    return None


class CheckedModelMultipleChoiceField(ModelMultipleChoiceField):
    """A many-to-many field that answers ids the database cannot take as "not valid"."""

    def _check_values(self, value: Any) -> Any:
        assert self.queryset is not None
        opts = self.queryset.model._meta
        field = opts.get_field(self.to_field_name) if self.to_field_name else opts.pk
        for pk in value:
            if not is_valid_key(field, pk):
                raise ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": str(pk)[:40]},
                )
        return super()._check_values(value)  # type: ignore[misc]


class CheckedAutocompleteSelectMultiple(AutocompleteSelectMultiple):
    """Re-rendering a form that was sent junk ids must not look them up."""

    def optgroups(self, name: str, value: Any, attr: Any = None) -> Any:
        target = self.field.remote_field.model._meta
        field = target.get_field(getattr(self.field.remote_field, "field_name", target.pk.name))
        return super().optgroups(name, [v for v in value if is_valid_key(field, v)], attr)


class CheckedInformativeRawIdWidget(InformativeManyToManyRawIdWidget):
    """waffle's user list widget, which looks each id up and catches only DoesNotExist."""

    def label_and_url_for_value(self, values: Any) -> tuple[str, str]:
        field = self.rel.get_related_field()
        return super().label_and_url_for_value([v for v in values if is_valid_key(field, v)])


class CheckedModelAdmin(admin.ModelAdmin):
    """Validates what reaches the database from a changelist's query string, an action's
    selection, a search and a related-object field: staff see a message, never a 500."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        problem, params = self.changelist_input_problem(request)
        if problem is not None:
            messages.error(request, problem)
            query = f"?{params.urlencode()}" if params else ""
            return HttpResponseRedirect(request.path + query)
        return super().changelist_view(request, extra_context)

    def changelist_input_problem(self, request: HttpRequest) -> tuple[str | None, Any]:
        """A message for the first junk value, and the query string without it."""
        params = request.GET.copy()
        for key, values in request.GET.lists():
            if NUL in key or any(NUL in value for value in values):
                del params[key]
                return gettext("Filter and search values cannot contain NUL characters."), params
        if self.date_hierarchy:
            problem = date_hierarchy_problem(self.date_hierarchy, request.GET)
            if problem is not None:
                for part in ("year", "month", "day"):
                    params.pop(f"{self.date_hierarchy}__{part}", None)
                return problem, params
        for key, values in request.GET.lists():
            parts = (part for value in values for part in value.split(","))
            if key != "q" and any(_beyond_int64(part) for part in parts):
                del params[key]
                problem = gettext("The value of %(key)s is too large a number.")
                return problem % {"key": repr(key[:40])}, params
        if request.method == "POST":
            selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            pk = self.model._meta.pk
            assert pk is not None
            if any(not is_valid_key(pk, value) for value in selected):
                problem = gettext(
                    "The selection holds ids that are not valid; nothing was changed."
                )
                return problem, params
        return None, params

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # Also the admin's autocomplete view, which has no changelist to redirect to.
        if NUL in search_term:
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = CheckedAutocompleteSelectMultiple(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        kwargs.setdefault("form_class", CheckedModelMultipleChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Flag)
class FlagAdmin(CheckedModelAdmin, WaffleFlagAdmin):
    list_display = ("name", "state", "percent", "team_count", "user_count", "modified", "note")  # type: ignore[assignment]
    list_filter = ("everyone",)  # type: ignore[assignment]
    fieldsets = (
        (None, {"fields": ("name", "note")}),
        (
            _("Who is in"),
            {
                "description": _(
                    "'Everyone: No' is a kill switch that beats every list and the percentage. "
                    "'Everyone: Unknown' decides by users, groups, teams, then percentage."
                ),
                "fields": ("everyone", "users", "groups", "teams", "percent", "rollout_key"),
            },
        ),
        (_("Audience"), {"fields": ("audience",)}),
    )
    readonly_fields = ("audience",)
    filter_horizontal = ("groups",)
    autocomplete_fields = ("teams",)

    def formfield_for_dbfield(self, db_field: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if db_field.name == "users":  # waffle builds this one itself, around our checks
            kwargs.pop("request", None)
            kwargs["widget"] = CheckedInformativeRawIdWidget(
                db_field.remote_field, self.admin_site, using=kwargs.get("using")
            )
            return db_field.formfield(form_class=CheckedModelMultipleChoiceField, **kwargs)
        return super().formfield_for_dbfield(db_field, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _team_count=Count("teams", distinct=True), _user_count=Count("users", distinct=True)
            )
        )

    @admin.display(description=_("State"))
    def state(self, obj: Flag) -> str:
        if obj.everyone is False:
            return gettext("off for everyone (kill switch)")
        if obj.everyone is True:
            return gettext("on for everyone")
        return gettext("by lists and percent")

    @admin.display(description=_("Teams"), ordering="_team_count")
    def team_count(self, obj: Any) -> int:
        return int(obj._team_count)

    @admin.display(description=_("Users"), ordering="_user_count")
    def user_count(self, obj: Any) -> int:
        return int(obj._user_count)

    @admin.display(description=_("Who is in"))
    def audience(self, obj: Flag) -> str:
        if not obj.pk:
            return gettext("Save the flag to see who is in.")
        result = flag_audience(flag=obj)
        return gettext(
            "%(enabled)d of %(total)d users (%(share)s): %(by_list)d by users/groups/teams, "
            "%(by_percent)d by percentage."
        ) % {
            "enabled": result.enabled_users,
            "total": result.total_users,
            "share": f"{result.enabled_share:.1%}",
            "by_list": result.by_list,
            "by_percent": result.by_percent,
        }


@admin.register(Team)
class TeamAdmin(CheckedModelAdmin):
    list_display = ("name", "slug", "member_count", "created_at")
    ordering = ("name",)  # the autocomplete pages through teams
    search_fields = ("name", "slug", "members__username", "members__email")
    prepopulated_fields = {"slug": ("name",)}
    raw_id_fields = ("members",)

    def get_autocomplete_fields(self, request: HttpRequest) -> tuple[str, ...]:
        # Autocomplete needs the host's user admin to have search_fields; a static
        # autocomplete_fields would fail the admin checks of a site whose does not.
        user_admin = self.admin_site._registry.get(get_user_model())
        return ("members",) if user_admin is not None and user_admin.search_fields else ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(_member_count=Count("members"))

    @admin.display(description=_("Members"), ordering="_member_count")
    def member_count(self, obj: Any) -> int:
        return int(obj._member_count)


# waffle registers its own Switch and Sample admins (the kill switch is a Switch); the
# same checks apply to them.
class SwitchAdmin(CheckedModelAdmin, WaffleSwitchAdmin):
    pass


class SampleAdmin(CheckedModelAdmin, WaffleSampleAdmin):
    pass


for model, model_admin in ((Switch, SwitchAdmin), (Sample, SampleAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, model_admin)
