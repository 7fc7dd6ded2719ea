"""calcache.push.notifications: Google's notifications through the webhook, end to end."""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from calcache.background.jobs import refresh_notified
from calcache.background.runners import ThreadPoolRunner, get_runner
from calcache.conf import conf
from calcache.emulator import EmulatorClient
from calcache.models import CalendarEvent, PushChannel, SelectedCalendar
from calcache.push.channels import open_channel
from calcache.push.notifications import STOP_COALESCE_SECONDS
from calcache.tasks import refresh_stale
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.celery_worker import producer_for, queued_messages
from tests.markers import committing
from tests.waiting import wait_for

URL = "/calendar-cache/webhooks/google/"
KEY = "s3cret-signing-key"
# Google's message numbers only grow on a channel; every notification here takes the next.
NUMBERS = itertools.count(2)


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
    settings.CALCACHE_WEBHOOK_TOKEN = KEY
    settings.CALCACHE_SHADOW_SAMPLE_RATE = 0
    return str(settings.CALCACHE_WEBHOOK_URL)


def google_token(emulator: EmulatorClient, channel_id: str) -> str:
    """The token Google was given for the channel in events.watch: what it sends back."""
    for request in emulator.requests():
        body = request.get("body") or {}
        if request["path"].endswith("/events/watch") and body.get("id") == channel_id:
            return str(body["token"])
    raise AssertionError(f"no events.watch for {channel_id}")


def headers(
    channel: PushChannel,
    token: str,
    state: str = "exists",
    number: int | None = None,
    calendar_id: str | None = None,
) -> dict[str, str]:
    calendar_id = calendar_id or channel.selected_calendar.calendar_id
    return {
        "X-Goog-Channel-ID": channel.channel_id,
        "X-Goog-Channel-Token": token,
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(next(NUMBERS) if number is None else number),
        "X-Goog-Resource-URI": (
            f"https://www.googleapis.com/calendar/v3/calendars/{calendar_id}/events?alt=json"
        ),
    }


def post(client: Client, sent: dict[str, str]) -> str:
    """POST one notification; the status it was answered (asserting a 200)."""
    response = client.post(URL, headers=sent)
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


@pytest.fixture
def channel(watched: Mirror) -> PushChannel:
    return PushChannel.objects.select_related("selected_calendar").get()


@pytest.fixture
def token(channel: PushChannel, emulator: EmulatorClient) -> str:
    return google_token(emulator, channel.channel_id)


def stop_calls(emulator: EmulatorClient) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["path"].endswith("/channels/stop")]


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
def test_each_channel_has_its_own_token_and_only_its_hash_is_kept(
    watched: Mirror, emulator: EmulatorClient, channel: PushChannel, token: str
) -> None:
    second = open_channel(watched.selected())
    second_token = google_token(emulator, second.channel_id)
    assert token != second_token and KEY not in (token, second_token)
    stored = {str(value) for row in PushChannel.objects.values_list() for value in row}
    assert token not in stored and second_token not in stored and KEY not in stored
    assert len({channel.token_hash, second.token_hash}) == 2


@committing
def test_wrong_missing_or_another_channels_token_is_403_and_nothing_happens(
    watched: Mirror, client: Client, emulator: EmulatorClient, channel: PushChannel, token: str
) -> None:
    other = open_channel(watched.selected())
    other_token = google_token(emulator, other.channel_id)
    for wrong in ("nope", KEY, other_token, f"{token}x"):
        assert client.post(URL, headers=headers(channel, wrong)).status_code == 403
    missing = headers(channel, token)
    del missing["X-Goog-Channel-Token"]
    assert client.post(URL, headers=missing).status_code == 403
    assert SelectedCalendar.objects.get().dirty_since is None


@committing
def test_a_channel_from_before_per_channel_tokens_keeps_the_global_one(
    watched: Mirror, client: Client, settings: Any
) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.DirtyFlagRunner"
    legacy = PushChannel.objects.create(
        selected_calendar=watched.selected(),
        channel_id="opened-before-0009",
        resource_id="r-legacy",
        expiration=timezone.now() + timedelta(days=3),
    )
    assert legacy.token_hash == ""
    assert client.post(URL, headers=headers(legacy, "nope")).status_code == 403
    assert post(client, headers(legacy, KEY)) == "queued"


@committing
def test_the_signing_key_can_change_under_live_channels(
    watched: Mirror, client: Client, channel: PushChannel, token: str, settings: Any
) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.DirtyFlagRunner"
    settings.CALCACHE_WEBHOOK_TOKEN = "a-new-signing-key"
    assert post(client, headers(channel, token)) == "queued"  # its hash does not change


@committing
def test_sync_message_is_acknowledged_only(
    watched: Mirror, client: Client, channel: PushChannel, token: str
) -> None:
    response = client.post(URL, headers=headers(channel, token, state="sync"))
    assert response.status_code == 200 and response.json() == {"status": "sync message"}
    assert SelectedCalendar.objects.get().dirty_since is None


@committing
def test_the_request_never_calls_google_and_a_burst_is_one_sync(
    watched: Mirror,
    client: Client,
    emulator: EmulatorClient,
    settings: Any,
    channel: PushChannel,
    token: str,
) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.DirtyFlagRunner"
    emulator.clear_requests()
    statuses = [post(client, headers(channel, token)) for _ in range(5)]
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
def test_replays_of_a_notification_are_acknowledged_without_work(
    watched: Mirror, client: Client, emulator: EmulatorClient, channel: PushChannel, token: str
) -> None:
    # The review: 5 replays of one valid notification -> 3 refreshes. Now: none.
    sent = headers(channel, token)
    assert post(client, sent) == "queued"
    runner().wait_idle()
    assert SelectedCalendar.objects.get().dirty_since is None  # its refresh ran
    emulator.clear_requests()
    older = {**sent, "X-Goog-Message-Number": "1"}
    assert [post(client, sent) for _ in range(4)] + [post(client, older)] == ["replayed"] * 5
    runner().wait_idle()
    assert SelectedCalendar.objects.get().dirty_since is None  # no mark
    assert emulator.requests() == []  # no refresh
    number = int(sent["X-Goog-Message-Number"])
    assert PushChannel.objects.get(pk=channel.pk).last_message_number == number


@committing
def test_concurrent_copies_of_a_notification_pass_once(
    watched: Mirror, channel: PushChannel, token: str, settings: Any
) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.DirtyFlagRunner"
    sent = headers(channel, token)
    copies = 6
    barrier = threading.Barrier(copies)
    answers: list[str] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait(timeout=30)
            answers.append(post(Client(), sent))
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and all(not thread.is_alive() for thread in threads)
    assert sorted(answers) == ["queued"] + ["replayed"] * (copies - 1)


@committing
def test_unknown_and_expired_channels_are_answered_200_and_stopped(
    watched: Mirror, client: Client, emulator: EmulatorClient, channel: PushChannel, token: str
) -> None:
    gone = open_channel(watched.selected())
    gone_token = google_token(emulator, gone.channel_id)
    gone.delete()  # a channel we opened once, and no longer keep
    assert post(client, headers(gone, gone_token)) == "unknown channel"
    PushChannel.objects.filter(pk=channel.pk).update(
        expiration=timezone.now() - timedelta(seconds=1)
    )
    assert post(client, headers(channel, token)) == "expired channel"
    runner().wait_idle()
    assert {call["body"]["id"] for call in stop_calls(emulator)} == {
        gone.channel_id,
        channel.channel_id,
    }
    assert PushChannel.objects.get(pk=channel.pk).stopped_at is not None


@committing
def test_a_forged_notification_for_an_unknown_channel_is_403_and_costs_no_stop(
    watched: Mirror, client: Client, emulator: EmulatorClient, channel: PushChannel, token: str
) -> None:
    stranger = PushChannel(selected_calendar=watched.selected(), channel_id="not-ours")
    nonce, _, mac = token.partition(".")
    for forged in ("nope", token, f"{nonce}.{'0' * len(mac)}", f"other.{mac}"):
        assert client.post(URL, headers=headers(stranger, forged)).status_code == 403
    runner().wait_idle()
    assert stop_calls(emulator) == []


@committing
def test_stops_for_unknown_channels_are_one_per_channel_id_per_period(
    watched: Mirror, client: Client, emulator: EmulatorClient
) -> None:
    # The review: 200 notifications for unknown channels -> 191 channels.stop calls.
    gone = [open_channel(watched.selected()) for _ in range(4)]
    tokens = {c.channel_id: google_token(emulator, c.channel_id) for c in gone}
    PushChannel.objects.filter(pk__in=[c.pk for c in gone]).delete()
    emulator.clear_requests()
    statuses = [post(client, headers(c, tokens[c.channel_id])) for _ in range(50) for c in gone]
    assert statuses == ["unknown channel"] * 200
    runner().wait_idle()
    stopped = [call["body"]["id"] for call in stop_calls(emulator)]
    assert sorted(stopped) == sorted(tokens)
    # After the period (STOP_COALESCE_SECONDS: the cache entries expire) a channel Google
    # still sends for is tried again, once.
    assert STOP_COALESCE_SECONDS >= 600
    cache.clear()
    for _ in range(3):
        post(client, headers(gone[0], tokens[gone[0].channel_id]))
    runner().wait_idle()
    assert len(stop_calls(emulator)) == len(gone) + 1


@committing
def test_a_lost_refresh_is_submitted_again_by_the_next_notification(
    watched: Mirror, client: Client, settings: Any, channel: PushChannel, token: str
) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.DirtyFlagRunner"
    assert [post(client, headers(channel, token)) for _ in range(2)] == [
        "queued",
        "already queued",
    ]
    lost = timezone.now() - timedelta(seconds=conf.dirty_grace_seconds + 1)
    SelectedCalendar.objects.update(dirty_since=lost)
    # one of the burst claims the lost mark and submits again; the others see it claimed
    statuses = [post(client, headers(channel, token)) for _ in range(3)]
    assert statuses == ["queued", "already queued", "already queued"]


@committing
def test_a_broker_that_refuses_gets_deferred_and_the_mark_reads_as_lost(
    watched: Mirror,
    client: Client,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    channel: PushChannel,
    token: str,
) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.CeleryRunner"
    with producer_for("redis://127.0.0.1:1/0", settings):  # nothing listens there
        assert post(client, headers(channel, token)) == "deferred"
        # the next notification tries the broker again rather than waiting for the grace
        assert post(client, headers(channel, token)) == "deferred"
    dirty_since = SelectedCalendar.objects.get().dirty_since
    assert dirty_since is not None  # marked, and already past the grace: lost
    assert dirty_since <= timezone.now() - timedelta(seconds=conf.dirty_grace_seconds)
    assert "Could not submit the refresh" in caplog.text


class RedisServer:
    """A throwaway redis-server of the test's own, on a free port, stopped and started
    at will (never the machine's shared Redis)."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None
        wait_for(lambda: not self.answers(), timeout=30)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@committing
def test_with_the_broker_stopped_the_answer_is_deferred_and_the_sweep_resubmits(
    watched: Mirror,
    client: Client,
    settings: Any,
    channel: PushChannel,
    token: str,
    own_redis: RedisServer,
) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.CeleryRunner"
    selected_id = watched.selected().pk
    with producer_for(own_redis.url, settings):
        assert post(client, headers(channel, token)) == "queued"  # the broker is up
        assert queued_messages(own_redis.url) == 1
        refresh_notified(selected_id)  # what the worker does with it: clears the mark
        assert SelectedCalendar.objects.get().dirty_since is None
        own_redis.stop()  # the broker dies under a connected producer
        assert post(client, headers(channel, token)) == "deferred"
        assert SelectedCalendar.objects.get().dirty_since is not None
        own_redis.start()  # empty: nothing survived the outage
        assert queued_messages(own_redis.url) == 0
        assert refresh_stale.apply().get() == {"dirty": 1, "stale": 0}
        assert queued_messages(own_redis.url) == 1
        # resubmitted and claimed: a notification now finds the refresh waiting
        assert post(client, headers(channel, token)) == "already queued"
    assert queued_messages(own_redis.url) == 1
