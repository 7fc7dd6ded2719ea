"""calcache.availability.sql: busy_intervals (the SQL read) and sync_coverage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calcache.availability.sql import (
    busy_intervals,
    busy_intervals_for_users,
    read_users,
    sync_coverage,
)
from calcache.emulator import EmulatorClient
from calcache.models import CalendarSyncToken, SelectedCalendar
from calcache.sync.engine import SyncOutcome
from tests.calcache.sync.conftest import make_mirror
from tests.factories import (
    BUSY_CASES,
    CalendarEventFactory,
    CalendarSyncTokenFactory,
    CredentialFactory,
    SelectedCalendarFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
T0 = datetime(2026, 3, 3, tzinfo=UTC)  # the day after the emulator's clock in make_mirror
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture
def calendar(user: Any) -> SelectedCalendar:
    return SelectedCalendarFactory(credential=CredentialFactory(user=user))


def store(selected: SelectedCalendar, start: datetime, end: datetime, **fields: Any) -> None:
    """A row of ``selected`` as the sync writes it."""
    CalendarEventFactory(
        credential=selected.credential,
        calendar_id=selected.calendar_id,
        start_time=start,
        end_time=end,
        **fields,
    )


def synced(selected: SelectedCalendar, **fields: Any) -> CalendarSyncToken:
    """The token of a sync that succeeded at T0 with the default window."""
    values: dict[str, Any] = {
        "last_sync_at": T0,
        "window_start": T0 - 30 * DAY,
        "window_end": T0 + 180 * DAY,
    }
    values.update(fields)
    return CalendarSyncTokenFactory(
        credential=selected.credential, calendar_id=selected.calendar_id, **values
    )


def covered(user: Any, start: datetime = T0, end: datetime = T0 + DAY) -> bool:
    return sync_coverage(user=user, start=start, end=end)


# --- busy_intervals -------------------------------------------------------------------------


def test_busy_time_is_clipped_to_the_window_merged_and_sorted(
    emulator: EmulatorClient, write_flag_on: None
) -> None:
    mirror = make_mirror(emulator)
    other = emulator.add_calendar(mirror.email, summary="Other")["id"]
    SelectedCalendar.objects.create(credential=mirror.selected().credential, calendar_id=other)
    for calendar_id, start, end in [
        (other, T0 + 8 * HOUR, T0 + 9 * HOUR),  # touches the 7:00-8:00 one, across calendars
        (mirror.email, T0 + 23 * HOUR, T0 + 25 * HOUR),  # runs past the window's end
        (mirror.email, T0 - 2 * DAY, T0 + HOUR),  # began two days before the window
        (mirror.email, T0 - HOUR, T0),  # ends where the window starts
        (mirror.email, T0 + 3 * HOUR, T0 + 5 * HOUR),
        (mirror.email, T0 + 4 * HOUR, T0 + 6 * HOUR),  # overlaps the one before
        (mirror.email, T0 + 7 * HOUR, T0 + 8 * HOUR),
        (mirror.email, T0 + DAY, T0 + DAY + HOUR),  # starts where the window ends
    ]:
        emulator.add_event(calendar_id, start=start, end=end)
    assert mirror.sync().outcome.synced and mirror.sync(other).outcome.synced

    busy = busy_intervals(user=mirror.user, start=T0, end=T0 + DAY)

    assert busy == [
        (T0, T0 + HOUR),
        (T0 + 3 * HOUR, T0 + 6 * HOUR),
        (T0 + 7 * HOUR, T0 + 9 * HOUR),
        (T0 + 23 * HOUR, T0 + DAY),
    ]
    assert busy == mirror.google_busy(T0, T0 + DAY)
    assert all(moment.tzinfo == UTC for interval in busy for moment in interval)
    # The same instants asked in another zone give the same answer.
    in_tokyo = (T0.astimezone(TOKYO), (T0 + DAY).astimezone(TOKYO))
    assert busy_intervals(user=mirror.user, start=in_tokyo[0], end=in_tokyo[1]) == busy


@pytest.mark.parametrize(("fields", "busy"), BUSY_CASES)
def test_cancelled_transparent_and_declined_events_are_free(
    calendar: SelectedCalendar, fields: dict[str, str], busy: bool
) -> None:
    store(calendar, T0 + HOUR, T0 + 2 * HOUR)
    store(calendar, T0 + timedelta(minutes=90), T0 + 3 * HOUR, **fields)
    expected = [(T0 + HOUR, T0 + 3 * HOUR)] if busy else [(T0 + HOUR, T0 + 2 * HOUR)]
    assert busy_intervals(user=calendar.credential.user, start=T0, end=T0 + DAY) == expected


def test_all_day_events_span_their_calendars_midnights(
    emulator: EmulatorClient, write_flag_on: None
) -> None:
    mirror = make_mirror(emulator, "tokyo@example.com", "Asia/Tokyo")
    emulator.add_event(mirror.email, start=date(2026, 3, 5), end=date(2026, 3, 6))
    assert mirror.sync().outcome == SyncOutcome.FULL
    tokyo_day = datetime(2026, 3, 5, tzinfo=TOKYO)
    utc_day = datetime(2026, 3, 5, tzinfo=UTC)
    ends = datetime(2026, 3, 5, 15, tzinfo=UTC)  # midnight in Tokyo

    assert busy_intervals(user=mirror.user, start=tokyo_day, end=tokyo_day + DAY) == [
        (datetime(2026, 3, 4, 15, tzinfo=UTC), ends)
    ]
    assert busy_intervals(user=mirror.user, start=utc_day, end=utc_day + DAY) == [(utc_day, ends)]


def test_only_the_users_enabled_calendars_count(calendar: SelectedCalendar) -> None:
    user = calendar.credential.user
    disabled = SelectedCalendarFactory(credential=calendar.credential, enabled=False)
    second = SelectedCalendarFactory(
        credential=CredentialFactory(user=user, account_email="second@example.com")
    )
    someone_elses = SelectedCalendarFactory()
    store(calendar, T0 + HOUR, T0 + 2 * HOUR)
    store(disabled, T0 + 3 * HOUR, T0 + 4 * HOUR)
    store(second, T0 + 5 * HOUR, T0 + 6 * HOUR)
    store(someone_elses, T0 + 7 * HOUR, T0 + 8 * HOUR)
    assert busy_intervals(user=user, start=T0, end=T0 + DAY) == [
        (T0 + HOUR, T0 + 2 * HOUR),
        (T0 + 5 * HOUR, T0 + 6 * HOUR),
    ]
    assert busy_intervals(user=user.pk, start=T0, end=T0 + DAY) == busy_intervals(
        user=user, start=T0, end=T0 + DAY
    )


def test_an_invalid_credentials_rows_still_count_but_never_cover(
    calendar: SelectedCalendar,
) -> None:
    # busy_intervals reads every enabled calendar; sync_coverage is what keeps the
    # frozen copy of a refused credential out of answers (JSON and live leave it out).
    store(calendar, T0 + HOUR, T0 + 2 * HOUR)
    synced(calendar)
    user = calendar.credential.user
    assert covered(user)
    calendar.credential.mark_invalid("invalid_grant")
    assert busy_intervals(user=user, start=T0, end=T0 + DAY) == [(T0 + HOUR, T0 + 2 * HOUR)]
    assert not covered(user)


def test_an_empty_window_is_free_and_naive_times_are_refused(calendar: SelectedCalendar) -> None:
    store(calendar, T0, T0 + DAY)
    user = calendar.credential.user
    assert busy_intervals(user=user, start=T0 + HOUR, end=T0 + HOUR) == []
    assert busy_intervals(user=user, start=T0 + HOUR, end=T0) == []
    naive = T0.replace(tzinfo=None)
    for read in (busy_intervals, sync_coverage):
        with pytest.raises(ValueError, match="start must be an aware datetime"):
            read(user=user, start=naive, end=T0 + DAY)
        with pytest.raises(ValueError, match="end must be an aware datetime"):
            read(user=user, start=T0, end=naive + DAY)


# --- sync_coverage --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "answer"),
    [
        ({}, True),
        ({"window_start": T0, "window_end": T0 + DAY}, True),  # exactly the window
        ({"window_start": T0 + timedelta(seconds=1)}, False),
        ({"window_end": T0 + DAY - timedelta(seconds=1)}, False),
        ({"window_start": None, "window_end": None}, False),
        ({"last_sync_at": None}, False),  # never completed
        ({"last_error_at": T0 - HOUR}, True),  # an older error, overcome
        ({"last_error_at": T0}, False),  # as new as the last success
        ({"last_error_at": T0 + HOUR}, False),
    ],
    ids=[
        "window-contains-it",
        "window-is-it",
        "window-starts-after",
        "window-ends-before",
        "no-window",
        "no-success",
        "older-error",
        "error-as-new",
        "newer-error",
    ],
)
def test_coverage_of_a_calendar_by_its_token(
    calendar: SelectedCalendar, fields: dict[str, Any], answer: bool
) -> None:
    synced(calendar, **fields)
    assert covered(calendar.credential.user) is answer


def test_every_enabled_calendar_needs_a_token(calendar: SelectedCalendar) -> None:
    user = calendar.credential.user
    assert not covered(user)  # no token at all
    synced(calendar)
    assert covered(user)
    second = SelectedCalendarFactory(
        credential=CredentialFactory(user=user, account_email="second@example.com")
    )
    assert not covered(user)
    second.enabled = False
    second.save()
    assert covered(user)  # a disabled calendar does not count
    calendar.enabled = False
    calendar.save()
    assert not covered(user)  # nothing enabled: nothing to answer from


def test_a_failed_sync_uncovers_until_the_next_success(
    emulator: EmulatorClient, write_flag_on: None, settings: Any
) -> None:
    mirror = make_mirror(emulator)
    window = (mirror.now, mirror.now + DAY)
    assert mirror.sync().outcome == SyncOutcome.FULL
    assert mirror.coverage(*window)
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1
    emulator.fail_next(1, status=500, path="/events")
    assert mirror.sync().outcome == SyncOutcome.FAILED
    assert mirror.token().last_error_at is not None
    assert not mirror.coverage(*window)
    assert mirror.sync().outcome.synced
    assert mirror.coverage(*window)


# --- many users, one statement --------------------------------------------------------------


def test_busy_intervals_for_users_equals_each_users_own_in_one_statement(
    calendar: SelectedCalendar, django_assert_max_num_queries: Any
) -> None:
    from django.db import connection

    other = SelectedCalendarFactory()
    free = UserFactory()
    store(calendar, T0 + HOUR, T0 + 2 * HOUR)
    store(other, T0 + 3 * HOUR, T0 + 4 * HOUR)
    users = [calendar.credential.user, other.credential.user.pk, free, calendar.credential.user]
    # SQLite: the calendars, their tokens, then bounds and rows per user, in a savepoint
    statements = 1 if connection.vendor == "postgresql" else 2 + 2 * 2 + 2
    with django_assert_max_num_queries(statements):
        together = busy_intervals_for_users(users=users, start=T0, end=T0 + DAY)
    assert list(together) == [calendar.credential.user.pk, other.credential.user.pk, free.pk]
    for user_id, busy in together.items():
        assert busy == busy_intervals(user=user_id, start=T0, end=T0 + DAY)
    assert together[free.pk] == []


def test_read_users_lists_every_calendar_with_its_coverage(calendar: SelectedCalendar) -> None:
    user = calendar.credential.user
    never = SelectedCalendarFactory(credential=calendar.credential)
    synced(calendar)
    store(calendar, T0 + HOUR, T0 + 2 * HOUR)
    store(never, T0 + 3 * HOUR, T0 + 4 * HOUR)
    read = read_users(user_ids=[user.pk], start=T0, end=T0 + DAY, readers=[user.pk])[user.pk]
    assert {(c.calendar_id, c.covered) for c in read.calendars} == {
        (calendar.calendar_id, True),
        (never.calendar_id, False),
    }
    assert read.rows == [(T0 + HOUR, T0 + 2 * HOUR)]  # only the covered calendar's
    nobody = read_users(user_ids=[user.pk], start=T0, end=T0 + DAY, readers=[])[user.pk]
    assert nobody.rows == [] and len(nobody.calendars) == 2


def test_ids_are_padded_for_the_generic_plan_without_changing_answers(
    calendar: SelectedCalendar,
) -> None:
    from calcache.availability.sql import GENERIC_PLAN_IDS, _padded

    assert _padded([]) == []
    assert _padded([7]) == [7] * GENERIC_PLAN_IDS
    assert _padded([1, 2]) == [1, 2] + [2] * (GENERIC_PLAN_IDS - 2)
    many = list(range(GENERIC_PLAN_IDS + 3))
    assert _padded(many) == many
    store(calendar, T0 + HOUR, T0 + 2 * HOUR)
    user_id = calendar.credential.user.pk
    read = read_users(user_ids=[user_id], start=T0, end=T0 + DAY)[user_id]  # every calendar
    assert len(read.calendars) == 1 and read.rows == [(T0 + HOUR, T0 + 2 * HOUR)]


def test_busy_time_comes_back_as_aware_utc_datetimes(calendar: SelectedCalendar) -> None:
    store(calendar, T0 + HOUR, T0 + 2 * HOUR)
    busy = busy_intervals(user=calendar.credential.user, start=T0, end=T0 + DAY)
    assert busy == [(T0 + HOUR, T0 + 2 * HOUR)]
    assert all(moment.utcoffset() == timedelta(0) for interval in busy for moment in interval)
    assert busy[0][0].isoformat() == "2026-03-03T01:00:00+00:00"


def test_ids_travel_as_an_array_literal_of_any_key_type() -> None:
    from calcache.availability.sql import GENERIC_PLAN_IDS, _id_array

    assert _id_array([3, 12]) == "{3,12" + ",12" * (GENERIC_PLAN_IDS - 2) + "}"
    uuid = "1d0a1e0c-59c3-4bd2-9a3e-7f7a4f8d2b11"
    assert _id_array([uuid] * GENERIC_PLAN_IDS) == "{" + ",".join([f'"{uuid}"'] * 10) + "}"
    # a text key is quoted, so commas, braces, quotes and backslashes stay inside one element
    tricky = 'a,b}"\\'
    literal = _id_array([tricky] * GENERIC_PLAN_IDS)
    assert literal.startswith('{"a,b}\\"\\\\"')


def test_a_session_outside_utc_still_gives_utc_busy_time(calendar: SelectedCalendar) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("binary timestamps in the session's time zone are PostgreSQL's")
    store(calendar, T0 + HOUR, T0 + 2 * HOUR)
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Asia/Tokyo'")
    try:
        busy = busy_intervals(user=calendar.credential.user, start=T0, end=T0 + DAY)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
    assert busy == [(T0 + HOUR, T0 + 2 * HOUR)]
    assert busy[0][0].isoformat() == "2026-03-03T01:00:00+00:00"
