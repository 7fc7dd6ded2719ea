"""Out-of-range and malformed input: 400 in Google's error shape, never a 500 (issue 15).

Windows at year 0001 or 9999, offsets that push the UTC conversion past either end,
timeMin after timeMax, timestamps that are not RFC 3339, integers beyond int32 and
bodies of the wrong shape, through freeBusy, events.list, instances and watch."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from werkzeug.test import Client as WsgiClient

from calcache.emulator.app import EmulatorApp
from calcache.emulator.client import EmulatorClient
from calcache.emulator.state import EmulatorState
from tests.calcache.emulator.helpers import ADA

Answer = tuple[int, dict[str, Any]]

OUT_OF_RANGE_WINDOWS = [
    pytest.param("0001-01-01T00:00:00Z", "0001-01-08T00:00:00Z", id="year-0001"),
    pytest.param("9999-12-01T00:00:00Z", "9999-12-08T00:00:00Z", id="year-9999"),
    pytest.param("9999-12-24T00:00:00Z", "9999-12-31T23:59:59Z", id="year-9999-end"),
    pytest.param("0001-01-01T00:00:00+14:00", "0001-01-02T00:00:00Z", id="offset-before-year-1"),
    pytest.param("9999-12-31T00:00:00Z", "9999-12-31T23:59:59-14:00", id="offset-past-9999"),
    pytest.param("0099-12-31T00:00:00Z", "0100-01-02T00:00:00Z", id="just-before-range"),
]
MALFORMED = [
    "x",
    "",
    "2026-06-02",
    "20260602T000000Z",
    "2026-W23-2T00:00:00Z",
    "2026-06-02T00:00Z",
    "2026-06-02T00:00:00+0100",
    "2026-06-02T00:00:00",
    "2026-13-02T00:00:00Z",
    "2026-06-31T00:00:00Z",
    "2026-06-02T24:00:00Z",
    "2026-06-02T00:00:00+24:00",
    "2026-06-02 00:00:00Z",
    "2026-06-02T00:00:00Z\x00",
    "+2026-06-02T00:00:00Z",
    "2026-06-02T00:00:00Z" * 250,
]


@pytest.fixture
def ada(emulator: EmulatorClient, clock: datetime) -> str:
    """Ada's access token; her calendar has a weekly series, an all-day series and an event."""
    token = emulator.add_account(ADA, time_zone="Europe/London")
    emulator.add_event(ADA, start="2026-06-02T09:00:00Z", end="2026-06-02T10:00:00Z")
    emulator.add_event(
        ADA,
        start={"dateTime": "2026-06-01T08:00:00", "timeZone": "Europe/London"},
        end={"dateTime": "2026-06-01T08:30:00", "timeZone": "Europe/London"},
        recurrence=["RRULE:FREQ=WEEKLY"],
    )
    emulator.add_event(ADA, start="2026-06-03", end="2026-06-04", recurrence=["RRULE:FREQ=DAILY"])
    return str(token["token"])


def call(
    emulator: EmulatorClient,
    token: str,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    body: Any = None,
    raw: bytes | None = None,
) -> Answer:
    url = emulator.api_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def freebusy(emulator: EmulatorClient, token: str, time_min: str, time_max: str) -> Answer:
    body = {"timeMin": time_min, "timeMax": time_max, "items": [{"id": ADA}]}
    return call(emulator, token, "POST", "freeBusy", body=body)


def list_events(emulator: EmulatorClient, token: str, **params: str) -> Answer:
    return call(emulator, token, "GET", "calendars/primary/events", params=params)


def assert_google_400(answer: Answer, *reasons: str) -> dict[str, Any]:
    status, body = answer
    assert status == 400, body
    error = body["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert error["errors"][0]["reason"] in (reasons or ("badRequest",))
    assert error["message"] == error["errors"][0]["message"]
    return dict(error)


@pytest.mark.parametrize(("time_min", "time_max"), OUT_OF_RANGE_WINDOWS)
def test_freebusy_window_out_of_range_is_400(
    emulator: EmulatorClient, ada: str, time_min: str, time_max: str
) -> None:
    error = assert_google_400(freebusy(emulator, ada, time_min, time_max))
    assert "out of range" in error["message"]


@pytest.mark.parametrize(("time_min", "time_max"), OUT_OF_RANGE_WINDOWS)
@pytest.mark.parametrize("single_events", ["true", "false"])
def test_events_list_window_out_of_range_is_400(
    emulator: EmulatorClient, ada: str, time_min: str, time_max: str, single_events: str
) -> None:
    answer = list_events(
        emulator, ada, timeMin=time_min, timeMax=time_max, singleEvents=single_events
    )
    assert "out of range" in assert_google_400(answer)["message"]


@pytest.mark.parametrize("name", ["timeMin", "timeMax", "updatedMin"])
@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00"])
def test_one_events_list_bound_out_of_range_is_400(
    emulator: EmulatorClient, ada: str, name: str, value: str
) -> None:
    assert_google_400(list_events(emulator, ada, **{name: value, "singleEvents": "true"}))


@pytest.mark.parametrize("value", MALFORMED)
def test_malformed_rfc3339_is_400(emulator: EmulatorClient, ada: str, value: str) -> None:
    later = "2026-06-09T00:00:00Z"
    assert_google_400(freebusy(emulator, ada, value, later))
    if value:  # an empty parameter is an absent one in events.list
        assert_google_400(list_events(emulator, ada, timeMin=value, timeMax=later))


@pytest.mark.parametrize(
    "value",
    ["2026-06-02t00:00:00z", "2026-06-02T00:00:00.123456789Z", "2026-06-02T01:00:00+01:00"],
)
def test_rfc3339_forms_google_accepts(emulator: EmulatorClient, ada: str, value: str) -> None:
    status, body = freebusy(emulator, ada, value, "2026-06-09T00:00:00Z")
    assert status == 200, body
    assert body["calendars"][ADA]["busy"]


def test_time_min_after_time_max_is_time_range_empty(emulator: EmulatorClient, ada: str) -> None:
    later, earlier = "2026-06-09T00:00:00Z", "2026-06-02T00:00:00Z"
    assert_google_400(freebusy(emulator, ada, later, earlier), "timeRangeEmpty")
    assert_google_400(list_events(emulator, ada, timeMin=later, timeMax=earlier), "timeRangeEmpty")
    _, listing = list_events(emulator, ada)
    series = next(item["id"] for item in listing["items"] if item.get("recurrence"))
    answer = call(
        emulator,
        ada,
        "GET",
        f"calendars/primary/events/{series}/instances",
        params={"timeMin": later, "timeMax": earlier},
    )
    assert_google_400(answer, "timeRangeEmpty")


@pytest.mark.parametrize(
    ("time_min", "time_max"),
    [("0001-01-01T00:00:00Z", "0001-02-01T00:00:00Z"), ("9999-12-01T00:00:00Z", "2026-06-01")],
)
def test_instances_window_out_of_range_is_400(
    emulator: EmulatorClient, ada: str, time_min: str, time_max: str
) -> None:
    _, listing = list_events(emulator, ada)
    series = next(item["id"] for item in listing["items"] if item.get("recurrence"))
    answer = call(
        emulator,
        ada,
        "GET",
        f"calendars/primary/events/{series}/instances",
        params={"timeMin": time_min, "timeMax": time_max},
    )
    assert_google_400(answer)


def test_windows_at_the_edges_of_the_range_are_answered(
    emulator: EmulatorClient, clock: datetime
) -> None:
    # Bob has no endless series: expanding a daily one up to year 9899 takes minutes.
    bob = str(emulator.add_account("bob@example.com")["token"])
    emulator.add_event("bob@example.com", start="0100-01-02T09:00:00Z", end="0100-01-02T10:00:00Z")
    for time_min, time_max in [
        ("0100-01-01T00:00:00Z", "0100-01-08T00:00:00Z"),
        ("9899-12-24T00:00:00Z", "9899-12-31T23:59:59Z"),
    ]:
        status, body = freebusy(emulator, bob, time_min, time_max)
        assert status == 200, body
        status, body = list_events(emulator, bob, timeMin=time_min, timeMax=time_max)
        assert status == 200, body
    _, early = list_events(emulator, bob, timeMin="0100-01-01T00:00:00Z")
    assert [item["start"]["dateTime"] for item in early["items"]] == ["0100-01-02T09:00:00Z"]


@pytest.mark.parametrize("value", ["2147483648", "99999999999999999999999", "9" * 5000, "x", "0"])
def test_giant_or_junk_max_results_is_400(emulator: EmulatorClient, ada: str, value: str) -> None:
    error = assert_google_400(list_events(emulator, ada, maxResults=value), "invalid")
    assert error["errors"][0]["location"] == "maxResults"
    assert len(error["message"]) < 200


def test_max_results_within_int32_is_capped(emulator: EmulatorClient, ada: str) -> None:
    status, body = list_events(emulator, ada, maxResults="2147483647")
    assert status == 200 and len(body["items"]) == 3


@pytest.mark.parametrize(
    "items", ["abc", [1], {"id": ADA}, [{"id": 5}], [None]], ids=["str", "int", "obj", "id", "null"]
)
def test_freebusy_items_of_the_wrong_shape_are_400(
    emulator: EmulatorClient, ada: str, items: Any
) -> None:
    body = {"timeMin": "2026-06-02T00:00:00Z", "timeMax": "2026-06-09T00:00:00Z", "items": items}
    error = assert_google_400(call(emulator, ada, "POST", "freeBusy", body=body), "invalid")
    assert error["errors"][0]["location"] == "items"


def test_a_body_nested_too_deep_is_a_parse_error(emulator: EmulatorClient, ada: str) -> None:
    answer = call(emulator, ada, "POST", "freeBusy", raw=b"[" * 100_000)
    assert_google_400(answer, "parseError")


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ({"dateTime": "0001-01-01T00:00:00Z"}, {"dateTime": "9999-12-31T23:59:59Z"}),
        ({"dateTime": "0001-01-01T00:30:00+01:00"}, {"dateTime": "2026-06-01T00:00:00Z"}),
        ({"dateTime": "0001-01-01T00:00:00", "timeZone": "Pacific/Kiritimati"}, None),
        ({"date": "0001-01-01"}, {"date": "0001-01-02"}),
        ({"date": "9999-12-31"}, {"date": "9999-12-31"}),
    ],
)
def test_events_at_the_ends_of_time_are_400(
    emulator: EmulatorClient, ada: str, start: dict[str, str], end: dict[str, str] | None
) -> None:
    body = {"start": start, "end": end or start, "recurrence": ["RRULE:FREQ=DAILY"]}
    answer = call(emulator, ada, "POST", "calendars/primary/events", body=body)
    assert_google_400(answer, "invalid", "badRequest")


@pytest.mark.parametrize("expiration", ["99999999999999999999999", "-99999999999999999999"])
def test_watch_expiration_beyond_any_date_is_clamped(
    emulator: EmulatorClient, ada: str, clock: datetime, expiration: str
) -> None:
    body = {
        "id": f"channel{len(expiration)}{expiration[0]}",
        "type": "web_hook",
        "address": "https://example.com/hook",
        "expiration": expiration,
    }
    status, channel = call(emulator, ada, "POST", "calendars/primary/events/watch", body=body)
    assert status == 200, channel
    expires = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC)
    assert clock < expires <= datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # 30 days at most


def test_date_arithmetic_overflow_anywhere_is_400_not_500() -> None:
    """The last line of defence: an OverflowError the checks above did not foresee."""

    class Overflowing(EmulatorState):
        def freebusy(self, body: dict[str, Any], *, account: str | None) -> dict[str, Any]:
            raise OverflowError("date value out of range")

    state = Overflowing()
    token = state.add_account(ADA)["access_token"]
    response = WsgiClient(EmulatorApp(state)).post(
        "/calendar/v3/freeBusy", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    body = response.json
    assert response.status_code == 400 and body is not None
    assert body["error"]["errors"][0]["reason"] == "badRequest"
