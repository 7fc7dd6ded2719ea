"""calcache's own sync against the target: a full sync, then an incremental one after
inserts, a move, deletions and a cancelled instance, each time comparing the SQL rows
with the calendar and ``busy_intervals`` with freeBusy; and the full sync that follows
a sync token the server refuses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import pytest

from calcache.models import CalendarEvent, CalendarSyncToken, Credential, SelectedCalendar
from calcache.selectors import busy_intervals
from calcache.services import connect_google_account
from calcache.sync.engine import SyncOutcome, SyncResult, sync_calendar
from tests.factories import UserFactory
from tests.live.targets import Target, all_day, daily_series, local, midnight_utc, timed

pytestmark = [pytest.mark.live, pytest.mark.django_db]

HOUR = timedelta(hours=1)


@dataclass
class Mirror:
    """A user connected to the target's account with only the scratch calendar selected."""

    target: Target
    user: Any
    credential: Credential

    def sync(self) -> SyncResult:
        selected = SelectedCalendar.objects.get(
            credential=self.credential, calendar_id=self.target.calendar_id
        )
        return sync_calendar(selected)

    def row_ids(self) -> set[str]:
        rows = CalendarEvent.objects.filter(
            credential=self.credential, calendar_id=self.target.calendar_id
        )
        return set(rows.values_list("google_event_id", flat=True))

    def calendar_ids(self) -> set[str]:
        """What the calendar holds now, as the sync's full listing sees it."""
        return {item["id"] for item in self.target.listing(singleEvents=True)}

    def assert_mirrors(self, start: datetime, end: datetime) -> None:
        assert self.row_ids() == self.calendar_ids()
        assert busy_intervals(user=self.user, start=start, end=end) == self.target.busy(start, end)


@pytest.fixture
def mirror(target: Target, write_flag_on: None) -> Mirror:
    user = UserFactory()
    credential = connect_google_account(
        user=user, token=target.token, calendar_ids=[target.calendar_id]
    )
    return Mirror(target=target, user=user, credential=credential)


def test_full_then_incremental_sync_mirrors_the_calendar(mirror: Mirror) -> None:
    target = mirror.target
    base = midnight_utc(2) + 17 * HOUR
    first_day = base.date()
    window = (midnight_utc(1), midnight_utc(10))
    meeting = target.insert(timed(base, base + HOUR, summary="meeting"))
    overlapping = target.insert(timed(base + HOUR / 2, base + 2 * HOUR, summary="overlap"))
    target.insert(timed(base + 3 * HOUR, base + 4 * HOUR, transparency="transparent"))
    target.insert(all_day(first_day + timedelta(days=1), summary="offsite"))
    series_day = first_day + timedelta(days=2)
    target.insert(daily_series(series_day, target.time_zone, summary="standup"))

    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL, result
    assert result.upserted == 7  # 4 single events and 3 instances
    mirror.assert_mirrors(*window)

    target.patch(meeting["id"], timed(base - 3 * HOUR, base - 2 * HOUR))
    target.delete(overlapping["id"])
    added = target.insert(timed(base + 5 * HOUR, base + 6 * HOUR, summary="added"))
    listing = target.listing(singleEvents=True, orderBy="startTime")
    cancelled_instance = [item["id"] for item in listing if item.get("recurringEventId")][1]
    target.delete(cancelled_instance)

    result = mirror.sync()
    assert result.outcome == SyncOutcome.INCREMENTAL, result
    rows = mirror.row_ids()
    assert overlapping["id"] not in rows and cancelled_instance not in rows
    assert {meeting["id"], added["id"]} <= rows
    moved = CalendarEvent.objects.get(credential=mirror.credential, google_event_id=meeting["id"])
    assert (moved.start_time, moved.end_time) == (base - 3 * HOUR, base - 2 * HOUR)
    mirror.assert_mirrors(*window)
    offsite_start = local(first_day + timedelta(days=1), time(0), target.time_zone)
    assert (offsite_start, offsite_start + timedelta(days=1)) in busy_intervals(
        user=mirror.user, start=offsite_start, end=offsite_start + timedelta(days=1)
    )


def test_a_refused_sync_token_leads_to_a_full_sync(mirror: Mirror) -> None:
    target = mirror.target
    base = midnight_utc(2) + 9 * HOUR
    target.insert(timed(base, base + HOUR))
    assert mirror.sync().outcome == SyncOutcome.FULL
    # Google answers a token it does not know with 410 or 400; either means a full sync.
    CalendarSyncToken.objects.filter(
        credential=mirror.credential, calendar_id=target.calendar_id
    ).update(sync_token="calcache-live-not-a-sync-token")
    added = target.insert(timed(base + 2 * HOUR, base + 3 * HOUR))

    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL, result
    assert result.full_reason.startswith("sync token"), result.full_reason
    assert added["id"] in mirror.row_ids()
    mirror.assert_mirrors(midnight_utc(1), midnight_utc(4))
    assert mirror.sync().outcome == SyncOutcome.INCREMENTAL
