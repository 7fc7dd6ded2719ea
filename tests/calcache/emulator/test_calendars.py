"""calendars.insert and calendars.delete through google-api-python-client: a secondary
calendar owned by the caller, in its calendar list; deleting it takes its events, its
listing, its sync tokens and its freeBusy answer with it."""

from __future__ import annotations

from typing import Any

import pytest
from googleapiclient.errors import HttpError

from calcache.emulator.client import EmulatorClient
from tests.calcache.emulator.helpers import ADA, reason

BOB = "bob@example.com"
EVENT = {
    "start": {"dateTime": "2026-06-02T09:00:00Z"},
    "end": {"dateTime": "2026-06-02T10:00:00Z"},
}
WINDOW = {"timeMin": "2026-06-02T00:00:00Z", "timeMax": "2026-06-03T00:00:00Z"}


def insert(service: Any, **body: Any) -> dict[str, Any]:
    return dict(service.calendars().insert(body=body).execute())


def listed(service: Any) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in service.calendarList().list().execute()["items"]}


def freebusy_entry(service: Any, calendar_id: str) -> dict[str, Any]:
    body = {**WINDOW, "items": [{"id": calendar_id}]}
    return dict(service.freebusy().query(body=body).execute()["calendars"][calendar_id])


def test_insert_answers_the_calendar_resource(service: Any) -> None:
    created = insert(
        service, summary="Team", description="Our rota", timeZone="America/Los_Angeles"
    )

    assert created["kind"] == "calendar#calendar"
    assert created["id"].endswith("@group.calendar.google.com")
    assert created["etag"].startswith('"')
    assert (created["summary"], created["description"], created["timeZone"]) == (
        "Team",
        "Our rota",
        "America/Los_Angeles",
    )
    assert service.calendars().get(calendarId=created["id"]).execute() == created


def test_the_new_calendar_is_the_callers_own(service: Any) -> None:
    created = insert(service, summary="Team")

    entry = listed(service)[created["id"]]
    assert entry["accessRole"] == "owner" and "primary" not in entry
    assert created["timeZone"] == "Europe/London"  # the account's, when none is given
    service.events().insert(calendarId=created["id"], body=EVENT).execute()
    assert freebusy_entry(service, created["id"]) == {
        "busy": [{"start": "2026-06-02T09:00:00Z", "end": "2026-06-02T10:00:00Z"}]
    }


@pytest.mark.parametrize(
    ("body", "status", "error_reason"),
    [
        ({}, 400, "required"),
        ({"summary": "  "}, 400, "required"),
        ({"summary": 7}, 400, "required"),
        ({"summary": "Team", "timeZone": "Mars/Olympus"}, 400, "invalid"),
        ({"summary": "Team", "timeZone": 7}, 400, "invalid"),
    ],
    ids=["no-summary", "blank-summary", "summary-not-text", "unknown-zone", "zone-not-text"],
)
def test_insert_refuses_a_bad_body(
    service: Any, body: dict[str, Any], status: int, error_reason: str
) -> None:
    before = listed(service)
    with pytest.raises(HttpError) as caught:
        service.calendars().insert(body=body).execute()
    assert caught.value.resp.status == status and reason(caught.value) == error_reason
    assert listed(service) == before


def test_delete_takes_the_calendar_and_everything_in_it(service: Any) -> None:
    calendar_id = insert(service, summary="Scratch")["id"]
    service.events().insert(calendarId=calendar_id, body=EVENT).execute()
    full = service.events().list(calendarId=calendar_id, singleEvents=True).execute()

    assert service.calendars().delete(calendarId=calendar_id).execute() == ""

    assert calendar_id not in listed(service)
    for request in (
        service.calendars().get(calendarId=calendar_id),
        service.events().list(calendarId=calendar_id),
        service.events().list(calendarId=calendar_id, syncToken=full["nextSyncToken"]),
        service.events().insert(calendarId=calendar_id, body=EVENT),
        service.calendars().delete(calendarId=calendar_id),
    ):
        with pytest.raises(HttpError) as caught:
            request.execute()
        assert caught.value.resp.status == 404 and reason(caught.value) == "notFound"
    assert freebusy_entry(service, calendar_id) == {
        "errors": [{"domain": "global", "reason": "notFound"}],
        "busy": [],
    }


def test_delete_leaves_the_lists_of_those_it_was_shared_with(
    emulator: EmulatorClient, make_service: Any
) -> None:
    ada = make_service(ADA)
    bob = make_service(BOB)
    calendar_id = insert(ada, summary="Shared")["id"]
    emulator.share_calendar(calendar_id, BOB)
    assert listed(bob)[calendar_id]["accessRole"] == "reader"

    with pytest.raises(HttpError) as caught:  # a reader may not delete it
        bob.calendars().delete(calendarId=calendar_id).execute()
    assert caught.value.resp.status == 403 and reason(caught.value) == "forbidden"

    ada.calendars().delete(calendarId=calendar_id).execute()
    assert calendar_id not in listed(bob)
    assert freebusy_entry(bob, calendar_id)["errors"][0]["reason"] == "notFound"


@pytest.mark.parametrize("calendar_id", ["primary", ADA])
def test_the_primary_calendar_cannot_be_deleted(service: Any, calendar_id: str) -> None:
    with pytest.raises(HttpError) as caught:
        service.calendars().delete(calendarId=calendar_id).execute()
    assert caught.value.resp.status == 400
    assert reason(caught.value) == "cannotDeletePrimaryCalendar"
    assert ADA in listed(service)


def test_delete_stops_the_calendars_channels(service: Any) -> None:
    calendar_id = insert(service, summary="Watched")["id"]
    body = {"id": "chan-1", "type": "web_hook", "address": "http://127.0.0.1:9/hook"}
    channel = service.events().watch(calendarId=calendar_id, body=body).execute()

    service.calendars().delete(calendarId=calendar_id).execute()

    stop = {"id": channel["id"], "resourceId": channel["resourceId"]}
    with pytest.raises(HttpError) as caught:  # nothing left to stop
        service.channels().stop(body=stop).execute()
    assert caught.value.resp.status == 404
