"""``get_availability``: the one place that decides where an availability answer comes from.

1. SQL, when ``calendar-cache-sql`` is on for the user (or their team), the kill
   switch ``calendar-cache-sql-killswitch`` is off and ``sync_coverage`` holds
   for the window;
2. else the legacy JSON cache, when enabled and a fresh blob answers;
3. else Google's freeBusy, live (filling the JSON cache).

An error in the SQL read falls through to the next source and is counted; it
is never shown to the user. Every answer's source and latency are aggregated
per minute (``calcache.availability.stats``); a sample of answers is compared with
the other source (``calcache.rollout.shadow``). docs/rollout.md explains the stages.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from waffle import switch_is_active

import flags
from calcache.availability import json_cache
from calcache.availability.live import live_busy
from calcache.availability.sql import busy_intervals, sync_coverage
from calcache.availability.stats import stats
from calcache.conf import conf
from calcache.intervals import Interval
from calcache.rollout import shadow
from flags.names import KILL_SWITCH, READ_FLAG

logger = logging.getLogger("calcache.availability")


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
        cached = json_cache.cached_busy(user=user, start=start, end=end)
        if cached is not None:
            return _answer(user, start, end, "json", cached, began)

    began = time.perf_counter()
    try:
        keep = json_cache.store_blob if conf.json_cache_enabled else None
        busy = live_busy(user=user, start=start, end=end, keep=keep)
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
