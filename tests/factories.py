"""factory-boy factories for every model the tests touch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factory
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from calcache.accounts import crypto
from calcache.models import (
    CalendarCache,
    CalendarEvent,
    CalendarSyncToken,
    Credential,
    EventStatus,
    ResponseStatus,
    SelectedCalendar,
    Transparency,
)
from flags.models import Flag, Team


def google_token(**overrides: Any) -> dict[str, Any]:
    """An authorized-user token dict as google-auth writes it."""
    token = {
        "token": "ya29.access-token",
        "refresh_token": "1//refresh-token",
        "token_uri": "https://oauth2.googleapis.com/token",
        "client_id": "client-id.apps.googleusercontent.com",
        "client_secret": "client-secret",
        "scopes": ["https://www.googleapis.com/auth/calendar.readonly"],
        "expiry": "2026-11-24T12:00:00Z",
    }
    token.update(overrides)
    return token


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("password")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")

    @factory.post_generation
    def members(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            self.members.add(*extracted)


class FlagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Flag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"flag-{n}")


class CredentialFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Credential
        exclude = ("token_data",)

    user = factory.SubFactory(UserFactory)
    account_email = factory.LazyAttribute(lambda c: c.user.email)
    token_data = factory.LazyFunction(google_token)
    encrypted_token = factory.LazyAttribute(lambda c: crypto.encrypt_json(c.token_data))


class SelectedCalendarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SelectedCalendar

    credential = factory.SubFactory(CredentialFactory)
    calendar_id = factory.Sequence(lambda n: f"calendar{n}@example.com")
    time_zone = "UTC"


class CalendarEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CalendarEvent

    credential = factory.SubFactory(CredentialFactory)
    user = factory.LazyAttribute(lambda e: e.credential.user)
    calendar_id = "primary"
    google_event_id = factory.Sequence(lambda n: f"event{n:06d}")
    etag = factory.Sequence(lambda n: f'"{n}"')
    start_time = factory.LazyFunction(lambda: timezone.now().replace(microsecond=0))
    end_time = factory.LazyAttribute(lambda e: e.start_time + timedelta(minutes=30))
    ical_uid = factory.LazyAttribute(lambda e: f"{e.google_event_id}@google.com")


class CalendarSyncTokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CalendarSyncToken

    credential = factory.SubFactory(CredentialFactory)
    calendar_id = "primary"
    sync_token = factory.Sequence(lambda n: f"sync-token-{n}")


class CalendarCacheFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CalendarCache

    credential = factory.SubFactory(CredentialFactory)
    key = factory.Sequence(lambda n: f'{{"items":["primary"],"n":{n}}}')
    value = factory.LazyFunction(lambda: {"kind": "calendar#freeBusy", "calendars": {}})
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=90))


# CalendarEventFactory fields and whether the event blocks time: for the busy predicate
# (models.BUSY) and every read that applies it.
BUSY_CASES = [
    pytest.param({}, True, id="confirmed"),
    pytest.param({"status": EventStatus.TENTATIVE}, True, id="tentative"),
    pytest.param({"status": EventStatus.CANCELLED}, False, id="cancelled"),
    pytest.param({"transparency": Transparency.TRANSPARENT}, False, id="transparent"),
    pytest.param({"self_response_status": ResponseStatus.DECLINED}, False, id="declined"),
    pytest.param({"self_response_status": ResponseStatus.NEEDS_ACTION}, True, id="needs-action"),
    pytest.param({"self_response_status": ResponseStatus.TENTATIVE}, True, id="answered-tentative"),
    pytest.param({"self_response_status": ResponseStatus.ACCEPTED}, True, id="accepted"),
]


def grant_permission(user_or_group: Any, permission: str) -> None:
    """Give a user or a group ``app_label.codename``. The row is created when missing: a
    permission declared in Meta.permissions exists only once its migration has run."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from calcache.models import RolloutEvent

    app_label, codename = permission.split(".", 1)
    models_by_permission = {"calcache.view_dashboard": RolloutEvent}
    model = models_by_permission.get(permission)
    if model is None:
        row = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    else:
        row, _ = Permission.objects.get_or_create(
            content_type=ContentType.objects.get_for_model(model),
            codename=codename,
            defaults={"name": codename.replace("_", " ")},
        )
    permissions = getattr(user_or_group, "user_permissions", None) or user_or_group.permissions
    permissions.add(row)


class CacheComparisonFactory(factory.django.DjangoModelFactory):
    """A shadow comparison of an SQL answer with the JSON cache, created now."""

    class Meta:
        model = "calcache.CacheComparison"

    user = factory.SubFactory(UserFactory)
    window_start = factory.LazyFunction(timezone.now)
    window_end = factory.LazyAttribute(lambda c: c.window_start + timedelta(hours=1))
    source_a = "sql"
    source_b = "json"
    equal = True
    latency_a_ms = 1.0
    latency_b_ms = 2.0
