"""get_availability: which source answers, and that every source gives Google's answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from waffle.models import Switch

from calcache.availability.stats import stats
from calcache.emulator import EmulatorClient
from calcache.models import AvailabilityStat, CalendarCache, CalendarEvent
from calcache.services import get_availability
from flags.models import Flag
from flags.names import KILL_SWITCH, READ_FLAG
from tests.calcache.sync.conftest import Mirror, make_mirror

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_sampling(settings: Any) -> None:
    settings.CALCACHE_SHADOW_SAMPLE_RATE = 0  # test_shadow.py samples on purpose


@pytest.fixture
def busy_mirror(emulator: EmulatorClient, write_flag_on: None) -> Mirror:
    mirror = make_mirror(emulator)
    for day in range(3):
        start = mirror.now + timedelta(days=day, hours=2)
        mirror.emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=1))
    return mirror


def window(mirror: Mirror) -> tuple[Any, Any]:
    return mirror.now, mirror.now + timedelta(days=7)


def read_flag(on: bool) -> None:
    flag = Flag.objects.get(name=READ_FLAG)
    flag.everyone = True if on else None
    flag.save()


def answer(mirror: Mirror) -> Any:
    start, end = window(mirror)
    result = get_availability(user=mirror.user, start=start, end=end)
    assert result.busy == mirror.google_busy(start, end)
    return result


def test_flags_off_answers_live_then_from_the_json_cache(busy_mirror: Mirror) -> None:
    assert answer(busy_mirror).source == "live"
    assert CalendarCache.objects.count() == 1
    assert answer(busy_mirror).source == "json"
    assert not CalendarEvent.objects.exists()


def test_read_flag_with_a_synced_calendar_answers_from_sql(busy_mirror: Mirror) -> None:
    busy_mirror.sync()
    read_flag(True)
    assert answer(busy_mirror).source == "sql"


def test_kill_switch_beats_the_read_flag(busy_mirror: Mirror) -> None:
    busy_mirror.sync()
    read_flag(True)
    Switch.objects.update_or_create(name=KILL_SWITCH, defaults={"active": True})
    assert answer(busy_mirror).source == "live"


def test_uncovered_windows_are_not_answered_from_sql(busy_mirror: Mirror) -> None:
    read_flag(True)
    assert answer(busy_mirror).source == "live"  # never synced
    busy_mirror.sync()
    start = busy_mirror.now + timedelta(days=170)
    result = get_availability(user=busy_mirror.user, start=start, end=start + timedelta(days=30))
    assert result.source != "sql"  # beyond the synced horizon


def test_a_failed_last_sync_sends_readers_elsewhere(
    busy_mirror: Mirror, emulator: EmulatorClient, settings: Any
) -> None:
    busy_mirror.sync()
    read_flag(True)
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1
    emulator.fail_next(1, status=500, path="/events")
    busy_mirror.sync()
    assert answer(busy_mirror).source == "live"


def test_sql_error_falls_back_and_is_counted(busy_mirror: Mirror) -> None:
    busy_mirror.sync()
    read_flag(True)
    assert answer(busy_mirror).source == "sql"
    assert not CalendarCache.objects.exists()
    # A real database error in the read path (the table is gone), inside the test's
    # transaction: the answer must still come, from the next source.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE calcache_calendarevent RENAME TO calcache_calendarevent_gone")
    assert answer(busy_mirror).source == "live"
    assert answer(busy_mirror).source == "json"
    stats.flush()
    sql = AvailabilityStat.objects.get(source="sql")
    assert sql.errors == 2 and sql.requests == 3


def test_json_cache_disabled_never_reads_or_writes_blobs(
    busy_mirror: Mirror, settings: Any
) -> None:
    settings.CALCACHE_JSON_CACHE_ENABLED = False
    assert answer(busy_mirror).source == "live"
    assert answer(busy_mirror).source == "live"
    assert not CalendarCache.objects.exists()


def test_stats_are_aggregated_per_minute_and_source(busy_mirror: Mirror) -> None:
    for _ in range(3):
        answer(busy_mirror)
    stats.flush()
    rows = {row.source: row for row in AvailabilityStat.objects.all()}
    assert rows["live"].requests == 1 and rows["json"].requests == 2
    assert rows["json"].mean_ms > 0 and rows["json"].max_ms >= rows["json"].mean_ms


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("naive", "aware", "start must be an aware datetime"),
        ("aware", "aware-earlier", "end must be after start"),
    ],
)
def test_bad_windows_raise_value_error(
    busy_mirror: Mirror, start: str, end: str, message: str
) -> None:
    aware = busy_mirror.now
    values = {
        "naive": aware.replace(tzinfo=None),
        "aware": aware,
        "aware-earlier": aware - timedelta(hours=1),
    }
    with pytest.raises(ValueError, match=message):
        get_availability(user=busy_mirror.user, start=values[start], end=values[end])
