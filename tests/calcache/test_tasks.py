"""calcache.tasks and calcache.jobs without a broker: retry decisions, duplicate handling,
per-account pacing, the stale sweep's choice of calendars, and `sync_calendars --enqueue`'s
errors. Celery runs the tasks eagerly (``Task.apply``: retries happen at once, in-process);
the real broker and worker processes are in background/test_celery_workers.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone

from calcache.availability.json_cache import store_blob
from calcache.availability.live import live_busy
from calcache.background import jobs, pacing
from calcache.conf import conf
from calcache.emulator import EmulatorClient
from calcache.models import CalendarEvent, CalendarSyncToken, SelectedCalendar
from calcache.selectors import calendars_needing_sync
from calcache.sync.locking import calendar_lock
from calcache.tasks import cleanup, refresh_stale, renew_channels, sync_calendar
from flags.models import Flag
from flags.names import WRITE_FLAG
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.factories import (
    CalendarEventFactory,
    CalendarSyncTokenFactory,
    CredentialFactory,
    SelectedCalendarFactory,
    UserFactory,
)
from tests.markers import committing
from tests.notifications import WEBHOOK_TOKEN, notify, open_test_channel


@pytest.fixture(autouse=True)
def _one_google_attempt(settings: Any) -> None:
    # Each job's Google call fails at once, so the decision under test is the task's.
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1


@pytest.fixture
def mirror(emulator: EmulatorClient, write_flag_on: None) -> Mirror:
    mirror = make_mirror(emulator)
    mirror.advance(timezone.now() - mirror.now)  # jobs sync at the real "now"
    start = mirror.now.replace(minute=0, second=0, microsecond=0)
    for day in range(1, 4):
        emulator.add_event(
            mirror.email,
            start=start + timedelta(days=day),
            end=start + timedelta(days=day, hours=1),
        )
    return mirror


def listings(emulator: EmulatorClient) -> int:
    return sum(1 for request in emulator.requests() if request["path"].endswith("/events"))


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


# --- the task and its retry decisions -----------------------------------------------------


def test_the_task_syncs_the_calendar_and_reports(mirror: Mirror) -> None:
    outcome = sync_calendar.apply(args=(mirror.selected().pk,)).get()
    assert outcome["outcome"] == "full" and outcome["upserted"] == 3
    assert outcome["retry_in"] is None
    mirror.assert_mirrors_window()


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


def test_an_outage_is_retried_with_backoff_until_the_sync_succeeds(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    emulator.fail_next(1, status=503, reason="backendError", path="/events")
    first = jobs.sync_queued(mirror.selected().pk, attempt=0)
    assert first.outcome == "failed" and first.retry_in is not None
    assert jobs.BACKOFF_BASE_SECONDS / 2 <= first.retry_in <= jobs.BACKOFF_BASE_SECONDS
    emulator.clear_requests()
    emulator.fail_next(2, status=503, reason="backendError", path="/events")
    outcome = sync_calendar.apply(args=(mirror.selected().pk,)).get()
    assert outcome["outcome"] == "full"
    statuses = [r["status"] for r in emulator.requests() if r["path"].endswith("/events")]
    # two outages retried by the task, then the sync (after one 401 and a token refresh:
    # the emulator's clock moved past the access token's expiry)
    assert [s for s in statuses if s != 401] == [503, 503, 200]


def test_backoff_doubles_and_is_capped() -> None:
    ceilings = [jobs.BACKOFF_BASE_SECONDS * 2**n for n in range(4)]
    for attempt, ceiling in enumerate(ceilings):
        assert ceiling / 2 <= jobs.backoff(attempt) <= ceiling
    assert jobs.backoff(20) <= jobs.BACKOFF_MAX_SECONDS


def test_the_task_gives_up_after_its_retries_and_leaves_the_calendar_stale(
    mirror: Mirror, emulator: EmulatorClient, settings: Any
) -> None:
    settings.CALCACHE_TASK_MAX_RETRIES = 5  # above Celery's own default cap of 3
    emulator.fail_next(50, status=503, reason="backendError", path="/events")
    outcome = sync_calendar.apply(args=(mirror.selected().pk,)).get()
    assert outcome["gave_up"] is True and outcome["outcome"] == "failed"
    assert listings(emulator) == 6  # the first try and 5 retries
    assert "GoogleUnavailable" in mirror.token().last_error


def test_an_invalid_credential_is_never_retried(mirror: Mirror, emulator: EmulatorClient) -> None:
    emulator.revoke(mirror.email)
    emulator.expire_access_tokens(mirror.email)
    outcome = sync_calendar.apply(args=(mirror.selected().pk,)).get()
    assert outcome["outcome"] == "failed" and outcome["retry_in"] is None
    assert "gave_up" not in outcome
    assert listings(emulator) == 1  # the one refused attempt, never retried
    assert mirror.selected().credential.invalid


def test_a_spent_daily_quota_is_not_retried(mirror: Mirror, emulator: EmulatorClient) -> None:
    emulator.fail_next(1, status=403, reason="quotaExceeded", path="/events")
    result = jobs.sync_queued(mirror.selected().pk)
    assert result.outcome == "failed" and result.retry_in is None


def test_a_missing_or_disabled_calendar_is_skipped(mirror: Mirror) -> None:
    assert jobs.sync_queued(999_999).outcome == jobs.JobOutcome.GONE
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(enabled=False)
    assert (
        sync_calendar.apply(args=(mirror.selected().pk,)).get()["outcome"] == jobs.JobOutcome.GONE
    )


def test_a_sweep_task_that_waited_past_a_newer_sync_does_nothing(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    queued_at = mirror.now - timedelta(seconds=1)
    mirror.sync()  # another path synced it (at mirror.now) while the task waited
    emulator.clear_requests()
    outcome = sync_calendar.apply(
        args=(mirror.selected().pk,), kwargs={"not_synced_since": queued_at.isoformat()}
    ).get()
    assert outcome["outcome"] == jobs.JobOutcome.FRESH
    assert listings(emulator) == 0


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


# --- notifications --------------------------------------------------------------------------


def test_of_a_burst_only_the_first_refresh_runs(mirror: Mirror, emulator: EmulatorClient) -> None:
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(dirty_since=timezone.now())
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


def test_other_syncs_leave_the_notification_mark_to_its_refresh(mirror: Mirror) -> None:
    marked_at = timezone.now()
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(dirty_since=marked_at)
    assert jobs.sync_queued(mirror.selected().pk).outcome == "full"
    # the sweep's sync did not rewrite the JSON blobs: the refresh must still run
    assert mirror.selected().dirty_since == marked_at
    assert jobs.refresh_notified(mirror.selected().pk).outcome == "incremental"
    assert mirror.selected().dirty_since is None


def test_a_notification_refresh_syncs_and_clears_the_mark(mirror: Mirror) -> None:
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(dirty_since=timezone.now())
    result = jobs.refresh_notified(mirror.selected().pk)
    assert result.outcome == "full" and result.retry_in is None
    assert mirror.selected().dirty_since is None
    mirror.assert_mirrors_window()


def test_a_failed_notification_refresh_puts_its_mark_back(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    marked_at = timezone.now() - timedelta(seconds=30)
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(dirty_since=marked_at)
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
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(dirty_since=timezone.now())
    emulator.fail_next(1, status=503, reason="backendError", path="freeBusy")
    result = jobs.refresh_notified(mirror.selected().pk)
    assert result.sync is not None and result.sync.outcome == "full"
    assert result.outcome.startswith("JSON refresh failed") and result.retry_in is not None
    assert mirror.selected().dirty_since is not None


def test_sync_calendars_dirty_refreshes_and_keeps_what_failed_marked(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    live_busy(
        user=mirror.user, start=mirror.now, end=mirror.now + timedelta(days=7), keep=store_blob
    )
    marked = SelectedCalendar.objects.filter(pk=mirror.selected().pk)
    marked.update(dirty_since=timezone.now())
    emulator.fail_next(1, status=503, reason="backendError", path="/events")
    with pytest.raises(CommandError, match="1 of 1 calendar"):
        call_command("sync_calendars", "--dirty", stdout=StringIO())
    assert marked.get().dirty_since is not None  # the outage did not swallow the notice
    emulator.clear_requests()
    out = StringIO()
    call_command("sync_calendars", "--dirty", stdout=out)
    paths = {request["path"].rsplit("/", 1)[-1] for request in emulator.requests()}
    assert {"events", "freeBusy"} <= paths  # SQL and the JSON blobs
    assert marked.get().dirty_since is None
    with pytest.raises(CommandError, match="--dirty refreshes"):
        call_command("sync_calendars", "--dirty", "--full")


@committing
def test_a_notification_refresh_behind_a_running_sync_retries(mirror: Mirror) -> None:
    with lock_held_elsewhere(mirror):
        marked_at = timezone.now() - timedelta(seconds=3)
        SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(dirty_since=marked_at)
        result = jobs.refresh_notified(mirror.selected().pk)
    # the running sync may have listed the calendar before the change
    assert result.outcome == "skipped: locked"
    assert result.retry_in == jobs.LOCK_RETRY_SECONDS and not result.counts_as_attempt
    assert mirror.selected().dirty_since is not None


@committing
def test_a_lost_refresh_is_submitted_again_by_the_next_notification(
    mirror: Mirror, settings: Any, client: Client
) -> None:
    settings.CALCACHE_WEBHOOK_TOKEN = WEBHOOK_TOKEN
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.DirtyFlagRunner"
    channel = open_test_channel(mirror.selected(), "lost")
    assert notify(client, channel) == {"status": "queued"}
    assert notify(client, channel) == {"status": "already queued"}
    lost = timezone.now() - timedelta(seconds=conf.dirty_grace_seconds + 1)
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(dirty_since=lost)
    statuses = [notify(client, channel)["status"] for _ in range(3)]
    # one of the burst claims the lost mark and submits again; the others see it claimed
    assert statuses == ["queued", "already queued", "already queued"]


# --- per-account pacing ---------------------------------------------------------------------


def test_each_account_has_its_own_budget_of_sync_starts(db: None, settings: Any) -> None:
    settings.CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE = 2
    minute = 60 * 29_000_000  # a clock minute's start, as a Unix time
    assert pacing.seconds_until_allowed(1, now=minute + 10) == 0.0
    assert pacing.seconds_until_allowed(1, now=minute + 20) == 0.0
    assert pacing.seconds_until_allowed(1, now=minute + 45) == 15.0  # the minute's rest
    assert pacing.seconds_until_allowed(2, now=minute + 45) == 0.0  # another account
    assert pacing.seconds_until_allowed(1, now=minute + 61) == 0.0  # a new minute
    settings.CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE = 0
    assert pacing.seconds_until_allowed(3, now=minute + 62) == 0.0  # 0: no budget


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


# --- the stale sweep ------------------------------------------------------------------------


def test_the_sweep_picks_marked_lost_and_stale_calendars_of_writers_only(db: None) -> None:
    now = timezone.now()
    writer, reader = UserFactory(), UserFactory()
    flag = Flag.objects.get(name=WRITE_FLAG)
    flag.users.add(writer)

    def calendar(user: Any = writer, **fields: Any) -> SelectedCalendar:
        account = f"account{SelectedCalendar.objects.count()}@example.com"
        credential = CredentialFactory(user=user, account_email=account)
        return SelectedCalendarFactory(credential=credential, **fields)

    def synced(selected: SelectedCalendar, ago: timedelta) -> SelectedCalendar:
        CalendarSyncTokenFactory(
            credential=selected.credential,
            calendar_id=selected.calendar_id,
            last_sync_at=now - ago,
        )
        return selected

    never = calendar()
    old = synced(calendar(), timedelta(hours=5))
    failing = synced(calendar(), timedelta(hours=5))
    CalendarSyncToken.objects.filter(calendar_id=failing.calendar_id).update(
        last_error="GoogleBadRequest", last_error_at=now - timedelta(minutes=10)
    )
    fresh = synced(calendar(), timedelta(minutes=5))
    lost = synced(calendar(dirty_since=now - timedelta(minutes=10)), timedelta(minutes=1))
    synced(calendar(dirty_since=now - timedelta(seconds=10)), timedelta(minutes=1))  # in grace
    calendar(user=reader)  # write flag off: a sync would write nothing
    calendar(enabled=False)
    invalid = calendar()
    invalid.credential.invalid = True
    invalid.credential.save()

    due = calendars_needing_sync(
        now=now,
        stale_after=timedelta(hours=1),
        dirty_grace=timedelta(minutes=2),
        limit=100,
    )
    assert due.dirty == [lost.pk]
    assert due.stale == [never.pk, old.pk]  # never synced first, then the oldest
    assert fresh.pk not in due.stale and failing.pk not in due.stale  # tried this period
    limited = calendars_needing_sync(
        now=now, stale_after=timedelta(hours=1), dirty_grace=timedelta(minutes=2), limit=2
    )
    assert limited.dirty == [lost.pk] and limited.stale == [never.pk]


def test_the_sweep_task_syncs_what_is_stale(
    mirror: Mirror, emulator: EmulatorClient, settings: Any
) -> None:
    from project.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # .delay() runs in-process, as on a broker-less site
    try:
        swept = refresh_stale.apply().get()
    finally:
        app.conf.task_always_eager = eager
    assert swept == {"dirty": 0, "stale": 1}
    assert mirror.token().last_sync_at is not None
    mirror.assert_mirrors_window()


def test_the_sweep_claims_and_refreshes_a_lost_notification(mirror: Mirror, settings: Any) -> None:
    from project.celery import app

    lost = timezone.now() - timedelta(seconds=conf.dirty_grace_seconds + 60)
    mirror.sync()  # synced, but a notification since then lost its refresh
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(dirty_since=lost)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        swept = refresh_stale.apply().get()
    finally:
        app.conf.task_always_eager = eager
    assert swept == {"dirty": 1, "stale": 0}
    assert mirror.selected().dirty_since is None


def test_periodic_tasks_report_what_they_did(db: None) -> None:
    assert renew_channels.apply().get() == {"skipped": "CALCACHE_WEBHOOK_URL is not set"}
    CalendarEventFactory(
        start_time=timezone.now() - timedelta(days=400),
        end_time=timezone.now() - timedelta(days=399),
    )
    CalendarEventFactory()
    report = cleanup.apply().get()
    assert report["events"] == 1
    assert CalendarEvent.objects.count() == 1


# --- configuration and the command ------------------------------------------------------------


def test_the_runner_follows_the_broker_setting(settings: Any) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = ""
    settings.CELERY_BROKER_URL = ""
    assert conf.background_runner == "calcache.background.runners.ThreadPoolRunner"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    assert conf.background_runner == "calcache.background.runners.CeleryRunner"
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.DirtyFlagRunner"
    assert conf.background_runner == "calcache.background.runners.DirtyFlagRunner"


def test_checks_reject_a_celery_runner_without_broker_and_bad_numbers(settings: Any) -> None:
    settings.CELERY_BROKER_URL = ""
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.CeleryRunner"
    settings.CALCACHE_SYNC_PAGE_SIZE = 5000
    ids = {message.id for message in run_checks()}
    assert {"calcache.E010", "calcache.E011"} <= ids


def test_enqueue_refuses_workers_and_reports_an_unreachable_broker(
    mirror: Mirror, settings: Any
) -> None:
    from tests.celery_worker import producer_for

    with producer_for("redis://127.0.0.1:1/0", settings):
        with pytest.raises(CommandError, match="--workers applies to syncs in this process"):
            call_command("sync_calendars", "--enqueue", "--workers", "2")
        with pytest.raises(CommandError, match=r"Could not reach the Celery broker at redis://"):
            call_command("sync_calendars", "--enqueue", stdout=StringIO())
    assert not CalendarSyncToken.objects.filter(last_sync_at__isnull=False).exists()


@committing
def test_a_broker_outage_leaves_the_notification_marked_and_google_answered(
    mirror: Mirror, settings: Any, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.celery_worker import producer_for

    settings.CALCACHE_WEBHOOK_TOKEN = WEBHOOK_TOKEN
    channel = open_test_channel(mirror.selected(), "outage")
    with producer_for("redis://127.0.0.1:1/0", settings):  # nothing listens there
        assert notify(client, channel) == {"status": "queued"}
    assert mirror.selected().dirty_since is not None  # the sweep or a later notice finds it
    assert "Could not submit the refresh" in caplog.text
