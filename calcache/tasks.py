"""Celery tasks: the entry points of calcache's background work on many workers and machines.

They hold no logic: each calls a job (``calcache.background.jobs``) or a service and
decides only about Celery's retry. Used when the host configures a broker
(``CELERY_BROKER_URL``); without one, the same jobs run in-process
(``calcache.background.runners``, ``sync_calendars``). Every task is idempotent and
acknowledged late: a worker that dies mid-task leaves the message to be redelivered,
and the per-calendar lock plus the checks in the jobs make duplicates cheap no-ops.
Task names are stable (``calcache.*``) so routes and beat entries can use them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from calcache.extras import MissingExtra

try:
    from celery import Task, shared_task
except ImportError as exc:
    raise MissingExtra("celery", exc) from exc

from calcache.background import jobs
from calcache.background.sweep import calendars_needing_sync
from calcache.conf import conf
from calcache.exceptions import GoogleError
from calcache.models import SelectedCalendar
from calcache.push.channels import renew_channels as renew
from calcache.push.channels import stop_remote_channel
from calcache.rollout.shadow import ShadowSample, compare_sample
from calcache.sync.cleanup import cleanup_calendar_cache

logger = logging.getLogger("calcache.tasks")

# max_retries None: Celery's own cap (3 by default) must not cut in; _finish counts the
# failures against CALCACHE_TASK_MAX_RETRIES and lets waits (a lock, the account's
# budget) retry without counting, up to HARD_RETRY_LIMIT deliveries in all.
TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": None,
}
HARD_RETRY_LIMIT = 200
# A sweep's sync task older than this is dropped by the worker (its retries too): the
# calendar stays stale and the next sweep sends a fresh one, so a backlog never holds
# more than a few sweeps' worth.
SWEEP_TASK_EXPIRES = 15 * 60


def _redelivered(task: Task) -> bool:
    return bool((task.request.delivery_info or {}).get("redelivered"))


def _finish(task: Task, result: jobs.JobResult, attempt: int, **carry: Any) -> dict[str, Any]:
    """Retry when the job asked for it and retries are left; otherwise report.

    ``attempt`` counts failures only; ``carry`` are keyword arguments the retry keeps.
    """
    summary = result.as_dict()
    if result.retry_in is None:
        return summary
    next_attempt = attempt + 1 if result.counts_as_attempt else attempt
    if next_attempt > conf.task_max_retries or task.request.retries >= HARD_RETRY_LIMIT:
        logger.warning(
            "%s gave up on calendar %s after %s failed attempt(s): %s",
            task.name,
            result.selected_calendar_id,
            next_attempt,
            result.describe(),
        )
        return {**summary, "gave_up": True}
    kwargs = {**(task.request.kwargs or {}), **carry, "attempt": next_attempt}
    raise task.retry(countdown=max(result.retry_in, 0.0), kwargs=kwargs)


@shared_task(name="calcache.sync_calendar", **TASK_OPTIONS)
def sync_calendar(
    self: Task,
    selected_calendar_id: int,
    full: bool = False,
    not_synced_since: str | None = None,
    attempt: int = 0,
    wait_for_lock: bool = False,
) -> dict[str, Any]:
    """Sync one selected calendar's SQL copy (``calcache.jobs.sync_queued``).

    ``not_synced_since`` (ISO 8601): skip if a sync succeeded after it. ``attempt`` and
    ``wait_for_lock`` are set by the task's own retries.
    """
    since = datetime.fromisoformat(not_synced_since) if not_synced_since else None
    wait_for_lock = wait_for_lock or _redelivered(self)
    result = jobs.sync_queued(
        selected_calendar_id,
        full=full,
        not_synced_since=since,
        attempt=attempt,
        wait_for_lock=wait_for_lock,
    )
    return _finish(self, result, attempt, wait_for_lock=wait_for_lock)


@shared_task(name="calcache.refresh_calendar", **TASK_OPTIONS)
def refresh_calendar(
    self: Task, selected_calendar_id: int, attempt: int = 0, resumed: bool = False
) -> dict[str, Any]:
    """A push notification's work: JSON blobs and SQL copy (``jobs.refresh_notified``).

    ``resumed``: run even if the calendar's mark is clear, because this notification's
    own earlier run may have cleared it: when redelivered (a dead worker), and on the
    retry of a database failure (the mark may not have been put back). Other retries
    rely on the mark the job put back: clear means a later refresh covered the change.
    """
    resumed = resumed or _redelivered(self)
    result = jobs.refresh_notified(selected_calendar_id, attempt=attempt, redelivered=resumed)
    return _finish(self, result, attempt, resumed=result.outcome == jobs.JobOutcome.DATABASE_FAILED)


@shared_task(name="calcache.stop_channel", **TASK_OPTIONS)
def stop_channel(
    self: Task, selected_calendar_id: int, channel_id: str, resource_id: str
) -> dict[str, Any]:
    """Stop a push channel Google still sends for but we no longer keep."""
    try:
        stop_remote_channel(selected_calendar_id, channel_id, resource_id)
    except GoogleError as exc:
        # An unwanted channel that cannot be stopped simply expires.
        logger.info("Channel %s not stopped: %s", channel_id, exc)
        return {"channel_id": channel_id, "stopped": False, "error": str(exc)}
    return {"channel_id": channel_id, "stopped": True}


@shared_task(name="calcache.renew_channels", **TASK_OPTIONS)
def renew_channels(self: Task) -> dict[str, Any]:
    """Replace push channels before they expire; open missing ones (beat: hourly)."""
    if not conf.webhooks_enabled:
        return {"skipped": "CALCACHE_WEBHOOK_URL is not set"}
    report = renew()
    return {
        "renewed": report.renewed,
        "opened": report.opened,
        "stopped": report.stopped,
        "failed": report.failed,
    }


@shared_task(name="calcache.cleanup", **TASK_OPTIONS)
def cleanup(self: Task) -> dict[str, Any]:
    """Delete events past ``CALCACHE_RETENTION_DAYS`` and expired JSON entries (beat: daily)."""
    report = cleanup_calendar_cache(days=conf.retention_days)
    return {
        "events": report.events,
        "json_entries": report.json_entries,
        "sync_tokens": report.sync_tokens,
        "seconds": round(report.seconds, 3),
    }


@shared_task(name="calcache.refresh_stale", **TASK_OPTIONS)
def refresh_stale(self: Task) -> dict[str, int]:
    """Enqueue a sync for each calendar whose last success is older than
    ``CALCACHE_STALE_AFTER_MINUTES`` and a refresh for each one a notification marked
    and nobody refreshed (beat: every 5 minutes)."""
    now = timezone.now()
    due = calendars_needing_sync(
        now=now,
        stale_after=timedelta(minutes=conf.stale_after_minutes),
        dirty_grace=timedelta(seconds=conf.dirty_grace_seconds),
        limit=conf.stale_sweep_limit,
    )
    if due.dirty:
        # Claimed like the webhook claims a lost mark, so notifications meanwhile do not
        # submit again. No expiry: the refresh carries a notification.
        SelectedCalendar.objects.filter(
            pk__in=due.dirty, dirty_since__lt=now - timedelta(seconds=conf.dirty_grace_seconds)
        ).update(dirty_since=now)
    for selected_id in due.dirty:
        refresh_calendar.delay(selected_id)
    for selected_id in due.stale:
        sync_calendar.apply_async(
            args=(selected_id,),
            kwargs={"not_synced_since": now.isoformat()},
            expires=SWEEP_TASK_EXPIRES,
        )
    return {"dirty": len(due.dirty), "stale": len(due.stale)}


@shared_task(name="calcache.compare_availability", ignore_result=True)
def compare_availability(sample: dict[str, Any]) -> None:
    """Compare a sampled availability answer with the other source (a shadow comparison);
    a lost one is only a missing sample, so no retries."""
    compare_sample(ShadowSample.from_dict(sample))
