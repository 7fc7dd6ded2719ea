"""calcache.sync.cleanup: what cleanup_calendar_cache deletes, in batches, and what it keeps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calcache.models import CalendarCache, CalendarEvent, CalendarSyncToken, SelectedCalendar
from calcache.sync.cleanup import CleanupReport, cleanup_calendar_cache
from tests.factories import (
    CalendarCacheFactory,
    CalendarEventFactory,
    CalendarSyncTokenFactory,
    CredentialFactory,
)

pytestmark = pytest.mark.django_db

DAYS = 90


@dataclass
class Leftovers:
    """A mirror with something of each kind on either side of the cutoff."""

    now: datetime
    old: list[CalendarEvent]
    kept: list[CalendarEvent]
    early_window: CalendarSyncToken
    late_window: CalendarSyncToken
    orphan: CalendarSyncToken
    expired_json: CalendarCache
    fresh_json: CalendarCache

    @property
    def cutoff(self) -> datetime:
        return self.now - timedelta(days=DAYS)


def event(credential: Any, *, start: datetime, end: datetime) -> CalendarEvent:
    return CalendarEventFactory(credential=credential, start_time=start, end_time=end)


@pytest.fixture
def leftovers() -> Leftovers:
    now = timezone.now()
    cutoff = now - timedelta(days=DAYS)
    credential = CredentialFactory()
    old, kept = [], []
    for i in range(7):
        ended = cutoff - timedelta(days=10 + i)
        old.append(event(credential, start=ended - timedelta(hours=1), end=ended))
        if i % 3 == 0:  # the batches hold old and kept rows alike
            kept.append(event(credential, start=now, end=now + timedelta(hours=1)))
    # began before the cutoff but ends after it, and ended at the cutoff itself: kept
    kept.append(
        event(credential, start=cutoff - timedelta(days=5), end=cutoff + timedelta(days=10))
    )
    kept.append(event(credential, start=cutoff - timedelta(hours=1), end=cutoff))
    for calendar_id in ("early@example.com", "late@example.com"):
        SelectedCalendar.objects.create(credential=credential, calendar_id=calendar_id)
    return Leftovers(
        now=now,
        old=old,
        kept=kept,
        early_window=CalendarSyncTokenFactory(
            credential=credential,
            calendar_id="early@example.com",
            window_start=cutoff - timedelta(days=30),
        ),
        late_window=CalendarSyncTokenFactory(
            credential=credential,
            calendar_id="late@example.com",
            window_start=cutoff + timedelta(days=30),
        ),
        orphan=CalendarSyncTokenFactory(credential=credential, calendar_id="gone@example.com"),
        expired_json=CalendarCacheFactory(
            credential=credential, expires_at=now - timedelta(seconds=1)
        ),
        fresh_json=CalendarCacheFactory(credential=credential),
    )


def clean(leftovers: Leftovers, **options: Any) -> CleanupReport:
    return cleanup_calendar_cache(days=DAYS, now=leftovers.now, **options)


def pks(queryset: Any) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def test_old_events_go_in_batches_and_the_others_stay(leftovers: Leftovers) -> None:
    events = sorted(pks(CalendarEvent.objects.all()))
    with CaptureQueriesContext(connection) as queries:
        report = clean(leftovers, batch_size=2)
    assert report.events == 7 and report.cutoff == leftovers.cutoff
    assert pks(CalendarEvent.objects.all()) == {e.pk for e in leftovers.kept}
    # one DELETE for each range of two primary keys, whatever it holds
    deletes = [q for q in queries if q["sql"].startswith("DELETE") and "calendarevent" in q["sql"]]
    assert len(deletes) == -(-(events[-1] - events[0] + 1) // 2)
    assert report.seconds > 0 and report.events_per_second == report.events / report.seconds


def test_a_dry_run_counts_and_deletes_nothing(leftovers: Leftovers) -> None:
    before = {model: model.objects.count() for model in (CalendarEvent, CalendarSyncToken)}
    report = clean(leftovers, dry_run=True)
    assert (report.events, report.json_entries, report.sync_tokens) == (7, 1, 1)
    assert report.dry_run
    assert {model: model.objects.count() for model in before} == before
    assert CalendarCache.objects.count() == 2
    leftovers.early_window.refresh_from_db()
    assert leftovers.early_window.window_start == leftovers.cutoff - timedelta(days=30)


def test_sync_tokens_of_calendars_no_longer_selected_go(leftovers: Leftovers) -> None:
    assert clean(leftovers).sync_tokens == 1
    assert pks(CalendarSyncToken.objects.all()) == {
        leftovers.early_window.pk,
        leftovers.late_window.pk,
    }


def test_windows_that_started_before_the_cutoff_start_at_it(leftovers: Leftovers) -> None:
    clean(leftovers)
    leftovers.early_window.refresh_from_db()
    assert leftovers.early_window.window_start == leftovers.cutoff
    late_start = leftovers.late_window.window_start
    leftovers.late_window.refresh_from_db()
    assert leftovers.late_window.window_start == late_start


def test_expired_json_entries_go(leftovers: Leftovers) -> None:
    assert clean(leftovers).json_entries == 1
    assert pks(CalendarCache.objects.all()) == {leftovers.fresh_json.pk}


def test_an_empty_mirror_has_nothing_to_delete() -> None:
    report = cleanup_calendar_cache(days=0)
    assert (report.events, report.json_entries, report.sync_tokens) == (0, 0, 0)
    assert report.events_per_second == 0.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"days": -1}, "days must not be negative"),
        ({"days": DAYS, "batch_size": 0}, "batch_size must be at least 1"),
    ],
)
def test_bad_days_or_batch_size_raise_and_delete_nothing(
    leftovers: Leftovers, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cleanup_calendar_cache(now=leftovers.now, **options)
    assert CalendarEvent.objects.count() == len(leftovers.old) + len(leftovers.kept)
