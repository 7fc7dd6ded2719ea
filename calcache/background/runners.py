"""Background work triggered by webhooks: one swappable piece (``CALCACHE_BACKGROUND_RUNNER``).

- ``ThreadPoolRunner`` (default): a small bounded thread pool in the web process.
  A calendar already waiting is not queued twice, so a burst of notifications
  leads to one sync (plus one more if a notice arrives while it runs).
- ``DirtyFlagRunner``: queues nothing; the webhook's ``dirty_since`` mark is the
  queue, and ``sync_calendars --dirty`` from cron drains it (hosts without
  threads in their web processes).
- ``CeleryRunner`` (the default when ``CELERY_BROKER_URL`` is set): one
  ``calcache.tasks`` message per notification that needs work; workers anywhere run it.

The work itself is ``calcache.background.jobs`` (and ``push.channels`` for stopping a
channel) whichever runner runs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Protocol

from django.db import connection
from django.utils.module_loading import import_string

from calcache.background.jobs import JobResult, refresh_notified
from calcache.conf import conf
from calcache.push.channels import stop_remote_channel
from calcache.rollout.shadow import ShadowSample, compare_sample

logger = logging.getLogger("calcache.runner")

# Resubmissions of one refresh in all (waits included) before the thread pool gives up.
RETRY_LIMIT = 50
# Sampled answers waiting for their comparison; beyond, new samples are dropped (a slow
# Google must not pile up comparisons in the web process).
COMPARISON_BACKLOG = 100


class BackgroundRunner(Protocol):
    def submit_sync(self, selected_calendar_id: int) -> None:
        """Bring the calendar's caches up to date soon, outside the request."""

    def submit_stop(self, selected_calendar_id: int, channel_id: str, resource_id: str) -> None:
        """Ask Google to stop a channel we do not want (with the calendar's credential)."""

    def submit_comparison(self, sample: ShadowSample) -> None:
        """Compare a sampled availability answer with the other source, outside the request."""


class ThreadPoolRunner:
    def __init__(self, workers: int | None = None) -> None:
        self.pool = ThreadPoolExecutor(
            max_workers=workers or conf.background_workers, thread_name_prefix="calcache-bg"
        )
        self.lock = threading.Lock()
        self.waiting: set[int] = set()
        self.futures: set[Future[None]] = set()
        self.completed = 0
        # Refreshes that must run again (a held lock, the account's budget, an outage):
        # calendar id -> (failed attempts, retries), and the timers that resubmit them.
        self.retries: dict[int, tuple[int, int]] = {}
        self.pending: dict[int, threading.Timer] = {}
        self.closed = False
        # Comparisons get a thread of their own: one that waits for Google must not hold
        # up the refreshes.
        self.comparison_pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="calcache-shadow"
        )
        self.comparisons_waiting = 0
        self.comparisons_dropped = 0

    def submit_sync(self, selected_calendar_id: int) -> None:
        with self.lock:
            if selected_calendar_id in self.waiting:
                return
            self.waiting.add(selected_calendar_id)
            future = self.pool.submit(self._run, selected_calendar_id)
            self.futures.add(future)
        future.add_done_callback(self._forget)

    def submit_stop(self, selected_calendar_id: int, channel_id: str, resource_id: str) -> None:
        with self.lock:
            future = self.pool.submit(
                self._guarded, stop_remote_channel, selected_calendar_id, channel_id, resource_id
            )
            self.futures.add(future)
        future.add_done_callback(self._forget)

    def submit_comparison(self, sample: ShadowSample) -> None:
        with self.lock:
            if self.comparisons_waiting >= COMPARISON_BACKLOG:
                self.comparisons_dropped += 1
                return
            self.comparisons_waiting += 1
            future = self.comparison_pool.submit(self._compare, sample)
            self.futures.add(future)
        future.add_done_callback(self._forget)

    def _compare(self, sample: ShadowSample) -> None:
        try:
            compare_sample(sample)
        finally:
            with self.lock:
                self.comparisons_waiting -= 1
            connection.close()

    def _guarded(self, work: Callable[..., None], *args: object) -> None:
        try:
            work(*args)
        except Exception:
            logger.exception("Background %s%s failed", work.__name__, args)
        finally:
            connection.close()

    def _forget(self, future: Future[None]) -> None:
        with self.lock:
            self.futures.discard(future)

    def _run(self, selected_calendar_id: int) -> None:
        with self.lock:
            # From here on a new notice needs a new run: it may describe a change this
            # run's listing has already passed.
            self.waiting.discard(selected_calendar_id)
            failed, retried = self.retries.pop(selected_calendar_id, (0, 0))
        try:
            result = refresh_notified(selected_calendar_id, attempt=failed)
            if result.retry_in is not None:
                failed += 1 if result.counts_as_attempt else 0
                self._retry_later(selected_calendar_id, result, (failed, retried + 1))
        except Exception:
            logger.exception("Background refresh of calendar %s failed", selected_calendar_id)
        finally:
            with self.lock:
                self.completed += 1
            connection.close()

    def _retry_later(
        self, selected_calendar_id: int, result: JobResult, state: tuple[int, int]
    ) -> None:
        """Without a queue, a timer resubmits the refresh (the mark stays meanwhile); one
        pending timer per calendar."""
        failed, retried = state
        if failed > conf.task_max_retries or retried > RETRY_LIMIT:
            logger.warning(
                "Refresh of calendar %s given up (%s); left marked for the next notification "
                "or `sync_calendars --dirty`",
                selected_calendar_id,
                result.describe(),
            )
            return
        assert result.retry_in is not None

        def resubmit() -> None:
            with self.lock:
                if self.pending.get(selected_calendar_id) is not timer:
                    return  # cancelled
                del self.pending[selected_calendar_id]
                self.retries[selected_calendar_id] = state
            self.submit_sync(selected_calendar_id)

        timer = threading.Timer(result.retry_in, resubmit)
        timer.daemon = True
        with self.lock:
            if self.closed or selected_calendar_id in self.pending:
                return
            self.pending[selected_calendar_id] = timer
        timer.start()

    def cancel_retries(self, *, close: bool = False) -> None:
        """Drop the pending resubmissions (the calendars stay marked); ``close``: accept no
        new ones either (shutdown)."""
        with self.lock:
            self.closed = self.closed or close
            timers, self.pending = list(self.pending.values()), {}
            self.retries.clear()
        for timer in timers:
            timer.cancel()

    @property
    def timers(self) -> list[threading.Timer]:
        with self.lock:
            return list(self.pending.values())

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until everything submitted so far has run (tests, shutdown)."""
        while True:
            with self.lock:
                pending = list(self.futures)
            if not pending:
                return
            wait(pending, timeout=timeout)


class DirtyFlagRunner:
    def submit_sync(self, selected_calendar_id: int) -> None:
        """Nothing to do: ``dirty_since`` is already set; ``sync_calendars --dirty`` runs it."""

    def submit_stop(self, selected_calendar_id: int, channel_id: str, resource_id: str) -> None:
        # Without a worker the stray channel simply expires; Google stops on its own.
        logger.info("Unwanted channel %s left to expire", channel_id)

    def submit_comparison(self, sample: ShadowSample) -> None:
        # No thread to run it in and the request must not wait: the sample is dropped
        # (run `compare_calendar_caches` from cron for comparisons on such a site).
        logger.debug("Shadow comparison for user %s skipped (no background runner)", sample.user_id)


class CeleryRunner:
    """Hands the work to Celery workers (``calcache.tasks``) through the broker."""

    def submit_sync(self, selected_calendar_id: int) -> None:
        from calcache.tasks import refresh_calendar

        refresh_calendar.delay(selected_calendar_id)

    def submit_stop(self, selected_calendar_id: int, channel_id: str, resource_id: str) -> None:
        from calcache.tasks import stop_channel

        stop_channel.delay(selected_calendar_id, channel_id, resource_id)

    def submit_comparison(self, sample: ShadowSample) -> None:
        from calcache.tasks import compare_availability

        compare_availability.delay(sample.as_dict())


_runner: BackgroundRunner | None = None
_runner_path = ""
_runner_lock = threading.Lock()


def get_runner() -> BackgroundRunner:
    """The configured runner, built once per process (per setting value)."""
    global _runner, _runner_path
    path = conf.background_runner
    with _runner_lock:
        if _runner is None or _runner_path != path:
            _runner = import_string(path)()
            _runner_path = path
        return _runner
