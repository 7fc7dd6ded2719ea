"""calcache.tasks on a real broker with real `celery worker` processes (tests/celery_worker.py):
syncs queued by `sync_calendars --enqueue`, a webhook burst, and a worker killed mid-sync.

Run against Redis and RabbitMQ, whichever the machine has; skipped, with a banner at the
end of the run, only when neither answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from calcache.emulator import EmulatorClient
from calcache.models import CalendarEvent, CalendarSyncToken, SelectedCalendar
from calcache.selectors import sync_coverage
from tests import celery_worker
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.celery_worker import BROKERS, NO_BROKER, producer_for, start_worker
from tests.markers import committing
from tests.notifications import WEBHOOK_TOKEN, notify, open_test_channel

AVAILABLE = celery_worker.available_brokers()
pytestmark = [pytest.mark.skipif(not AVAILABLE, reason=NO_BROKER), committing]
# The kill test needs one broker; Redis shows the production redelivery path (the
# visibility timeout), RabbitMQ redelivers as soon as the connection drops.
PRIMARY = AVAILABLE[0] if AVAILABLE else "redis"


def synced_after(mirror: Mirror, moment: Any) -> bool:
    last = (
        CalendarSyncToken.objects.filter(credential__user=mirror.user)
        .values_list("last_sync_at", flat=True)
        .first()
    )
    return last is not None and last >= moment


def connected(emulator: EmulatorClient, email: str, events: int) -> Mirror:
    mirror = make_mirror(emulator, email=email)
    mirror.advance(timezone.now() - mirror.now)  # the workers sync at the real "now"
    start = mirror.now.replace(minute=0, second=0, microsecond=0)
    for index in range(events):
        begins = start + timedelta(hours=5 * index + 1)
        emulator.add_event(email, start=begins, end=begins + timedelta(minutes=45))
    return mirror


@pytest.fixture
def emulator_url(google_emulator_server: Any) -> str:
    return str(google_emulator_server.url)


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    name = request.param
    if name not in AVAILABLE:
        pytest.skip(f"{name} is not reachable at {BROKERS[name]} (the other broker runs)")
    url = BROKERS[name]
    celery_worker.empty_broker(url)
    with producer_for(url, settings):
        yield url
    celery_worker.delete_queue(url)


@pytest.fixture
def primary_broker(settings: Any) -> Iterator[str]:
    url = BROKERS[PRIMARY]
    celery_worker.empty_broker(url)
    with producer_for(url, settings):
        yield url
    celery_worker.delete_queue(url)


def test_enqueued_syncs_land_and_mirror_google(
    emulator: EmulatorClient, write_flag_on: None, broker: str, emulator_url: str
) -> None:
    mirrors = [
        connected(emulator, f"user{index}@example.com", events=10 + index) for index in range(3)
    ]
    began = timezone.now()
    out = StringIO()
    call_command("sync_calendars", "--enqueue", stdout=out)
    assert re.search(r"Enqueued 3 sync task\(s\) on queue 'calcache-test-", out.getvalue())
    worker = start_worker(broker, emulator_url=emulator_url, concurrency=2)
    try:
        worker.wait_until(
            lambda: all(synced_after(mirror, began) for mirror in mirrors),
            timeout=60,
            what="three syncs by the worker",
        )
    finally:
        worker.stop()
    for mirror in mirrors:
        mirror.assert_mirrors_window()
        assert mirror.rows().count() == len(emulator.busy(mirror.email, *mirror.synced_window()))
    assert worker.log().count("succeeded") >= 3


def test_a_webhook_burst_is_one_message_and_one_sync_per_calendar(
    emulator: EmulatorClient,
    write_flag_on: None,
    primary_broker: str,
    emulator_url: str,
    settings: Any,
    client: Client,
) -> None:
    settings.CALCACHE_WEBHOOK_TOKEN = WEBHOOK_TOKEN
    settings.CALCACHE_SHADOW_SAMPLE_RATE = 0
    mirrors = [connected(emulator, f"burst{index}@example.com", events=3) for index in range(2)]
    channels = []
    for mirror in mirrors:
        mirror.sync()
        channels.append(open_test_channel(mirror.selected(), mirror.email))
        moved = (mirror.now + timedelta(days=2)).replace(microsecond=0)
        emulator.add_event(mirror.email, start=moved, end=moved + timedelta(hours=1))
    emulator.clear_requests()
    for _ in range(10):
        for channel in channels:
            notify(client, channel)
    # 20 notifications, one message per calendar: the dirty mark is the dedup
    assert celery_worker.queued_messages(primary_broker) == len(channels)
    worker = start_worker(primary_broker, emulator_url=emulator_url, concurrency=2)
    try:
        worker.wait_until(
            lambda: (
                not SelectedCalendar.objects.filter(dirty_since__isnull=False).exists()
                and worker.log().count("succeeded") >= len(channels)
            ),
            timeout=60,
            what="the refreshes of both calendars",
        )
    finally:
        worker.stop()
    for mirror in mirrors:
        listings = [r for r in emulator.requests() if r["path"].endswith(f"{mirror.email}/events")]
        assert len(listings) == 1, listings  # one incremental sync per calendar
        mirror.assert_mirrors_window()


@pytest.mark.parametrize("task", ["sync_calendar", "refresh_calendar"])
def test_a_worker_killed_mid_sync_leaves_no_trusted_half_copy_and_the_task_is_redelivered(
    task: str,
    emulator: EmulatorClient,
    write_flag_on: None,
    primary_broker: str,
    emulator_url: str,
    settings: Any,
    client: Client,
) -> None:
    mirror = connected(emulator, "crash@example.com", events=120)
    slow_pages = {"CALCACHE_SYNC_PAGE_SIZE": "10"}  # 12 pages, one transaction each
    emulator.fail_next(100, kind="slow", delay=0.4, path="/events")
    if task == "sync_calendar":
        call_command("sync_calendars", "--enqueue", "--quiet", stdout=StringIO())
    else:  # a push notification's refresh, whose first run clears the calendar's mark
        settings.CALCACHE_WEBHOOK_TOKEN = WEBHOOK_TOKEN
        assert notify(client, open_test_channel(mirror.selected(), "crash")) == {"status": "queued"}
    first = start_worker(primary_broker, emulator_url=emulator_url, extra_env=slow_pages)
    try:
        first.wait_until(
            lambda: mirror.rows().count() >= 20,
            timeout=60,
            what="the first pages of the sync",
        )
    finally:
        first.kill()
    written = mirror.rows().count()
    assert 20 <= written < 120  # pages committed before the kill are there...
    token = mirror.token()
    assert token.sync_token == "" and token.window_start is None  # ...but nothing vouches
    window = (mirror.now, mirror.now + timedelta(days=30))
    assert not sync_coverage(user=mirror.user, start=window[0], end=window[1])
    task_id = re.search(rf"calcache\.{task}\[([0-9a-f-]+)\] received", first.log())
    assert task_id is not None, first.log()

    emulator.clear_faults()
    second = start_worker(primary_broker, emulator_url=emulator_url, extra_env=slow_pages)
    try:
        second.wait_until(
            lambda: mirror.token().sync_token != "",
            timeout=90,
            what="the redelivered sync to finish",
        )
    finally:
        second.stop()
    assert f"calcache.{task}[{task_id.group(1)}] received" in second.log()
    assert mirror.rows().count() == 120
    mirror.assert_mirrors_window()
    assert sync_coverage(user=mirror.user, start=window[0], end=window[1])
    assert CalendarEvent.objects.count() == 120
    assert mirror.selected().dirty_since is None
