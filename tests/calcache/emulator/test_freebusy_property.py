"""Property: the emulator's freeBusy (through google-api-python-client) equals a
brute-force, minute-by-minute busy computation done here from the event definitions.

Calendars are in a non-UTC time zone and the window (five days) holds a DST change
(Tokyo has none). Events: timed, all-day, recurring daily/weekly with COUNT and
maybe an EXDATE (timed and all-day), transparent, declined by the owner, tentative,
cancelled by deleting the event or one instance, and one instance moved by a patch
(an exception). The oracle works on wall-clock arithmetic and zoneinfo only; it
shares no code with the emulator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calcache.emulator.client import EmulatorClient
from calcache.emulator.server import EmulatorServer
from tests.calcache.emulator.helpers import NOW, build_service, rfc3339, utc

OWNER = "prop@example.com"
MINUTE = timedelta(minutes=1)

# (time zone, a day with a DST change in it, or any day for Tokyo)
ZONES = [
    ("America/Los_Angeles", date(2026, 3, 8)),
    ("America/Los_Angeles", date(2026, 11, 1)),
    ("Europe/London", date(2026, 3, 29)),
    ("Europe/London", date(2026, 10, 25)),
    ("Australia/Sydney", date(2026, 4, 5)),
    ("Australia/Sydney", date(2026, 10, 4)),
    ("Asia/Tokyo", date(2026, 6, 10)),
]


@dataclass
class Spec:
    kind: str  # "timed" | "all_day" | "recurring" | "recurring_all_day"
    # timed: start (aware, UTC) and length; recurring: first start as a naive wall time
    # in ``time_zone``, and length
    start: datetime | None = None
    length: timedelta = timedelta(0)
    # all-day (single or recurring): first day and number of days
    day: date | None = None
    days: int = 1
    time_zone: str = "UTC"  # the event's own zone (timed recurring)
    step_days: int = 1  # DAILY: 1, WEEKLY: 7
    count: int = 1
    exdate: int | None = None  # index of the occurrence removed by EXDATE
    cancel_instance: int | None = None  # index of the occurrence deleted through the API
    move_instance: int | None = None  # index of the occurrence patched to another time
    move_by: int = 0  # minutes (timed) or days (all-day)
    transparent: bool = False
    declined: bool = False
    tentative: bool = False
    deleted: bool = False


@dataclass
class Scenario:
    calendar_tz: str
    lo: datetime
    hi: datetime
    specs: list[Spec]


hours = st.one_of(st.integers(0, 23), st.sampled_from([0, 1, 2, 3, 23]))
minutes = st.one_of(st.integers(0, 59), st.sampled_from([0, 30]))
lengths = st.one_of(st.integers(0, 180), st.integers(0, 2 * 1440)).map(
    lambda m: timedelta(minutes=m)
)


@st.composite
def specs(draw: Any, pivot: date, calendar_tz: str) -> Spec:
    kind = draw(st.sampled_from(["timed", "all_day", "recurring", "recurring_all_day"]))
    spec = Spec(
        kind=kind,
        transparent=draw(st.integers(0, 3)) == 0,
        declined=draw(st.integers(0, 3)) == 0,
        tentative=draw(st.integers(0, 3)) == 0,
        deleted=draw(st.integers(0, 6)) == 0,
    )
    if kind == "timed":
        first = datetime.combine(pivot - timedelta(days=3), time(), UTC)
        spec.start = first + draw(st.integers(0, 7 * 1440)) * MINUTE
        spec.length = draw(lengths)
    elif kind == "all_day":
        spec.day = pivot + timedelta(days=draw(st.integers(-3, 3)))
        spec.days = draw(st.integers(1, 3))
    else:
        spec.step_days = draw(st.sampled_from([1, 7]))
        spec.count = draw(st.integers(1, 6))
        if spec.count > 1 and draw(st.booleans()):
            spec.exdate = draw(st.integers(0, spec.count - 1))
        live = [i for i in range(spec.count) if i != spec.exdate]
        if live and draw(st.integers(0, 2)) == 0:
            spec.cancel_instance = draw(st.sampled_from(live))
        movable = [i for i in live if i != spec.cancel_instance]
        if movable and draw(st.integers(0, 2)) == 0:
            spec.move_instance = draw(st.sampled_from(movable))
        first_day = pivot + timedelta(days=draw(st.integers(-4, 2)))
        if kind == "recurring":
            spec.time_zone = draw(st.sampled_from([calendar_tz, calendar_tz, "UTC"]))
            spec.start = datetime.combine(first_day, time(draw(hours), draw(minutes)))
            spec.length = draw(lengths)
            spec.move_by = draw(st.integers(-600, 600))
        else:
            spec.day = first_day
            spec.days = draw(st.integers(1, 2))
            spec.move_by = draw(st.integers(-2, 2))
    return spec


@st.composite
def scenarios(draw: Any) -> Scenario:
    calendar_tz, pivot = draw(st.sampled_from(ZONES))
    lo = datetime.combine(pivot - timedelta(days=2), time(), UTC)
    hi = lo + timedelta(days=5)
    events = draw(st.lists(specs(pivot, calendar_tz), min_size=0, max_size=8))
    return Scenario(calendar_tz=calendar_tz, lo=lo, hi=hi, specs=events)


# --- the oracle ---------------------------------------------------------------------


def local_midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def first_instant(spec: Spec) -> datetime:
    """A recurring timed event's first start: its wall time in its zone (an hour skipped
    by DST reads with the offset before the gap, as RFC 5545 and PEP 495 fold=0 do)."""
    assert spec.start is not None
    return spec.start.replace(tzinfo=ZoneInfo(spec.time_zone)).astimezone(UTC)


def occurrences(spec: Spec, calendar_tz: str) -> list[tuple[datetime, datetime]]:
    """[start, end) in UTC of every occurrence the definition has (before cancellations);
    all-day events run from midnight to midnight in the calendar's zone."""
    if spec.kind == "timed":
        assert spec.start is not None
        return [(spec.start, spec.start + spec.length)]
    if spec.kind == "all_day":
        assert spec.day is not None
        end_day = spec.day + timedelta(days=spec.days)
        return [(local_midnight(spec.day, calendar_tz), local_midnight(end_day, calendar_tz))]
    result = []
    for k in range(spec.count):
        if spec.kind == "recurring":
            # wall-clock stepping in the event's zone, from the first start's local time
            wall = first_instant(spec).astimezone(ZoneInfo(spec.time_zone)).replace(tzinfo=None)
            wall_k = wall + timedelta(days=k * spec.step_days)
            start = wall_k.replace(tzinfo=ZoneInfo(spec.time_zone)).astimezone(UTC)
            result.append((start, start + spec.length))  # exact duration (RFC 5545)
        else:
            assert spec.day is not None
            day = spec.day + timedelta(days=k * spec.step_days)
            end_day = day + timedelta(days=spec.days)
            result.append((local_midnight(day, calendar_tz), local_midnight(end_day, calendar_tz)))
    return result


def occurrence_day(spec: Spec, index: int) -> date:
    assert spec.day is not None
    return spec.day + timedelta(days=index * spec.step_days)


def moved(spec: Spec, calendar_tz: str) -> tuple[datetime, datetime]:
    """Where the patched instance of a recurring event ends up."""
    assert spec.move_instance is not None
    if spec.kind == "recurring":
        start, end = occurrences(spec, calendar_tz)[spec.move_instance]
        shift = spec.move_by * MINUTE
        return start + shift, end + shift
    day = occurrence_day(spec, spec.move_instance) + timedelta(days=spec.move_by)
    end_day = day + timedelta(days=spec.days)
    return local_midnight(day, calendar_tz), local_midnight(end_day, calendar_tz)


def oracle(scenario: Scenario) -> list[tuple[datetime, datetime]]:
    total = int((scenario.hi - scenario.lo) / MINUTE)
    busy = bytearray(total)
    for spec in scenario.specs:
        if spec.deleted or spec.transparent or spec.declined:
            continue  # tentative still blocks
        for index, (start, end) in enumerate(occurrences(spec, scenario.calendar_tz)):
            if index in (spec.exdate, spec.cancel_instance):
                continue
            if index == spec.move_instance:
                start, end = moved(spec, scenario.calendar_tz)
            first = max(0, int((start - scenario.lo) / MINUTE))
            last = min(total, int((end - scenario.lo) / MINUTE))
            for minute in range(first, last):
                busy[minute] = 1
    intervals = []
    minute = 0
    while minute < total:
        if busy[minute]:
            run = minute
            while run < total and busy[run]:
                run += 1
            intervals.append((scenario.lo + minute * MINUTE, scenario.lo + run * MINUTE))
            minute = run
        else:
            minute += 1
    return intervals


# --- driving the emulator -------------------------------------------------------------


def basic(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def create(emulator: EmulatorClient, service: Any, spec: Spec, calendar_tz: str) -> None:
    fields: dict[str, Any] = {"summary": spec.kind}
    if spec.transparent:
        fields["transparency"] = "transparent"
    if spec.tentative:
        fields["status"] = "tentative"
    if spec.declined:
        fields["attendees"] = [
            {"email": "guest@example.com", "responseStatus": "accepted"},
            {"email": OWNER, "responseStatus": "declined"},
        ]
    occ = occurrences(spec, calendar_tz)
    if spec.kind == "timed":
        assert spec.start is not None
        calendar_zone = ZoneInfo(calendar_tz)  # sent with the calendar's offsets, not Z
        event = emulator.add_event(
            OWNER,
            start=spec.start.astimezone(calendar_zone),
            end=(spec.start + spec.length).astimezone(calendar_zone),
            **fields,
        )
    elif spec.kind == "all_day":
        assert spec.day is not None
        event = emulator.add_event(
            OWNER, start=spec.day, end=spec.day + timedelta(days=spec.days), **fields
        )
    else:
        freq = "DAILY" if spec.step_days == 1 else "WEEKLY"
        recurrence = [f"RRULE:FREQ={freq};COUNT={spec.count}"]
        if spec.kind == "recurring":
            tz = ZoneInfo(spec.time_zone)
            start = first_instant(spec)
            # the end is an exact duration later (aware arithmetic in one zone would
            # add wall-clock time instead)
            end = (start + spec.length).astimezone(tz)
            start = start.astimezone(tz)
            if spec.exdate is not None:
                excluded = occ[spec.exdate][0]
                # alternate the two EXDATE spellings: local time with TZID, and UTC
                if spec.exdate % 2:
                    recurrence.append(f"EXDATE:{basic(excluded)}Z")
                else:
                    local = excluded.astimezone(tz)
                    recurrence.append(f"EXDATE;TZID={spec.time_zone}:{basic(local)}")
            event = emulator.add_event(
                OWNER,
                start={"dateTime": start.isoformat(), "timeZone": spec.time_zone},
                end={"dateTime": end.isoformat(), "timeZone": spec.time_zone},
                recurrence=recurrence,
                **fields,
            )
        else:
            assert spec.day is not None
            if spec.exdate is not None:
                day = spec.day + timedelta(days=spec.exdate * spec.step_days)
                recurrence.append(f"EXDATE;VALUE=DATE:{day:%Y%m%d}")
            event = emulator.add_event(
                OWNER,
                start=spec.day,
                end=spec.day + timedelta(days=spec.days),
                recurrence=recurrence,
                **fields,
            )

        def instance_id(index: int) -> str:
            if spec.kind == "recurring":
                return f"{event['id']}_{occ[index][0]:%Y%m%dT%H%M%SZ}"
            return f"{event['id']}_{occurrence_day(spec, index):%Y%m%d}"

        events = service.events()
        if spec.cancel_instance is not None:
            events.delete(calendarId="primary", eventId=instance_id(spec.cancel_instance)).execute()
        if spec.move_instance is not None:
            start, end = moved(spec, calendar_tz)
            if spec.kind == "recurring":
                times = {"start": {"dateTime": rfc3339(start)}, "end": {"dateTime": rfc3339(end)}}
            else:
                day = occurrence_day(spec, spec.move_instance) + timedelta(days=spec.move_by)
                times = {
                    "start": {"date": day.isoformat()},
                    "end": {"date": (day + timedelta(days=spec.days)).isoformat()},
                }
            events.patch(
                calendarId="primary", eventId=instance_id(spec.move_instance), body=times
            ).execute()
    if spec.deleted:
        service.events().delete(calendarId="primary", eventId=event["id"]).execute()


@settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios())
def test_freebusy_matches_brute_force(
    google_emulator_server: EmulatorServer, emulator: EmulatorClient, scenario: Scenario
) -> None:
    google_emulator_server.state.reset()
    emulator.set_clock(NOW)
    token = emulator.add_account(OWNER, time_zone=scenario.calendar_tz)
    service = build_service(emulator, token)
    for spec in scenario.specs:
        create(emulator, service, spec, scenario.calendar_tz)
    response = (
        service.freebusy()
        .query(
            body={
                "timeMin": rfc3339(scenario.lo),
                "timeMax": rfc3339(scenario.hi),
                "timeZone": scenario.calendar_tz,
                "items": [{"id": OWNER}],
            }
        )
        .execute()
    )
    got = [(utc(b["start"]), utc(b["end"])) for b in response["calendars"][OWNER]["busy"]]
    assert got == oracle(scenario)
