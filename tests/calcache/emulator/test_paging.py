"""events.list paging: maxResults default and cap, short and empty pages, and the
nextPageToken / nextSyncToken discipline (docs/google-calendar.md#paging-events)."""

from __future__ import annotations

import http.client
from datetime import timedelta
from typing import Any

import pytest

from calcache.emulator.client import EmulatorClient
from tests.calcache.emulator.helpers import ADA, NOW, items_of, read_pages


def add_hourly_series(emulator: EmulatorClient, count: int) -> dict[str, Any]:
    """One recurring event with ``count`` hourly instances (cheap bulk data)."""
    return emulator.add_event(
        ADA,
        start=NOW + timedelta(hours=1),
        end=NOW + timedelta(hours=1, minutes=30),
        time_zone="UTC",
        summary="bulk",
        recurrence=[f"RRULE:FREQ=HOURLY;COUNT={count}"],
    )


def add_events(emulator: EmulatorClient, count: int) -> set[str]:
    ids = set()
    for n in range(count):
        start = NOW + timedelta(days=1, hours=n)
        ids.add(emulator.add_event(ADA, start=start, end=start + timedelta(minutes=30))["id"])
    return ids


def assert_token_discipline(pages: list[dict[str, Any]]) -> None:
    """Every page but the last has only nextPageToken; the last only nextSyncToken."""
    assert pages
    for page in pages[:-1]:
        assert "nextPageToken" in page and "nextSyncToken" not in page
    assert "nextSyncToken" in pages[-1] and "nextPageToken" not in pages[-1]


def test_max_results_defaults_to_250(emulator: EmulatorClient, service: Any) -> None:
    add_hourly_series(emulator, 260)
    pages = read_pages(service, calendarId="primary", singleEvents=True)
    assert [len(p["items"]) for p in pages] == [250, 10]
    assert_token_discipline(pages)
    assert len({i["id"] for i in items_of(pages)}) == 260


@pytest.mark.parametrize("max_results", [2500, 3000])
def test_max_results_is_capped_at_2500(
    emulator: EmulatorClient, service: Any, max_results: int
) -> None:
    add_hourly_series(emulator, 2600)
    pages = read_pages(service, calendarId="primary", singleEvents=True, maxResults=max_results)
    assert [len(p["items"]) for p in pages] == [2500, 100]
    assert_token_discipline(pages)
    assert len({i["id"] for i in items_of(pages)}) == 2600


def test_small_max_results_pages_through_everything(emulator: EmulatorClient, service: Any) -> None:
    ids = add_events(emulator, 7)
    pages = read_pages(service, calendarId="primary", maxResults=3)
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert_token_discipline(pages)
    assert {i["id"] for i in items_of(pages)} == ids


def test_short_and_empty_pages_still_carry_next_page_token(
    emulator: EmulatorClient, service: Any
) -> None:
    ids = add_events(emulator, 20)
    emulator.set_page_shape("short")
    pages = read_pages(service, calendarId="primary", maxResults=6)
    sizes = [len(p["items"]) for p in pages]
    assert_token_discipline(pages)
    # an empty page and a short page that are not the last one
    assert any(size == 0 for size in sizes[:-1]), sizes
    assert any(0 < size < 6 for size in sizes[:-1]), sizes
    collected = [i["id"] for i in items_of(pages)]
    assert len(collected) == len(set(collected)) == 20
    assert set(collected) == ids


def test_empty_first_page_is_not_the_end(emulator: EmulatorClient, service: Any) -> None:
    ids = add_events(emulator, 4)
    emulator.set_page_shape("empty-first")
    pages = read_pages(service, calendarId="primary")
    assert pages[0]["items"] == [] and "nextPageToken" in pages[0]
    assert_token_discipline(pages)
    assert {i["id"] for i in items_of(pages)} == ids


def test_empty_calendar_is_one_page_with_sync_token(service: Any) -> None:
    pages = read_pages(service, calendarId="primary")
    assert len(pages) == 1 and pages[0]["items"] == []
    assert_token_discipline(pages)


def test_incremental_sync_pages_with_same_sync_token(
    emulator: EmulatorClient, service: Any
) -> None:
    add_events(emulator, 2)
    sync_token = read_pages(service, calendarId="primary")[-1]["nextSyncToken"]
    added = {
        emulator.add_event(
            ADA, start=NOW + timedelta(days=3, hours=n), end=NOW + timedelta(days=3, hours=n + 1)
        )["id"]
        for n in range(7)
    }
    emulator.clear_requests()
    pages = read_pages(service, calendarId="primary", syncToken=sync_token, maxResults=3)
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert_token_discipline(pages)
    assert {i["id"] for i in items_of(pages)} == added
    queries = [r["query"] for r in emulator.requests() if r["path"].endswith("/events")]
    assert len(queries) == 3
    assert all(q["syncToken"] == sync_token for q in queries)
    assert "pageToken" not in queries[0]
    assert queries[1]["pageToken"] == pages[0]["nextPageToken"]
    assert queries[2]["pageToken"] == pages[1]["nextPageToken"]
    # the new token sees nothing more
    again = read_pages(service, calendarId="primary", syncToken=pages[-1]["nextSyncToken"])
    assert items_of(again) == []


def test_incremental_sync_with_short_pages(emulator: EmulatorClient, service: Any) -> None:
    sync_token = read_pages(service, calendarId="primary")[-1]["nextSyncToken"]
    added = add_events(emulator, 10)
    emulator.set_page_shape("short")
    pages = read_pages(service, calendarId="primary", syncToken=sync_token, maxResults=4)
    assert_token_discipline(pages)
    assert any(len(p["items"]) == 0 for p in pages[:-1])
    assert {i["id"] for i in items_of(pages)} == added


def test_page_token_can_be_replayed(emulator: EmulatorClient, service: Any) -> None:
    """A client retrying a page whose response was lost sends the same pageToken again."""
    ids = add_events(emulator, 5)
    first_request = service.events().list(calendarId="primary", maxResults=2)
    first = first_request.execute()
    second_request = service.events().list_next(first_request, first)
    emulator.fail_next(kind="drop", path="/events")
    with pytest.raises(http.client.IncompleteRead):
        second_request.execute()
    second = second_request.execute()
    assert [i["id"] for i in second_request.execute()["items"]] == [
        i["id"] for i in second["items"]
    ]
    pages = [first, second]
    request = service.events().list_next(second_request, second)
    while request is not None:
        pages.append(request.execute())
        request = service.events().list_next(request, pages[-1])
    assert_token_discipline(pages)
    collected = [i["id"] for i in items_of(pages)]
    assert len(collected) == 5 and set(collected) == ids


def test_changes_made_while_paging_come_in_the_next_incremental_sync(
    emulator: EmulatorClient, service: Any
) -> None:
    add_events(emulator, 4)
    request = service.events().list(calendarId="primary", maxResults=2)
    first = request.execute()
    late = emulator.add_event(
        ADA, start=NOW + timedelta(days=5), end=NOW + timedelta(days=5, hours=1)
    )
    pages = [first]
    request = service.events().list_next(request, first)
    while request is not None:
        pages.append(request.execute())
        request = service.events().list_next(request, pages[-1])
    assert_token_discipline(pages)
    token = pages[-1]["nextSyncToken"]
    changed = items_of(read_pages(service, calendarId="primary", syncToken=token))
    assert late["id"] in {i["id"] for i in changed}
