"""Per-minute counts and latencies of availability answers by source (``AvailabilityStat``),
the figures the dashboard draws.

Counted in memory and written every ``STATS_FLUSH_SECONDS``. Inside a request the write
waits for ``request_finished`` (after the response is on its way), so no answer waits
for it; elsewhere (commands, workers) the call that finds the counters due writes them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from calcache import signals
from calcache.models import AvailabilityStat

logger = logging.getLogger("calcache.availability")

SOURCES = ("sql", "json", "live", "mixed")
# Not a source: SQL reads that went to ``default`` because CALCACHE_READ_DATABASE was
# lagging or unreachable (``requests`` counts them).
FALLBACK = "fallback"
STATS_FLUSH_SECONDS = 10.0
_in_request: ContextVar[bool] = ContextVar("calcache_stats_in_request", default=False)


class _Stats:
    """Per-minute counters kept in memory and added to ``AvailabilityStat`` every few
    seconds, so the hot path does no database write per request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: defaultdict[tuple[datetime, str], list[float]] = defaultdict(
            lambda: [0, 0, 0.0, 0.0]
        )
        self.last_flush = time.monotonic()

    def reset(self) -> None:
        """Forget what was not flushed yet (tests)."""
        with self.lock:
            self.pending.clear()
            self.last_flush = time.monotonic()

    def record(self, source: str, seconds: float, *, error: bool = False) -> None:
        """Count one answer (or failed read) from ``source``; sends
        ``calcache.signals.availability_answered`` (not for ``fallback``)."""
        if source != FALLBACK:
            signals.send(
                signals.availability_answered,
                sender=None,
                source=source,
                seconds=seconds,
                error=error,
            )
        minute = timezone.now().replace(second=0, microsecond=0)
        with self.lock:
            entry = self.pending[(minute, source)]
            entry[0] += 1
            entry[1] += int(error)
            entry[2] += seconds * 1000
            entry[3] = max(entry[3], seconds * 1000)
        if not _in_request.get():
            self.flush_if_due()

    def count_fallback(self) -> None:
        """One SQL read moved from the read database to ``default``."""
        self.record(FALLBACK, 0.0)

    def flush_if_due(self) -> None:
        with self.lock:
            due = time.monotonic() - self.last_flush >= STATS_FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, defaultdict(lambda: [0, 0, 0.0, 0.0])
            self.last_flush = time.monotonic()
        for (minute, source), (requests, errors, total_ms, max_ms) in pending.items():
            try:
                self._add(minute, source, int(requests), int(errors), total_ms, max_ms)
            except Exception:  # metrics must never break an answer
                logger.exception("Could not store availability stats")

    @staticmethod
    def _add(
        minute: datetime, source: str, requests: int, errors: int, total_ms: float, max_ms: float
    ) -> None:
        changes = {
            "requests": F("requests") + requests,
            "errors": F("errors") + errors,
            "total_ms": F("total_ms") + total_ms,
            "max_ms": Greatest(F("max_ms"), max_ms),
        }
        with transaction.atomic():
            if AvailabilityStat.objects.filter(minute=minute, source=source).update(**changes):
                return
            try:
                with transaction.atomic():
                    AvailabilityStat.objects.create(
                        minute=minute,
                        source=source,
                        requests=requests,
                        errors=errors,
                        total_ms=total_ms,
                        max_ms=max_ms,
                    )
            except IntegrityError:  # another process created the minute first
                AvailabilityStat.objects.filter(minute=minute, source=source).update(**changes)


stats = _Stats()


def request_started(**kwargs: Any) -> None:
    _in_request.set(True)


def request_finished(**kwargs: Any) -> None:
    _in_request.set(False)
    stats.flush_if_due()
