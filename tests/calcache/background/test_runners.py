"""calcache.background.runners: which runner is used, the thread pool and the Celery runner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from calcache.background.runners import (
    CeleryRunner,
    DirtyFlagRunner,
    ThreadPoolRunner,
    get_runner,
)
from calcache.conf import conf
from calcache.emulator import EmulatorClient
from tests.calcache.background.conftest import listing_statuses, mark
from tests.calcache.sync.conftest import Mirror
from tests.celery_worker import eager_tasks
from tests.markers import committing
from tests.waiting import wait_for

RUNNERS = "calcache.background.runners"


@pytest.fixture
def pool() -> Iterator[ThreadPoolRunner]:
    """A one-thread pool of its own, left with nothing running or pending."""
    runner = ThreadPoolRunner(workers=1)
    yield runner
    runner.cancel_retries(close=True)
    runner.wait_idle()


@pytest.fixture
def synced(mirror: Mirror, settings: Any) -> Mirror:
    """The mirror synced once; the client gives up at once, so retries are the runner's."""
    mirror.sync()
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1
    return mirror


def refresh(pool: ThreadPoolRunner, mirror: Mirror, *, runs: int) -> None:
    """Submit the calendar's refresh; return once the pool has completed ``runs`` in all."""
    pool.submit_sync(mirror.selected().pk)
    wait_for(lambda: pool.completed >= runs, timeout=30)
    pool.wait_idle()


def refresh_put_off(
    pool: ThreadPoolRunner,
    mirror: Mirror,
    emulator: EmulatorClient,
    *,
    outages: int,
    retry_after: int,
    runs: int,
) -> None:
    """The calendar marked and Google answering its next ``outages`` listings 503 with a
    Retry-After: submit its refresh and wait for ``runs`` runs."""
    mark(mirror)
    emulator.fail_next(
        outages, status=503, reason="backendError", retry_after=retry_after, path="/events"
    )
    emulator.clear_requests()
    refresh(pool, mirror, runs=runs)


def test_the_runner_follows_the_broker_setting(settings: Any) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = ""
    settings.CELERY_BROKER_URL = ""
    assert conf.background_runner == f"{RUNNERS}.ThreadPoolRunner"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    assert conf.background_runner == f"{RUNNERS}.CeleryRunner"
    settings.CALCACHE_BACKGROUND_RUNNER = f"{RUNNERS}.DirtyFlagRunner"
    assert conf.background_runner == f"{RUNNERS}.DirtyFlagRunner"


def test_get_runner_builds_one_runner_per_setting(settings: Any) -> None:
    settings.CALCACHE_BACKGROUND_RUNNER = f"{RUNNERS}.DirtyFlagRunner"
    first = get_runner()
    assert isinstance(first, DirtyFlagRunner) and get_runner() is first
    settings.CALCACHE_BACKGROUND_RUNNER = f"{RUNNERS}.CeleryRunner"
    assert isinstance(get_runner(), CeleryRunner)
    settings.CALCACHE_BACKGROUND_RUNNER = f"{RUNNERS}.DirtyFlagRunner"
    assert get_runner() is not first  # built again for the changed setting


@committing
def test_thread_pool_runner_coalesces_a_burst(
    synced: Mirror, emulator: EmulatorClient, pool: ThreadPoolRunner
) -> None:
    selected_id = synced.selected().pk
    emulator.fail_next(1, kind="slow", delay=0.5, path="/events")  # keep the first run busy
    emulator.clear_requests()
    mark(synced)  # what the webhook does before submitting
    for _ in range(6):
        pool.submit_sync(selected_id)
    # the first run has started (it cleared the mark and is listing); a new notice comes
    wait_for(emulator.requests, timeout=30)
    mark(synced)
    for _ in range(6):
        pool.submit_sync(selected_id)
    pool.wait_idle()
    # One sync for the first batch, one for the notice that came while it ran. (A run
    # queued by the first batch after the first run started finds the mark cleared and
    # does nothing, so the number of runs varies; the number of syncs does not.)
    assert len(listing_statuses(emulator)) == 2
    assert 2 <= pool.completed <= 3
    assert synced.selected().dirty_since is None


@committing
def test_thread_pool_runner_retries_a_refresh_google_put_off(
    synced: Mirror, emulator: EmulatorClient, pool: ThreadPoolRunner
) -> None:
    refresh_put_off(pool, synced, emulator, outages=1, retry_after=1, runs=2)
    assert listing_statuses(emulator) == [503, 200]  # Retry-After: 1, then the timer's second run
    assert synced.selected().dirty_since is None
    assert not pool.timers


@committing
def test_thread_pool_runner_gives_up_after_its_retries_and_leaves_the_mark(
    synced: Mirror,
    emulator: EmulatorClient,
    pool: ThreadPoolRunner,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.CALCACHE_TASK_MAX_RETRIES = 1
    refresh_put_off(pool, synced, emulator, outages=5, retry_after=1, runs=2)
    assert listing_statuses(emulator) == [503, 503]  # the first run and its one retry
    assert not pool.timers
    assert synced.selected().dirty_since is not None  # for the next notification or --dirty
    assert "given up" in caplog.text


@committing
def test_cancelled_retries_leave_the_mark_and_a_closed_pool_schedules_none(
    synced: Mirror, emulator: EmulatorClient, pool: ThreadPoolRunner
) -> None:
    refresh_put_off(pool, synced, emulator, outages=2, retry_after=60, runs=1)
    assert len(pool.timers) == 1  # the retry in 60 s
    pool.cancel_retries(close=True)
    assert not pool.timers
    assert synced.selected().dirty_since is not None
    refresh(pool, synced, runs=2)  # fails again: a closed pool keeps no retry
    assert listing_statuses(emulator) == [503, 503] and not pool.timers


def test_the_celery_runner_hands_the_refresh_to_calcache_tasks(mirror: Mirror) -> None:
    mark(mirror)
    with eager_tasks():  # the task runs here instead of on a worker
        CeleryRunner().submit_sync(mirror.selected().pk)
    assert mirror.selected().dirty_since is None
    mirror.assert_mirrors_window()
