"""freebusy.query: merged and sorted busy intervals; cancelled, transparent and
self-declined events do not block time, tentative ones do; per-calendar notFound
inside a 200, and injected per-calendar errors (``fail_freebusy``) likewise;
timeRangeTooLong past ~3 months; at most 50 calendars."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from calcache.emulator.client import EmulatorClient, EmulatorError
from tests.calcache.emulator.helpers import ADA, NOW, reason, rfc3339, utc

DAY = datetime.fromisoformat("2026-06-02T00:00:00+00:00")


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def query(
    service: Any, ids: list[str], start: datetime = DAY, end: datetime | None = None, **extra: Any
) -> dict[str, Any]:
    body = {
        "timeMin": rfc3339(start),
        "timeMax": rfc3339(end or start + timedelta(days=1)),
        "items": [{"id": i} for i in ids],
        **extra,
    }
    return dict(service.freebusy().query(body=body).execute())


def busy(service: Any, calendar_id: str = ADA, **kwargs: Any) -> list[tuple[datetime, datetime]]:
    response = query(service, [calendar_id], **kwargs)
    assert response["kind"] == "calendar#freeBusy"
    entry = response["calendars"][calendar_id]
    assert "errors" not in entry, entry
    return [(utc(b["start"]), utc(b["end"])) for b in entry["busy"]]


def test_busy_intervals_are_merged_and_sorted(emulator: EmulatorClient, service: Any) -> None:
    for start, end in [(13, 14), (9.5, 11), (9, 10), (11, 11.5), (16, 17), (16.25, 16.75)]:
        emulator.add_event(ADA, start=at(start), end=at(end))
    assert busy(service) == [(at(9), at(11.5)), (at(13), at(14)), (at(16), at(17))]


def test_busy_is_clipped_to_the_window(emulator: EmulatorClient, service: Any) -> None:
    emulator.add_event(ADA, start=at(-2), end=at(1))
    emulator.add_event(ADA, start=at(23), end=at(26))
    assert busy(service) == [(at(0), at(1)), (at(23), at(24))]


def test_cancelled_events_do_not_block_time(emulator: EmulatorClient, service: Any) -> None:
    deleted = emulator.add_event(ADA, start=at(9), end=at(10))
    service.events().delete(calendarId="primary", eventId=deleted["id"]).execute()
    emulator.add_event(ADA, start=at(11), end=at(12), status="cancelled")
    emulator.add_event(ADA, start=at(13), end=at(14))
    assert busy(service) == [(at(13), at(14))]


def test_cancelled_instance_does_not_block_time(emulator: EmulatorClient, service: Any) -> None:
    series = emulator.add_event(
        ADA, start=at(9), end=at(10), time_zone="UTC", recurrence=["RRULE:FREQ=DAILY;COUNT=3"]
    )
    service.events().delete(
        calendarId="primary", eventId=f"{series['id']}_20260603T090000Z"
    ).execute()
    assert busy(service, end=DAY + timedelta(days=3)) == [
        (at(9), at(10)),
        (at(24 + 24 + 9), at(24 + 24 + 10)),
    ]


def test_transparent_events_do_not_block_time(emulator: EmulatorClient, service: Any) -> None:
    emulator.add_event(ADA, start=at(9), end=at(10), transparency="transparent")
    emulator.add_event(ADA, start=at(11), end=at(12), transparency="opaque")
    assert busy(service) == [(at(11), at(12))]


def test_events_the_owner_declined_do_not_block_time(
    emulator: EmulatorClient, service: Any
) -> None:
    emulator.add_event(
        ADA,
        start=at(9),
        end=at(10),
        attendees=[
            {"email": "bob@example.com", "responseStatus": "accepted"},
            {"email": ADA, "responseStatus": "declined"},
        ],
    )
    emulator.add_event(
        ADA,
        start=at(11),
        end=at(12),
        attendees=[
            {"email": "bob@example.com", "responseStatus": "declined"},
            {"email": ADA, "responseStatus": "accepted"},
        ],
    )
    emulator.add_event(
        ADA, start=at(13), end=at(14), attendees=[{"email": ADA, "responseStatus": "needsAction"}]
    )
    assert busy(service) == [(at(11), at(12)), (at(13), at(14))]
    # the listing marks the owner's attendee entry self: true
    items = (
        service.events()
        .list(calendarId="primary", orderBy="startTime", singleEvents=True)
        .execute()["items"]
    )
    mine = [a for a in items[0]["attendees"] if a["email"] == ADA]
    assert mine == [{"email": ADA, "responseStatus": "declined", "self": True}]


def test_tentative_events_block_time(emulator: EmulatorClient, service: Any) -> None:
    emulator.add_event(ADA, start=at(9), end=at(10), status="tentative")
    emulator.add_event(
        ADA, start=at(11), end=at(12), attendees=[{"email": ADA, "responseStatus": "tentative"}]
    )
    assert busy(service) == [(at(9), at(10)), (at(11), at(12))]


def test_unknown_calendar_is_not_found_inside_a_200(
    emulator: EmulatorClient, make_service: Any
) -> None:
    service = make_service(ADA)
    make_service("bob@example.com")
    emulator.add_event(ADA, start=at(9), end=at(10))
    response = query(service, [ADA, "nobody@example.com", "bob@example.com"])
    calendars = response["calendars"]
    assert [(utc(b["start"]), utc(b["end"])) for b in calendars[ADA]["busy"]] == [(at(9), at(10))]
    for missing in ("nobody@example.com", "bob@example.com"):  # bob's is not shared
        assert calendars[missing]["errors"] == [{"domain": "global", "reason": "notFound"}]
        assert calendars[missing]["busy"] == []
    emulator.share_calendar("bob@example.com", ADA)
    assert "errors" not in query(service, ["bob@example.com"])["calendars"]["bob@example.com"]


@pytest.mark.parametrize("error_reason", ["internalError", "backendError", "notFound"])
def test_an_injected_calendar_error_is_that_entry_inside_a_200(
    emulator: EmulatorClient, make_service: Any, error_reason: str
) -> None:
    service = make_service(ADA)
    make_service("bob@example.com")
    emulator.share_calendar("bob@example.com", ADA)
    emulator.add_event(ADA, start=at(9), end=at(10))
    emulator.add_event("bob@example.com", start=at(11), end=at(12))
    emulator.fail_freebusy(ADA, reason=error_reason)

    response = query(service, [ADA, "bob@example.com"])

    assert response["calendars"][ADA] == {
        "errors": [{"domain": "global", "reason": error_reason}],
        "busy": [],
    }
    bob = response["calendars"]["bob@example.com"]
    assert [(utc(b["start"]), utc(b["end"])) for b in bob["busy"]] == [(at(11), at(12))]
    assert busy(service) == [(at(9), at(10))]  # one answer used the one fault


def test_calendar_errors_count_answers_listing_the_calendar_and_clear(
    emulator: EmulatorClient, make_service: Any
) -> None:
    service = make_service(ADA)
    make_service("bob@example.com")
    emulator.share_calendar("bob@example.com", ADA)
    emulator.fail_freebusy(ADA, count=2)
    emulator.fail_next(path="/events")  # a request fault is not used by freeBusy entries
    query(service, ["bob@example.com"])  # does not list ADA: nothing used
    for _ in range(2):
        errors = query(service, [ADA])["calendars"][ADA]["errors"]
        assert errors == [{"domain": "global", "reason": "backendError"}]
    assert busy(service) == []
    with pytest.raises(HttpError):  # the request fault is still there
        service.events().list(calendarId=ADA).execute()
    emulator.fail_freebusy(ADA, count=5)
    emulator.clear_faults()
    assert busy(service) == []


def test_a_calendar_error_fault_names_its_calendar(emulator: EmulatorClient) -> None:
    with pytest.raises(EmulatorError) as caught:
        emulator.fail_next(kind="freebusy", reason="backendError")
    assert caught.value.status == 400 and "calendar_id" in caught.value.body


def test_several_calendars_in_one_query(emulator: EmulatorClient, service: Any) -> None:
    team = emulator.add_calendar(ADA, calendar_id="team@group.calendar.google.com")["id"]
    emulator.add_event(ADA, start=at(9), end=at(10))
    emulator.add_event(team, start=at(10), end=at(11))
    calendars = query(service, [ADA, team])["calendars"]
    assert [utc(b["start"]) for b in calendars[ADA]["busy"]] == [at(9)]
    assert [utc(b["start"]) for b in calendars[team]["busy"]] == [at(10)]


def test_range_up_to_about_three_months_is_accepted(service: Any) -> None:
    response = query(service, [ADA], start=NOW, end=NOW + timedelta(days=90))
    assert response["calendars"][ADA]["busy"] == []


@pytest.mark.parametrize("days", [100, 365])
def test_range_over_three_months_is_time_range_too_long(service: Any, days: int) -> None:
    with pytest.raises(HttpError) as caught:
        query(service, [ADA], start=NOW, end=NOW + timedelta(days=days))
    assert caught.value.resp.status == 400
    assert reason(caught.value) == "timeRangeTooLong"


def test_empty_range_is_rejected(service: Any) -> None:
    with pytest.raises(HttpError) as caught:
        query(service, [ADA], start=NOW, end=NOW)
    assert caught.value.resp.status == 400
    assert reason(caught.value) == "timeRangeEmpty"


def test_at_most_50_calendars(emulator: EmulatorClient, service: Any) -> None:
    ids = [ADA] + [
        emulator.add_calendar(ADA, calendar_id=f"c{n:02d}@group.calendar.google.com")["id"]
        for n in range(49)
    ]
    assert len(query(service, ids)["calendars"]) == 50
    with pytest.raises(HttpError) as caught:
        query(service, [*ids, "one-more@group.calendar.google.com"])
    assert caught.value.resp.status == 400
