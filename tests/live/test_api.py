"""Calendar API behaviour calcache relies on (docs/google-calendar.md), checked the same
way on the emulator and on Google: paging, sync tokens, cancelled entries, showDeleted,
timeMin/timeMax, updatedMin, singleEvents, all-day events and freeBusy."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from calcache.exceptions import GoogleBadRequest
from tests.live.targets import (
    Target,
    all_day,
    daily_series,
    instant,
    local,
    midnight_utc,
    rfc3339,
    timed,
)

pytestmark = pytest.mark.live

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def ids(items: list[dict[str, object]]) -> set[str]:
    return {str(item["id"]) for item in items}


def test_pages_carry_the_sync_token_on_the_last_page_only(target: Target) -> None:
    base = midnight_utc(2) + 9 * HOUR
    made = {target.insert(timed(base + n * HOUR, base + (n + 1) * HOUR))["id"] for n in range(5)}
    pages = target.pages(singleEvents=True, maxResults=2)
    # Google may return fewer items than maxResults, never more.
    assert len(pages) >= 3
    assert all(len(page.get("items", [])) <= 2 for page in pages)
    for page in pages[:-1]:
        assert page.get("nextPageToken") and "nextSyncToken" not in page
    assert pages[-1].get("nextSyncToken") and "nextPageToken" not in pages[-1]
    assert ids([item for page in pages for item in page.get("items", [])]) == made


def test_incremental_sync_returns_only_the_changes(target: Target) -> None:
    base = midnight_utc(2) + 9 * HOUR
    kept = target.insert(timed(base, base + HOUR, summary="kept"))
    renamed = target.insert(timed(base + HOUR, base + 2 * HOUR, summary="renamed"))
    deleted = target.insert(timed(base + 2 * HOUR, base + 3 * HOUR, summary="deleted"))
    sync_token = target.pages(singleEvents=True)[-1]["nextSyncToken"]
    target.patch(renamed["id"], {"summary": "renamed, twice"})
    target.delete(deleted["id"])
    added = target.insert(timed(base + 3 * HOUR, base + 4 * HOUR, summary="added"))
    changes = {item["id"]: item for item in target.listing(syncToken=sync_token, singleEvents=True)}
    assert set(changes) == {renamed["id"], deleted["id"], added["id"]}
    assert kept["id"] not in changes
    assert changes[deleted["id"]]["status"] == "cancelled"
    assert changes[renamed["id"]]["summary"] == "renamed, twice"


def test_sync_token_with_a_time_window_is_a_bad_request(target: Target) -> None:
    sync_token = target.pages(singleEvents=True)[-1]["nextSyncToken"]
    with pytest.raises(GoogleBadRequest) as caught:
        target.pages(singleEvents=True, syncToken=sync_token, timeMin=rfc3339(midnight_utc(1)))
    assert caught.value.status == 400


def test_deleted_events_are_listed_only_with_show_deleted(target: Target) -> None:
    base = midnight_utc(2) + 9 * HOUR
    gone = target.insert(timed(base, base + HOUR))
    target.delete(gone["id"])
    assert gone["id"] not in ids(target.listing())
    shown = {item["id"]: item for item in target.listing(showDeleted=True)}
    assert shown[gone["id"]]["status"] == "cancelled"


def test_time_min_filters_on_the_end_and_time_max_on_the_start(target: Target) -> None:
    start = midnight_utc(2) + 10 * HOUR
    end = start + HOUR
    event = target.insert(timed(start, end))["id"]
    second = timedelta(seconds=1)

    def listed(**window: object) -> bool:
        return event in ids(target.listing(**window))

    assert not listed(timeMin=rfc3339(end))
    assert listed(timeMin=rfc3339(end - second))
    assert listed(timeMin=rfc3339(start + HOUR / 2))
    assert not listed(timeMax=rfc3339(start))
    assert listed(timeMax=rfc3339(start + second))


def test_updated_min_lists_what_changed_since_deletions_included(target: Target) -> None:
    base = midnight_utc(2) + 9 * HOUR
    old = target.insert(timed(base, base + HOUR, summary="old"))
    doomed = target.insert(timed(base + HOUR, base + 2 * HOUR, summary="doomed"))
    since = max(instant({"dateTime": old["updated"]}), instant({"dateTime": doomed["updated"]}))
    target.let_time_pass()
    new = target.insert(timed(base + 2 * HOUR, base + 3 * HOUR, summary="new"))
    target.delete(doomed["id"])
    changed = {
        item["id"]: item
        for item in target.listing(updatedMin=rfc3339(since + timedelta(milliseconds=1)))
    }
    assert set(changed) == {new["id"], doomed["id"]}
    assert changed[doomed["id"]]["status"] == "cancelled"


def test_single_events_expands_a_series_into_instances_with_googles_ids(target: Target) -> None:
    first = midnight_utc(3).date()
    series = target.insert(daily_series(first, target.time_zone, summary="standup"))
    (parent,) = target.listing(singleEvents=False)
    assert parent["id"] == series["id"]
    assert parent["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=3"]
    instances = target.listing(singleEvents=True, orderBy="startTime")
    starts = [local(first + n * DAY, time(9), target.time_zone) for n in range(3)]
    assert [item["id"] for item in instances] == [
        f"{series['id']}_{start:%Y%m%dT%H%M%SZ}" for start in starts
    ]
    for item, start in zip(instances, starts, strict=True):
        assert item["recurringEventId"] == series["id"]
        assert instant(item["start"]) == instant(item["originalStartTime"]) == start
        assert instant(item["end"]) - start == timedelta(minutes=30)


def test_a_deleted_instance_comes_back_cancelled_with_its_series(target: Target) -> None:
    first = midnight_utc(3).date()
    series = target.insert(daily_series(first, target.time_zone))
    sync_token = target.pages(singleEvents=True)[-1]["nextSyncToken"]
    second = target.listing(singleEvents=True, orderBy="startTime")[1]
    target.delete(second["id"])
    (entry,) = target.listing(syncToken=sync_token, singleEvents=True)
    assert entry["id"] == second["id"] and entry["status"] == "cancelled"
    assert entry["recurringEventId"] == series["id"]
    assert instant(entry["originalStartTime"]) == instant(second["start"])
    assert second["id"] not in ids(target.listing(singleEvents=True))


def test_all_day_events_keep_dates_and_are_busy_between_calendar_midnights(
    target: Target,
) -> None:
    day = midnight_utc(4).date()
    event = target.insert(all_day(day, summary="offsite"))
    pages = target.pages(singleEvents=True)
    assert pages[0]["timeZone"] == target.time_zone
    (item,) = [item for page in pages for item in page.get("items", [])]
    assert item["id"] == event["id"]
    assert item["start"] == {"date": day.isoformat()}
    assert item["end"] == {"date": (day + DAY).isoformat()}
    window = (midnight_utc(3), midnight_utc(6))
    assert target.busy(*window) == [
        (local(day, time(0), target.time_zone), local(day + DAY, time(0), target.time_zone))
    ]


def test_freebusy_merges_clips_and_leaves_out_free_and_deleted_events(target: Target) -> None:
    base = midnight_utc(2) + 9 * HOUR
    target.insert(timed(base, base + HOUR))
    target.insert(timed(base + HOUR / 2, base + 2 * HOUR))
    target.insert(timed(base + 3 * HOUR, base + 4 * HOUR, transparency="transparent"))
    gone = target.insert(timed(base + 5 * HOUR, base + 6 * HOUR))
    target.delete(gone["id"])
    target.insert(timed(base + 7 * HOUR, base + 8 * HOUR, status="tentative"))
    assert target.busy(base - DAY, base + DAY) == [
        (base, base + 2 * HOUR),
        (base + 7 * HOUR, base + 8 * HOUR),
    ]
    # a window that starts inside a busy block cuts it there
    assert target.busy(base + HOUR, base + DAY)[0] == (base + HOUR, base + 2 * HOUR)
