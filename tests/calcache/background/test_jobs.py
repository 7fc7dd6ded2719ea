"""calcache.background.jobs: sync_queued and refresh_notified against the emulator."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from calcache.availability.json_cache import store_blob
from calcache.availability.live import live_busy
from calcache.background import jobs, pacing
from calcache.emulator import EmulatorClient
from calcache.models import SelectedCalendar
from calcache.sync.locking import calendar_lock
from tests.calcache.background.conftest import listings, mark
from tests.calcache.sync.conftest import Mirror
from tests.markers import committing


@pytest.fixture(autouse=True)
def _one_google_attempt(settings: Any) -> None:
    # Each job's Google call fails at once, so the decision under test is the job's.
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1


@contextmanager
def lock_held_elsewhere(mirror: Mirror) -> Iterator[None]:
    """Another connection (a worker) holds the calendar's sync lock meanwhile."""
    mirror.sync()  # the token row the lock is keyed on
    token = mirror.token()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with calendar_lock(token) as acquired:
                assert acquired
                held.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30)
    try:
        yield
    finally:
        release.set()
        thread.join(30)


# --- retry decisions -------------------------------------------------------------------------


def test_a_rate_limit_waits_as_long_as_google_asked_and_cools_the_whole_account(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    emulator.fail_next(1, status=429, reason="rateLimitExceeded", retry_after=7, path="/events")
    result = jobs.sync_queued(mirror.selected().pk)
    assert result.outcome == "failed" and result.retry_in == 7.0
    # the account's other calendars wait too, without asking Google
    emulator.clear_requests()
    paced = jobs.sync_queued(mirror.selected().pk)
    assert paced.outcome == jobs.JobOutcome.PACED and paced.retry_in is not None
    assert 0 < paced.retry_in <= 7.0 + 5.0  # what is left of the 7 s, plus up to 5 s jitter
    assert not paced.counts_as_attempt
    assert listings(emulator) == 0


def test_a_retry_after_beyond_what_a_queue_holds_is_cut_to_the_cap(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    emulator.fail_next(1, status=429, reason="rateLimitExceeded", retry_after=7200, path="/events")
    result = jobs.sync_queued(mirror.selected().pk)
    assert result.outcome == "failed" and result.retry_in == jobs.MAX_RETRY_SECONDS


def test_an_outage_asks_for_a_retry_after_a_backoff(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    emulator.fail_next(1, status=503, reason="backendError", path="/events")
    first = jobs.sync_queued(mirror.selected().pk, attempt=0)
    assert first.outcome == "failed" and first.retry_in is not None and first.counts_as_attempt
    assert jobs.BACKOFF_BASE_SECONDS / 2 <= first.retry_in <= jobs.BACKOFF_BASE_SECONDS


def test_backoff_doubles_and_is_capped() -> None:
    ceilings = [jobs.BACKOFF_BASE_SECONDS * 2**n for n in range(4)]
    for attempt, ceiling in enumerate(ceilings):
        assert ceiling / 2 <= jobs.backoff(attempt) <= ceiling
    assert jobs.backoff(20) <= jobs.BACKOFF_MAX_SECONDS


def test_a_spent_daily_quota_is_not_retried(mirror: Mirror, emulator: EmulatorClient) -> None:
    emulator.fail_next(1, status=403, reason="quotaExceeded", path="/events")
    result = jobs.sync_queued(mirror.selected().pk)
    assert result.outcome == "failed" and result.retry_in is None


def test_a_missing_or_disabled_calendar_is_skipped(mirror: Mirror) -> None:
    assert jobs.sync_queued(999_999).outcome == jobs.JobOutcome.GONE
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(enabled=False)
    assert jobs.sync_queued(mirror.selected().pk).outcome == jobs.JobOutcome.GONE


def test_a_full_sync_runs_although_the_calendar_was_synced_since_it_was_queued(
    mirror: Mirror,
) -> None:
    queued_at = mirror.now - timedelta(seconds=1)
    mirror.sync()  # another path synced it while the job waited
    pk = mirror.selected().pk
    assert jobs.sync_queued(pk, not_synced_since=queued_at).outcome == jobs.JobOutcome.FRESH
    assert jobs.sync_queued(pk, full=True, not_synced_since=queued_at).outcome == "full"


@committing
def test_a_duplicate_collapses_into_the_running_sync_but_a_redelivery_waits_for_it(
    mirror: Mirror, settings: Any
) -> None:
    settings.CALCACHE_SYNC_LEASE_SECONDS = 60
    with lock_held_elsewhere(mirror):
        duplicate = jobs.sync_queued(mirror.selected().pk)
        assert duplicate.outcome == "skipped: locked" and duplicate.retry_in is None
        redelivered = jobs.sync_queued(mirror.selected().pk, wait_for_lock=True)
        full = jobs.sync_queued(
            mirror.selected().pk, full=True
        )  # the running one may be incremental
    for waits in (redelivered, full):
        assert waits.retry_in is not None and not waits.counts_as_attempt
    # a full sync waits a little for a live holder; a redelivered task, on SQLite, until
    # the lease of the (perhaps dead) holder runs out
    assert full.retry_in == jobs.LOCK_RETRY_SECONDS
    if connection.vendor == "postgresql":
        assert redelivered.retry_in == jobs.LOCK_RETRY_SECONDS  # a live session holds it
    else:
        assert redelivered.retry_in is not None and 50 < redelivered.retry_in <= 61


def test_a_paced_job_asks_to_retry_without_calling_google(
    mirror: Mirror, emulator: EmulatorClient, settings: Any
) -> None:
    settings.CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE = 1
    pacing.cool_down(mirror.selected().credential_id, 30)  # as after a 429 on another
    emulator.clear_requests()
    paced = jobs.sync_queued(mirror.selected().pk)
    assert paced.outcome == jobs.JobOutcome.PACED and paced.retry_in is not None
    assert 25 < paced.retry_in <= 30 + 5
    assert emulator.requests() == []


# --- the notification's refresh and its mark -------------------------------------------------


def test_of_a_burst_only_the_first_refresh_runs(mirror: Mirror, emulator: EmulatorClient) -> None:
    mark(mirror)
    assert jobs.refresh_notified(mirror.selected().pk).outcome == "full"
    emulator.clear_requests()
    # a second job of the same burst: the refresh above started after its notification
    result = jobs.refresh_notified(mirror.selected().pk)
    assert result.outcome == jobs.JobOutcome.ALREADY_SYNCED
    assert emulator.requests() == []


def test_a_redelivered_refresh_runs_although_its_first_run_cleared_the_mark(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    # a worker died mid-refresh: the mark is clear, the change may not be in yet
    assert mirror.selected().dirty_since is None
    result = jobs.refresh_notified(mirror.selected().pk, redelivered=True)
    assert result.outcome == "full"
    mirror.assert_mirrors_window()


def test_a_refresh_of_a_deselected_calendar_drops_its_mark(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    mark(mirror)
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(enabled=False)
    emulator.clear_requests()
    assert jobs.refresh_notified(mirror.selected().pk).outcome == jobs.JobOutcome.GONE
    assert mirror.selected().dirty_since is None  # no sweep picks it up later
    assert emulator.requests() == []


def test_other_syncs_leave_the_notification_mark_to_its_refresh(mirror: Mirror) -> None:
    marked_at = mark(mirror)
    assert jobs.sync_queued(mirror.selected().pk).outcome == "full"
    # the sweep's sync did not rewrite the JSON blobs: the refresh must still run
    assert mirror.selected().dirty_since == marked_at
    assert jobs.refresh_notified(mirror.selected().pk).outcome == "incremental"
    assert mirror.selected().dirty_since is None


def test_a_notification_refresh_syncs_and_clears_the_mark(mirror: Mirror) -> None:
    mark(mirror)
    result = jobs.refresh_notified(mirror.selected().pk)
    assert result.outcome == "full" and result.retry_in is None
    assert mirror.selected().dirty_since is None
    mirror.assert_mirrors_window()


def test_a_failed_notification_refresh_puts_its_mark_back(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    mark(mirror, timezone.now() - timedelta(seconds=30))
    emulator.fail_next(1, status=503, reason="backendError", path="/events")
    result = jobs.refresh_notified(mirror.selected().pk)
    assert result.retry_in is not None
    # the retry (or the sweep) finds it; its grace counts from now
    remarked = mirror.selected().dirty_since
    # stamped when the retry is due: notifications until then do not submit again
    assert remarked is not None and remarked > timezone.now()


def test_a_failed_json_refresh_is_retried_although_the_sql_side_is_done(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    week = (mirror.now, mirror.now + timedelta(days=7))
    live_busy(
        user=mirror.user, start=week[0], end=week[1], keep=store_blob
    )  # a JSON blob to refresh
    mark(mirror)
    emulator.fail_next(1, status=503, reason="backendError", path="freeBusy")
    result = jobs.refresh_notified(mirror.selected().pk)
    assert result.sync is not None and result.sync.outcome == "full"
    assert result.outcome.startswith("JSON refresh failed") and result.retry_in is not None
    assert mirror.selected().dirty_since is not None


@committing
def test_a_notification_refresh_behind_a_running_sync_retries(mirror: Mirror) -> None:
    with lock_held_elsewhere(mirror):
        mark(mirror, timezone.now() - timedelta(seconds=3))
        result = jobs.refresh_notified(mirror.selected().pk)
    # the running sync may have listed the calendar before the change
    assert result.outcome == "skipped: locked"
    assert result.retry_in == jobs.LOCK_RETRY_SECONDS and not result.counts_as_attempt
    assert mirror.selected().dirty_since is not None
