"""A connected user whose SQL copy the tests compare with the emulator's freeBusy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db.models import QuerySet

from calcache.emulator import EmulatorClient
from calcache.google.client import GoogleCalendarClient
from calcache.intervals import merge_intervals
from calcache.models import CalendarEvent, CalendarSyncToken, SelectedCalendar
from calcache.selectors import busy_intervals, sync_coverage
from calcache.services import connect_google_account
from calcache.sync.engine import SyncResult, sync_calendar
from flags.models import Flag
from flags.names import WRITE_FLAG
from tests.factories import UserFactory

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, a week before US DST starts


@dataclass
class Mirror:
    """One user, one emulator account, its calendars selected and synced on demand."""

    emulator: EmulatorClient
    user: Any
    email: str
    now: datetime = NOW

    def selected(self, calendar_id: str | None = None) -> SelectedCalendar:
        return SelectedCalendar.objects.get(
            credential__user=self.user, calendar_id=calendar_id or self.email
        )

    def sync(self, calendar_id: str | None = None, *, full: bool = False) -> SyncResult:
        return sync_calendar(self.selected(calendar_id), full=full, now=self.now)

    def advance(self, delta: timedelta) -> None:
        self.now += delta
        self.emulator.set_clock(self.now)

    def google_busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        calendars = SelectedCalendar.objects.filter(credential__user=self.user, enabled=True)
        merged = merge_intervals(
            interval
            for selected in calendars
            for interval in self.emulator.busy(selected.calendar_id, start, end)
        )
        return [(b.astimezone(UTC), e.astimezone(UTC)) for b, e in merged]

    def sql_busy(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        return busy_intervals(user=self.user, start=start, end=end)

    def assert_mirrors(self, start: datetime | None = None, end: datetime | None = None) -> None:
        start = start or self.now - timedelta(days=7)
        end = end or self.now + timedelta(days=60)
        assert self.sql_busy(start, end) == self.google_busy(start, end)

    # --- what the SQL copy holds ---------------------------------------------------------
    def rows(self, calendar_id: str | None = None) -> QuerySet[CalendarEvent]:
        selected = self.selected(calendar_id)
        return CalendarEvent.objects.filter(
            credential_id=selected.credential_id, calendar_id=selected.calendar_id
        )

    def row_ids(self, calendar_id: str | None = None) -> set[str]:
        return set(self.rows(calendar_id).values_list("google_event_id", flat=True))

    def token(self, calendar_id: str | None = None) -> CalendarSyncToken:
        selected = self.selected(calendar_id)
        return CalendarSyncToken.objects.get(
            credential_id=selected.credential_id, calendar_id=selected.calendar_id
        )

    def synced_window(self, calendar_id: str | None = None) -> tuple[datetime, datetime]:
        token = self.token(calendar_id)
        assert token.window_start is not None and token.window_end is not None
        return token.window_start, token.window_end

    def coverage(self, start: datetime, end: datetime) -> bool:
        return sync_coverage(user=self.user, start=start, end=end)

    def assert_mirrors_window(self, calendar_id: str | None = None) -> None:
        """SQL busy equals Google's over the whole synced window."""
        self.assert_mirrors(*self.synced_window(calendar_id))


@pytest.fixture
def write_flag_on(db: None) -> None:
    # update_or_create: a transactional test that ran before flushed the flag rows
    # its data migration had created.
    Flag.objects.update_or_create(name=WRITE_FLAG, defaults={"everyone": True})


def make_mirror(
    emulator: EmulatorClient, email: str = "ada@example.com", time_zone: str = "Europe/London"
) -> Mirror:
    emulator.set_clock(NOW)
    token = emulator.add_account(email, time_zone=time_zone)
    user = UserFactory()
    connect_google_account(user=user, token=token)
    return Mirror(emulator=emulator, user=user, email=email)


@pytest.fixture
def mirror(emulator: EmulatorClient, write_flag_on: None) -> Mirror:
    return make_mirror(emulator)


def force_page_size(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    """Make every events.list of the sync ask for ``size`` items per page, so that a
    handful of events spans many pages (the engine itself always asks for 2500)."""
    original = GoogleCalendarClient.iter_event_pages

    def small_pages(self: GoogleCalendarClient, *args: Any, **kwargs: Any) -> Iterator[Any]:
        kwargs["page_size"] = size
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GoogleCalendarClient, "iter_event_pages", small_pages)
