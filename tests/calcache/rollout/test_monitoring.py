"""calcache.rollout.monitoring: the dashboard's reads (flag members, sync health, series)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group

from calcache.models import AvailabilityStat, CacheComparison, Credential
from calcache.rollout.monitoring import (
    MAX_NAMES,
    FlagMembers,
    calendar_health_list,
    flag_members_list,
    latency_series_list,
    mismatch_series_get,
)
from flags.models import Flag
from flags.names import READ_FLAG, WRITE_FLAG
from tests.factories import (
    CalendarEventFactory,
    CalendarSyncTokenFactory,
    CredentialFactory,
    SelectedCalendarFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
SINCE = NOW - timedelta(hours=24)
MINUTE = timedelta(minutes=1)


# --- flag_members_list ----------------------------------------------------------------------


def test_flag_members_list_names_users_teams_and_groups() -> None:
    flag = Flag.objects.get(name=WRITE_FLAG)
    users = [UserFactory(username=f"member{n:02d}") for n in range(MAX_NAMES + 2)]
    flag.users.add(*reversed(users))
    flag.teams.add(TeamFactory(slug="zeta", members=users[:3]), TeamFactory(slug="alpha"))
    flag.groups.add(Group.objects.create(name="beta"), Group.objects.create(name="admins"))

    members = flag_members_list(names=[WRITE_FLAG, READ_FLAG, "no-such-flag"])

    assert members == [
        FlagMembers(name=READ_FLAG, usernames=[], more_users=0, teams=[], groups=[]),
        FlagMembers(
            name=WRITE_FLAG,
            usernames=[f"member{n:02d}" for n in range(MAX_NAMES)],
            more_users=2,
            teams=[("alpha", 0), ("zeta", 3)],
            groups=["admins", "beta"],
        ),
    ]


# --- calendar_health_list -------------------------------------------------------------------


def selected(calendar_id: str, credential: Any, *, enabled: bool = True, **token: Any) -> None:
    SelectedCalendarFactory(credential=credential, calendar_id=calendar_id, enabled=enabled)
    if token:
        CalendarSyncTokenFactory(credential=credential, calendar_id=calendar_id, **token)


@pytest.fixture
def calendars() -> Credential:
    """Eight calendars in every state, created in no particular order; returns the
    valid credential (ada's)."""
    valid = CredentialFactory(account_email="ada@example.com")
    revoked = CredentialFactory(invalid=True, invalid_reason="invalid_grant: revoked")
    hours = timedelta(hours=1)
    selected("ok-recent", valid, last_sync_at=NOW - 5 * MINUTE)
    selected("disabled", valid, enabled=False, last_sync_at=NOW - 9 * hours)
    selected("never", valid)
    selected("ok-old", valid, last_sync_at=NOW - 3 * hours)
    selected(
        "failing",
        valid,
        last_sync_at=NOW - hours,
        last_error="GoogleUnavailable: 503",
        last_error_at=NOW - 30 * MINUTE,
    )
    selected("revoked-b", revoked, last_sync_at=NOW - hours)
    selected("failing-from-the-start", valid, last_error="x", last_error_at=NOW - hours)
    selected("revoked-a", revoked, enabled=False)
    CalendarEventFactory.create_batch(3, credential=valid, calendar_id="ok-old")
    CalendarEventFactory(credential=revoked, calendar_id="ok-old")  # not ada's calendar
    return valid


def test_calendar_health_list_worst_first_with_states_and_counts(calendars: Credential) -> None:
    health = calendar_health_list(now=NOW)

    assert [(row.calendar_id, row.state) for row in health.calendars] == [
        ("revoked-a", "invalid credential"),  # never synced, so before revoked-b
        ("revoked-b", "invalid credential"),
        ("failing-from-the-start", "failing"),
        ("failing", "failing"),
        ("never", "never synced"),
        ("ok-old", "ok"),  # the oldest success first
        ("ok-recent", "ok"),
        ("disabled", "disabled"),
    ]
    assert health.total == 8
    assert health.counts == {
        "invalid credential": 2,
        "failing": 2,
        "never synced": 1,
        "ok": 2,
        "disabled": 1,
    }
    rows = {row.calendar_id: row for row in health.calendars}
    assert rows["ok-old"].events == 3 and rows["ok-recent"].events == 0
    assert rows["ok-old"].last_success_age == timedelta(hours=3)
    assert rows["ok-old"].account == "ada@example.com"
    assert rows["ok-old"].user == calendars.user.get_username()
    assert rows["failing"].last_error == "GoogleUnavailable: 503"
    assert rows["revoked-b"].invalid_reason == "invalid_grant: revoked"
    assert rows["never"].last_success is None and rows["never"].last_success_age is None


def test_calendar_health_list_limit_cuts_the_list_not_the_counts(calendars: Credential) -> None:
    health = calendar_health_list(now=NOW, limit=3)
    assert [row.calendar_id for row in health.calendars] == [
        "revoked-a",
        "revoked-b",
        "failing-from-the-start",
    ]
    assert health.total == 8 and sum(health.counts.values()) == 8
    assert calendar_health_list(now=NOW, limit=0).calendars == []


# --- latency_series_list and mismatch_series_get ------------------------------------------


def stat(
    minute: datetime, source: str, requests: int, errors: int, total: float, top: float
) -> None:
    AvailabilityStat.objects.create(
        minute=minute, source=source, requests=requests, errors=errors, total_ms=total, max_ms=top
    )


def test_latency_series_per_source_and_bucket() -> None:
    stat(SINCE - MINUTE, "sql", 100, 100, 100, 100)  # before the range
    stat(SINCE, "sql", 2, 0, 10, 8)
    stat(SINCE + 5 * MINUTE, "sql", 3, 1, 30, 20)
    stat(SINCE + 15 * MINUTE, "sql", 0, 0, 0, 0)
    stat(SINCE + 20 * MINUTE, "json", 4, 0, 8, 3)
    stat(NOW + MINUTE, "live", 100, 100, 100, 100)  # after it

    series = latency_series_list(since=SINCE, now=NOW)

    second = SINCE + 15 * MINUTE  # a day in at most 96 buckets: 15 minutes each
    assert {name: s.lines for name, s in series.items()} == {
        "mean": {"sql": [(SINCE, 8.0)], "json": [(second, 2.0)], "live": [], "mixed": []},
        "max": {"sql": [(SINCE, 20.0)], "json": [(second, 3.0)], "live": [], "mixed": []},
        "requests": {
            "sql": [(SINCE, 5), (second, 0)],
            "json": [(second, 4)],
            "live": [],
            "mixed": [],
        },
        "errors": {
            "sql": [(SINCE, 1), (second, 0)],
            "json": [(second, 0)],
            "live": [],
            "mixed": [],
        },
    }
    assert {(s.start, s.end, s.bucket) for s in series.values()} == {
        (SINCE, NOW, timedelta(minutes=15))
    }


def test_a_young_site_gets_its_own_range_and_an_empty_one_the_whole_day() -> None:
    empty = latency_series_list(since=SINCE, now=NOW)["requests"]
    assert (empty.start, empty.bucket) == (SINCE, timedelta(minutes=15))
    assert empty.lines == {"sql": [], "json": [], "live": [], "mixed": []}
    first = NOW - 30 * MINUTE
    stat(first, "live", 1, 0, 100, 100)
    stat(NOW - 10 * MINUTE, "live", 1, 0, 300, 300)
    young = latency_series_list(since=SINCE, now=NOW)["mean"]
    assert (young.start, young.bucket) == (first, MINUTE)
    assert young.lines["live"] == [(first, 100.0), (NOW - 10 * MINUTE, 300.0)]


def test_mismatch_series_is_the_percent_that_disagreed_per_bucket(user: Any) -> None:
    def compared(at: datetime, *, equal: bool) -> None:
        comparison = CacheComparison.objects.create(
            user=user,
            window_start=NOW,
            window_end=NOW + timedelta(days=1),
            source_a="sql",
            source_b="json",
            equal=equal,
            latency_a_ms=1,
            latency_b_ms=2,
        )
        CacheComparison.objects.filter(pk=comparison.pk).update(created_at=at)

    compared(SINCE - MINUTE, equal=False)  # before the range
    for seconds, equal in ((60, False), (90, True), (100, True), (150, True)):
        compared(SINCE + timedelta(seconds=seconds), equal=equal)
    compared(SINCE + 40 * MINUTE + timedelta(seconds=59), equal=False)

    series = mismatch_series_get(since=SINCE, now=NOW)

    start = SINCE + MINUTE  # the first comparison's minute
    assert (series.start, series.end, series.bucket) == (start, NOW, timedelta(minutes=15))
    assert series.lines == {"mismatch %": [(start, 25.0), (start + 30 * MINUTE, 100.0)]}
