"""calcache.rollout.dual_write: refresh_calendar writes a changed calendar to both caches."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from calcache.availability.json_cache import store_blob
from calcache.availability.live import busy_from_value, live_busy
from calcache.emulator import EmulatorClient
from calcache.exceptions import GoogleUnavailable
from calcache.models import CalendarCache, CalendarEvent
from calcache.rollout.dual_write import refresh_calendar
from calcache.sync.engine import SyncOutcome
from tests.calcache.sync.conftest import Mirror, make_mirror

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)


@pytest.fixture
def cached(emulator: EmulatorClient) -> Mirror:
    """A user with one event and the JSON blob of this month, as a live answer left it."""
    mirror = make_mirror(emulator)
    start = mirror.now + HOUR
    emulator.add_event(mirror.email, start=start, end=start + HOUR)
    live_busy(user=mirror.user, start=mirror.now, end=mirror.now + HOUR, keep=store_blob)
    return mirror


def blob_busy(mirror: Mirror) -> list[tuple[Any, Any]]:
    return busy_from_value(CalendarCache.objects.get().value, [mirror.email])


def add_later_event(mirror: Mirror) -> tuple[Any, Any]:
    start = mirror.now + 5 * HOUR
    mirror.emulator.add_event(mirror.email, start=start, end=start + HOUR)
    return start, start + HOUR


def test_refresh_rewrites_the_blobs_and_syncs_sql(cached: Mirror, write_flag_on: None) -> None:
    later = add_later_event(cached)
    result = refresh_calendar(cached.selected(), now=cached.now)
    assert (result.json_blobs, result.json_error) == (1, "")
    assert result.sync is not None and result.sync.outcome == SyncOutcome.FULL
    assert later in blob_busy(cached)
    cached.assert_mirrors_window()


def test_without_the_write_flag_only_the_json_side_is_written(cached: Mirror) -> None:
    later = add_later_event(cached)
    result = refresh_calendar(cached.selected(), now=cached.now)
    assert result.json_blobs == 1 and later in blob_busy(cached)
    assert result.sync is not None and result.sync.outcome == SyncOutcome.FLAG_OFF
    assert not CalendarEvent.objects.exists()


def test_with_the_json_cache_disabled_only_sql_is_written(
    cached: Mirror, write_flag_on: None, settings: Any
) -> None:
    settings.CALCACHE_JSON_CACHE_ENABLED = False
    later = add_later_event(cached)
    result = refresh_calendar(cached.selected(), now=cached.now)
    assert result.json_blobs == 0 and later not in blob_busy(cached)
    assert result.sync is not None and result.sync.outcome.synced
    cached.assert_mirrors_window()


def test_refresh_keeps_going_when_the_json_side_fails(
    cached: Mirror, emulator: EmulatorClient, settings: Any, write_flag_on: None
) -> None:
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1
    emulator.fail_next(1, status=500, path="/freeBusy")
    blob = CalendarCache.objects.get().value
    result = refresh_calendar(cached.selected(), now=cached.now)
    assert "GoogleUnavailable" in result.json_error
    assert isinstance(result.json_exception, GoogleUnavailable)
    assert result.json_blobs == 0 and CalendarCache.objects.get().value == blob
    assert result.sync is not None and result.sync.outcome.synced
    assert CalendarEvent.objects.filter(user=cached.user).exists()
