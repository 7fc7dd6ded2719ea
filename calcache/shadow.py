"""Shadow comparisons of SQL against the JSON cache (or live freeBusy), and the
automatic rollback they can trigger.

Only users with the write flag on are sampled (their SQL copy is being
filled). A comparison never changes the answer and never raises.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from waffle.models import Switch

import flags
from calcache import legacy
from calcache.conf import conf
from calcache.models import CacheComparison, RolloutEvent
from calcache.selectors import Interval, busy_intervals, sync_coverage
from flags.names import KILL_SWITCH, WRITE_FLAG

logger = logging.getLogger("calcache.shadow")

DIFFERENCE_CAP = 20


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def differences(a: list[Interval], b: list[Interval]) -> tuple[list[Interval], list[Interval]]:
    """The intervals only ``a`` has and only ``b`` has (both merged, sorted lists)."""
    set_a, set_b = set(a), set(b)
    return [i for i in a if i not in set_b], [i for i in b if i not in set_a]


def _timed(read: Callable[[], list[Interval] | None]) -> tuple[list[Interval] | None, float]:
    began = time.perf_counter()
    result = read()
    return result, (time.perf_counter() - began) * 1000


def maybe_compare(
    *,
    user: Any,
    start: datetime,
    end: datetime,
    source: str,
    busy: list[Interval],
    latency_ms: float,
    rng: Callable[[], float] = random.random,
) -> CacheComparison | None:
    """Sample this answer and compare it with the other side; never raises."""
    try:
        if conf.shadow_sample_rate <= 0 or rng() >= conf.shadow_sample_rate:
            return None
        if not flags.is_enabled(WRITE_FLAG, user=user):
            return None
        return compare(
            user=user, start=start, end=end, source=source, busy=busy, latency_ms=latency_ms
        )
    except Exception:
        logger.exception("Shadow comparison failed")
        return None


def compare(
    *,
    user: Any,
    start: datetime,
    end: datetime,
    source: str,
    busy: list[Interval],
    latency_ms: float,
) -> CacheComparison | None:
    """Compare an answer from ``source`` with the other side and record the result.

    SQL answers are checked against a fresh JSON blob (else live freeBusy when the
    JSON cache is retired); JSON or live answers against SQL when it covers the window.
    """
    if source == "sql":
        other, other_latency = _timed(
            lambda: (
                legacy.cached_busy(user=user, start=start, end=end)
                if conf.json_cache_enabled
                else None
            )
        )
        other_source = "json"
        if other is None:
            other, other_latency = _timed(
                lambda: legacy.live_busy(user=user, start=start, end=end, store=False)
            )
            other_source = "live"
    else:
        if not sync_coverage(user=user, start=start, end=end):
            return None
        other, other_latency = _timed(lambda: busy_intervals(user=user, start=start, end=end))
        other_source = "sql"
    assert other is not None
    only_a, only_b = differences(busy, other)
    comparison = CacheComparison.objects.create(
        user=user,
        window_start=start,
        window_end=end,
        source_a=source,
        source_b=other_source,
        equal=not only_a and not only_b,
        only_in_a=[[_iso(s), _iso(e)] for s, e in only_a[:DIFFERENCE_CAP]],
        only_in_b=[[_iso(s), _iso(e)] for s, e in only_b[:DIFFERENCE_CAP]],
        latency_a_ms=latency_ms,
        latency_b_ms=other_latency,
    )
    if not comparison.equal:
        logger.warning(
            "Availability mismatch for user %s, %s..%s: %s-only %s, %s-only %s",
            user.pk,
            _iso(start),
            _iso(end),
            source,
            only_a[:3],
            other_source,
            only_b[:3],
        )
        check_rollback()
    return comparison


def mismatch_rate(*, samples: int) -> tuple[int, int]:
    """(mismatches, comparisons) among the newest ``samples`` comparisons."""
    newest = list(
        CacheComparison.objects.order_by("-created_at", "-pk").values_list("equal", flat=True)[
            :samples
        ]
    )
    return sum(1 for equal in newest if not equal), len(newest)


def check_rollback() -> bool:
    """Turn the kill switch on when the recent mismatch rate crosses the threshold.

    Turning it off again is a human act in the admin. Returns True when it tripped now.
    """
    samples = conf.rollback_min_samples
    mismatches, total = mismatch_rate(samples=samples)
    if total < samples or total == 0:
        return False
    percent = 100.0 * mismatches / total
    if percent <= conf.rollback_mismatch_percent:
        return False
    with transaction.atomic():
        switch, _ = Switch.objects.select_for_update().get_or_create(name=KILL_SWITCH)
        if switch.active:
            return False
        switch.active = True
        switch.save()
        switch.flush()  # waffle flushes only on commit; this process must stop reading SQL now
        RolloutEvent.objects.create(
            action="automatic rollback",
            reason=(
                f"{mismatches} of the last {total} shadow comparisons disagreed "
                f"({percent:.2f}% > {conf.rollback_mismatch_percent}%); "
                f"{KILL_SWITCH} turned on, nobody reads SQL until an operator turns it off."
            ),
            figures={
                "mismatches": mismatches,
                "comparisons": total,
                "mismatch_percent": round(percent, 3),
                "threshold_percent": conf.rollback_mismatch_percent,
            },
        )
    logger.error(
        "Automatic rollback: %s of the last %s comparisons disagreed (%.2f%%); %s is on",
        mismatches,
        total,
        percent,
        KILL_SWITCH,
    )
    return True
