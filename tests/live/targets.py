"""Where the live cases run: a scratch calendar on the bundled emulator or on the real
Google, driven through the Calendar API by calcache's own client (retries included).

A case only talks to ``Target``; the two targets differ in how the account comes to
exist (docs/live-tests.md). On both the scratch calendar is made with ``calendars.insert``
and removed with ``calendars.delete``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from calcache.google.client import GoogleCalendarClient

TOKEN_ENV = "CALCACHE_LIVE_GOOGLE_TOKEN"
GOOGLE_API_URL = "https://www.googleapis.com/calendar/v3/"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
# calendars.insert and calendars.delete need the full calendar scope.
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
# The scratch calendar's zone: all-day events must start at its midnight, not UTC's.
SCRATCH_TIME_ZONE = "America/Los_Angeles"
SCRATCH_SUMMARY_PREFIX = "calcache live test"
EMULATOR_ACCOUNT = "live@example.com"

Interval = tuple[datetime, datetime]


def scratch_summary() -> str:
    """The scratch calendar's name, with the time it was made (to spot leftovers)."""
    return f"{SCRATCH_SUMMARY_PREFIX} {datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z"


def insert_scratch_calendar(client: GoogleCalendarClient) -> str:
    """Create the scratch calendar with ``calendars.insert`` (on either target); its id."""
    calendars = client.service.calendars()
    body = {"summary": scratch_summary(), "timeZone": SCRATCH_TIME_ZONE}
    return str(client.call(lambda: calendars.insert(body=body))["id"])


def delete_calendar(client: GoogleCalendarClient, calendar_id: str) -> None:
    """``calendars.delete`` of a secondary calendar."""
    calendars = client.service.calendars()
    client.call(lambda: calendars.delete(calendarId=calendar_id))


def load_authorized_user(path: str) -> dict[str, Any]:
    """google-auth's authorized-user JSON from ``path``; ValueError saying what is wrong."""
    file = Path(path).expanduser()
    try:
        token = json.loads(file.read_text())
    except OSError as exc:
        raise ValueError(f"{TOKEN_ENV}={path}: cannot read it ({exc.strerror})") from exc
    except ValueError as exc:
        raise ValueError(f"{TOKEN_ENV}={path}: not JSON ({exc})") from exc
    if not isinstance(token, dict):
        raise ValueError(f"{TOKEN_ENV}={path}: not an authorized-user JSON object")
    missing = [key for key in ("refresh_token", "client_id", "client_secret") if not token.get(key)]
    if missing:
        raise ValueError(f"{TOKEN_ENV}={path}: no {', '.join(missing)} (docs/live-tests.md)")
    scopes = token.get("scopes") or []
    if isinstance(scopes, str):
        scopes = scopes.split()
    if scopes and CALENDAR_SCOPE not in scopes:
        raise ValueError(
            f"{TOKEN_ENV}={path}: scopes {scopes} lack {CALENDAR_SCOPE}, which creating "
            "and deleting the scratch calendar needs"
        )
    return token


def token_path() -> str:
    """The token file named by CALCACHE_LIVE_GOOGLE_TOKEN ('' when unset)."""
    return os.environ.get(TOKEN_ENV, "").strip()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def instant(when: dict[str, Any]) -> datetime:
    """An event's ``start``/``end``/``originalStartTime`` with a dateTime, in UTC."""
    return datetime.fromisoformat(when["dateTime"].replace("Z", "+00:00")).astimezone(UTC)


def timed(start: datetime, end: datetime, **fields: Any) -> dict[str, Any]:
    """An events.insert body for a timed event."""
    return {"start": {"dateTime": rfc3339(start)}, "end": {"dateTime": rfc3339(end)}, **fields}


def all_day(first: date, days: int = 1, **fields: Any) -> dict[str, Any]:
    """An events.insert body for an all-day event (``end.date`` exclusive)."""
    last = first + timedelta(days=days)
    return {"start": {"date": first.isoformat()}, "end": {"date": last.isoformat()}, **fields}


def daily_series(first: date, zone: str, count: int = 3, **fields: Any) -> dict[str, Any]:
    """An events.insert body for a series at 09:00-09:30 in ``zone``, daily from ``first``
    (a recurring timed event needs its zone)."""
    return {
        "start": {"dateTime": f"{first.isoformat()}T09:00:00", "timeZone": zone},
        "end": {"dateTime": f"{first.isoformat()}T09:30:00", "timeZone": zone},
        "recurrence": [f"RRULE:FREQ=DAILY;COUNT={count}"],
        **fields,
    }


def local(day: date, at: time, zone: str = SCRATCH_TIME_ZONE) -> datetime:
    """``at`` o'clock on ``day`` in ``zone``, as a UTC instant."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def midnight_utc(days_from_now: int) -> datetime:
    """UTC midnight that many days ahead: cases place their events from there, inside
    calcache's synced window and clear of the present."""
    today = timezone.now().astimezone(UTC).date()
    return datetime.combine(today + timedelta(days=days_from_now), time(0), tzinfo=UTC)


@dataclass
class Target:
    """A scratch calendar of one account, on the emulator or on Google.

    ``token`` is the account's authorized-user dict (what a host passes to
    ``connect_google_account``); ``client`` acts for it.
    """

    name: str
    token: dict[str, Any]
    client: GoogleCalendarClient
    calendar_id: str
    time_zone: str
    advance_clock: Callable[[], object]

    def let_time_pass(self) -> None:
        """Make sure the server's clock moves on before the next write: the emulator's
        is advanced a second; Google's moves by itself (a round trip is far longer than
        the millisecond its ``updated`` stamps resolve)."""
        self.advance_clock()

    # --- events -----------------------------------------------------------------
    def insert(self, body: dict[str, Any]) -> dict[str, Any]:
        events = self.client.service.events()
        return dict(self.client.call(lambda: events.insert(calendarId=self.calendar_id, body=body)))

    def patch(self, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        events = self.client.service.events()
        return dict(
            self.client.call(
                lambda: events.patch(calendarId=self.calendar_id, eventId=event_id, body=body)
            )
        )

    def delete(self, event_id: str) -> None:
        events = self.client.service.events()
        self.client.call(lambda: events.delete(calendarId=self.calendar_id, eventId=event_id))

    def pages(self, **params: Any) -> list[dict[str, Any]]:
        """Every page of an events.list of the scratch calendar, following nextPageToken."""
        events = self.client.service.events()
        pages: list[dict[str, Any]] = []
        page_token: str | None = None
        while True:
            query = dict(params, calendarId=self.calendar_id)
            if page_token:
                query["pageToken"] = page_token
            page = dict(self.client.call(lambda q=query: events.list(**q)))  # type: ignore[misc]
            pages.append(page)
            page_token = page.get("nextPageToken")
            if not page_token:
                return pages

    def listing(self, **params: Any) -> list[dict[str, Any]]:
        return [item for page in self.pages(**params) for item in page.get("items", [])]

    def busy(self, start: datetime, end: datetime) -> list[Interval]:
        """freeBusy's merged busy intervals of the scratch calendar over [start, end)."""
        answer = self.client.freebusy([self.calendar_id], start, end)[self.calendar_id]
        assert not answer.errors, answer.errors
        return answer.busy

    def empty(self) -> None:
        """Delete every event left by an earlier case (Google's scratch calendar is shared
        by the whole session; the emulator's is new for each case)."""
        for item in self.listing(showDeleted=False):
            self.delete(item["id"])
