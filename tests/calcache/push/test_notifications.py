"""Push notifications: the webhook view, the background runner and channel renewal.

The end-to-end tests let the emulator POST real notifications to our own site served by
pytest-django's live_server, so those tests commit (transactional database)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from calcache.background.runners import ThreadPoolRunner, get_runner
from calcache.emulator import EmulatorClient
from calcache.models import CalendarEvent, PushChannel, SelectedCalendar
from calcache.push.channels import open_channel, renew_channels
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.markers import committing

URL = "/calendar-cache/webhooks/google/"
TOKEN = "s3cret-channel-token"


@pytest.fixture(autouse=True)
def _background_settled(google_emulator_server: Any) -> Iterator[None]:
    # Deliveries and runner jobs of one test must not land in the next one's request log.
    def settle() -> None:
        google_emulator_server.push.wait_idle()
        current = get_runner()
        if isinstance(current, ThreadPoolRunner):
            current.wait_idle()  # nothing runs, so nothing schedules a retry after this
            current.cancel_retries()

    settle()
    yield
    settle()


@pytest.fixture
def webhooks_on(settings: Any, live_server: Any) -> str:
    settings.CALCACHE_WEBHOOK_URL = f"{live_server.url}{URL}"
    settings.CALCACHE_WEBHOOK_TOKEN = TOKEN
    settings.CALCACHE_SHADOW_SAMPLE_RATE = 0
    return str(settings.CALCACHE_WEBHOOK_URL)


def headers(channel: PushChannel, state: str = "exists", token: str = TOKEN) -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": channel.channel_id,
        "X-Goog-Channel-Token": token,
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": "2",
        "X-Goog-Resource-URI": (
            f"https://www.googleapis.com/calendar/v3/calendars/"
            f"{channel.selected_calendar.calendar_id}/events?alt=json"
        ),
    }


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def runner() -> ThreadPoolRunner:
    current = get_runner()
    assert isinstance(current, ThreadPoolRunner)
    return current


@pytest.fixture
def watched(
    emulator: EmulatorClient, write_flag_on: None, webhooks_on: str, google_emulator_server: Any
) -> Mirror:
    mirror = make_mirror(emulator)
    mirror.advance(timezone.now() - mirror.now)  # the real clock: live_server syncs "now"
    mirror.sync()
    open_channel(mirror.selected())
    google_emulator_server.push.wait_idle()  # the channel's "sync" message has been handled
    return mirror


@committing
def test_a_change_at_google_reaches_sql_through_the_webhook(
    watched: Mirror, emulator: EmulatorClient, google_emulator_server: Any
) -> None:
    start = timezone.now().replace(microsecond=0) + timedelta(hours=3)
    emulator.add_event(watched.email, start=start, end=start + timedelta(hours=1))
    google_emulator_server.push.wait_idle()
    runner().wait_idle()
    wait_for(lambda: CalendarEvent.objects.count() == 1)
    deliveries = emulator.deliveries()
    assert [d["state"] for d in deliveries] == ["sync", "exists"]
    assert all(d["status"] == 200 for d in deliveries)
    watched.assert_mirrors(start - timedelta(days=1), start + timedelta(days=1))


@committing
def test_wrong_or_missing_token_is_403_and_nothing_happens(watched: Mirror, client: Client) -> None:
    channel = PushChannel.objects.get()
    assert client.post(URL, headers=headers(channel, token="nope")).status_code == 403
    missing = headers(channel)
    del missing["X-Goog-Channel-Token"]
    assert client.post(URL, headers=missing).status_code == 403
    assert SelectedCalendar.objects.get().dirty_since is None


@committing
def test_sync_message_is_acknowledged_only(watched: Mirror, client: Client) -> None:
    channel = PushChannel.objects.get()
    response = client.post(URL, headers=headers(channel, state="sync"))
    assert response.status_code == 200 and response.json() == {"status": "sync message"}
    assert SelectedCalendar.objects.get().dirty_since is None


@committing
def test_the_request_never_calls_google_and_a_burst_is_one_sync(
    watched: Mirror, client: Client, emulator: EmulatorClient, settings: Any
) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.DirtyFlagRunner"
    channel = PushChannel.objects.get()
    emulator.clear_requests()
    statuses = [client.post(URL, headers=headers(channel)).json()["status"] for _ in range(5)]
    # the first notice marks the calendar and submits; the others find it already marked
    assert statuses == ["queued"] + ["already queued"] * 4
    assert emulator.requests() == []  # no Google call inside the requests
    assert SelectedCalendar.objects.get().dirty_since is not None
    # the dirty mark is the queue: one sync drains the whole burst
    call_command("sync_calendars", "--dirty", "--quiet")
    listings = [r for r in emulator.requests() if r["path"].endswith("/events")]
    assert len(listings) == 1
    assert SelectedCalendar.objects.get().dirty_since is None


@committing
def test_thread_pool_runner_coalesces_a_burst(watched: Mirror, emulator: EmulatorClient) -> None:
    pool = ThreadPoolRunner(workers=1)
    selected_id = SelectedCalendar.objects.get().pk
    marked = SelectedCalendar.objects.filter(pk=selected_id)
    emulator.fail_next(1, kind="slow", delay=0.5, path="/events")  # keep the first run busy
    emulator.clear_requests()
    marked.update(dirty_since=timezone.now())  # what the webhook does before submitting
    for _ in range(6):
        pool.submit_sync(selected_id)
    # the first run has started (it cleared the mark and is listing); a new notice comes
    deadline = time.monotonic() + 30
    while not emulator.requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    marked.update(dirty_since=timezone.now())
    for _ in range(6):
        pool.submit_sync(selected_id)
    pool.wait_idle()
    # One sync for the first batch, one for the notice that came while it ran. (A run
    # queued by the first batch after the first run started finds the mark cleared and
    # does nothing, so the number of runs varies; the number of syncs does not.)
    listings = [r for r in emulator.requests() if r["path"].endswith("/events")]
    assert len(listings) == 2
    assert 2 <= pool.completed <= 3
    assert marked.get().dirty_since is None


@committing
def test_thread_pool_runner_retries_a_refresh_google_put_off(
    watched: Mirror, emulator: EmulatorClient, settings: Any
) -> None:
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1  # the client gives up at once; the runner retries
    pool = ThreadPoolRunner(workers=1)
    selected = SelectedCalendar.objects.filter(pk=watched.selected().pk)
    selected.update(dirty_since=timezone.now())
    emulator.fail_next(1, status=503, reason="backendError", retry_after=1, path="/events")
    emulator.clear_requests()
    pool.submit_sync(watched.selected().pk)
    deadline = time.monotonic() + 30
    while pool.completed < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pool.wait_idle()
    statuses = [r["status"] for r in emulator.requests() if r["path"].endswith("/events")]
    assert statuses == [503, 200]  # Retry-After: 1, then the timer's second run
    assert selected.get().dirty_since is None
    assert not pool.timers


@committing
def test_unknown_and_expired_channels_are_answered_200_and_stopped(
    watched: Mirror, client: Client, emulator: EmulatorClient
) -> None:
    channel = PushChannel.objects.get()
    stranger = PushChannel(
        selected_calendar=channel.selected_calendar, channel_id="not-ours", resource_id="r-1"
    )
    response = client.post(URL, headers=headers(stranger))
    assert response.status_code == 200 and response.json() == {"status": "unknown channel"}
    PushChannel.objects.filter(pk=channel.pk).update(
        expiration=timezone.now() - timedelta(seconds=1)
    )
    response = client.post(URL, headers=headers(channel))
    assert response.json() == {"status": "expired channel"}
    runner().wait_idle()
    stops = [r for r in emulator.requests() if r["path"].endswith("/channels/stop")]
    assert len(stops) == 2
    assert PushChannel.objects.get(pk=channel.pk).stopped_at is not None


@committing
def test_renewal_opens_the_new_channel_before_the_old_one_expires(
    watched: Mirror, emulator: EmulatorClient
) -> None:
    old = PushChannel.objects.get()
    assert old.expiration > timezone.now() + timedelta(days=6)
    nothing = renew_channels(margin=timedelta(hours=24))
    assert (nothing.renewed, nothing.opened) == (0, 0)
    later = old.expiration - timedelta(hours=12)  # inside the margin, before expiry
    report = renew_channels(margin=timedelta(hours=24), now=later)
    assert (report.renewed, report.stopped, report.failed) == (1, 1, [])
    new = PushChannel.objects.get(stopped_at__isnull=True)
    assert new.channel_id != old.channel_id
    old.refresh_from_db()
    assert old.stopped_at is not None
    paths = [r["path"] for r in emulator.requests()]
    assert paths.index(next(p for p in paths[::-1] if p.endswith("/events/watch"))) < len(paths)
    watch_at = max(i for i, p in enumerate(paths) if p.endswith("/events/watch"))
    stop_at = max(i for i, p in enumerate(paths) if p.endswith("/channels/stop"))
    assert watch_at < stop_at  # the new channel existed before the old one stopped


@committing
def test_renew_command_opens_missing_channels_and_reports(watched: Mirror) -> None:
    PushChannel.objects.update(stopped_at=timezone.now())
    from io import StringIO

    out = StringIO()
    call_command("renew_calendar_channels", stdout=out)
    assert "opened 1 missing channel(s), 0 failure(s)" in out.getvalue()
    assert PushChannel.objects.filter(stopped_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_renew_command_needs_webhooks(settings: Any) -> None:
    settings.CALCACHE_WEBHOOK_URL = ""
    with pytest.raises(CommandError, match="CALCACHE_WEBHOOK_URL is not set"):
        call_command("renew_calendar_channels")
