"""calcache.availability.json_cache: the legacy JSON cache's keys, reads and writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from calcache.availability.json_cache import (
    JSON_CACHE_TTL,
    cache_key,
    cached_busy,
    query_key,
    refresh_calendar_blobs,
    store_blob,
)
from calcache.availability.live import (
    FreeBusyQuery,
    busy_from_value,
    fetch_freebusy,
    live_busy,
    user_queries,
)
from calcache.emulator import EmulatorClient
from calcache.intervals import Interval
from calcache.models import CalendarCache, SelectedCalendar
from tests.calcache.availability.conftest import HOUR, add_hours, freebusy_requests
from tests.calcache.sync.conftest import Mirror
from tests.factories import SelectedCalendarFactory

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def keep_blobs(mirror: Mirror, start: datetime, end: datetime) -> list[Interval]:
    """Ask Google live and store each widened answer, as a JSON-cache miss does."""
    return live_busy(user=mirror.user, start=start, end=end, keep=store_blob)


def select_another_calendar(mirror: Mirror) -> SelectedCalendar:
    calendar_id = mirror.emulator.add_calendar(mirror.email, summary="Other")["id"]
    return SelectedCalendar.objects.create(
        credential=mirror.selected().credential, calendar_id=calendar_id
    )


def blob_from(month: int) -> CalendarCache:
    """The 2026 blob whose months start with ``month``."""
    return CalendarCache.objects.get(key__contains=f'"timeMin":"2026-{month:02d}-01T')


def test_cache_key_is_the_canonical_json_of_the_query() -> None:
    helsinki = ZoneInfo("Europe/Helsinki")
    key = cache_key(
        ["b@example.com", "a@example.com"],
        datetime(2026, 3, 1, 2, tzinfo=helsinki),  # midnight UTC
        utc(2026, 4, 1),
    )
    assert key == (
        '{"items":["a@example.com","b@example.com"],'
        '"timeMax":"2026-04-01T00:00:00Z","timeMin":"2026-03-01T00:00:00Z"}'
    )
    assert cache_key(["a@example.com", "b@example.com"], utc(2026, 3, 1), utc(2026, 4, 1)) == key


def test_a_blob_answers_any_window_inside_its_months(ada: Mirror, emulator: EmulatorClient) -> None:
    keep_blobs(ada, utc(2026, 2, 20), utc(2026, 3, 10))  # widened to February and March
    assert CalendarCache.objects.count() == 1
    asked = len(freebusy_requests(emulator))
    week = (utc(2026, 3, 2), utc(2026, 3, 9))
    expected = ada.google_busy(*week)
    add_hours(ada, ada.email, 4)  # Google changes; the blob is what answers

    assert cached_busy(user=ada.user, start=week[0], end=week[1]) == expected
    assert len(expected) == 3
    assert cached_busy(user=ada.user, start=utc(2026, 2, 1), end=utc(2026, 4, 1)) == expected
    assert cached_busy(user=ada.user, start=utc(2026, 3, 31), end=utc(2026, 4, 2)) is None
    assert cached_busy(user=ada.user, start=utc(2026, 1, 31), end=utc(2026, 2, 2)) is None
    assert len(freebusy_requests(emulator)) == asked


def test_a_blob_of_other_calendars_does_not_answer(ada: Mirror) -> None:
    keep_blobs(ada, ada.now, ada.now + DAY)
    assert cached_busy(user=ada.user, start=ada.now, end=ada.now + DAY) is not None
    select_another_calendar(ada)
    assert cached_busy(user=ada.user, start=ada.now, end=ada.now + DAY) is None


def test_expired_blobs_are_ignored(ada: Mirror) -> None:
    window = (ada.now, ada.now + 7 * DAY)
    keep_blobs(ada, *window)
    CalendarCache.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert cached_busy(user=ada.user, start=window[0], end=window[1]) is None
    CalendarCache.objects.update(expires_at=timezone.now() + DAY)
    assert cached_busy(user=ada.user, start=window[0], end=window[1]) == ada.google_busy(*window)


def test_a_missing_blob_for_one_credential_is_no_answer(two_accounts: Mirror) -> None:
    window = (two_accounts.now, two_accounts.now + 7 * DAY)
    first, second = user_queries(user=two_accounts.user, start=window[0], end=window[1])
    store_blob(first, fetch_freebusy(first))
    assert cached_busy(user=two_accounts.user, start=window[0], end=window[1]) is None
    store_blob(second, fetch_freebusy(second))
    busy = cached_busy(user=two_accounts.user, start=window[0], end=window[1])
    assert busy == two_accounts.google_busy(*window)  # both accounts, merged


@pytest.mark.parametrize("error_reason", ["notFound", "backendError"])
def test_a_blob_with_a_calendar_google_could_not_read_is_no_answer(
    ada: Mirror, emulator: EmulatorClient, error_reason: str
) -> None:
    window = (ada.now, ada.now + 7 * DAY)
    (query,) = user_queries(user=ada.user, start=window[0], end=window[1])
    emulator.fail_freebusy(ada.email, reason=error_reason)
    store_blob(query, fetch_freebusy(query))  # kept with the calendar's errors
    assert cached_busy(user=ada.user, start=window[0], end=window[1]) is None
    store_blob(query, fetch_freebusy(query))
    assert cached_busy(user=ada.user, start=window[0], end=window[1]) == ada.google_busy(*window)


def test_a_user_without_calendars_has_no_cached_answer(user: Any) -> None:
    assert cached_busy(user=user, start=utc(2026, 3, 2), end=utc(2026, 3, 3)) is None


def test_store_blob_upserts_with_the_90_day_ttl() -> None:
    selected = SelectedCalendarFactory()
    query = FreeBusyQuery(
        credential=selected.credential,
        calendar_ids=[selected.calendar_id],
        time_min=utc(2026, 3, 1),
        time_max=utc(2026, 4, 1),
    )
    assert JSON_CACHE_TTL.days == 90
    before = timezone.now()
    store_blob(query, {"kind": "calendar#freeBusy", "calendars": {}})
    stored = CalendarCache.objects.get()
    assert (stored.credential, stored.key) == (selected.credential, query_key(query))
    assert query_key(query) == cache_key(query.calendar_ids, query.time_min, query.time_max)
    assert before + JSON_CACHE_TTL <= stored.expires_at <= timezone.now() + JSON_CACHE_TTL

    CalendarCache.objects.update(expires_at=before)
    value = {
        "kind": "calendar#freeBusy",
        "calendars": {
            selected.calendar_id: {
                "busy": [{"start": "2026-03-02T09:00:00Z", "end": "2026-03-02T10:00:00Z"}]
            }
        },
    }
    again = timezone.now()
    store_blob(query, value)
    updated = CalendarCache.objects.get()
    assert updated.pk == stored.pk and updated.value == value
    assert updated.expires_at >= again + JSON_CACHE_TTL


def test_refresh_calendar_blobs_rewrites_only_the_blobs_that_include_the_calendar(
    ada: Mirror,
) -> None:
    keep_blobs(ada, utc(2026, 3, 2), utc(2026, 3, 9))  # March, ada's calendar alone
    other = select_another_calendar(ada)
    keep_blobs(ada, utc(2026, 4, 2), utc(2026, 4, 9))  # April, both calendars
    keep_blobs(ada, utc(2026, 6, 2), utc(2026, 6, 9))  # June, both calendars, expired:
    CalendarCache.objects.filter(pk=blob_from(6).pk).update(expires_at=timezone.now() - DAY)
    before = {row.pk: row.value for row in CalendarCache.objects.all()}
    april_event = datetime(2026, 4, 3, 9, tzinfo=UTC)
    ada.emulator.add_event(other.calendar_id, start=april_event, end=april_event + HOUR)

    assert refresh_calendar_blobs(other) == 1

    april = blob_from(4)
    assert busy_from_value(april.value, [other.calendar_id]) == [(april_event, april_event + HOUR)]
    unchanged = {row.pk: row.value for row in CalendarCache.objects.exclude(pk=april.pk)}
    assert unchanged == {pk: value for pk, value in before.items() if pk != april.pk}
    assert len(unchanged) == 2
    assert refresh_calendar_blobs(ada.selected()) == 2  # March and April, not expired June


def test_a_refresh_keeps_each_blobs_expiry(ada: Mirror) -> None:
    keep_blobs(ada, utc(2026, 3, 2), utc(2026, 3, 9))
    soon = timezone.now() + DAY
    CalendarCache.objects.update(expires_at=soon)

    assert refresh_calendar_blobs(ada.selected()) == 1

    assert CalendarCache.objects.get().expires_at == soon


@pytest.mark.parametrize(
    "key", ["not json", "[1, 2]", '{"items": ["x"]}', '{"timeMin": 5, "items": null}']
)
def test_keys_not_in_our_form_are_skipped_by_reads_and_refreshes(ada: Mirror, key: str) -> None:
    credential = ada.selected().credential
    CalendarCache.objects.create(
        credential=credential, key=key, value={}, expires_at=timezone.now() + DAY
    )
    keep_blobs(ada, utc(2026, 3, 2), utc(2026, 3, 9))

    assert refresh_calendar_blobs(ada.selected()) == 1
    assert cached_busy(user=ada.user, start=utc(2026, 3, 3), end=utc(2026, 3, 4)) is not None
