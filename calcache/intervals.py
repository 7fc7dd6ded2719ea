"""Busy intervals: the one merge every source's answer goes through (no Django here,
so the Google module can use it too)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

Interval = tuple[datetime, datetime]


def merge_intervals(
    intervals: Iterable[Interval], *, start: datetime | None = None, end: datetime | None = None
) -> list[Interval]:
    """Sort and merge overlapping or touching intervals, clipped to ``[start, end)`` when
    given; empty intervals are dropped."""
    merged: list[Interval] = []
    for begin, finish in sorted(intervals):
        if start is not None:
            begin = max(begin, start)
        if end is not None:
            finish = min(finish, end)
        if begin >= finish:
            continue
        if merged and begin <= merged[-1][1]:
            if finish > merged[-1][1]:
                merged[-1] = (merged[-1][0], finish)
        else:
            merged.append((begin, finish))
    return merged
