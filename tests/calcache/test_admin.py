"""Admin pages render for staff, validate rollout input and never show secrets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from flags.models import Flag, Team
from tests.factories import (
    CalendarCacheFactory,
    CalendarEventFactory,
    CalendarSyncTokenFactory,
    CredentialFactory,
    SelectedCalendarFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client: Client) -> Client:
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def flag_form(flag: Flag, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": flag.name,
        "note": flag.note,
        "everyone": "unknown",
        "users": "",
        "groups": [],
        "teams": [],
        "percent": "",
        "rollout_key": flag.rollout_key,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:flags_flag_changelist",
        "admin:flags_flag_add",
        "admin:flags_team_changelist",
        "admin:flags_team_add",
        "admin:waffle_switch_changelist",
        "admin:calcache_credential_changelist",
        "admin:calcache_selectedcalendar_changelist",
        "admin:calcache_calendarevent_changelist",
        "admin:calcache_calendarsynctoken_changelist",
        "admin:calcache_calendarcache_changelist",
        "admin:calcache_availabilitystat_changelist",
        "admin:calcache_cachecomparison_changelist",
        "admin:calcache_rolloutevent_changelist",
    ],
)
def test_changelists_render(admin_client_: Client, url_name: str) -> None:
    event = CalendarEventFactory()
    SelectedCalendarFactory(credential=event.credential, calendar_id=event.calendar_id)
    CalendarSyncTokenFactory(credential=event.credential)
    CalendarCacheFactory(credential=event.credential)
    TeamFactory()
    response = admin_client_.get(reverse(url_name))
    assert response.status_code == 200


def test_change_pages_render(admin_client_: Client) -> None:
    event = CalendarEventFactory()
    selected = SelectedCalendarFactory(credential=event.credential)
    token = CalendarSyncTokenFactory(credential=event.credential)
    cache_entry = CalendarCacheFactory(credential=event.credential)
    team = TeamFactory()
    for name, pk in [
        ("calcache_calendarevent", event.pk),
        ("calcache_selectedcalendar", selected.pk),
        ("calcache_calendarsynctoken", token.pk),
        ("calcache_calendarcache", cache_entry.pk),
        ("flags_team", team.pk),
        ("flags_flag", Flag.objects.get(name="calendar-cache-sql").pk),
    ]:
        response = admin_client_.get(reverse(f"admin:{name}_change", args=[pk]))
        assert response.status_code == 200, name


def test_event_changelist_filters(admin_client_: Client) -> None:
    event = CalendarEventFactory(calendar_id="work@example.com", status="cancelled")
    SelectedCalendarFactory(credential=event.credential, calendar_id="work@example.com")
    CalendarEventFactory(calendar_id="home@example.com")
    url = reverse("admin:calcache_calendarevent_changelist")
    response = admin_client_.get(
        url, {"calendar_id": "work@example.com", "status__exact": "cancelled"}
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [event]
    assert b"work@example.com" in response.content  # the calendar filter lists it


def test_credential_page_never_shows_the_token(admin_client_: Client) -> None:
    credential = CredentialFactory()
    response = admin_client_.get(reverse("admin:calcache_credential_change", args=[credential.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "refresh-token" not in body and "ya29" not in body and "client-secret" not in body
    assert credential.encrypted_token not in body
    assert "refresh token present" in body


def test_flag_percent_over_100_is_rejected_with_a_message(admin_client_: Client) -> None:
    flag = Flag.objects.get(name="calendar-cache-sql")
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    response = admin_client_.post(url, flag_form(flag, percent="150"))
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 100." in response.content.decode()
    flag.refresh_from_db()
    assert flag.percent is None


@pytest.mark.parametrize(
    ("percent", "error"),
    [
        ("-1", "greater than or equal to 0"),
        ("12.3456", "no more than 3 decimal places"),
        ("abc", "Enter a number."),
    ],
)
def test_flag_percent_validation(admin_client_: Client, percent: str, error: str) -> None:
    flag = Flag.objects.get(name="calendar-cache-sql")
    response = admin_client_.post(
        reverse("admin:flags_flag_change", args=[flag.pk]), flag_form(flag, percent=percent)
    )
    assert response.status_code == 200
    assert error in response.content.decode()


def test_flag_admin_saves_teams_and_percent_and_shows_who_is_in(admin_client_: Client) -> None:
    members = UserFactory.create_batch(3)
    UserFactory.create_batch(5)
    team = TeamFactory(members=members)
    flag = Flag.objects.get(name="calendar-cache-sql-write")
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    response = admin_client_.post(url, flag_form(flag, teams=[team.pk], percent="12.5"))
    assert response.status_code == 302, response.content.decode()[:2000]
    flag.refresh_from_db()
    assert flag.percent == Decimal("12.5")
    assert list(flag.teams.all()) == [team]
    page = admin_client_.get(url).content.decode()
    assert "Who is in" in page
    assert "of 9 users" in page  # 8 created here + the admin
    assert "3 by users/groups/teams" in page


def test_team_admin_search_by_member(admin_client_: Client) -> None:
    alice = UserFactory(username="alice")
    team = TeamFactory(name="Acme", members=[alice])
    TeamFactory(name="Other")
    response = admin_client_.get(reverse("admin:flags_team_changelist"), {"q": "alice"})
    assert list(response.context["cl"].result_list) == [team]
    assert Team.objects.count() == 2


def test_sync_rows_cannot_be_edited_by_hand(admin_client_: Client) -> None:
    event = CalendarEventFactory()
    url = reverse("admin:calcache_calendarevent_change", args=[event.pk])
    response = admin_client_.post(url, {"status": "cancelled"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.status == "confirmed"
