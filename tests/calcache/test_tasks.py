"""calcache.tasks through ``Task.apply``: eager, so retries happen at once, in-process."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from calcache.background import jobs
from calcache.conf import conf
from calcache.emulator import EmulatorClient
from calcache.models import CalendarEvent
from calcache.tasks import (
    cleanup,
    refresh_calendar,
    refresh_stale,
    renew_channels,
    stop_channel,
    sync_calendar,
)
from tests.calcache.background.conftest import (
    listing_statuses,
    listings,
    make_live_mirror,
    mark,
)
from tests.calcache.sync.conftest import Mirror
from tests.celery_worker import eager_tasks
from tests.factories import CalendarEventFactory


@pytest.fixture(autouse=True)
def _one_google_attempt(settings: Any) -> None:
    # Each job's Google call fails at once, so the decision under test is the task's.
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1


@pytest.fixture
def mirror(emulator: EmulatorClient, write_flag_on: None) -> Mirror:
    return make_live_mirror(emulator)


def test_the_task_syncs_the_calendar_and_reports(mirror: Mirror) -> None:
    outcome = sync_calendar.apply(args=(mirror.selected().pk,)).get()
    assert outcome["outcome"] == "full" and outcome["upserted"] == 3
    assert outcome["retry_in"] is None
    mirror.assert_mirrors_window()


def test_the_task_retries_an_outage_until_the_sync_succeeds(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    emulator.fail_next(2, status=503, reason="backendError", path="/events")
    outcome = sync_calendar.apply(args=(mirror.selected().pk,)).get()
    assert outcome["outcome"] == "full"
    # two outages retried by the task, then the sync (perhaps after one 401 and a token
    # refresh: the emulator's clock moved past the access token's expiry)
    assert [s for s in listing_statuses(emulator) if s != 401] == [503, 503, 200]


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


def test_the_refresh_task_retries_an_outage_on_the_mark_it_put_back(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    mark(mirror)
    emulator.fail_next(1, status=503, reason="backendError", path="/events")
    outcome = refresh_calendar.apply(args=(mirror.selected().pk,)).get()
    assert outcome["outcome"] == "full" and outcome["retry_in"] is None
    assert [s for s in listing_statuses(emulator) if s != 401] == [503, 200]
    assert mirror.selected().dirty_since is None


def test_the_stop_task_reports_whether_google_stopped_the_channel(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    args = (mirror.selected().pk, "stray-channel", "stray-resource")
    # a channel Google does not know counts as stopped
    assert stop_channel.apply(args=args).get() == {"channel_id": "stray-channel", "stopped": True}
    emulator.fail_next(1, status=503, reason="backendError", path="/channels/stop")
    refused = stop_channel.apply(args=args).get()
    assert refused["stopped"] is False and "503" in refused["error"]  # it expires on its own


def test_the_sweep_task_syncs_what_is_stale(mirror: Mirror) -> None:
    with eager_tasks():  # .delay() runs in-process, as on a broker-less site
        swept = refresh_stale.apply().get()
    assert swept == {"dirty": 0, "stale": 1}
    assert mirror.token().last_sync_at is not None
    mirror.assert_mirrors_window()


def test_the_sweep_claims_and_refreshes_a_lost_notification(mirror: Mirror) -> None:
    mirror.sync()  # synced, but a notification since then lost its refresh
    mark(mirror, timezone.now() - timedelta(seconds=conf.dirty_grace_seconds + 60))
    with eager_tasks():
        swept = refresh_stale.apply().get()
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
