"""calcache.push.notifications: Google's notifications through the webhook, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from calcache.background.runners import ThreadPoolRunner, get_runner
from calcache.conf import conf
from calcache.emulator import EmulatorClient
from calcache.models import CalendarEvent, PushChannel, SelectedCalendar
from calcache.push.channels import open_channel
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.celery_worker import producer_for
from tests.markers import committing
from tests.waiting import wait_for

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
def live_webhooks(settings: Any, live_server: Any) -> str:
    """Channels that point at our own site, served by live_server."""
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


def notify(client: Client, channel: PushChannel) -> str:
    """POST one "exists" notification for ``channel``; the status it was answered."""
    response = client.post(URL, headers=headers(channel))
    assert response.status_code == 200, response.content
    return str(response.json()["status"])


def runner() -> ThreadPoolRunner:
    current = get_runner()
    assert isinstance(current, ThreadPoolRunner)
    return current


@pytest.fixture
def watched(
    emulator: EmulatorClient, write_flag_on: None, live_webhooks: str, google_emulator_server: Any
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
    statuses = [notify(client, channel) for _ in range(5)]
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
def test_a_lost_refresh_is_submitted_again_by_the_next_notification(
    watched: Mirror, client: Client, settings: Any
) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.DirtyFlagRunner"
    channel = PushChannel.objects.get()
    assert [notify(client, channel) for _ in range(2)] == ["queued", "already queued"]
    lost = timezone.now() - timedelta(seconds=conf.dirty_grace_seconds + 1)
    SelectedCalendar.objects.update(dirty_since=lost)
    # one of the burst claims the lost mark and submits again; the others see it claimed
    statuses = [notify(client, channel) for _ in range(3)]
    assert statuses == ["queued", "already queued", "already queued"]


@committing
def test_a_broker_outage_leaves_the_notification_marked_and_google_answered(
    watched: Mirror, client: Client, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    channel = PushChannel.objects.get()
    with producer_for("redis://127.0.0.1:1/0", settings):  # nothing listens there
        assert notify(client, channel) == "queued"
    assert SelectedCalendar.objects.get().dirty_since is not None  # the sweep or a later notice
    assert "Could not submit the refresh" in caplog.text
