"""What background work does, whichever runner runs it: the in-process thread pool
(``calcache.background.runners``) or Celery workers (``calcache.tasks``).

Each job returns a ``JobResult`` whose ``retry_in`` says when the work should be tried
again (``counts_as_attempt`` False: a wait for a lock or the account's budget, not a
failure). Jobs are idempotent and safe to run twice: a duplicate finds the calendar
locked, already refreshed, or synced since it was queued.

The dirty mark (``SelectedCalendar.dirty_since``) is the contract with the webhook: a
notification marks the calendar and submits a refresh only if it was not marked already;
the refresh clears the mark when it starts (a notification from then on needs a new
refresh) and puts it back whenever it cannot finish, so a change is always either being
refreshed or marked. Other syncs (the sweep, ``sync_calendars``) leave the mark alone:
only the refresh also rewrites the JSON blobs.
"""

from __future__ import annotations

import enum
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, connection
from django.utils import timezone

from calcache.background import pacing
from calcache.exceptions import GoogleUnavailable, RateLimited
from calcache.models import CalendarSyncToken, SelectedCalendar
from calcache.rollout.dual_write import refresh_calendar
from calcache.sync.engine import SyncOutcome, SyncResult, sync_calendar
from calcache.sync.locking import seconds_until_free

logger = logging.getLogger("calcache.jobs")

# A held lock usually means another worker is syncing the calendar right now.
LOCK_RETRY_SECONDS = 10.0
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 900.0
# Below Redis's default visibility timeout (3600 s): a retry held longer is handed out
# twice. Google's Retry-After is honoured up to this.
MAX_RETRY_SECONDS = 1800.0


class JobOutcome(enum.StrEnum):
    """What a job did: the sync's own outcome, or why the job stopped before or after it."""

    FULL = SyncOutcome.FULL.value
    INCREMENTAL = SyncOutcome.INCREMENTAL.value
    LOCKED = SyncOutcome.LOCKED.value
    FLAG_OFF = SyncOutcome.FLAG_OFF.value
    CREDENTIAL_INVALID = SyncOutcome.CREDENTIAL_INVALID.value
    DISABLED = SyncOutcome.DISABLED.value
    FAILED = SyncOutcome.FAILED.value
    DEFERRED = SyncOutcome.DEFERRED.value
    GONE = "skipped: calendar gone or disabled"
    ALREADY_SYNCED = "skipped: refreshed since the notification"
    FRESH = "skipped: synced since it was queued"
    PACED = "deferred: account's sync budget spent"
    DATABASE_FAILED = "failed: database error"
    JSON_REFRESH_FAILED = "JSON refresh failed"

    @classmethod
    def of_sync(cls, outcome: SyncOutcome) -> JobOutcome:
        return cls(outcome.value)


@dataclass
class JobResult:
    selected_calendar_id: int
    outcome: JobOutcome
    retry_in: float | None = None
    sync: SyncResult | None = None
    counts_as_attempt: bool = True
    detail: str = ""

    def describe(self) -> str:
        """The outcome and, when there is one, what went wrong."""
        return f"{self.outcome}: {self.detail}" if self.detail else str(self.outcome)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (what a Celery task returns and logs)."""
        summary: dict[str, Any] = {
            "selected_calendar_id": self.selected_calendar_id,
            "outcome": self.outcome.value,
            "retry_in": self.retry_in,
        }
        if self.detail:
            summary["detail"] = self.detail
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
    """Seconds until a failed sync is worth trying again, or None when it is not."""
    if sync.outcome != SyncOutcome.FAILED:
        return None
    return failure_delay(sync.exception, attempt)


def failure_delay(exc: BaseException | None, attempt: int) -> float | None:
    """Seconds until work that failed with ``exc`` is worth trying again, or None.

    Rate limits and outages pass (Google's ``Retry-After`` wins when it sent one), and so
    does a database error. An invalid credential, a spent daily quota, a missing calendar
    or a refused request will fail the same way again.
    """
    if isinstance(exc, RateLimited | GoogleUnavailable):
        delay = exc.retry_after if exc.retry_after else backoff(attempt)
        return min(delay, MAX_RETRY_SECONDS)
    if isinstance(exc, DatabaseError):
        return backoff(attempt)
    return None


def _load(selected_calendar_id: int) -> SelectedCalendar | None:
    return (
        SelectedCalendar.objects.select_related("credential")
        .filter(pk=selected_calendar_id, enabled=True)
        .first()
    )


def _paced(selected: SelectedCalendar) -> JobResult | None:
    wait = pacing.seconds_until_allowed(selected.credential_id)
    if wait <= 0:
        return None
    # Spread the deferred starts over a few seconds rather than all at the turn of the minute.
    return JobResult(
        selected.pk, JobOutcome.PACED, wait + random.uniform(0, 5), counts_as_attempt=False
    )


def _after_sync(selected: SelectedCalendar, sync: SyncResult, attempt: int) -> JobResult:
    delay = retry_delay(sync, attempt)
    if delay is not None and isinstance(sync.exception, RateLimited):
        pacing.cool_down(selected.credential_id, delay)
    return JobResult(selected.pk, JobOutcome.of_sync(sync.outcome), retry_in=delay, sync=sync)


def _database_failed(selected_calendar_id: int, attempt: int) -> JobResult:
    logger.warning("Background job on calendar %s: database error", selected_calendar_id)
    connection.close()  # the next query reconnects
    return JobResult(selected_calendar_id, JobOutcome.DATABASE_FAILED, retry_in=backoff(attempt))


def _mark_again(selected_calendar_id: int, retry_in: float | None) -> None:
    """Put the notification's mark back, stamped when the retry is due (the grace for a
    lost refresh counts from then, so notifications meanwhile do not start more). Best
    effort: with the database gone too, the retry itself carries the notification."""
    due = timezone.now() + timedelta(seconds=retry_in or 0)
    try:
        SelectedCalendar.objects.filter(pk=selected_calendar_id, dirty_since__isnull=True).update(
            dirty_since=due
        )
    except DatabaseError:
        logger.warning("Calendar %s not marked again (database error)", selected_calendar_id)
        connection.close()


def _lock_wait(selected: SelectedCalendar, *, redelivered: bool) -> float:
    """How long to wait for another sync's lock: a redelivered task on SQLite waits for
    the lease of the worker that died running it; otherwise a short wait."""
    if not redelivered:
        return LOCK_RETRY_SECONDS
    token = CalendarSyncToken.objects.filter(
        credential_id=selected.credential_id, calendar_id=selected.calendar_id
    ).first()
    lease = seconds_until_free(token) if token is not None else None
    return LOCK_RETRY_SECONDS if lease is None else min(lease + 1.0, MAX_RETRY_SECONDS)


def refresh_notified(
    selected_calendar_id: int, *, attempt: int = 0, redelivered: bool = False
) -> JobResult:
    """A push notification said the calendar changed: refresh its JSON blobs and its SQL
    copy (``rollout.dual_write.refresh_calendar``), unless a refresh has started since.

    A job that finds the mark clear knows a refresh started after its notification and
    does nothing (a burst of notifications yields one refresh), except when
    ``redelivered``: then the refresh that cleared the mark may be its own, cut off by a
    dead worker or a database outage. A retryable failure of either side (SQL or JSON)
    puts the mark back and asks for a retry.
    """
    selected = _load(selected_calendar_id)
    if selected is None:
        SelectedCalendar.objects.filter(pk=selected_calendar_id).update(dirty_since=None)
        return JobResult(selected_calendar_id, JobOutcome.GONE)
    if selected.dirty_since is None and not redelivered:
        return JobResult(selected_calendar_id, JobOutcome.ALREADY_SYNCED)
    paced = _paced(selected)
    if paced is not None:
        return paced
    # From here on a new notification needs a new refresh: it may describe a change this
    # refresh's listing has already passed.
    SelectedCalendar.objects.filter(pk=selected_calendar_id).update(dirty_since=None)
    try:
        refreshed = refresh_calendar(selected)
    except DatabaseError:
        result = _database_failed(selected_calendar_id, attempt)
    except BaseException:
        _mark_again(selected_calendar_id, None)
        raise
    else:
        sync = refreshed.sync
        assert sync is not None  # refresh_calendar always runs the SQL side
        if sync.outcome == SyncOutcome.LOCKED:
            # The running sync may have listed the calendar before this notification.
            wait = _lock_wait(selected, redelivered=redelivered)
            result = JobResult(selected.pk, JobOutcome.LOCKED, wait, sync, counts_as_attempt=False)
        else:
            result = _after_sync(selected, sync, attempt)
        json_retry = failure_delay(refreshed.json_exception, attempt)
        if result.retry_in is None and json_retry is not None:
            # The SQL side is done, but the JSON blobs missed the change.
            result.retry_in = json_retry
            result.outcome = JobOutcome.JSON_REFRESH_FAILED
            result.detail = refreshed.json_error
    if result.retry_in is not None:
        _mark_again(selected_calendar_id, result.retry_in)
    return result


def sync_queued(
    selected_calendar_id: int,
    *,
    full: bool = False,
    not_synced_since: datetime | None = None,
    attempt: int = 0,
    wait_for_lock: bool = False,
) -> JobResult:
    """Sync one calendar's SQL copy (``sync_calendars --enqueue``, the stale sweep).

    ``not_synced_since``: skip when a sync succeeded after that moment (a sweep's task
    that waited in a long queue). A calendar locked by another sync is left to it, unless
    this is a full sync (the running one may be incremental) or ``wait_for_lock`` (a
    redelivered task: on SQLite the lock may be the lease of the worker that died running
    it, so the retry waits for the lease to run out).
    """
    selected = _load(selected_calendar_id)
    if selected is None:
        return JobResult(selected_calendar_id, JobOutcome.GONE)
    token = CalendarSyncToken.objects.filter(
        credential_id=selected.credential_id, calendar_id=selected.calendar_id
    ).first()
    if (
        not_synced_since is not None
        and not full
        and token is not None
        and token.last_sync_at is not None
        and token.last_sync_at >= not_synced_since
    ):
        return JobResult(selected_calendar_id, JobOutcome.FRESH)
    paced = _paced(selected)
    if paced is not None:
        return paced
    try:
        sync = sync_calendar(selected, full=full)
    except DatabaseError:
        return _database_failed(selected_calendar_id, attempt)
    if sync.outcome == SyncOutcome.LOCKED:
        if not (full or wait_for_lock):
            return JobResult(selected.pk, JobOutcome.LOCKED, None, sync)
        wait = _lock_wait(selected, redelivered=wait_for_lock)
        return JobResult(selected.pk, JobOutcome.LOCKED, wait, sync, counts_as_attempt=False)
    return _after_sync(selected, sync, attempt)
