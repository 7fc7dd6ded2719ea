"""Version fields: etag changes on every change, updated is the last modification time,
sequence increments when the times change, iCalUID stays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from calcache.emulator.client import EmulatorClient
from tests.calcache.emulator.helpers import ADA, NOW, items_of, read_pages, utc

START = "2026-06-02T10:00:00Z"
END = "2026-06-02T11:00:00Z"


def insert(service: Any, **fields: Any) -> dict[str, Any]:
    body = {"summary": "review", "start": {"dateTime": START}, "end": {"dateTime": END}}
    body.update(fields)
    return dict(service.events().insert(calendarId="primary", body=body).execute())


def test_etag_and_updated_change_on_every_change(emulator: EmulatorClient, service: Any) -> None:
    event = insert(service)
    assert event["etag"] and utc(event["updated"]) == NOW
    etags = [event["etag"]]
    updates = [utc(event["updated"])]
    changes = [
        {"summary": "review 2"},
        {"description": "agenda"},
        {"transparency": "transparent"},
        {
            "start": {"dateTime": "2026-06-02T12:00:00Z"},
            "end": {"dateTime": "2026-06-02T13:00:00Z"},
        },
    ]
    for change in changes:
        emulator.advance_clock(timedelta(minutes=5))
        event = service.events().patch(calendarId="primary", eventId=event["id"], body=change)
        event = event.execute()
        etags.append(event["etag"])
        updates.append(utc(event["updated"]))
    assert len(set(etags)) == len(etags)
    assert updates == [NOW + timedelta(minutes=5 * n) for n in range(len(updates))]
    # the listing shows the latest version
    (listed,) = items_of(read_pages(service, calendarId="primary"))
    assert listed["etag"] == etags[-1] and utc(listed["updated"]) == updates[-1]


def test_etag_changes_even_within_the_same_millisecond(service: Any) -> None:
    event = insert(service)  # the clock is frozen: updated cannot move, etag must
    etags = {event["etag"]}
    for n in range(3):
        event = (
            service.events()
            .patch(calendarId="primary", eventId=event["id"], body={"summary": f"v{n}"})
            .execute()
        )
        etags.add(event["etag"])
    assert len(etags) == 4


def test_deleting_changes_the_etag(emulator: EmulatorClient, service: Any) -> None:
    event = insert(service)
    service.events().delete(calendarId="primary", eventId=event["id"]).execute()
    (cancelled,) = items_of(read_pages(service, calendarId="primary", showDeleted=True))
    assert cancelled["status"] == "cancelled" and cancelled["etag"] != event["etag"]


def test_sequence_increments_on_time_changes_only(service: Any) -> None:
    event = insert(service)
    assert event["sequence"] == 0
    uid = event["iCalUID"]
    event = (
        service.events()
        .patch(calendarId="primary", eventId=event["id"], body={"summary": "renamed"})
        .execute()
    )
    assert event["sequence"] == 0
    event = (
        service.events()
        .patch(
            calendarId="primary",
            eventId=event["id"],
            body={"end": {"dateTime": "2026-06-02T11:30:00Z"}},
        )
        .execute()
    )
    assert event["sequence"] == 1
    # get, modify, update (PUT) round-trips the current sequence: it still increments
    fetched = service.events().get(calendarId="primary", eventId=event["id"]).execute()
    fetched["start"] = {"dateTime": "2026-06-03T10:00:00Z"}
    fetched["end"] = {"dateTime": "2026-06-03T11:00:00Z"}
    event = service.events().update(calendarId="primary", eventId=event["id"], body=fetched)
    event = event.execute()
    assert event["sequence"] == 2
    assert event["iCalUID"] == uid


def test_exception_gets_its_own_etag_and_sequence(emulator: EmulatorClient, service: Any) -> None:
    series = emulator.add_event(
        ADA,
        start="2026-06-02T09:00:00",
        end="2026-06-02T09:30:00",
        time_zone="Europe/London",
        recurrence=["RRULE:FREQ=DAILY;COUNT=3"],
    )
    instance_id = f"{series['id']}_20260603T080000Z"
    before = service.events().get(calendarId="primary", eventId=instance_id).execute()
    after = (
        service.events()
        .patch(
            calendarId="primary",
            eventId=instance_id,
            body={
                "start": {"dateTime": "2026-06-03T10:00:00Z"},
                "end": {"dateTime": "2026-06-03T10:30:00Z"},
            },
        )
        .execute()
    )
    assert after["etag"] != before["etag"]
    assert after["sequence"] == before["sequence"] + 1
    assert after["iCalUID"] == series["iCalUID"]
