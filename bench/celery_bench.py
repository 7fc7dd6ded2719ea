"""Celery section of bench/run.py: calendars synced per minute by 1, 2 and 4 worker
processes (``celery -A project worker --concurrency N``) against the emulator.

The real path end to end: ``calcache.sync_calendar`` messages on a real broker (Redis by
default, ``--broker-url``), a real worker subprocess on the benchmark's database, the
emulator in a process of its own, full syncs through google-api-python-client. The clock
runs from the first message sent to the last calendar's sync token written; the worker is
started (and ready) before, and stopped after. Per-account pacing is off in the workers
(``CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE=0``): this measures throughput, and the same
accounts are synced again every round.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.common import log
from bench.sync_bench import _forget, _selected, emulated_google

DEFAULT_BROKER = "redis://127.0.0.1:6379/14"


def all_synced(credentials: set[int], expected: int) -> Callable[[], bool]:
    """Whether every calendar of these credentials has finished a full sync."""
    from calcache.models import CalendarSyncToken

    done = CalendarSyncToken.objects.filter(
        credential_id__in=credentials, last_sync_at__isnull=False
    ).exclude(sync_token="")
    return lambda: done.count() >= expected


def measure_celery_workers(
    *,
    accounts: int,
    calendars: int,
    events: int,
    workers: list[int],
    rounds: int,
    seed: int,
    broker_url: str = DEFAULT_BROKER,
) -> dict[str, Any]:
    from django.conf import settings

    from calcache.tasks import sync_calendar
    from tests import celery_worker

    if not celery_worker.reachable(broker_url):
        log(f"  no broker at {broker_url}: Celery section skipped")
        return {"skipped": f"no broker reachable at {broker_url}"}
    queue = f"calcache-bench-{int(time.time())}"
    celery_worker.empty_broker(broker_url)
    figures: dict[int, list[float]] = {}
    worker_env = {
        "CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE": "0",
        "CALCACHE_GOOGLE_BACKOFF_SECONDS": "0.5",
        "CELERY_BROKER_TRANSPORT_OPTIONS": '{"visibility_timeout": 3600}',
        "CALCACHE_LOG_LEVEL": "WARNING",
    }
    with (
        emulated_google(
            accounts=accounts, calendars=calendars, events=events, prefix="celery", seed=seed + 2
        ) as emulator,
        celery_worker.producer_for(broker_url, settings, queue=queue) as app,
    ):
        selected = _selected("celery")
        credentials = {s.credential_id for s in selected}
        try:
            for number in range(rounds):
                order = workers if number % 2 == 0 else list(reversed(workers))
                for n in order:
                    _forget(selected)
                    worker = celery_worker.start_worker(
                        broker_url,
                        emulator_url=emulator.url,
                        queue=queue,
                        concurrency=n,
                        extra_env=worker_env,
                    )
                    try:
                        began = time.perf_counter()
                        with app.producer_or_acquire() as producer:
                            for one in selected:
                                sync_calendar.apply_async(
                                    args=(one.pk,), kwargs={"full": True}, producer=producer
                                )
                        worker.wait_until(
                            all_synced(credentials, len(selected)),
                            timeout=600,
                            what=f"{len(selected)} syncs by {n} worker process(es)",
                        )
                        seconds = time.perf_counter() - began
                    finally:
                        worker.stop()
                    figures.setdefault(n, []).append(seconds)
                    log(
                        f"  celery worker --concurrency {n}: {seconds:.2f} s, "
                        f"{len(selected) / seconds * 60:,.0f} calendars/min"
                    )
        finally:
            celery_worker.delete_queue(broker_url, queue)
    base = statistics.median(figures[workers[0]])
    per: dict[str, Any] = {}
    for n in workers:
        seconds = statistics.median(figures[n])
        per[str(n)] = {
            "seconds": seconds,
            "calendars_per_min": len(selected) / seconds * 60,
            "speedup": base / seconds,
            "runs": figures[n],
        }
    return {
        "command": "celery -A project worker --concurrency N; one calcache.sync_calendar "
        "message per calendar (full sync)",
        "broker": broker_url,
        "calendars": len(selected),
        "accounts": accounts,
        "rounds": rounds,
        "workers": per,
    }
