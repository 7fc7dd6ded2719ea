"""Admin for rollout flags and teams.

Replaces waffle's flag admin (the swapped ``waffle.Flag`` is not registered) and
shows only the fields calcache's decisions use.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from waffle.admin import FlagAdmin as WaffleFlagAdmin

from flags.models import Flag, Team
from flags.selectors import flag_audience


@admin.register(Flag)
class FlagAdmin(WaffleFlagAdmin):
    list_display = ("name", "state", "percent", "team_count", "user_count", "modified", "note")  # type: ignore[assignment]
    list_filter = ("everyone",)  # type: ignore[assignment]
    fieldsets = (
        (None, {"fields": ("name", "note")}),
        (
            "Who is in",
            {
                "description": (
                    "'Everyone: No' is a kill switch that beats every list and the percentage. "
                    "'Everyone: Unknown' decides by users, groups, teams, then percentage."
                ),
                "fields": ("everyone", "users", "groups", "teams", "percent", "rollout_key"),
            },
        ),
        ("Audience", {"fields": ("audience",)}),
    )
    readonly_fields = ("audience",)
    filter_horizontal = ("groups",)
    autocomplete_fields = ("teams",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Flag]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _team_count=Count("teams", distinct=True), _user_count=Count("users", distinct=True)
            )
        )

    @admin.display(description="State")
    def state(self, obj: Flag) -> str:
        if obj.everyone is False:
            return "off for everyone (kill switch)"
        if obj.everyone is True:
            return "on for everyone"
        return "by lists and percent"

    @admin.display(description="Teams", ordering="_team_count")
    def team_count(self, obj: Any) -> int:
        return int(obj._team_count)

    @admin.display(description="Users", ordering="_user_count")
    def user_count(self, obj: Any) -> int:
        return int(obj._user_count)

    @admin.display(description="Who is in")
    def audience(self, obj: Flag) -> str:
        if not obj.pk:
            return "Save the flag to see who is in."
        result = flag_audience(flag=obj)
        return (
            f"{result.enabled_users} of {result.total_users} users "
            f"({result.enabled_share:.1%}): {result.by_list} by users/groups/teams, "
            f"{result.by_percent} by percentage."
        )


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "member_count", "created_at")
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

    @admin.display(description="Members", ordering="_member_count")
    def member_count(self, obj: Any) -> int:
        return int(obj._member_count)
