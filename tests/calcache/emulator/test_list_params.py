"""events.list parameters: what may not go with syncToken, the timeMin/timeMax window
(end/start, exclusive, offsets), timeRangeEmpty and orderBy=startTime."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from calcache.emulator.client import EmulatorClient
from tests.calcache.emulator.helpers import ADA, NOW, items_of, read_pages, reason, rfc3339, utc

DAY = NOW + timedelta(days=1)  # 2026-06-02T12:00Z


def sync_token_of(service: Any, **params: Any) -> str:
    return str(read_pages(service, calendarId="primary", **params)[-1]["nextSyncToken"])


FORBIDDEN_WITH_SYNC_TOKEN = [
    ("iCalUID", "abcde@google.com"),
    ("orderBy", "updated"),
    ("privateExtendedProperty", "colour=blue"),
    ("q", "standup"),
    ("sharedExtendedProperty", "colour=blue"),
    ("timeMin", rfc3339(NOW)),
    ("timeMax", rfc3339(NOW + timedelta(days=7))),
    ("updatedMin", rfc3339(NOW - timedelta(days=1))),
    ("showDeleted", False),
]


@pytest.mark.parametrize(("name", "value"), FORBIDDEN_WITH_SYNC_TOKEN)
def test_sync_token_with_request_restrictions_is_400(
    emulator: EmulatorClient, service: Any, name: str, value: Any
) -> None:
    emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=1), summary="standup")
    token = sync_token_of(service)
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", syncToken=token, **{name: value}).execute()
    assert caught.value.resp.status == 400
    assert reason(caught.value) == "syncTokenWithRequestRestrictions"


def test_sync_token_allows_show_deleted_true(emulator: EmulatorClient, service: Any) -> None:
    token = sync_token_of(service, showDeleted=True)
    event = emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=1))
    page = service.events().list(calendarId="primary", syncToken=token, showDeleted=True).execute()
    assert [i["id"] for i in page["items"]] == [event["id"]]


def test_sync_token_single_events_must_match_full_sync(service: Any) -> None:
    token = sync_token_of(service, singleEvents=True)
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", syncToken=token).execute()
    assert caught.value.resp.status == 400
    # the same value works
    service.events().list(calendarId="primary", syncToken=token, singleEvents=True).execute()


def window_ids(service: Any, time_min: str | None = None, time_max: str | None = None) -> set[str]:
    params: dict[str, Any] = {"calendarId": "primary"}
    if time_min:
        params["timeMin"] = time_min
    if time_max:
        params["timeMax"] = time_max
    return {i["id"] for i in items_of(read_pages(service, **params))}


def test_time_min_filters_on_end_exclusive(emulator: EmulatorClient, service: Any) -> None:
    event = emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=1))["id"]
    end = DAY + timedelta(hours=1)
    assert event not in window_ids(service, time_min=rfc3339(end))
    assert event in window_ids(service, time_min=rfc3339(end - timedelta(seconds=1)))
    # timeMin after the start but before the end: still listed (filter is on the end)
    assert event in window_ids(service, time_min=rfc3339(DAY + timedelta(minutes=30)))


def test_time_max_filters_on_start_exclusive(emulator: EmulatorClient, service: Any) -> None:
    event = emulator.add_event(ADA, start=DAY, end=DAY + timedelta(hours=1))["id"]
    assert event not in window_ids(service, time_max=rfc3339(DAY))
    assert event in window_ids(service, time_max=rfc3339(DAY + timedelta(seconds=1)))
    assert event not in window_ids(service, time_max=rfc3339(DAY - timedelta(hours=1)))


def test_multi_day_event_that_started_before_time_min_is_listed(
    emulator: EmulatorClient, service: Any
) -> None:
    long = emulator.add_event(ADA, start=NOW - timedelta(days=3), end=NOW + timedelta(days=2))
    past = emulator.add_event(ADA, start=NOW - timedelta(days=3), end=NOW - timedelta(days=2))
    ids = window_ids(service, time_min=rfc3339(NOW), time_max=rfc3339(NOW + timedelta(days=1)))
    assert long["id"] in ids and past["id"] not in ids


def test_time_window_honours_offsets(emulator: EmulatorClient, service: Any) -> None:
    # 2026-06-02T12:00:00+02:00 is 10:00Z
    before = emulator.add_event(
        ADA, start="2026-06-02T09:00:00Z", end="2026-06-02T10:00:00Z", summary="before"
    )["id"]
    across = emulator.add_event(
        ADA, start="2026-06-02T09:30:00Z", end="2026-06-02T10:30:00Z", summary="across"
    )["id"]
    after = emulator.add_event(
        ADA, start="2026-06-02T08:00:00-05:00", end="2026-06-02T09:00:00-05:00"
    )["id"]  # 13:00Z-14:00Z
    ids = window_ids(
        service, time_min="2026-06-02T12:00:00+02:00", time_max="2026-06-02T08:00:00-05:00"
    )
    assert ids == {across}
    assert before not in ids and after not in ids


def test_all_day_event_window_uses_calendar_midnight(
    emulator: EmulatorClient, make_service: Any
) -> None:
    # Tokyo is UTC+9: the day 2026-06-10 is [2026-06-09T15:00Z, 2026-06-10T15:00Z)
    service = make_service("kenji@example.com", time_zone="Asia/Tokyo")
    event = emulator.add_event("kenji@example.com", start="2026-06-10", end="2026-06-11")["id"]
    assert event in window_ids(service, time_min="2026-06-10T14:59:00Z")
    assert event not in window_ids(service, time_min="2026-06-10T15:00:00Z")
    assert event in window_ids(service, time_max="2026-06-09T15:01:00Z")
    assert event not in window_ids(service, time_max="2026-06-09T15:00:00Z")


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(hours=-1)])
def test_time_min_not_before_time_max_is_time_range_empty(service: Any, delta: timedelta) -> None:
    with pytest.raises(HttpError) as caught:
        service.events().list(
            calendarId="primary", timeMin=rfc3339(DAY), timeMax=rfc3339(DAY + delta)
        ).execute()
    assert caught.value.resp.status == 400
    assert reason(caught.value) == "timeRangeEmpty"


def test_order_by_start_time_requires_single_events(service: Any) -> None:
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", orderBy="startTime").execute()
    assert caught.value.resp.status == 400
    with pytest.raises(HttpError) as caught:
        service.events().list(
            calendarId="primary", orderBy="startTime", singleEvents=False
        ).execute()
    assert caught.value.resp.status == 400


def test_order_by_start_time_with_single_events_sorts_by_start(
    emulator: EmulatorClient, service: Any
) -> None:
    starts = [DAY + timedelta(hours=h) for h in (5, 1, 3)]
    for start in starts:
        emulator.add_event(ADA, start=start, end=start + timedelta(minutes=30))
    emulator.add_event(
        ADA,
        start=DAY + timedelta(hours=2),
        end=DAY + timedelta(hours=2, minutes=30),
        time_zone="Europe/London",
        recurrence=["RRULE:FREQ=DAILY;COUNT=2"],
    )
    items = items_of(
        read_pages(service, calendarId="primary", singleEvents=True, orderBy="startTime")
    )
    got = [utc(i["start"]["dateTime"]) for i in items]
    assert len(got) == 5
    assert got == sorted(got)
