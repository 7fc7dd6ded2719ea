"""Deleting what the mirror no longer needs, in small batches so readers never wait."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, Max, Min, OuterRef
from django.utils import timezone

from calcache.models import CalendarCache, CalendarEvent, CalendarSyncToken, SelectedCalendar


@dataclass
class CleanupReport:
    cutoff: datetime
    events: int = 0
    json_entries: int = 0
    sync_tokens: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def cleanup_calendar_cache(
    *, days: int, batch_size: int = 10_000, dry_run: bool = False, now: datetime | None = None
) -> CleanupReport:
    """Delete events that ended more than ``days`` ago, expired legacy JSON entries and
    the sync tokens of calendars no longer selected.

    Events go in primary-key ranges of ``batch_size`` (one short transaction each,
    served by the primary key index), so concurrent availability reads are never
    blocked behind one long delete. Sync windows that started before the cutoff
    now start at it: the SQL copy no longer vouches for the time before.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or timezone.now()
    report = CleanupReport(cutoff=now - timedelta(days=days), dry_run=dry_run)
    began = time.monotonic()
    old_events = CalendarEvent.objects.filter(end_time__lt=report.cutoff)
    orphan_tokens = CalendarSyncToken.objects.filter(
        ~Exists(
            SelectedCalendar.objects.filter(
                credential_id=OuterRef("credential_id"), calendar_id=OuterRef("calendar_id")
            )
        )
    )
    expired_json = CalendarCache.objects.filter(expires_at__lt=now)
    if dry_run:
        report.events = old_events.count()
        report.json_entries = expired_json.count()
        report.sync_tokens = orphan_tokens.count()
        report.seconds = time.monotonic() - began
        return report

    bounds = CalendarEvent.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is not None:
        low = bounds["low"]
        while low <= bounds["high"]:
            with transaction.atomic():
                deleted, _ = old_events.filter(pk__gte=low, pk__lt=low + batch_size).delete()
            report.events += deleted
            low += batch_size
    with transaction.atomic():
        CalendarSyncToken.objects.filter(window_start__lt=report.cutoff).update(
            window_start=report.cutoff
        )
        report.json_entries = expired_json.delete()[0]
        report.sync_tokens = orphan_tokens.delete()[0]
    report.seconds = time.monotonic() - began
    return report
