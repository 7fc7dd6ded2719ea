"""Every lesson of docs/google-calendar.md#lessons-from-a-production-peer and the sync's
error handling, as named regression tests.

Each test drives the real sync (google-api-python-client over HTTP) against the
bundled emulator and compares ``busy_intervals`` (SQL alone) with the emulator's
freeBusy (``mirror.assert_mirrors``), and/or asserts the rows themselves.
The mirror's calendar is Europe/London; ``mirror.now`` is 2026-03-02 12:00 UTC and
the synced window is [now - 30 days, now + 180 days] (the default settings).
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from calcache.emulator import EmulatorClient
from calcache.emulator.server import EmulatorServer
from calcache.models import CalendarEvent, CalendarSyncToken, Credential, SelectedCalendar
from calcache.selectors import busy_intervals, sync_coverage
from calcache.sync import engine
from calcache.sync.engine import ROLL_FORWARD_STEP, SyncOutcome
from tests.calcache.sync.conftest import Mirror, force_page_size, make_mirror
from tests.factories import CalendarEventFactory
from tests.markers import committing

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def add(mirror: Mirror, start: datetime, end: datetime, **fields: Any) -> str:
    return str(mirror.emulator.add_event(mirror.email, start=start, end=end, **fields)["id"])


def first_sync(mirror: Mirror) -> None:
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL, result
    mirror.assert_mirrors_window()


def incremental(mirror: Mirror) -> Any:
    result = mirror.sync()
    assert result.outcome == SyncOutcome.INCREMENTAL, result
    mirror.assert_mirrors_window()
    return result


def weekly(mirror: Mirror, start_local: datetime, *, count: int, minutes: int = 60) -> str:
    """A weekly series (COUNT) at ``start_local``'s wall time in Europe/London."""
    tz = "Europe/London"
    return add(
        mirror,
        start_local,
        start_local + timedelta(minutes=minutes),
        time_zone=tz,
        recurrence=[f"RRULE:FREQ=WEEKLY;COUNT={count}"],
    )


# --- the sync window -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "moved_to",
    [timedelta(days=200), timedelta(days=-60)],
    ids=["past-window-end", "before-window-start"],
)
def test_event_moved_out_of_the_window_disappears(mirror: Mirror, moved_to: timedelta) -> None:
    start = mirror.now + DAY
    event_id = add(mirror, start, start + HOUR)
    first_sync(mirror)
    assert mirror.sql_busy(start, start + HOUR) == [(start, start + HOUR)]

    mirror.emulator.patch_event(
        mirror.email, event_id, start=mirror.now + moved_to, end=mirror.now + moved_to + HOUR
    )
    incremental(mirror)
    # No phantom busy block where the event used to be.
    assert mirror.sql_busy(start - DAY, start + DAY) == []
    window_start, window_end = mirror.synced_window()
    assert mirror.sql_busy(window_start, window_end) == []


def test_event_moved_out_of_the_window_while_the_token_was_void(mirror: Mirror) -> None:
    start = mirror.now + DAY
    event_id = add(mirror, start, start + HOUR)
    first_sync(mirror)
    mirror.emulator.patch_event(
        mirror.email, event_id, start=mirror.now + 200 * DAY, end=mirror.now + 200 * DAY + HOUR
    )
    mirror.emulator.invalidate_sync_tokens()
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL
    assert result.deleted == 1
    assert mirror.row_ids() == set()
    mirror.assert_mirrors_window()


def test_event_moved_within_the_window_moves(mirror: Mirror) -> None:
    start = mirror.now + DAY
    event_id = add(mirror, start, start + HOUR)
    keep = add(mirror, mirror.now + 3 * DAY, mirror.now + 3 * DAY + HOUR)
    first_sync(mirror)
    new_start = mirror.now + 10 * DAY + 30 * timedelta(minutes=1)
    mirror.emulator.patch_event(mirror.email, event_id, start=new_start, end=new_start + 2 * HOUR)
    result = incremental(mirror)
    assert result.upserted == 1
    assert mirror.sql_busy(start, start + HOUR) == []
    assert mirror.sql_busy(new_start - DAY, new_start + DAY) == [(new_start, new_start + 2 * HOUR)]
    row = mirror.rows().get(google_event_id=event_id)
    assert (row.start_time, row.end_time) == (new_start, new_start + 2 * HOUR)
    assert mirror.row_ids() == {event_id, keep}


def test_incremental_update_keeps_the_other_events(mirror: Mirror) -> None:
    """Cal.com overwrote a cached freebusy blob with a partial update: busy people looked
    free. Here an incremental change touches one row and leaves the others alone."""
    ids = [add(mirror, mirror.now + n * DAY, mirror.now + n * DAY + HOUR) for n in range(1, 6)]
    first_sync(mirror)
    mirror.emulator.patch_event(mirror.email, ids[0], summary="renamed")
    result = incremental(mirror)
    assert (result.upserted, result.deleted) == (1, 0)
    assert mirror.row_ids() == set(ids)


def test_deleted_event_frees_its_slot_incrementally(mirror: Mirror) -> None:
    start = mirror.now + 2 * DAY
    event_id = add(mirror, start, start + HOUR)
    other = add(mirror, start + 2 * HOUR, start + 3 * HOUR)
    first_sync(mirror)
    mirror.emulator.delete_event(mirror.email, event_id)
    result = incremental(mirror)
    assert result.deleted == 1
    assert mirror.row_ids() == {other}
    assert mirror.sql_busy(start, start + HOUR) == []


@pytest.mark.parametrize("advance", [2 * HOUR, 3 * DAY], ids=["hours", "days"])
def test_event_beyond_the_window_appears_after_roll_forward(
    mirror: Mirror, advance: timedelta
) -> None:
    """Cal.com fixed the window at the first full sync: an event that exists, unchanged,
    beyond its end was never fetched when the window later covered it."""
    assert advance >= ROLL_FORWARD_STEP
    first_window_end = mirror.now + timedelta(days=180)
    # Beyond the first window: starts 30 minutes after it, and one starting exactly at it.
    later = mirror.emulator.add_event(
        mirror.email,
        start=first_window_end + 30 * timedelta(minutes=1),
        end=first_window_end + HOUR,
    )
    at_edge = mirror.emulator.add_event(
        mirror.email, start=first_window_end, end=first_window_end + 15 * timedelta(minutes=1)
    )
    first_sync(mirror)
    assert mirror.synced_window()[1] == first_window_end
    assert mirror.row_ids() == set()
    assert not mirror.coverage(mirror.now, first_window_end + HOUR)

    mirror.advance(advance)
    mirror.emulator.clear_requests()
    result = mirror.sync()
    assert result.outcome == SyncOutcome.INCREMENTAL, result
    assert result.rolled_forward
    # The new slice was listed: from the old window end to the new one.
    slices = [
        (
            datetime.fromisoformat(r["query"]["timeMin"]),
            datetime.fromisoformat(r["query"]["timeMax"]),
        )
        for r in mirror.emulator.requests()
        if r["path"].endswith("/events") and "timeMin" in r["query"]
    ]
    assert slices == [(first_window_end, mirror.now + timedelta(days=180))]
    assert mirror.row_ids() == {later["id"], at_edge["id"]}
    # Fetched as they were created: nothing touched them in Google.
    assert set(mirror.rows().values_list("etag", flat=True)) == {later["etag"], at_edge["etag"]}
    token = mirror.token()
    assert token.window_end == mirror.now + timedelta(days=180)
    assert mirror.coverage(mirror.now, token.window_end)
    mirror.assert_mirrors_window()


def test_no_roll_forward_below_the_step(mirror: Mirror) -> None:
    first_sync(mirror)
    window_end = mirror.synced_window()[1]
    mirror.advance(ROLL_FORWARD_STEP / 2)
    result = mirror.sync()
    assert result.outcome == SyncOutcome.INCREMENTAL
    assert not result.rolled_forward
    assert mirror.synced_window()[1] == window_end


def test_multi_day_event_that_started_before_the_window_is_busy_inside_it(
    mirror: Mirror,
) -> None:
    """Cal.com filtered on start instead of end and dropped these."""
    long_ago = add(mirror, mirror.now - 40 * DAY, mirror.now + 2 * DAY)  # before window_start
    since_friday = add(mirror, mirror.now - 3 * DAY, mirror.now + 3 * DAY)
    first_sync(mirror)
    assert mirror.row_ids() == {long_ago, since_friday}
    window_start, _ = mirror.synced_window()
    assert mirror.sql_busy(window_start, window_start + HOUR) == [
        (window_start, window_start + HOUR)
    ]
    # Small windows far from the events' starts (the longest-event bound at work).
    for offset in (0, 1, 2):
        start = mirror.now + offset * DAY
        mirror.assert_mirrors(start, start + HOUR)
    # Added later, through an incremental sync.
    added = add(mirror, mirror.now - 20 * DAY, mirror.now + 20 * DAY)
    incremental(mirror)
    assert added in mirror.row_ids()
    mirror.assert_mirrors(mirror.now + 10 * DAY, mirror.now + 10 * DAY + HOUR)


# --- all-day events and time zones -------------------------------------------------------


@pytest.mark.parametrize(
    ("time_zone", "day", "end_day", "start_utc", "end_utc"),
    [
        # PST (UTC-8) before the US change on 2026-03-08
        ("America/Los_Angeles", "2026-03-05", "2026-03-06", utc(2026, 3, 5, 8), utc(2026, 3, 6, 8)),
        # the DST day itself is 23 hours long: midnight PST to midnight PDT
        ("America/Los_Angeles", "2026-03-08", "2026-03-09", utc(2026, 3, 8, 8), utc(2026, 3, 9, 7)),
        # three days across the change
        (
            "America/Los_Angeles",
            "2026-03-07",
            "2026-03-10",
            utc(2026, 3, 7, 8),
            utc(2026, 3, 10, 7),
        ),
        ("Asia/Tokyo", "2026-03-05", "2026-03-06", utc(2026, 3, 4, 15), utc(2026, 3, 5, 15)),
        ("Asia/Tokyo", "2026-03-08", "2026-03-09", utc(2026, 3, 7, 15), utc(2026, 3, 8, 15)),
    ],
)
def test_all_day_event_spans_midnight_to_midnight_in_the_calendar_zone(
    emulator: EmulatorClient,
    write_flag_on: None,
    time_zone: str,
    day: str,
    end_day: str,
    start_utc: datetime,
    end_utc: datetime,
) -> None:
    mirror = make_mirror(emulator, "zoned@example.com", time_zone)
    event_id = str(emulator.add_event(mirror.email, start=day, end=end_day)["id"])
    first_sync(mirror)
    row = mirror.rows().get(google_event_id=event_id)
    assert row.is_all_day
    assert (row.start_time, row.end_time) == (start_utc, end_utc)
    assert mirror.selected().time_zone == time_zone
    assert mirror.sql_busy(start_utc - DAY, end_utc + DAY) == [(start_utc, end_utc)]
    mirror.assert_mirrors(start_utc - DAY, end_utc + DAY)


def test_all_day_events_of_two_zones_for_one_user(
    emulator: EmulatorClient, write_flag_on: None
) -> None:
    """One user, a Los Angeles calendar and a Tokyo calendar: each all-day event starts at
    its own calendar's midnight."""
    mirror = make_mirror(emulator, "la@example.com", "America/Los_Angeles")
    tokyo = emulator.add_calendar(mirror.email, summary="Tokyo", time_zone="Asia/Tokyo")["id"]
    SelectedCalendar.objects.create(
        credential=mirror.selected().credential, calendar_id=tokyo, time_zone="UTC"
    )
    emulator.add_event(mirror.email, start=date(2026, 3, 8), end=date(2026, 3, 9))
    emulator.add_event(tokyo, start=date(2026, 3, 10), end=date(2026, 3, 11))
    assert mirror.sync().outcome == SyncOutcome.FULL
    assert mirror.sync(tokyo).outcome == SyncOutcome.FULL
    assert SelectedCalendar.objects.get(calendar_id=tokyo).time_zone == "Asia/Tokyo"
    window = (utc(2026, 3, 6), utc(2026, 3, 11))
    assert mirror.sql_busy(*window) == [
        (utc(2026, 3, 8, 8), utc(2026, 3, 9, 7)),  # Los Angeles, the 23-hour DST day
        (utc(2026, 3, 9, 15), utc(2026, 3, 10, 15)),  # Tokyo
    ]
    mirror.assert_mirrors(*window)


# --- busy or free --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "busy"),
    [
        ({}, True),
        ({"status": "tentative"}, True),
        ({"transparency": "transparent"}, False),
        ({"transparency": "opaque"}, True),
        ({"attendees": [{"email": "ada@example.com", "responseStatus": "declined"}]}, False),
        ({"attendees": [{"email": "ada@example.com", "responseStatus": "tentative"}]}, True),
        ({"attendees": [{"email": "ada@example.com", "responseStatus": "needsAction"}]}, True),
        ({"attendees": [{"email": "ada@example.com", "responseStatus": "accepted"}]}, True),
        # someone else declining does not free the owner
        (
            {
                "attendees": [
                    {"email": "bob@example.com", "responseStatus": "declined"},
                    {"email": "ada@example.com", "responseStatus": "accepted"},
                ]
            },
            True,
        ),
    ],
    ids=[
        "confirmed",
        "tentative",
        "transparent",
        "opaque",
        "declined",
        "answered-tentative",
        "needs-action",
        "accepted",
        "other-declined",
    ],
)
def test_busy_or_free(mirror: Mirror, fields: dict[str, Any], busy: bool) -> None:
    start = mirror.now + DAY
    event_id = add(mirror, start, start + HOUR, **fields)
    first_sync(mirror)
    assert mirror.row_ids() == {event_id}  # stored either way; busy_intervals decides
    assert mirror.sql_busy(start - DAY, start + DAY) == ([(start, start + HOUR)] if busy else [])


def test_declined_invitation_is_free_and_stored_as_such(mirror: Mirror) -> None:
    start = mirror.now + DAY
    event_id = add(
        mirror,
        start,
        start + HOUR,
        attendees=[
            {"email": "bob@example.com", "responseStatus": "accepted", "organizer": True},
            {"email": mirror.email, "responseStatus": "declined"},
        ],
    )
    first_sync(mirror)
    row = mirror.rows().get(google_event_id=event_id)
    assert row.self_response_status == "declined"
    assert not row.is_busy
    assert mirror.sql_busy(start, start + HOUR) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"transparency": "opaque"}, {"transparency": "transparent"}),
        ({"transparency": "transparent"}, {"transparency": "opaque"}),
        (
            {"attendees": [{"email": "ada@example.com", "responseStatus": "accepted"}]},
            {"attendees": [{"email": "ada@example.com", "responseStatus": "declined"}]},
        ),
        (
            {"attendees": [{"email": "ada@example.com", "responseStatus": "declined"}]},
            {"attendees": [{"email": "ada@example.com", "responseStatus": "accepted"}]},
        ),
        ({"status": "tentative"}, {"status": "confirmed"}),
    ],
    ids=["becomes-transparent", "becomes-opaque", "declined-later", "accepted-later", "confirmed"],
)
def test_busy_changes_are_mirrored_incrementally(
    mirror: Mirror, before: dict[str, Any], after: dict[str, Any]
) -> None:
    start = mirror.now + DAY
    event_id = add(mirror, start, start + HOUR, **before)
    first_sync(mirror)
    mirror.emulator.patch_event(mirror.email, event_id, **after)
    incremental(mirror)


# --- recurring events -----------------------------------------------------------------------

# Tuesdays at 10:00 London: 3, 10, 17, 24 March (GMT) and 31 March (BST, 09:00 UTC).
SERIES_START = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
SERIES_INSTANCES = [
    utc(2026, 3, 3, 10),
    utc(2026, 3, 10, 10),
    utc(2026, 3, 17, 10),
    utc(2026, 3, 24, 10),
    utc(2026, 3, 31, 9),
]


def instance_id(parent: str, start: datetime) -> str:
    return f"{parent}_{start.strftime('%Y%m%dT%H%M%SZ')}"


def test_recurring_series_is_stored_as_instances(mirror: Mirror) -> None:
    parent = weekly(mirror, SERIES_START, count=5)
    first_sync(mirror)
    assert mirror.row_ids() == {instance_id(parent, s) for s in SERIES_INSTANCES}
    starts = sorted(mirror.rows().values_list("start_time", flat=True))
    assert starts == SERIES_INSTANCES
    assert set(mirror.rows().values_list("recurring_event_id", flat=True)) == {parent}


@pytest.mark.parametrize("how", ["delete", "patch-cancelled"])
def test_cancelled_instance_frees_its_slot_and_the_others_stay(mirror: Mirror, how: str) -> None:
    parent = weekly(mirror, SERIES_START, count=5)
    first_sync(mirror)
    gone = instance_id(parent, SERIES_INSTANCES[1])
    if how == "delete":
        mirror.emulator.delete_event(mirror.email, gone)
    else:
        mirror.emulator.patch_event(mirror.email, gone, status="cancelled")
    result = incremental(mirror)
    assert result.deleted == 1
    assert mirror.row_ids() == {
        instance_id(parent, s) for s in SERIES_INSTANCES if s != SERIES_INSTANCES[1]
    }
    assert mirror.sql_busy(SERIES_INSTANCES[1], SERIES_INSTANCES[1] + HOUR) == []
    assert mirror.sql_busy(SERIES_INSTANCES[2], SERIES_INSTANCES[2] + HOUR) != []


def test_moved_instance_moves_alone(mirror: Mirror) -> None:
    parent = weekly(mirror, SERIES_START, count=5)
    first_sync(mirror)
    moved = instance_id(parent, SERIES_INSTANCES[2])
    new_start = SERIES_INSTANCES[2] + DAY + 3 * HOUR
    mirror.emulator.patch_event(mirror.email, moved, start=new_start, end=new_start + HOUR)
    incremental(mirror)
    row = mirror.rows().get(google_event_id=moved)
    assert row.start_time == new_start
    assert mirror.rows().count() == 5


def test_deleting_a_whole_series_frees_all_its_instances(mirror: Mirror) -> None:
    parent = weekly(mirror, SERIES_START, count=5)
    single = add(mirror, mirror.now + 2 * DAY, mirror.now + 2 * DAY + HOUR)
    first_sync(mirror)
    mirror.emulator.delete_event(mirror.email, instance_id(parent, SERIES_INSTANCES[0]))
    incremental(mirror)
    mirror.emulator.delete_event(mirror.email, parent)
    result = incremental(mirror)
    assert result.deleted == 4
    assert mirror.row_ids() == {single}


def test_editing_a_series_time_moves_all_its_instances(mirror: Mirror) -> None:
    parent = weekly(mirror, SERIES_START, count=5)
    first_sync(mirror)
    # 10:00 -> 14:30 London, 90 minutes
    new_start = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
    mirror.emulator.patch_event(
        mirror.email,
        parent,
        start=new_start,
        end=new_start + timedelta(minutes=90),
        time_zone="Europe/London",
    )
    incremental(mirror)
    expected = [s + timedelta(hours=4, minutes=30) for s in SERIES_INSTANCES]
    assert mirror.row_ids() == {instance_id(parent, s) for s in expected}
    rows = sorted(mirror.rows().values_list("start_time", "end_time"))
    assert rows == [(s, s + timedelta(minutes=90)) for s in expected]
    for old in SERIES_INSTANCES:
        assert mirror.sql_busy(old, old + HOUR) == []


def test_editing_a_series_duration_keeps_its_instances(mirror: Mirror) -> None:
    parent = weekly(mirror, SERIES_START, count=5)
    first_sync(mirror)
    ids = mirror.row_ids()
    mirror.emulator.patch_event(
        mirror.email,
        parent,
        start=SERIES_START,
        end=SERIES_START + 3 * HOUR,
        time_zone="Europe/London",
    )
    incremental(mirror)
    assert mirror.row_ids() == ids
    assert {e - s for s, e in mirror.rows().values_list("start_time", "end_time")} == {3 * HOUR}


def test_shortening_a_series_frees_the_dropped_instances(mirror: Mirror) -> None:
    parent = weekly(mirror, SERIES_START, count=5)
    first_sync(mirror)
    mirror.emulator.patch_event(mirror.email, parent, recurrence=["RRULE:FREQ=WEEKLY;COUNT=2"])
    incremental(mirror)
    assert mirror.row_ids() == {instance_id(parent, s) for s in SERIES_INSTANCES[:2]}


def test_all_day_series_in_los_angeles_across_dst(
    emulator: EmulatorClient, write_flag_on: None
) -> None:
    mirror = make_mirror(emulator, "la@example.com", "America/Los_Angeles")
    parent = str(
        emulator.add_event(
            mirror.email,
            start=date(2026, 3, 1),
            end=date(2026, 3, 2),
            recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"],
        )["id"]
    )
    first_sync(mirror)
    rows = sorted(mirror.rows().values_list("google_event_id", "start_time", "end_time"))
    assert rows == [
        (f"{parent}_20260301", utc(2026, 3, 1, 8), utc(2026, 3, 2, 8)),
        (f"{parent}_20260308", utc(2026, 3, 8, 8), utc(2026, 3, 9, 7)),
        (f"{parent}_20260315", utc(2026, 3, 15, 7), utc(2026, 3, 16, 7)),
    ]


# --- 410, 400 and full syncs ---------------------------------------------------------------


def test_410_full_sync_removes_stale_rows(mirror: Mirror) -> None:
    ids = [add(mirror, mirror.now + n * DAY, mirror.now + n * DAY + HOUR) for n in range(1, 4)]
    first_sync(mirror)
    mirror.emulator.delete_event(mirror.email, ids[0])
    mirror.emulator.invalidate_sync_tokens()
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL, result
    assert "410" in result.full_reason
    assert result.deleted == 1
    assert mirror.row_ids() == set(ids[1:])
    mirror.assert_mirrors_window()
    # ...and the token it stored works.
    assert mirror.sync().outcome == SyncOutcome.INCREMENTAL


def test_purged_tombstones_410_then_full_sync(mirror: Mirror) -> None:
    ids = [add(mirror, mirror.now + n * DAY, mirror.now + n * DAY + HOUR) for n in range(1, 4)]
    first_sync(mirror)
    mirror.emulator.delete_event(mirror.email, ids[1])
    mirror.emulator.purge_tombstones()  # the cancelled entry is gone for good
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL
    assert mirror.row_ids() == {ids[0], ids[2]}
    mirror.assert_mirrors_window()


def test_forced_full_sync_removes_phantom_rows(mirror: Mirror) -> None:
    """Cal.com users had no way to force a re-sync: ``full=True`` rebuilds the copy."""
    keep = add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR)
    first_sync(mirror)
    selected = mirror.selected()
    phantom_start = mirror.now + 2 * DAY
    CalendarEventFactory(
        credential=selected.credential,
        calendar_id=selected.calendar_id,
        google_event_id="phantom0001",
        start_time=phantom_start,
        end_time=phantom_start + HOUR,
    )
    assert mirror.sql_busy(phantom_start, phantom_start + HOUR) != []
    result = mirror.sync(full=True)
    assert result.outcome == SyncOutcome.FULL
    assert result.full_reason == "requested"
    assert result.deleted == 1
    assert mirror.row_ids() == {keep}
    mirror.assert_mirrors_window()


class PageSpy:
    """Records, after each page the sync wrote and at the final deletion, what a reader
    sees then."""

    def __init__(self, mirror: Mirror, monkeypatch: pytest.MonkeyPatch, *, reader: Any) -> None:
        self.mirror = mirror
        self.reader = reader
        self.after_pages: list[Any] = []
        self.page_deletions: list[int] = []
        self.delete_missing_calls = 0
        self.pages_before_delete_missing: int | None = None
        apply_page, delete_missing = engine.apply_page, engine.delete_missing

        def spy_apply_page(**kwargs: Any) -> Any:
            write = apply_page(**kwargs)
            self.page_deletions.append(write.deleted)
            self.after_pages.append(self.reader())
            return write

        def spy_delete_missing(**kwargs: Any) -> int:
            self.delete_missing_calls += 1
            self.pages_before_delete_missing = len(self.after_pages)
            return delete_missing(**kwargs)

        monkeypatch.setattr(engine, "apply_page", spy_apply_page)
        monkeypatch.setattr(engine, "delete_missing", spy_delete_missing)


def test_full_sync_after_410_never_shows_an_empty_calendar(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is asserted: during the full sync that follows a 410 (30 events, pages of 4,
    the emulator's "short" shape: full, empty and short pages), after every page the
    rows of all 30 events that still exist in Google are present and the deleted one is
    still there too; the deleted row goes only in ``delete_missing``, once, after the
    last page, in the transaction that stores the new token. (The same, seen from a
    second connection with committed data only, is
    ``test_full_sync_seen_from_another_connection``.)"""
    ids = [add(mirror, mirror.now + n * HOUR, mirror.now + n * HOUR + HOUR / 2) for n in range(31)]
    first_sync(mirror)
    mirror.emulator.delete_event(mirror.email, ids[0])
    mirror.emulator.invalidate_sync_tokens()
    mirror.emulator.set_page_shape("short")
    force_page_size(monkeypatch, 4)
    spy = PageSpy(mirror, monkeypatch, reader=mirror.row_ids)

    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL
    assert result.pages == len(spy.after_pages) > 10
    for seen in spy.after_pages:
        assert seen == set(ids)  # nothing removed between pages, nothing missing
    assert spy.page_deletions == [0] * len(spy.after_pages)
    assert spy.delete_missing_calls == 1
    assert spy.pages_before_delete_missing == result.pages
    assert mirror.row_ids() == set(ids[1:])
    mirror.assert_mirrors_window()


@committing
def test_full_sync_seen_from_another_connection(
    emulator: EmulatorClient, write_flag_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader on its own connection (committed data only), after every page of the
    full sync that follows a 410: every event that exists in Google stays busy."""
    mirror = make_mirror(emulator)
    ids = [add(mirror, mirror.now + n * HOUR, mirror.now + n * HOUR + HOUR / 2) for n in range(13)]
    first_sync(mirror)
    emulator.delete_event(mirror.email, ids[0])
    emulator.invalidate_sync_tokens()
    emulator.set_page_shape("short")
    force_page_size(monkeypatch, 3)
    window = (mirror.now, mirror.now + DAY)
    survivors = mirror.google_busy(*window)

    def read_elsewhere() -> list[Any]:
        out: list[Any] = []

        def run() -> None:
            try:
                out.append(busy_intervals(user=mirror.user, start=window[0], end=window[1]))
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        return out[0]

    spy = PageSpy(mirror, monkeypatch, reader=read_elsewhere)
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL
    assert len(spy.after_pages) == result.pages > 5
    for seen in spy.after_pages:
        # Still busy where the deleted event was (it goes at the end), and everywhere
        # Google says busy: the reader's busy time covers Google's.
        covered = [any(b <= start and end <= e for b, e in seen) for start, end in survivors]
        assert all(covered)
    assert mirror.sql_busy(*window) == survivors
    mirror.assert_mirrors_window()


def test_incremental_400_is_treated_like_410_once(mirror: Mirror) -> None:
    ids = [add(mirror, mirror.now + n * DAY, mirror.now + n * DAY + HOUR) for n in range(1, 3)]
    first_sync(mirror)
    mirror.emulator.delete_event(mirror.email, ids[0])
    mirror.emulator.fail_next(1, status=400, reason="invalid", path="/events")
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL, result
    assert "400" in result.full_reason
    assert mirror.row_ids() == {ids[1]}
    mirror.assert_mirrors_window()
    assert mirror.sync().outcome == SyncOutcome.INCREMENTAL


def test_a_token_google_does_not_know_leads_to_one_full_sync(mirror: Mirror) -> None:
    add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR)
    first_sync(mirror)
    CalendarSyncToken.objects.filter(pk=mirror.token().pk).update(sync_token="CPDnot-a-token")
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL, result
    assert "400" in result.full_reason
    assert mirror.token().sync_token.startswith("CPD") and mirror.token().sync_token != (
        "CPDnot-a-token"
    )


def test_a_second_400_fails_the_sync(mirror: Mirror) -> None:
    add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR)
    first_sync(mirror)
    mirror.emulator.fail_next(2, status=400, reason="invalid", path="/events")
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FAILED
    assert "400" in result.error
    token = mirror.token()
    assert token.last_error and token.last_error_at == mirror.now
    assert not mirror.coverage(mirror.now, mirror.now + DAY)
    # The rows stay (they are only unconfirmed), and the next sync is a full one.
    assert mirror.rows().count() == 1
    assert token.sync_token == ""
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL
    assert mirror.coverage(mirror.now, mirror.now + DAY)


# --- skips, credentials, selection ---------------------------------------------------------


def test_write_flag_off_writes_nothing(emulator: EmulatorClient, db: None) -> None:
    mirror = make_mirror(emulator)
    add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR)
    emulator.clear_requests()
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FLAG_OFF
    assert not CalendarEvent.objects.exists()
    assert not CalendarSyncToken.objects.exists()
    assert emulator.requests() == []  # Google was not even asked
    assert not mirror.coverage(mirror.now, mirror.now + DAY)


def test_revoked_refresh_token_marks_the_credential_invalid(mirror: Mirror) -> None:
    add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR)
    first_sync(mirror)
    mirror.emulator.revoke(mirror.email)
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FAILED
    assert "credential invalid" in result.error
    credential = Credential.objects.get(pk=mirror.selected().credential_id)
    assert credential.invalid and credential.invalid_reason
    assert not mirror.coverage(mirror.now, mirror.now + DAY)

    mirror.emulator.clear_requests()
    result = mirror.sync()
    assert result.outcome == SyncOutcome.CREDENTIAL_INVALID
    assert result.error == credential.invalid_reason
    assert mirror.emulator.requests() == []


def test_revoked_token_with_an_expired_access_token(mirror: Mirror) -> None:
    """The refresh itself is refused (invalid_grant)."""
    first_sync(mirror)
    mirror.emulator.revoke(mirror.email)
    mirror.emulator.expire_access_tokens(mirror.email)
    assert mirror.sync().outcome == SyncOutcome.FAILED
    assert Credential.objects.get(pk=mirror.selected().credential_id).invalid
    assert mirror.sync().outcome == SyncOutcome.CREDENTIAL_INVALID


def test_calendar_not_found_disables_the_selection(mirror: Mirror) -> None:
    add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR)
    credential = mirror.selected().credential
    SelectedCalendar.objects.create(
        credential=credential, calendar_id="unknown0000@group.calendar.google.com"
    )
    result = mirror.sync("unknown0000@group.calendar.google.com")
    assert result.outcome == SyncOutcome.FAILED
    assert "not found" in result.error
    selected = SelectedCalendar.objects.get(calendar_id="unknown0000@group.calendar.google.com")
    assert not selected.enabled
    assert mirror.sync("unknown0000@group.calendar.google.com").outcome == SyncOutcome.DISABLED
    # The account's own calendar is untouched, and coverage ignores the disabled one.
    first_sync(mirror)
    assert mirror.coverage(mirror.now, mirror.now + DAY)


def test_calendar_of_another_account_is_not_found(mirror: Mirror, emulator: EmulatorClient) -> None:
    emulator.add_account("bob@example.com")
    SelectedCalendar.objects.create(
        credential=mirror.selected().credential, calendar_id="bob@example.com"
    )
    assert mirror.sync("bob@example.com").outcome == SyncOutcome.FAILED
    assert not SelectedCalendar.objects.get(calendar_id="bob@example.com").enabled


# --- transient errors and outages ----------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "reason": "backendError"},
        {"status": 500, "reason": "backendError"},
        {"status": 429, "reason": "rateLimitExceeded"},
        {"status": 403, "reason": "userRateLimitExceeded"},
        {"kind": "drop"},
    ],
    ids=["503", "500", "429", "403-rate-limit", "dropped-connection"],
)
def test_bursts_are_retried_and_the_sync_succeeds(mirror: Mirror, fault: dict[str, Any]) -> None:
    add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR)
    mirror.emulator.clear_requests()
    mirror.emulator.fail_next(3, path="/events", **fault)
    first_sync(mirror)
    statuses = [r["status"] for r in mirror.emulator.requests() if "/events" in r["path"]]
    assert len(statuses) == 4  # three failures, then the answer
    add(mirror, mirror.now + 2 * DAY, mirror.now + 2 * DAY + HOUR)
    mirror.emulator.fail_next(2, path="/events", **fault)
    incremental(mirror)


def test_persistent_outage_is_recorded_and_coverage_recovers(mirror: Mirror) -> None:
    add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR)
    first_sync(mirror)
    window = (mirror.now, mirror.now + 7 * DAY)
    assert mirror.coverage(*window)

    mirror.advance(HOUR / 2)
    added = add(mirror, mirror.now + 2 * DAY, mirror.now + 2 * DAY + HOUR)
    mirror.emulator.fail_next(100, status=503, path="/events")
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FAILED
    token = mirror.token()
    assert "503" in token.last_error
    assert token.last_error_at == mirror.now
    assert token.last_sync_at is not None and token.last_sync_at < mirror.now
    assert not mirror.coverage(*window)

    mirror.emulator.clear_faults()
    mirror.advance(HOUR / 2)
    incremental(mirror)
    token = mirror.token()
    assert (token.last_error, token.last_error_at) == ("", None)
    assert mirror.coverage(*window)
    assert added in mirror.row_ids()


def test_outage_on_the_first_sync(mirror: Mirror) -> None:
    add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR)
    mirror.emulator.fail_next(100, status=503, path="/events")
    assert mirror.sync().outcome == SyncOutcome.FAILED
    assert not mirror.coverage(mirror.now, mirror.now + HOUR)
    assert mirror.token().last_error
    mirror.emulator.clear_faults()
    first_sync(mirror)
    assert mirror.coverage(mirror.now, mirror.now + HOUR)


# --- what is stored ------------------------------------------------------------------------


@pytest.mark.parametrize("store", [True, False])
def test_summaries_are_stored_only_when_allowed(mirror: Mirror, settings: Any, store: bool) -> None:
    settings.CALCACHE_STORE_SUMMARY = store
    event_id = add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR, summary="Dentist")
    first_sync(mirror)
    mirror.emulator.patch_event(mirror.email, event_id, summary="Therapist")
    incremental(mirror)
    row = mirror.rows().get(google_event_id=event_id)
    assert row.summary == ("Therapist" if store else "")


def test_unchanged_etags_are_not_rewritten(mirror: Mirror) -> None:
    ids = [add(mirror, mirror.now + n * DAY, mirror.now + n * DAY + HOUR) for n in range(1, 6)]
    first_sync(mirror)
    written = dict(mirror.rows().values_list("google_event_id", "updated_at"))
    result = mirror.sync(full=True)
    assert result.outcome == SyncOutcome.FULL
    assert (result.upserted, result.unchanged, result.deleted) == (0, 5, 0)
    assert dict(mirror.rows().values_list("google_event_id", "updated_at")) == written

    mirror.emulator.patch_event(mirror.email, ids[0], summary="changed")
    result = mirror.sync(full=True)
    assert (result.upserted, result.unchanged) == (1, 4)
    after = dict(mirror.rows().values_list("google_event_id", "updated_at"))
    assert {eid for eid in ids if after[eid] != written[eid]} == {ids[0]}


# --- sync_coverage -------------------------------------------------------------------------


def test_sync_coverage(mirror: Mirror, emulator: EmulatorClient) -> None:
    window = (mirror.now, mirror.now + DAY)
    assert not mirror.coverage(*window)  # never synced
    first_sync(mirror)
    window_start, window_end = mirror.synced_window()
    assert (window_start, window_end) == (mirror.now - 30 * DAY, mirror.now + 180 * DAY)
    assert mirror.coverage(*window)
    assert mirror.coverage(window_start, window_end)
    assert not mirror.coverage(window_start, window_end + timedelta(seconds=1))
    assert not mirror.coverage(window_end, window_end + DAY)
    assert not mirror.coverage(window_start - timedelta(seconds=1), window_start + DAY)

    # A second calendar, selected but never synced: the user is not covered.
    other = emulator.add_calendar(mirror.email, summary="Other")["id"]
    SelectedCalendar.objects.create(credential=mirror.selected().credential, calendar_id=other)
    assert not mirror.coverage(*window)
    assert mirror.sync(other).outcome == SyncOutcome.FULL
    assert mirror.coverage(*window)
    # Disabling it does not hurt.
    SelectedCalendar.objects.filter(calendar_id=other).update(enabled=False)
    assert mirror.coverage(*window)


def test_sync_coverage_for_a_user_without_calendars(user: Any) -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    assert not sync_coverage(user=user, start=now, end=now + DAY)
    assert busy_intervals(user=user, start=now, end=now + DAY) == []


# --- the calendar's time zone changes --------------------------------------------------------


def test_calendar_time_zone_change_moves_all_day_events(
    mirror: Mirror, google_emulator_server: EmulatorServer
) -> None:
    """All-day events start at midnight in the calendar's zone: when the owner changes the
    calendar's zone, their instants change although the events (and their etags) did not.

    The emulator has no API to change a calendar's zone (Google's is calendars.patch), so
    the test sets it in the emulator's state.
    """
    all_day = str(
        mirror.emulator.add_event(mirror.email, start=date(2026, 3, 5), end=date(2026, 3, 6))["id"]
    )
    timed = add(mirror, utc(2026, 3, 5, 9), utc(2026, 3, 5, 10))
    first_sync(mirror)
    with google_emulator_server.state.lock:
        google_emulator_server.state.calendars[mirror.email].time_zone = "America/Los_Angeles"
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL, result
    assert result.full_reason == "calendar time zone changed (Europe/London -> America/Los_Angeles)"
    assert mirror.selected().time_zone == "America/Los_Angeles"
    row = mirror.rows().get(google_event_id=all_day)
    assert (row.start_time, row.end_time) == (utc(2026, 3, 5, 8), utc(2026, 3, 6, 8))
    assert timed in mirror.row_ids()
    mirror.assert_mirrors_window()
    # Settled: the next sync is incremental again and writes nothing.
    result = mirror.sync()
    assert (result.outcome, result.upserted) == (SyncOutcome.INCREMENTAL, 0)


def test_forced_full_sync_applies_a_summary_setting_change(mirror: Mirror, settings: Any) -> None:
    """Turning CALCACHE_STORE_SUMMARY off: titles already stored go with the next full sync
    (their etags did not change, so an etag-only comparison would keep them)."""
    event_id = add(mirror, mirror.now + DAY, mirror.now + DAY + HOUR, summary="Dentist")
    first_sync(mirror)
    assert mirror.rows().get(google_event_id=event_id).summary == "Dentist"
    settings.CALCACHE_STORE_SUMMARY = False
    result = mirror.sync(full=True)
    assert result.upserted == 1
    assert mirror.rows().get(google_event_id=event_id).summary == ""
    result = mirror.sync(full=True)
    assert (result.upserted, result.unchanged) == (0, 1)


def test_dropped_connection_on_a_later_page_is_retried(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry re-sends the same page token (google-api-python-client's request object);
    Google answers it again."""
    ids = [add(mirror, mirror.now + n * HOUR, mirror.now + n * HOUR + HOUR / 2) for n in range(9)]
    force_page_size(monkeypatch, 3)
    apply_page = engine.apply_page
    pages: list[int] = []

    def drop_after_first_page(**kwargs: Any) -> Any:
        write = apply_page(**kwargs)
        pages.append(write.upserted)
        if len(pages) == 1:
            mirror.emulator.fail_next(1, kind="drop", path="/events")
        return write

    monkeypatch.setattr(engine, "apply_page", drop_after_first_page)
    mirror.emulator.clear_requests()
    first_sync(mirror)
    assert mirror.row_ids() == set(ids)
    faults = [r["fault"] for r in mirror.emulator.requests() if "/events" in r["path"]]
    assert faults.count("drop") == 1
