"""Recurring events: the parent with recurrence[] (singleEvents=false), instances with
Google's ids and one iCalUID (singleEvents=true), EXDATE / RDATE, exceptions made by
patching one instance, cancelled instances, and events.instances."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from calcache.emulator.client import EmulatorClient
from tests.calcache.emulator.helpers import ADA, items_of, read_pages, utc

LONDON = "Europe/London"


def add_daily_standup(emulator: EmulatorClient, *extra: str, count: int = 5) -> dict[str, Any]:
    """09:00-09:30 London time (08:00Z in summer), daily from 2026-06-02."""
    return emulator.add_event(
        ADA,
        start="2026-06-02T09:00:00",
        end="2026-06-02T09:30:00",
        time_zone=LONDON,
        summary="standup",
        recurrence=[f"RRULE:FREQ=DAILY;COUNT={count}", *extra],
    )


def listing(service: Any, **params: Any) -> list[dict[str, Any]]:
    return items_of(read_pages(service, calendarId="primary", **params))


def test_single_events_false_returns_the_parent_with_recurrence(
    emulator: EmulatorClient, service: Any
) -> None:
    series = add_daily_standup(emulator)
    items = listing(service)
    assert [i["id"] for i in items] == [series["id"]]
    parent = items[0]
    assert parent["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=5"]
    assert not any(line.startswith("DTSTART") for line in parent["recurrence"])
    assert parent["start"]["timeZone"] == LONDON
    assert "recurringEventId" not in parent


def test_single_events_true_returns_instances_with_google_ids(
    emulator: EmulatorClient, service: Any
) -> None:
    series = add_daily_standup(emulator)
    items = listing(service, singleEvents=True, orderBy="startTime")
    assert [i["id"] for i in items] == [
        f"{series['id']}_202606{d:02d}T080000Z" for d in range(2, 7)
    ]
    assert {i["iCalUID"] for i in items} == {series["iCalUID"]}
    for item in items:
        assert item["recurringEventId"] == series["id"]
        assert "recurrence" not in item
        assert item["originalStartTime"] == item["start"]
        assert utc(item["end"]["dateTime"]) - utc(item["start"]["dateTime"]) == timedelta(
            minutes=30
        )


def test_all_day_instance_ids_use_the_date(emulator: EmulatorClient, service: Any) -> None:
    series = emulator.add_event(
        ADA, start="2026-06-26", end="2026-06-27", recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"]
    )
    items = listing(service, singleEvents=True, orderBy="startTime")
    assert [i["id"] for i in items] == [
        f"{series['id']}_20260626",
        f"{series['id']}_20260703",
        f"{series['id']}_20260710",
    ]
    assert [i["start"] for i in items] == [
        {"date": "2026-06-26"},
        {"date": "2026-07-03"},
        {"date": "2026-07-10"},
    ]
    assert {i["iCalUID"] for i in items} == {series["iCalUID"]}


def test_timed_series_keeps_local_time_across_dst(emulator: EmulatorClient, service: Any) -> None:
    # London: 09:00 GMT on 2026-03-23, 09:00 BST (08:00Z) from 2026-03-30
    series = emulator.add_event(
        ADA,
        start="2026-03-23T09:00:00",
        end="2026-03-23T10:00:00",
        time_zone=LONDON,
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=2"],
    )
    items = listing(service, singleEvents=True, orderBy="startTime")
    assert [i["id"] for i in items] == [
        f"{series['id']}_20260323T090000Z",
        f"{series['id']}_20260330T080000Z",
    ]


def test_exdate_removes_an_instance(emulator: EmulatorClient, service: Any) -> None:
    series = add_daily_standup(emulator, "EXDATE;TZID=Europe/London:20260604T090000")
    ids = [i["id"] for i in listing(service, singleEvents=True)]
    assert len(ids) == 4
    assert f"{series['id']}_20260604T080000Z" not in ids
    assert listing(service)[0]["recurrence"][1].startswith("EXDATE")


def test_exdate_in_utc_and_all_day_exdate(emulator: EmulatorClient, service: Any) -> None:
    timed = add_daily_standup(emulator, "EXDATE:20260603T080000Z")
    all_day = emulator.add_event(
        ADA,
        start="2026-06-26",
        end="2026-06-27",
        recurrence=["RRULE:FREQ=DAILY;COUNT=3", "EXDATE;VALUE=DATE:20260627"],
    )
    ids = {i["id"] for i in listing(service, singleEvents=True)}
    assert f"{timed['id']}_20260603T080000Z" not in ids
    assert f"{timed['id']}_20260602T080000Z" in ids
    assert {i for i in ids if i.startswith(all_day["id"])} == {
        f"{all_day['id']}_20260626",
        f"{all_day['id']}_20260628",
    }


def test_rdate_adds_an_instance(emulator: EmulatorClient, service: Any) -> None:
    series = add_daily_standup(emulator, "RDATE;TZID=Europe/London:20260620T140000")
    items = listing(service, singleEvents=True, orderBy="startTime")
    assert len(items) == 6
    extra = items[-1]
    assert extra["id"] == f"{series['id']}_20260620T130000Z"
    assert utc(extra["start"]["dateTime"]) == utc("2026-06-20T13:00:00Z")
    assert utc(extra["end"]["dateTime"]) == utc("2026-06-20T13:30:00Z")


def test_patching_one_instance_creates_an_exception(emulator: EmulatorClient, service: Any) -> None:
    series = add_daily_standup(emulator)
    token = read_pages(service, calendarId="primary")[-1]["nextSyncToken"]
    instance_id = f"{series['id']}_20260603T080000Z"
    patched = (
        service.events()
        .patch(
            calendarId="primary",
            eventId=instance_id,
            body={
                "summary": "late standup",
                "start": {"dateTime": "2026-06-03T11:00:00+01:00", "timeZone": LONDON},
                "end": {"dateTime": "2026-06-03T11:30:00+01:00", "timeZone": LONDON},
            },
        )
        .execute()
    )
    assert patched["id"] == instance_id
    assert patched["recurringEventId"] == series["id"]
    assert patched["iCalUID"] == series["iCalUID"]
    assert utc(patched["originalStartTime"]["dateTime"]) == utc("2026-06-03T08:00:00Z")

    # singleEvents=false: the parent plus the exception
    items = {i["id"]: i for i in listing(service)}
    assert set(items) == {series["id"], instance_id}
    exception = items[instance_id]
    assert exception["recurringEventId"] == series["id"]
    assert utc(exception["originalStartTime"]["dateTime"]) == utc("2026-06-03T08:00:00Z")
    assert items[series["id"]]["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=5"]

    # singleEvents=true: still five instances, one of them moved
    instances = {i["id"]: i for i in listing(service, singleEvents=True)}
    assert len(instances) == 5
    assert instances[instance_id]["summary"] == "late standup"
    assert utc(instances[instance_id]["start"]["dateTime"]) == utc("2026-06-03T10:00:00Z")
    assert instances[f"{series['id']}_20260604T080000Z"]["summary"] == "standup"

    # incremental: exactly the exception
    changed = listing(service, syncToken=token)
    assert [i["id"] for i in changed] == [instance_id]

    # get by the instance id returns the exception
    fetched = service.events().get(calendarId="primary", eventId=instance_id).execute()
    assert fetched["summary"] == "late standup"


def test_deleting_one_instance_leaves_a_cancelled_entry(
    emulator: EmulatorClient, service: Any
) -> None:
    series = add_daily_standup(emulator)
    instance_id = f"{series['id']}_20260604T080000Z"
    service.events().delete(calendarId="primary", eventId=instance_id).execute()
    live = listing(service, singleEvents=True)
    assert len(live) == 4 and instance_id not in {i["id"] for i in live}
    everything = {i["id"]: i for i in listing(service, singleEvents=True, showDeleted=True)}
    cancelled = everything[instance_id]
    assert cancelled["status"] == "cancelled"
    assert cancelled["recurringEventId"] == series["id"]
    assert utc(cancelled["originalStartTime"]["dateTime"]) == utc("2026-06-04T08:00:00Z")
    # singleEvents=false with showDeleted: the parent and the cancelled exception
    parent_view = {i["id"]: i for i in listing(service, showDeleted=True)}
    assert parent_view[instance_id]["status"] == "cancelled"
    assert parent_view[series["id"]]["status"] == "confirmed"


def test_events_instances(emulator: EmulatorClient, service: Any) -> None:
    series = add_daily_standup(emulator, count=10)
    service.events().delete(
        calendarId="primary", eventId=f"{series['id']}_20260605T080000Z"
    ).execute()
    response = service.events().instances(calendarId="primary", eventId=series["id"]).execute()
    ids = [i["id"] for i in response["items"]]
    assert len(ids) == 9
    assert f"{series['id']}_20260605T080000Z" not in ids
    assert all(i["recurringEventId"] == series["id"] for i in response["items"])
    assert {i["iCalUID"] for i in response["items"]} == {series["iCalUID"]}
    window = (
        service.events()
        .instances(
            calendarId="primary",
            eventId=series["id"],
            timeMin="2026-06-03T08:15:00Z",  # after the 3rd's start, before its end: kept
            timeMax="2026-06-07T08:00:00Z",  # the 7th starts at timeMax: excluded
        )
        .execute()
    )
    assert [i["id"] for i in window["items"]] == [
        f"{series['id']}_2026060{d}T080000Z" for d in (3, 4, 6)
    ]
    with_deleted = (
        service.events()
        .instances(calendarId="primary", eventId=series["id"], showDeleted=True)
        .execute()
    )
    assert len(with_deleted["items"]) == 10


def test_deleting_the_series_cancels_it(emulator: EmulatorClient, service: Any) -> None:
    series = add_daily_standup(emulator)
    tokens = {
        single: read_pages(service, calendarId="primary", singleEvents=single)[-1]["nextSyncToken"]
        for single in (False, True)
    }
    instance_ids = {i["id"] for i in listing(service, singleEvents=True)}
    service.events().delete(calendarId="primary", eventId=series["id"]).execute()
    assert listing(service) == []
    assert listing(service, singleEvents=True) == []
    for single, token in tokens.items():
        changed = listing(service, syncToken=token, singleEvents=single)
        assert {i["status"] for i in changed} == {"cancelled"}
        ids = {i["id"] for i in changed}
        if single:
            assert instance_ids <= ids  # every instance a client holds is cancelled
        else:
            assert series["id"] in ids


def test_deleting_the_series_cancels_its_exceptions(emulator: EmulatorClient, service: Any) -> None:
    series = add_daily_standup(emulator)
    moved_id = f"{series['id']}_20260603T080000Z"
    service.events().patch(
        calendarId="primary",
        eventId=moved_id,
        body={
            "start": {"dateTime": "2026-06-03T15:00:00Z"},
            "end": {"dateTime": "2026-06-03T16:00:00Z"},
        },
    ).execute()
    token = read_pages(service, calendarId="primary")[-1]["nextSyncToken"]
    service.events().delete(calendarId="primary", eventId=series["id"]).execute()
    assert listing(service) == []
    assert listing(service, singleEvents=True) == []
    changed = {i["id"]: i for i in listing(service, syncToken=token)}
    assert changed[series["id"]]["status"] == "cancelled"
    assert changed[moved_id]["status"] == "cancelled"
    assert changed[moved_id]["recurringEventId"] == series["id"]
    busy = (
        service.freebusy()
        .query(
            body={
                "timeMin": "2026-06-01T00:00:00Z",
                "timeMax": "2026-06-08T00:00:00Z",
                "items": [{"id": ADA}],
            }
        )
        .execute()
    )
    assert busy["calendars"][ADA]["busy"] == []


def test_events_instances_pages(emulator: EmulatorClient, service: Any) -> None:
    series = add_daily_standup(emulator, count=10)
    request = service.events().instances(calendarId="primary", eventId=series["id"], maxResults=3)
    pages: list[dict[str, Any]] = []
    while request is not None and len(pages) < 10:
        response = request.execute()
        pages.append(response)
        request = service.events().instances_next(request, response)
    assert [len(p["items"]) for p in pages] == [3, 3, 3, 1]
    assert all("nextPageToken" in p for p in pages[:-1]) and "nextPageToken" not in pages[-1]
    ids = [i["id"] for p in pages for i in p["items"]]
    assert len(set(ids)) == 10


def test_recurring_timed_event_needs_a_time_zone(service: Any) -> None:
    with pytest.raises(HttpError) as caught:
        service.events().insert(
            calendarId="primary",
            body={
                "start": {"dateTime": "2026-06-02T09:00:00+01:00"},
                "end": {"dateTime": "2026-06-02T09:30:00+01:00"},
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"],
            },
        ).execute()
    assert caught.value.resp.status == 400


def test_single_events_window_filters_instances(emulator: EmulatorClient, service: Any) -> None:
    series = add_daily_standup(emulator, count=10)
    ids = [
        i["id"]
        for i in listing(
            service,
            singleEvents=True,
            timeMin="2026-06-04T08:30:00Z",  # the 4th ends here: excluded
            timeMax="2026-06-06T08:00:00Z",  # the 6th starts here: excluded
        )
    ]
    assert ids == [f"{series['id']}_20260605T080000Z"]
    # singleEvents=false: the parent is listed when any instance overlaps
    assert [
        i["id"]
        for i in listing(service, timeMin="2026-06-05T08:00:00Z", timeMax="2026-06-05T08:10:00Z")
    ] == [series["id"]]
    assert listing(service, timeMin="2026-06-20T00:00:00Z", timeMax="2026-06-21T00:00:00Z") == []
