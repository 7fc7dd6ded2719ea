"""What background work does, whichever runner runs it: the in-process thread pool
(``calcache.runner``) or Celery workers (``calcache.tasks``).

Each job returns a ``JobResult`` whose ``retry_in`` says when the work should be tried
again: a Celery task retries then; the thread pool leaves the calendar marked, for the
next notification or the sweep. Jobs are idempotent and safe to run twice: a duplicate
finds the calendar locked, already synced, or synced since it was queued.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError

from calcache import ratelimit
from calcache.exceptions import GoogleUnavailable, RateLimited
from calcache.models import CalendarSyncToken, SelectedCalendar
from calcache.sync import SyncOutcome, SyncResult, sync_calendar

logger = logging.getLogger("calcache.jobs")

# A held lock usually means another worker is syncing the calendar right now.
LOCK_RETRY_SECONDS = 10.0
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 900.0

GONE = "skipped: calendar gone or disabled"
ALREADY_SYNCED = "skipped: synced since the notification"
FRESH = "skipped: synced since it was queued"
PACED = "deferred: account's sync budget spent"


@dataclass
class JobResult:
    selected_calendar_id: int
    outcome: str
    retry_in: float | None = None
    sync: SyncResult | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (what a Celery task returns and logs)."""
        summary: dict[str, Any] = {
            "selected_calendar_id": self.selected_calendar_id,
            "outcome": self.outcome,
            "retry_in": self.retry_in,
        }
        if self.sync is not None:
            summary.update(
                upserted=self.sync.upserted,
                unchanged=self.sync.unchanged,
                deleted=self.sync.deleted,
                error=self.sync.error,
            )
        return summary


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: ~30 s, 60 s, 2 min ... capped at 15 min."""
    ceiling = min(BACKOFF_BASE_SECONDS * 2**attempt, BACKOFF_MAX_SECONDS)
    return random.uniform(ceiling / 2, ceiling)


def retry_delay(sync: SyncResult, attempt: int) -> float | None:
    """Seconds until a failed sync is worth trying again, or None when it is not.

    Rate limits and outages pass (Google's ``Retry-After`` wins when it sent one), and so
    does a database that dropped the connection. An invalid credential, a spent daily
    quota, a missing calendar or a refused request will fail the same way again.
    """
    if sync.outcome != SyncOutcome.FAILED:
        return None
    exc = sync.exception
    if isinstance(exc, RateLimited | GoogleUnavailable):
        return exc.retry_after if exc.retry_after else backoff(attempt)
    if isinstance(exc, DatabaseError):
        return backoff(attempt)
    return None


def _load(selected_calendar_id: int) -> SelectedCalendar | None:
    return (
        SelectedCalendar.objects.select_related("credential")
        .filter(pk=selected_calendar_id, enabled=True)
        .first()
    )


def _after_sync(selected: SelectedCalendar, sync: SyncResult, attempt: int) -> JobResult:
    delay = retry_delay(sync, attempt)
    if delay is not None and isinstance(sync.exception, RateLimited):
        ratelimit.cool_down(selected.credential_id, delay)
    return JobResult(selected.pk, sync.outcome.value, retry_in=delay, sync=sync)


def refresh_notified(selected_calendar_id: int, *, attempt: int = 0) -> JobResult:
    """A push notification said the calendar changed: refresh its JSON blobs and its SQL
    copy (``rollout.refresh_calendar``), unless a refresh has started since.

    The webhook set ``dirty_since``; a refresh clears it when it starts, so a job that
    finds it clear knows its notification is covered (a burst of notifications yields
    one refresh). If the refresh cannot finish now, the mark is put back.
    """
    from calcache.rollout import refresh_calendar

    selected = _load(selected_calendar_id)
    if selected is None:
        SelectedCalendar.objects.filter(pk=selected_calendar_id).update(dirty_since=None)
        return JobResult(selected_calendar_id, GONE)
    marked_at = selected.dirty_since
    if marked_at is None:
        return JobResult(selected_calendar_id, ALREADY_SYNCED)
    wait = ratelimit.seconds_until_allowed(selected.credential_id)
    if wait > 0:
        return JobResult(selected_calendar_id, PACED, retry_in=wait)
    # From here on a new notification needs a new refresh: it may describe a change this
    # refresh's listing has already passed.
    SelectedCalendar.objects.filter(pk=selected_calendar_id).update(dirty_since=None)
    sync = refresh_calendar(selected).sync
    assert sync is not None  # refresh_calendar always runs the SQL side
    if sync.outcome == SyncOutcome.LOCKED:
        # The running sync may have listed the calendar before this notification.
        result = JobResult(selected.pk, sync.outcome.value, LOCK_RETRY_SECONDS, sync)
    else:
        result = _after_sync(selected, sync, attempt)
    if result.retry_in is not None:
        SelectedCalendar.objects.filter(pk=selected_calendar_id, dirty_since__isnull=True).update(
            dirty_since=marked_at
        )
    return result


def sync_queued(
    selected_calendar_id: int,
    *,
    full: bool = False,
    not_synced_since: datetime | None = None,
    attempt: int = 0,
    redelivered: bool = False,
) -> JobResult:
    """Sync one calendar's SQL copy (``sync_calendars --enqueue``, the stale sweep).

    ``not_synced_since``: skip when a sync succeeded after that moment (a sweep's task
    that waited in a long queue). A calendar locked by another sync is left to it, except
    for a redelivered task: its lock may be the lease of the worker that died running it.
    """
    selected = _load(selected_calendar_id)
    if selected is None:
        return JobResult(selected_calendar_id, GONE)
    if not_synced_since is not None and not full:
        last = (
            CalendarSyncToken.objects.filter(
                credential_id=selected.credential_id, calendar_id=selected.calendar_id
            )
            .values_list("last_sync_at", flat=True)
            .first()
        )
        if last is not None and last >= not_synced_since:
            return JobResult(selected_calendar_id, FRESH)
    wait = ratelimit.seconds_until_allowed(selected.credential_id)
    if wait > 0:
        return JobResult(selected_calendar_id, PACED, retry_in=wait)
    sync = sync_calendar(selected, full=full)
    if sync.outcome == SyncOutcome.LOCKED:
        retry_in = LOCK_RETRY_SECONDS if redelivered else None
        return JobResult(selected.pk, sync.outcome.value, retry_in, sync)
    return _after_sync(selected, sync, attempt)
