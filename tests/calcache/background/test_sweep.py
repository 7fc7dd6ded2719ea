"""calcache.background.sweep: which calendars the periodic sweep syncs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from calcache.background.sweep import CalendarsNeedingSync, calendars_needing_sync
from calcache.models import CalendarSyncToken, SelectedCalendar
from flags.models import Flag
from flags.names import WRITE_FLAG
from tests.factories import (
    CalendarSyncTokenFactory,
    CredentialFactory,
    SelectedCalendarFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture
def writer() -> Any:
    """A user with the write flag on: a sync of their calendars writes SQL rows."""
    user = UserFactory()
    Flag.objects.get(name=WRITE_FLAG).users.add(user)
    return user


def calendar(user: Any, **fields: Any) -> SelectedCalendar:
    """A selected calendar of its own account of ``user``."""
    account = f"account{SelectedCalendar.objects.count()}@example.com"
    credential = CredentialFactory(user=user, account_email=account)
    return SelectedCalendarFactory(credential=credential, **fields)


def synced(selected: SelectedCalendar, ago: timedelta) -> SelectedCalendar:
    CalendarSyncTokenFactory(
        credential=selected.credential,
        calendar_id=selected.calendar_id,
        last_sync_at=NOW - ago,
    )
    return selected


def due(limit: int = 100) -> CalendarsNeedingSync:
    return calendars_needing_sync(
        now=NOW, stale_after=timedelta(hours=1), dirty_grace=timedelta(minutes=2), limit=limit
    )


def test_the_sweep_picks_marked_lost_and_stale_calendars_of_writers_only(writer: Any) -> None:
    never = calendar(writer)
    old = synced(calendar(writer), timedelta(hours=5))
    failing = synced(calendar(writer), timedelta(hours=5))
    CalendarSyncToken.objects.filter(calendar_id=failing.calendar_id).update(
        last_error="GoogleBadRequest", last_error_at=NOW - timedelta(minutes=10)
    )
    fresh = synced(calendar(writer), timedelta(minutes=5))
    lost = synced(calendar(writer, dirty_since=NOW - timedelta(minutes=10)), timedelta(minutes=1))
    in_grace = calendar(writer, dirty_since=NOW - timedelta(seconds=10))
    synced(in_grace, timedelta(minutes=1))
    calendar(UserFactory())  # write flag off: a sync would write nothing
    calendar(writer, enabled=False)
    invalid = calendar(writer)
    invalid.credential.invalid = True
    invalid.credential.save()

    everything = due()
    assert everything.dirty == [lost.pk]
    assert everything.stale == [never.pk, old.pk]  # never synced first, then the oldest
    assert fresh.pk not in everything.stale and failing.pk not in everything.stale  # tried
    limited = due(limit=2)
    assert limited.dirty == [lost.pk] and limited.stale == [never.pk]


def test_marked_calendars_come_first_oldest_mark_first_and_may_fill_the_limit(
    writer: Any,
) -> None:
    stale = calendar(writer)  # never synced
    later = calendar(writer, dirty_since=NOW - timedelta(minutes=5))
    earlier = calendar(writer, dirty_since=NOW - timedelta(minutes=50))
    assert due() == CalendarsNeedingSync(dirty=[earlier.pk, later.pk], stale=[stale.pk])
    assert due(limit=1) == CalendarsNeedingSync(dirty=[earlier.pk], stale=[])


def test_without_the_write_flag_only_marked_calendars_are_due(writer: Any) -> None:
    calendar(writer)  # never synced
    marked = calendar(writer, dirty_since=NOW - timedelta(minutes=5))
    Flag.objects.filter(name=WRITE_FLAG).delete()
    assert due() == CalendarsNeedingSync(dirty=[marked.pk], stale=[])
