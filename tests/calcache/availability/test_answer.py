"""get_availability: which source answers, and that every source gives Google's answer."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from waffle.models import Switch

from calcache.availability.stats import stats
from calcache.emulator import EmulatorClient
from calcache.exceptions import (
    CalendarNotFound,
    GoogleError,
    GoogleUnavailable,
    LiveBudgetExceeded,
)
from calcache.models import (
    AvailabilityStat,
    CalendarCache,
    CalendarEvent,
    CalendarSyncToken,
    Credential,
    SelectedCalendar,
)
from calcache.services import connect_google_account, get_availability, get_availability_for_users
from flags.models import Flag
from flags.names import KILL_SWITCH, READ_FLAG
from tests.calcache.availability.conftest import add_hours
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.waiting import wait_for

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


# --- calendar by calendar ------------------------------------------------------------------


def second_calendar(mirror: Mirror, *hours: float) -> str:
    """Another calendar of the same account, selected, with an event at each of ``hours``."""
    calendar_id = mirror.emulator.add_calendar(mirror.email, summary="Team")["id"]
    SelectedCalendar.objects.create(
        credential=mirror.selected().credential, calendar_id=calendar_id
    )
    for hour in hours:
        begins = mirror.now + timedelta(hours=hour)
        mirror.emulator.add_event(calendar_id, start=begins, end=begins + timedelta(minutes=30))
    return calendar_id


def freebusy_items(emulator: EmulatorClient) -> list[list[str]]:
    """The calendar ids of each freeBusy call Google (the emulator) received."""
    return [
        sorted(item["id"] for item in r["body"]["items"])
        for r in emulator.requests()
        if r["path"].endswith("/freeBusy")
    ]


@pytest.fixture
def reader(busy_mirror: Mirror, settings: Any) -> Mirror:
    """Ada reads SQL; her primary calendar is synced; the JSON cache is off, so every
    uncovered calendar is asked live."""
    settings.CALCACHE_JSON_CACHE_ENABLED = False
    busy_mirror.sync()
    read_flag(True)
    busy_mirror.emulator.clear_requests()
    return busy_mirror


def test_a_never_synced_calendar_is_asked_live_and_the_rest_comes_from_sql(
    reader: Mirror,
) -> None:
    team = second_calendar(reader, 3, 30)
    result = answer(reader)
    assert result.source == "mixed"
    assert result.calendar_sources == {reader.email: "sql", team: "live"}
    assert freebusy_items(reader.emulator) == [[team]]


def test_a_calendar_whose_last_sync_failed_is_asked_live(reader: Mirror) -> None:
    team = second_calendar(reader, 5)
    reader.sync(team)
    assert answer(reader).source == "sql"
    token = reader.token(team)
    assert token.last_sync_at is not None
    CalendarSyncToken.objects.filter(pk=token.pk).update(
        last_error="boom", last_error_at=token.last_sync_at + timedelta(seconds=1)
    )
    result = answer(reader)
    assert result.calendar_sources == {reader.email: "sql", team: "live"}
    assert freebusy_items(reader.emulator) == [[team]]


def test_an_invalid_credentials_calendars_are_answered_like_uncovered_ones(
    reader: Mirror,
) -> None:
    grace = reader.emulator.add_account("grace@example.com", time_zone="UTC")
    connect_google_account(user=reader.user, token=grace)
    begins = reader.now + timedelta(hours=4)
    reader.emulator.add_event("grace@example.com", start=begins, end=begins + timedelta(hours=2))
    reader.sync("grace@example.com")
    Credential.objects.filter(account_email="grace@example.com").update(invalid=True)
    result = answer(reader)
    assert result.calendar_sources == {reader.email: "sql", "grace@example.com": "live"}
    assert freebusy_items(reader.emulator) == [["grace@example.com"]]


def test_with_the_json_cache_uncovered_calendars_come_from_their_blob(
    busy_mirror: Mirror,
) -> None:
    team = second_calendar(busy_mirror, 6)
    assert answer(busy_mirror).source == "live"  # both calendars, one blob kept
    busy_mirror.sync()
    read_flag(True)
    busy_mirror.emulator.clear_requests()
    result = answer(busy_mirror)
    assert result.calendar_sources == {busy_mirror.email: "sql", team: "json"}
    assert result.source == "mixed"
    assert freebusy_items(busy_mirror.emulator) == []


def test_a_calendar_selected_through_two_accounts_is_listed_once(reader: Mirror) -> None:
    grace = reader.emulator.add_account("grace@example.com", time_zone="UTC")
    connect_google_account(user=reader.user, token=grace, calendar_ids=[reader.email])
    result = answer(reader)
    assert result.calendar_sources == {reader.email: "sql"}
    assert freebusy_items(reader.emulator) == []


# --- many users ----------------------------------------------------------------------------


def test_many_users_equal_their_single_answers_with_one_freebusy_per_credential(
    emulator: EmulatorClient, write_flag_on: None, settings: Any
) -> None:
    settings.CALCACHE_JSON_CACHE_ENABLED = False
    mirrors = [make_mirror(emulator, f"user{n}@example.com") for n in range(3)]
    for n, mirror in enumerate(mirrors):
        add_hours(mirror, mirror.email, n + 1, 30 + n)
    mirrors[0].sync()
    mirrors[1].sync()
    read_flag(True)
    team = second_calendar(mirrors[1], 8)
    start, end = window(mirrors[0])
    emulator.clear_requests()

    together = get_availability_for_users(
        users=[m.user for m in mirrors] + [mirrors[0].user.pk], start=start, end=end
    )

    assert list(together) == [m.user.pk for m in mirrors]
    assert sorted(freebusy_items(emulator)) == sorted([["user2@example.com"], [team]])
    for mirror in mirrors:
        alone = get_availability(user=mirror.user, start=start, end=end)
        assert together[mirror.user.pk] == alone
        assert alone.busy == mirror.google_busy(start, end)
    assert [together[m.user.pk].source for m in mirrors] == ["sql", "mixed", "live"]


def test_users_given_by_id_read_sql_like_user_objects(reader: Mirror) -> None:
    start, end = window(reader)
    by_id = get_availability_for_users(users=[reader.user.pk], start=start, end=end)
    assert by_id[reader.user.pk].source == "sql"
    assert freebusy_items(reader.emulator) == []


# --- live reads: bounded and never stuck ----------------------------------------------------


def test_the_live_budget_is_per_user_and_a_minute(busy_mirror: Mirror, settings: Any) -> None:
    settings.CALCACHE_JSON_CACHE_ENABLED = False
    settings.CALCACHE_LIVE_CALLS_PER_MINUTE = 3
    for _ in range(3):
        answer(busy_mirror)
    with pytest.raises(LiveBudgetExceeded) as raised:
        answer(busy_mirror)
    assert raised.value.retry_after is not None and 0 < raised.value.retry_after <= 60
    assert len(freebusy_items(busy_mirror.emulator)) == 3
    other = make_mirror(busy_mirror.emulator, "grace@example.com")
    assert answer(other).source == "live"  # another user's budget is untouched


def test_answers_from_sql_and_json_spend_no_budget(busy_mirror: Mirror, settings: Any) -> None:
    settings.CALCACHE_LIVE_CALLS_PER_MINUTE = 1
    assert answer(busy_mirror).source == "live"
    for _ in range(3):
        assert answer(busy_mirror).source == "json"
    busy_mirror.sync()
    read_flag(True)
    for _ in range(3):
        assert answer(busy_mirror).source == "sql"


def test_a_live_read_for_a_request_is_one_attempt(busy_mirror: Mirror) -> None:
    busy_mirror.emulator.fail_next(3, status=503, path="freeBusy")
    start, end = window(busy_mirror)
    with pytest.raises(GoogleUnavailable):
        get_availability(user=busy_mirror.user, start=start, end=end)
    assert len(freebusy_items(busy_mirror.emulator)) == 1


def test_a_slow_google_is_given_up_after_the_live_timeout(
    busy_mirror: Mirror, settings: Any
) -> None:
    settings.CALCACHE_LIVE_TIMEOUT = 0.3
    busy_mirror.emulator.fail_next(1, kind="slow", delay=5, path="freeBusy")
    start, end = window(busy_mirror)
    began = time.monotonic()
    with pytest.raises(GoogleUnavailable):
        get_availability(user=busy_mirror.user, start=start, end=end)
    assert time.monotonic() - began < 4  # well below the emulator's 5 s
    # the slow call is logged once it has answered; a retry would have been logged first
    wait_for(lambda: freebusy_items(busy_mirror.emulator), timeout=15)
    assert len(freebusy_items(busy_mirror.emulator)) == 1


# --- freeBusy's per-calendar errors (inside a 200) ---------------------------------------


@pytest.mark.parametrize(
    ("error_reason", "raised"),
    [
        ("internalError", GoogleUnavailable),
        ("backendError", GoogleUnavailable),
        ("someReasonGoogleAddsLater", GoogleUnavailable),
        ("notFound", CalendarNotFound),
    ],
)
def test_a_calendar_google_could_not_read_is_never_answered_free(
    busy_mirror: Mirror, error_reason: str, raised: type[GoogleError]
) -> None:
    busy_mirror.emulator.fail_freebusy(busy_mirror.email, reason=error_reason)
    start, end = window(busy_mirror)

    with pytest.raises(raised) as caught:
        get_availability(user=busy_mirror.user, start=start, end=end)

    assert caught.value.reason == error_reason
    # The answer was kept with its errors, and the JSON cache does not answer from it:
    # the next read asks Google again and gets the busy time.
    (blob,) = CalendarCache.objects.all()
    assert blob.value["calendars"][busy_mirror.email]["errors"] == [{"reason": error_reason}]
    assert answer(busy_mirror).source == "live"


def test_one_unreadable_calendar_fails_the_whole_answer(
    busy_mirror: Mirror, emulator: EmulatorClient
) -> None:
    grace = make_mirror(emulator, "grace@example.com")
    add_hours(grace, grace.email, 3)
    emulator.fail_freebusy(grace.email, reason="internalError")
    start, end = window(busy_mirror)
    with pytest.raises(GoogleUnavailable):
        get_availability_for_users(users=[busy_mirror.user, grace.user], start=start, end=end)
    answers = get_availability_for_users(users=[busy_mirror.user, grace.user], start=start, end=end)
    assert answers[grace.user.pk].busy == grace.google_busy(start, end) != []


def test_a_selected_calendar_that_is_gone_fails_until_its_sync_disables_it(
    busy_mirror: Mirror,
) -> None:
    credential = busy_mirror.selected().credential
    SelectedCalendar.objects.create(credential=credential, calendar_id="gone@example.com")
    start, end = window(busy_mirror)
    with pytest.raises(CalendarNotFound):
        get_availability(user=busy_mirror.user, start=start, end=end)

    busy_mirror.sync("gone@example.com")  # events.list: 404, the selection is disabled

    assert not busy_mirror.selected("gone@example.com").enabled
    assert answer(busy_mirror).source == "json"  # Ada's entry of the answer kept above


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(1969, 12, 31, tzinfo=UTC), datetime(1970, 1, 2, tzinfo=UTC)),
        (datetime(2099, 12, 31, tzinfo=UTC), datetime(2100, 1, 2, tzinfo=UTC)),
        (datetime(9999, 12, 31, 22, tzinfo=UTC), datetime(9999, 12, 31, 23, tzinfo=UTC)),
    ],
)
def test_windows_outside_1970_to_2100_are_refused_before_any_work(
    busy_mirror: Mirror, start: datetime, end: datetime
) -> None:
    with pytest.raises(ValueError, match="1970 to 2100"):
        get_availability(user=busy_mirror.user, start=start, end=end)
    assert freebusy_items(busy_mirror.emulator) == []
