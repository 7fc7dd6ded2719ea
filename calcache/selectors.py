"""The reads a host site calls: busy time from the SQL tables alone, and whether the SQL
copy covers a window.

A stable facade: the implementations live in ``calcache.availability.sql`` (and
``calcache.background.sweep`` for the sweep's read); import from here.
"""

from calcache.availability.sql import busy_intervals, sync_coverage
from calcache.background.sweep import CalendarsNeedingSync, calendars_needing_sync
from calcache.intervals import Interval, merge_intervals

__all__ = [
    "CalendarsNeedingSync",
    "Interval",
    "busy_intervals",
    "calendars_needing_sync",
    "merge_intervals",
    "sync_coverage",
]
