"""The metrics themselves (prometheus-client must be importable here), the receivers
that count them, and the scrape.

Counters, histograms and the last-success gauge live in ``REGISTRY``, calcache's own
registry (not prometheus-client's global one, so a host's own exposition is unchanged).
With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client writes every process's values to
files there and ``scrape`` sums them with a ``MultiProcessCollector``. The rollout
figures are read from the database by ``RolloutCollector`` at each scrape, in the
scraping process, so they need no multiprocess handling.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from typing import Any

from calcache import signals
from calcache.extras import MissingExtra
from calcache.metrics import multiprocess_dir

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
        multiprocess,
    )
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:
    raise MissingExtra("metrics", exc) from exc

logger = logging.getLogger("calcache.metrics")

# From a prepared SQL read (~1 ms) to a slow live freeBusy call.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REGISTRY = CollectorRegistry()

ANSWERS = Counter(
    "calcache_availability_answers",
    "Availability answers, by the source that gave them (sql, json, live, mixed).",
    ["source"],
    registry=REGISTRY,
)
ANSWER_SECONDS = Histogram(
    "calcache_availability_answer_seconds",
    "Time to compute one availability answer, by source.",
    ["source"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
READ_ERRORS = Counter(
    "calcache_availability_read_errors",
    "Failed SQL or live reads while answering (the answer then came from elsewhere).",
    ["source"],
    registry=REGISTRY,
)
SYNC_RUNS = Counter(
    "calcache_sync_runs",
    "Sync runs of one selected calendar, by outcome (full, incremental, failed, locked, ...).",
    ["outcome"],
    registry=REGISTRY,
)
SYNC_EVENTS_WRITTEN = Counter(
    "calcache_sync_events_written",
    "Events inserted or updated in SQL by syncs.",
    registry=REGISTRY,
)
SYNC_EVENTS_DELETED = Counter(
    "calcache_sync_events_deleted",
    "Events deleted from SQL by syncs.",
    registry=REGISTRY,
)
SYNC_LAST_SUCCESS = Gauge(
    "calcache_sync_last_success_timestamp_seconds",
    "Unix time of the newest successful sync (full or incremental) of any calendar.",
    multiprocess_mode="max",
    registry=REGISTRY,
)
GOOGLE_ERRORS = Counter(
    "calcache_google_errors",
    "Failed requests to Google (each attempt), by Google's reason and HTTP status.",
    ["reason", "status"],
    registry=REGISTRY,
)


@functools.cache
def _answer_series(source: str) -> tuple[Any, Any]:
    # labels() takes a lock and builds a key on every call; an answer is about 1 ms.
    return ANSWERS.labels(source=source), ANSWER_SECONDS.labels(source=source)


def on_answer(*, source: str, seconds: float, error: bool, **kwargs: Any) -> None:
    if error:
        READ_ERRORS.labels(source=source).inc()
        return
    answers, latency = _answer_series(source)
    answers.inc()
    latency.observe(seconds)


def on_sync(*, outcome: str, events_written: int, events_deleted: int, **kwargs: Any) -> None:
    SYNC_RUNS.labels(outcome=outcome).inc()
    SYNC_EVENTS_WRITTEN.inc(events_written)
    SYNC_EVENTS_DELETED.inc(events_deleted)
    if outcome in ("full", "incremental"):
        SYNC_LAST_SUCCESS.set(time.time())


def on_google_error(*, error: Any, **kwargs: Any) -> None:
    GOOGLE_ERRORS.labels(reason=error.reason or "unknown", status=str(error.status or 0)).inc()


def connect() -> None:
    """Connect the receivers (idempotent: each has a ``dispatch_uid``)."""
    signals.availability_answered.connect(on_answer, dispatch_uid="calcache-metrics-answer")
    signals.calendar_synced.connect(on_sync, dispatch_uid="calcache-metrics-sync")
    signals.google_error.connect(on_google_error, dispatch_uid="calcache-metrics-google")


class RolloutCollector(Collector):
    """Gauges read from the database at scrape time: the rollout stage and kill switch
    (``rollout_status``), calendar coverage and the shadow mismatch ratio over the newest
    ``CALCACHE_ROLLBACK_MIN_SAMPLES`` comparisons. A database failure gives
    ``calcache_metrics_database_up 0`` instead of the others."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from calcache.rollout.stages import rollout_status

        up = GaugeMetricFamily(
            "calcache_metrics_database_up",
            "1 when the scrape could read the rollout figures from the database.",
        )
        try:
            status = rollout_status()
        except Exception:
            logger.exception("Metrics: reading the rollout status failed")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        figures = (
            ("calcache_rollout_stage", "Rollout stage from the flags (1-4).", status.stage),
            ("calcache_kill_switch_active", "1 while the kill switch is on.", status.kill_switch),
            ("calcache_calendars_enabled", "Enabled selected calendars.", status.calendars),
            (
                "calcache_calendars_covered",
                "Enabled selected calendars whose SQL copy covers now to a day ahead.",
                status.covered_calendars,
            ),
            (
                "calcache_shadow_comparisons",
                "Shadow comparisons looked at (the newest CALCACHE_ROLLBACK_MIN_SAMPLES).",
                status.comparisons,
            ),
            (
                "calcache_shadow_mismatches",
                "Of those, comparisons that disagreed.",
                status.mismatches,
            ),
            (
                "calcache_shadow_mismatch_ratio",
                "Mismatches / comparisons (0 without comparisons).",
                status.mismatch_percent / 100,
            ),
        )
        for name, documentation, value in figures:
            yield GaugeMetricFamily(name, documentation, value=float(value))


class CalcacheFamilies(Collector):
    """Every process's calcache metrics from the multiprocess files. The files also hold
    whatever else the host's processes count with prometheus-client; that stays out of
    calcache's exposition (and is the host's own ``/metrics``' business)."""

    def __init__(self, path: str) -> None:
        self.inner = multiprocess.MultiProcessCollector(None, path=path)

    def collect(self) -> Iterator[Any]:
        for family in self.inner.collect():
            if family.name.startswith("calcache_"):
                yield family


ROLLOUT = RolloutCollector()
REGISTRY.register(ROLLOUT)


def scrape() -> tuple[bytes, str]:
    """The exposition text and its content type: this process's metrics, or with
    ``PROMETHEUS_MULTIPROC_DIR`` every process's, summed; plus the rollout gauges."""
    registry = REGISTRY
    path = multiprocess_dir()
    if path:
        registry = CollectorRegistry()
        registry.register(CalcacheFamilies(path))
        registry.register(ROLLOUT)
    return generate_latest(registry), CONTENT_TYPE_LATEST
