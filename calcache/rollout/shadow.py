"""Shadow comparisons of SQL against the JSON cache (or live freeBusy), and the
automatic rollback they can trigger.

Only users with the write flag on are sampled (their SQL copy is being filled). The
request only decides to sample (``sampled``); the comparison itself runs in the
background runner (``compare_sample``), so the request never waits for the other
side. A comparison never changes the answer and never raises.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from waffle.models import Switch

import flags
from calcache import signals
from calcache.availability import json_cache
from calcache.availability.live import live_busy
from calcache.availability.sql import busy_intervals, sync_coverage
from calcache.conf import conf
from calcache.exceptions import GoogleError
from calcache.intervals import Interval, merge_intervals
from calcache.models import CacheComparison, RolloutEvent
from flags.memo import memo
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


@dataclass(frozen=True)
class ShadowSample:
    """A sampled answer, handed to the background runner to be compared there."""

    user_id: Any
    start: datetime
    end: datetime
    source: str
    busy: list[Interval]
    latency_ms: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (a Celery task's argument)."""
        return {
            "user_id": self.user_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "source": self.source,
            "busy": [[_iso(s), _iso(e)] for s, e in self.busy],
            "latency_ms": self.latency_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShadowSample:
        return cls(
            user_id=data["user_id"],
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            source=str(data["source"]),
            busy=[(datetime.fromisoformat(s), datetime.fromisoformat(e)) for s, e in data["busy"]],
            latency_ms=float(data["latency_ms"]),
        )


def sampled(*, user_id: Any, rng: Callable[[], float] = random.random) -> bool:
    """Whether to compare this user's answer: ``CALCACHE_SHADOW_SAMPLE_RATE`` of the answers
    of users with the write flag on (their SQL copy is being filled). Never raises."""
    try:
        if conf.shadow_sample_rate <= 0 or rng() >= conf.shadow_sample_rate:
            return False
        return flags.is_enabled(WRITE_FLAG, user_id=user_id)
    except Exception:
        logger.exception("Shadow sampling failed")
        return False


def compare_sample(sample: ShadowSample) -> CacheComparison | None:
    """Compare a sampled answer with the other side and record it (the runner's work);
    never raises."""
    try:
        user = get_user_model()._default_manager.filter(pk=sample.user_id).first()
        if user is None:
            return None
        return compare(
            user=user,
            start=sample.start,
            end=sample.end,
            source=sample.source,
            busy=sample.busy,
            latency_ms=sample.latency_ms,
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
    if source in ("sql", "mixed"):
        other, other_latency = _timed(
            lambda: (
                json_cache.cached_busy(user=user, start=start, end=end)
                if conf.json_cache_enabled
                else None
            )
        )
        other_source = "json"
        if other is None:
            other, other_latency = _timed(lambda: live_busy(user=user, start=start, end=end))
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

    Turning it off again is a human act in the admin. Returns True when it tripped now;
    then ``rollout_changed`` and ``rollback_triggered`` are sent once the transaction
    commits.
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
        memo.clear()
        event = RolloutEvent.objects.create(
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
        signals.send_on_commit(signals.rollout_changed, sender=RolloutEvent, event=event)
        signals.send_on_commit(
            signals.rollback_triggered,
            sender=RolloutEvent,
            event=event,
            mismatches=mismatches,
            samples=total,
        )
    logger.error(
        "Automatic rollback: %s of the last %s comparisons disagreed (%.2f%%); %s is on",
        mismatches,
        total,
        percent,
        KILL_SWITCH,
    )
    return True


@dataclass
class CompareReport:
    users: int = 0
    windows: int = 0
    compared: int = 0
    mismatches: int = 0
    uncovered: int = 0
    no_json: int = 0
    live_failed: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    examples: list[str] = field(default_factory=list)

    @property
    def mismatch_percent(self) -> float:
        return 100.0 * self.mismatches / self.compared if self.compared else 0.0

    def percentile(self, source: str, p: float) -> float | None:
        values = sorted(self.latencies.get(source, []))
        if not values:
            return None
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def compare_caches(
    *, users: Iterable[Any], days: int, live: bool = False, now: datetime | None = None
) -> CompareReport:
    """Compare SQL with the JSON cache (and with live freeBusy) over each user's next
    ``days`` days, one window per day. Nothing is written."""
    now = now or timezone.now()
    report = CompareReport()
    first = now.replace(minute=0, second=0, microsecond=0)
    for user in users:
        report.users += 1
        live_range: list[Interval] | None = None
        if live:
            try:
                live_range, ms = _timed(
                    partial(
                        live_busy,
                        user=user,
                        start=first,
                        end=first + timedelta(days=days),
                    )
                )
                report.latencies["live"].append(ms)
            except GoogleError as exc:  # that user is compared without Google, and said so
                report.live_failed += 1
                if len(report.examples) < 10:
                    report.examples.append(f"user {user.pk}: live read failed: {exc}")
        for day in range(days):
            start = first + timedelta(days=day)
            end = start + timedelta(days=1)
            report.windows += 1
            if not sync_coverage(user=user, start=start, end=end):
                report.uncovered += 1
                continue
            sql, ms = _timed(partial(busy_intervals, user=user, start=start, end=end))
            report.latencies["sql"].append(ms)
            others: list[tuple[str, list[Interval]]] = []
            if conf.json_cache_enabled:
                cached, ms = _timed(
                    partial(json_cache.cached_busy, user=user, start=start, end=end)
                )
                if cached is None:
                    report.no_json += 1
                else:
                    report.latencies["json"].append(ms)
                    others.append(("json", cached))
            if live_range is not None:
                others.append(("live", merge_intervals(live_range, start=start, end=end)))
            for name, other in others:
                report.compared += 1
                only_sql, only_other = differences(sql or [], other)
                if only_sql or only_other:
                    report.mismatches += 1
                    if len(report.examples) < 10:
                        report.examples.append(
                            f"user {user.pk} {start:%Y-%m-%d}: sql-only {len(only_sql)}, "
                            f"{name}-only {len(only_other)}"
                        )
    return report
