"""calcache.intervals: merge_intervals, the one merge of busy time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calcache.intervals import Interval, merge_intervals

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def hours(start: float, end: float) -> Interval:
    return T0 + timedelta(hours=start), T0 + timedelta(hours=end)


@pytest.mark.parametrize(
    ("intervals", "merged"),
    [
        ([], []),
        ([hours(5, 6), hours(1, 2), hours(3, 4)], [hours(1, 2), hours(3, 4), hours(5, 6)]),
        ([hours(1, 3), hours(2, 4)], [hours(1, 4)]),  # overlapping
        ([hours(1, 2), hours(2, 3)], [hours(1, 3)]),  # touching
        ([hours(1, 5), hours(2, 3)], [hours(1, 5)]),  # one inside another
        ([hours(1, 2), hours(1, 2)], [hours(1, 2)]),  # the same twice
        ([hours(3, 4), hours(1, 2), hours(2, 3.5)], [hours(1, 4)]),  # merged after sorting
        ([hours(1, 1), hours(2, 3)], [hours(2, 3)]),  # an empty interval is dropped
    ],
    ids=["empty", "sorted", "overlap", "touching", "inside", "twice", "unsorted", "zero-length"],
)
def test_merge_sorts_and_merges(intervals: list[Interval], merged: list[Interval]) -> None:
    assert merge_intervals(intervals) == merged


def test_merge_clips_to_the_half_open_window() -> None:
    busy = [hours(0, 2), hours(3, 4), hours(5, 7), hours(7, 8), hours(-2, -1), hours(8, 9)]
    start, end = hours(1, 7)
    assert merge_intervals(busy, start=start, end=end) == [hours(1, 2), hours(3, 4), hours(5, 7)]
    assert merge_intervals(busy, start=start) == [hours(1, 2), hours(3, 4), hours(5, 9)]
    assert merge_intervals(busy, end=end) == [hours(-2, -1), hours(0, 2), hours(3, 4), hours(5, 7)]
    assert merge_intervals([hours(2, 3)], start=start, end=start) == []


def test_merge_takes_any_iterable() -> None:
    assert merge_intervals(hours(n, n + 1) for n in (2, 0, 1)) == [hours(0, 3)]
