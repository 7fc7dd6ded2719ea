"""All-day events: start.date / end.date (end exclusive), and instants at midnight in
the calendar's time zone, checked through freeBusy in UTC for calendars in
America/Los_Angeles (incl. both DST changes) and Asia/Tokyo."""

from __future__ import annotations

from typing import Any

from calcache.emulator.client import EmulatorClient
from tests.calcache.emulator.helpers import items_of, read_pages, utc

LEE = "lee@example.com"  # America/Los_Angeles
KENJI = "kenji@example.com"  # Asia/Tokyo


def busy_utc(service: Any, calendar_id: str, time_min: str, time_max: str) -> list[tuple[Any, Any]]:
    response = (
        service.freebusy()
        .query(
            body={
                "timeMin": time_min,
                "timeMax": time_max,
                "timeZone": "UTC",
                "items": [{"id": calendar_id}],
            }
        )
        .execute()
    )
    return [(utc(b["start"]), utc(b["end"])) for b in response["calendars"][calendar_id]["busy"]]


def test_all_day_event_uses_dates_and_calendar_time_zone(
    emulator: EmulatorClient, make_service: Any
) -> None:
    service = make_service(LEE, time_zone="America/Los_Angeles")
    event = emulator.add_event(LEE, start="2026-06-10", end="2026-06-11", summary="offsite")
    pages = read_pages(service, calendarId="primary")
    assert pages[0]["timeZone"] == "America/Los_Angeles"
    (item,) = items_of(pages)
    assert item["id"] == event["id"]
    assert item["start"] == {"date": "2026-06-10"}
    assert item["end"] == {"date": "2026-06-11"}
    fetched = service.events().get(calendarId="primary", eventId=event["id"]).execute()
    assert fetched["start"] == {"date": "2026-06-10"} and "dateTime" not in fetched["end"]


def test_all_day_busy_starts_at_los_angeles_midnight(
    emulator: EmulatorClient, make_service: Any
) -> None:
    service = make_service(LEE, time_zone="America/Los_Angeles")
    emulator.add_event(LEE, start="2026-06-10", end="2026-06-11")
    assert busy_utc(service, LEE, "2026-06-08T00:00:00Z", "2026-06-13T00:00:00Z") == [
        (utc("2026-06-10T07:00:00Z"), utc("2026-06-11T07:00:00Z"))
    ]


def test_all_day_busy_starts_at_tokyo_midnight(emulator: EmulatorClient, make_service: Any) -> None:
    service = make_service(KENJI, time_zone="Asia/Tokyo")
    emulator.add_event(KENJI, start="2026-06-10", end="2026-06-11")
    assert busy_utc(service, KENJI, "2026-06-08T00:00:00Z", "2026-06-13T00:00:00Z") == [
        (utc("2026-06-09T15:00:00Z"), utc("2026-06-10T15:00:00Z"))
    ]


def test_secondary_calendar_time_zone_wins_over_the_owners(
    emulator: EmulatorClient, make_service: Any
) -> None:
    service = make_service(LEE, time_zone="America/Los_Angeles")
    tokyo = emulator.add_calendar(
        LEE, calendar_id="tokyo@group.calendar.google.com", time_zone="Asia/Tokyo"
    )["id"]
    emulator.add_event(tokyo, start="2026-06-10", end="2026-06-11")
    assert busy_utc(service, tokyo, "2026-06-08T00:00:00Z", "2026-06-13T00:00:00Z") == [
        (utc("2026-06-09T15:00:00Z"), utc("2026-06-10T15:00:00Z"))
    ]


def test_all_day_event_across_spring_forward(emulator: EmulatorClient, make_service: Any) -> None:
    # Los Angeles switches to PDT on 2026-03-08: the span is 71 hours, not 72.
    service = make_service(LEE, time_zone="America/Los_Angeles")
    emulator.add_event(LEE, start="2026-03-07", end="2026-03-10")
    assert busy_utc(service, LEE, "2026-03-01T00:00:00Z", "2026-03-15T00:00:00Z") == [
        (utc("2026-03-07T08:00:00Z"), utc("2026-03-10T07:00:00Z"))
    ]


def test_all_day_event_across_fall_back(emulator: EmulatorClient, make_service: Any) -> None:
    # Los Angeles returns to PST on 2026-11-01: the span is 49 hours.
    service = make_service(LEE, time_zone="America/Los_Angeles")
    emulator.add_event(LEE, start="2026-10-31", end="2026-11-02")
    assert busy_utc(service, LEE, "2026-10-25T00:00:00Z", "2026-11-05T00:00:00Z") == [
        (utc("2026-10-31T07:00:00Z"), utc("2026-11-02T08:00:00Z"))
    ]


def test_recurring_all_day_event_follows_local_midnight_across_dst(
    emulator: EmulatorClient, make_service: Any
) -> None:
    service = make_service(LEE, time_zone="America/Los_Angeles")
    emulator.add_event(
        LEE, start="2026-02-28", end="2026-03-01", recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"]
    )
    assert busy_utc(service, LEE, "2026-02-20T00:00:00Z", "2026-03-20T00:00:00Z") == [
        (utc("2026-02-28T08:00:00Z"), utc("2026-03-01T08:00:00Z")),
        (utc("2026-03-07T08:00:00Z"), utc("2026-03-08T08:00:00Z")),
        (utc("2026-03-14T07:00:00Z"), utc("2026-03-15T07:00:00Z")),
    ]
