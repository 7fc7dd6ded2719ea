"""Incremental sync: cancelled entries (deleted events, cancelled instances), and
410 fullSyncRequired after token invalidation or a tombstone purge, with Google's
body shape and a working recovery by full sync."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from calcache.emulator.client import EmulatorClient
from tests.calcache.emulator.helpers import ADA, NOW, error_body, items_of, read_pages, reason, utc

DAY = NOW + timedelta(days=1)


def full_sync(service: Any, **params: Any) -> tuple[list[dict[str, Any]], str]:
    pages = read_pages(service, calendarId="primary", **params)
    return items_of(pages), str(pages[-1]["nextSyncToken"])


def test_incremental_sync_returns_only_changes(emulator: EmulatorClient, service: Any) -> None:
    kept = emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=1))
    moved = emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=2))
    _, token = full_sync(service)
    emulator.patch_event(ADA, moved["id"], summary="renamed")
    added = emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=3))
    items, _ = full_sync(service, syncToken=token)
    assert {i["id"] for i in items} == {moved["id"], added["id"]}
    assert kept["id"] not in {i["id"] for i in items}


def test_deleted_event_comes_back_cancelled_with_only_id_and_status(
    emulator: EmulatorClient, service: Any
) -> None:
    event = emulator.add_event(
        ADA, start=DAY, end=DAY + timedelta(hours=1), summary="secret", location="room 1"
    )
    _, token = full_sync(service)
    service.events().delete(calendarId="primary", eventId=event["id"]).execute()
    items, _ = full_sync(service, syncToken=token)
    assert len(items) == 1
    entry = items[0]
    assert entry["id"] == event["id"] and entry["status"] == "cancelled"
    assert set(entry) <= {"id", "status", "kind", "etag"}


def test_deleted_event_in_show_deleted_full_listing(emulator: EmulatorClient, service: Any) -> None:
    event = emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=1))
    emulator.delete_event(ADA, event["id"])
    visible, _ = full_sync(service)
    assert visible == []
    with_deleted, _ = full_sync(service, showDeleted=True)
    assert [(i["id"], i["status"]) for i in with_deleted] == [(event["id"], "cancelled")]


def test_cancelled_instance_has_recurring_event_id_and_original_start(
    emulator: EmulatorClient, service: Any
) -> None:
    series = emulator.add_event(
        ADA,
        start="2026-06-02T09:00:00+01:00",
        end="2026-06-02T09:30:00+01:00",
        time_zone="Europe/London",
        recurrence=["RRULE:FREQ=DAILY;COUNT=5"],
    )
    tokens = {single: full_sync(service, singleEvents=single)[1] for single in (False, True)}
    instance_id = f"{series['id']}_20260603T080000Z"
    service.events().delete(calendarId="primary", eventId=instance_id).execute()
    for single_events, token in tokens.items():
        items, _ = full_sync(service, syncToken=token, singleEvents=single_events)
        assert [i["id"] for i in items] == [instance_id]
        entry = items[0]
        assert entry["status"] == "cancelled"
        assert entry["recurringEventId"] == series["id"]
        assert utc(entry["originalStartTime"]["dateTime"]) == utc("2026-06-03T08:00:00Z")
    # and the instance is gone from the expanded listing
    live, _ = full_sync(service, singleEvents=True)
    assert instance_id not in {i["id"] for i in live}
    assert len(live) == 4


def assert_full_sync_required(exc: HttpError) -> None:
    assert exc.resp.status == 410
    assert reason(exc) == "fullSyncRequired"
    error = error_body(exc)["error"]
    assert error["code"] == 410
    assert error["errors"][0] == {
        "domain": "calendar",
        "reason": "fullSyncRequired",
        "message": "Sync token is no longer valid, a full sync is required.",
        "locationType": "parameter",
        "location": "syncToken",
    }


def test_invalidated_sync_token_is_410_full_sync_required(
    emulator: EmulatorClient, service: Any
) -> None:
    emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=1))
    _, token = full_sync(service)
    emulator.invalidate_sync_tokens()
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", syncToken=token).execute()
    assert_full_sync_required(caught.value)


def test_full_sync_after_410_gives_a_working_token(emulator: EmulatorClient, service: Any) -> None:
    event = emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=1))
    _, token = full_sync(service)
    emulator.invalidate_sync_tokens()
    with pytest.raises(HttpError):
        service.events().list(calendarId="primary", syncToken=token).execute()
    # recovery: drop the token, full sync, then incremental sync works again
    items, fresh = full_sync(service)
    assert [i["id"] for i in items] == [event["id"]]
    assert items_of(read_pages(service, calendarId="primary", syncToken=fresh)) == []
    added = emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=2))
    changed, _ = full_sync(service, syncToken=fresh)
    assert [i["id"] for i in changed] == [added["id"]]


def test_invalidation_of_one_calendar_keeps_other_tokens(
    emulator: EmulatorClient, service: Any
) -> None:
    other = emulator.add_calendar(ADA, calendar_id="team@group.calendar.google.com")["id"]
    _, mine = full_sync(service)
    team = read_pages(service, calendarId=other)[-1]["nextSyncToken"]
    emulator.invalidate_sync_tokens(other)
    service.events().list(calendarId="primary", syncToken=mine).execute()
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId=other, syncToken=team).execute()
    assert_full_sync_required(caught.value)


def test_purged_tombstones_make_older_tokens_410(emulator: EmulatorClient, service: Any) -> None:
    event = emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=1))
    _, token = full_sync(service)
    emulator.delete_event(ADA, event["id"])
    assert emulator.purge_tombstones() == 1
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", syncToken=token).execute()
    assert_full_sync_required(caught.value)
    # the cancelled entry is gone for good; a new full sync gives a working token
    items, fresh = full_sync(service, showDeleted=True)
    assert items == []
    assert items_of(read_pages(service, calendarId="primary", syncToken=fresh)) == []


def test_paging_an_invalidated_incremental_sync_restarts_cleanly(
    emulator: EmulatorClient, service: Any
) -> None:
    _, token = full_sync(service)
    for n in range(4):
        emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=n + 1))
    first = service.events().list(calendarId="primary", syncToken=token, maxResults=2).execute()
    assert "nextPageToken" in first and "nextSyncToken" not in first
    emulator.invalidate_sync_tokens()
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", syncToken=token).execute()
    assert caught.value.resp.status == 410
