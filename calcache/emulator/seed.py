"""``--seed demo``: believable accounts with about 2,000 events over a year.

Deterministic (a fixed random seed), anchored on the emulator's clock.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from calcache.emulator.state import EmulatorState

DEMO_ACCOUNTS = (
    ("ada@example.com", "Europe/London"),
    ("grace@example.com", "America/Los_Angeles"),
    ("katherine@example.com", "Asia/Tokyo"),
)
TEAM_CALENDAR = "team-standups@group.calendar.google.com"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _rrule_until(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def seed_demo(state: EmulatorState, *, now: datetime | None = None) -> dict[str, Any]:
    """Fill ``state`` with the demo accounts; returns their names and event counts."""
    rng = random.Random(20261124)
    now = (now or state.now()).astimezone(UTC)
    first_day = (now - timedelta(days=120)).date()
    last_day = (now + timedelta(days=245)).date()
    for email, tz_name in DEMO_ACCOUNTS:
        state.add_account(email, time_zone=tz_name)
    owner, owner_tz = DEMO_ACCOUNTS[0]
    if TEAM_CALENDAR not in state.calendars:
        state.add_calendar(
            owner=owner,
            calendar_id=TEAM_CALENDAR,
            summary="Team stand-ups",
            time_zone="America/New_York",
        )
        for email, _ in DEMO_ACCOUNTS[1:]:
            state.share_calendar(TEAM_CALENDAR, email)
    for email, tz_name in DEMO_ACCOUNTS:
        if state.events[email]:
            continue  # seeded already
        _seed_account(state, rng, email, ZoneInfo(tz_name), tz_name, first_day, last_day)
    if not state.events[TEAM_CALENDAR]:
        _seed_team(state, first_day, last_day)
    return {
        "accounts": [email for email, _ in DEMO_ACCOUNTS],
        "calendars": {cid: len(events) for cid, events in state.events.items()},
        "events": sum(len(events) for events in state.events.values()),
    }


def _seed_account(
    state: EmulatorState,
    rng: random.Random,
    email: str,
    tz: ZoneInfo,
    tz_name: str,
    first_day: date,
    last_day: date,
) -> None:
    others = [e for e, _ in DEMO_ACCOUNTS if e != email]
    day = first_day
    while day <= last_day:
        if day.weekday() < 5:
            for _ in range(rng.choice((1, 2, 2, 3, 3, 4))):
                hour = rng.choice((9, 10, 11, 13, 14, 15, 16))
                minute = rng.choice((0, 0, 30))
                start = datetime.combine(day, time(hour, minute), tz)
                length = timedelta(minutes=rng.choice((15, 30, 30, 45, 60, 60, 90, 120)))
                body: dict[str, Any] = {
                    "summary": rng.choice(
                        (
                            "1:1",
                            "Design review",
                            "Customer call",
                            "Interview",
                            "Planning",
                            "Focus time",
                            "Lunch",
                            "Pairing",
                        )
                    ),
                    "start": {"dateTime": _iso(start), "timeZone": tz_name},
                    "end": {"dateTime": _iso(start + length), "timeZone": tz_name},
                }
                roll = rng.random()
                if body["summary"] == "Focus time" or roll < 0.04:
                    body["transparency"] = "transparent"
                elif roll < 0.10:
                    body["attendees"] = [
                        {
                            "email": rng.choice(others),
                            "organizer": True,
                            "responseStatus": "accepted",
                        },
                        {"email": email, "responseStatus": "declined"},
                    ]
                    body["organizer"] = {"email": body["attendees"][0]["email"]}
                elif roll < 0.14:
                    body["status"] = "tentative"
                state.insert_event(email, body)
        if rng.random() < 0.025:  # vacations and conferences: multi-day, all-day
            length_days = rng.choice((1, 2, 3, 5))
            state.insert_event(
                email,
                {
                    "summary": rng.choice(("Out of office", "Conference", "Offsite")),
                    "start": {"date": day.isoformat()},
                    "end": {"date": (day + timedelta(days=length_days)).isoformat()},
                },
            )
        if rng.random() < 0.01:  # a timed event over several days
            start = datetime.combine(day, time(18, 0), tz)
            state.insert_event(
                email,
                {
                    "summary": "Travel",
                    "start": {"dateTime": _iso(start), "timeZone": tz_name},
                    "end": {
                        "dateTime": _iso(start + timedelta(days=2, hours=3)),
                        "timeZone": tz_name,
                    },
                },
            )
        day += timedelta(days=1)

    # A weekly 1:1 with exceptions: one moved, one cancelled.
    first_monday = first_day + timedelta(days=(7 - first_day.weekday()) % 7)
    until = _rrule_until(datetime.combine(last_day, time(0), tz))
    start = datetime.combine(first_monday, time(11, 0), tz)
    weekly = state.insert_event(
        email,
        {
            "summary": "Weekly 1:1",
            "start": {"dateTime": _iso(start), "timeZone": tz_name},
            "end": {"dateTime": _iso(start + timedelta(minutes=30)), "timeZone": tz_name},
            "recurrence": [f"RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL={until}"],
        },
    )
    moved = start + timedelta(weeks=18)
    state.update_event(
        email,
        f"{weekly['id']}_{moved.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        {
            "start": {"dateTime": _iso(moved + timedelta(hours=3)), "timeZone": tz_name},
            "end": {"dateTime": _iso(moved + timedelta(hours=3, minutes=30)), "timeZone": tz_name},
        },
        patch=True,
    )
    cancelled = start + timedelta(weeks=20)
    state.delete_event(email, f"{weekly['id']}_{cancelled.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    # A monthly all-day reminder that is free time.
    state.insert_event(
        email,
        {
            "summary": "Payday",
            "transparency": "transparent",
            "start": {"date": first_day.replace(day=25).isoformat()},
            "end": {"date": (first_day.replace(day=25) + timedelta(days=1)).isoformat()},
            "recurrence": ["RRULE:FREQ=MONTHLY;COUNT=12"],
        },
    )


def _seed_team(state: EmulatorState, first_day: date, last_day: date) -> None:
    tz_name = "America/New_York"
    tz = ZoneInfo(tz_name)
    start = datetime.combine(first_day, time(9, 30), tz)
    until = _rrule_until(datetime.combine(last_day, time(0), tz))
    daily = state.insert_event(
        TEAM_CALENDAR,
        {
            "summary": "Stand-up",
            "start": {"dateTime": _iso(start), "timeZone": tz_name},
            "end": {"dateTime": _iso(start + timedelta(minutes=15)), "timeZone": tz_name},
            "recurrence": [
                f"RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;UNTIL={until}",
                f"EXDATE;TZID={tz_name}:{(start + timedelta(days=14)).strftime('%Y%m%dT%H%M%S')}",
            ],
        },
    )
    skipped = start + timedelta(days=28)
    while skipped.weekday() >= 5:
        skipped += timedelta(days=1)
    state.delete_event(TEAM_CALENDAR, f"{daily['id']}_{skipped.astimezone(UTC):%Y%m%dT%H%M%SZ}")
