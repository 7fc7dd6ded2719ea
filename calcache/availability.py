"""The one place that decides where an availability answer comes from.

1. SQL, when ``calendar-cache-sql`` is on for the user (or their team), the kill
   switch ``calendar-cache-sql-killswitch`` is off and ``sync_coverage`` holds
   for the window;
2. else the legacy JSON cache, when enabled and a fresh blob answers;
3. else Google's freeBusy, live (filling the JSON cache).

An error in the SQL read falls through to the next source and is counted; it
is never shown to the user. Every answer's source and latency are aggregated
per minute (``AvailabilityStat``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from waffle import switch_is_active

import flags
from calcache import legacy, shadow
from calcache.conf import conf
from calcache.models import AvailabilityStat
from calcache.selectors import Interval, busy_intervals, sync_coverage
from flags.names import KILL_SWITCH, READ_FLAG

logger = logging.getLogger("calcache.availability")

SOURCES = ("sql", "json", "live")
STATS_FLUSH_SECONDS = 10.0


@dataclass(frozen=True)
class Availability:
    """The busy time of a user over a window, and where the answer came from."""

    busy: list[Interval]
    source: str


def sql_read_allowed(user: Any) -> bool:
    """The read flag is on for the user and the kill switch is off."""
    return not switch_is_active(KILL_SWITCH) and flags.is_enabled(READ_FLAG, user=user)


def get_availability(*, user: Any, start: datetime, end: datetime) -> Availability:
    """The user's busy time over ``[start, end)`` from the source the rollout allows."""
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime")
    if end <= start:
        raise ValueError("end must be after start")
    start, end = start.astimezone(UTC), end.astimezone(UTC)

    if sql_read_allowed(user):
        began = time.perf_counter()
        try:
            # A savepoint: a failed SQL read must not poison the caller's transaction.
            with transaction.atomic():
                covered = sync_coverage(user=user, start=start, end=end)
                busy = busy_intervals(user=user, start=start, end=end) if covered else None
            if busy is not None:
                return _answer(user, start, end, "sql", busy, began)
        except Exception:
            logger.exception("SQL availability read failed; falling back")
            stats.record("sql", time.perf_counter() - began, error=True)

    if conf.json_cache_enabled:
        began = time.perf_counter()
        cached = legacy.cached_busy(user=user, start=start, end=end)
        if cached is not None:
            return _answer(user, start, end, "json", cached, began)

    began = time.perf_counter()
    try:
        busy = legacy.live_busy(user=user, start=start, end=end, store=conf.json_cache_enabled)
    except Exception:
        stats.record("live", time.perf_counter() - began, error=True)
        raise
    return _answer(user, start, end, "live", busy, began)


def _answer(
    user: Any, start: datetime, end: datetime, source: str, busy: list[Interval], began: float
) -> Availability:
    seconds = time.perf_counter() - began
    stats.record(source, seconds)
    shadow.maybe_compare(
        user=user, start=start, end=end, source=source, busy=busy, latency_ms=seconds * 1000
    )
    return Availability(busy=busy, source=source)


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
        minute = timezone.now().replace(second=0, microsecond=0)
        with self.lock:
            entry = self.pending[(minute, source)]
            entry[0] += 1
            entry[1] += int(error)
            entry[2] += seconds * 1000
            entry[3] = max(entry[3], seconds * 1000)
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
