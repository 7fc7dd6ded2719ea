"""The reads a host site calls: busy time from the SQL tables alone, and whether the SQL
copy covers a window.

A stable facade: the implementations live in ``calcache.availability.sql`` (and
``calcache.background.sweep`` for the sweep's read); import from here. Names load on
first use, so importing this module needs no configured Django.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from calcache._lazy import lazy_attributes

if TYPE_CHECKING:
    from calcache.availability.sql import busy_intervals, busy_intervals_for_users, sync_coverage
    from calcache.background.sweep import CalendarsNeedingSync, calendars_needing_sync
    from calcache.intervals import Interval, merge_intervals

FACADE = {
    "CalendarsNeedingSync": "calcache.background.sweep",
    "Interval": "calcache.intervals",
    "busy_intervals": "calcache.availability.sql",
    "busy_intervals_for_users": "calcache.availability.sql",
    "calendars_needing_sync": "calcache.background.sweep",
    "merge_intervals": "calcache.intervals",
    "sync_coverage": "calcache.availability.sql",
}

__all__ = [
    "CalendarsNeedingSync",
    "Interval",
    "busy_intervals",
    "busy_intervals_for_users",
    "calendars_needing_sync",
    "merge_intervals",
    "sync_coverage",
]


__getattr__, __dir__ = lazy_attributes(globals(), FACADE)
