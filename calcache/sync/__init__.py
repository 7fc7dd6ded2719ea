"""The sync engine: a correct SQL mirror of each selected calendar.

- ``mapping``: Google event resources -> ``CalendarEvent`` field values.
- ``writes``: the page upsert and deletions (services).
- ``locking``: one sync per calendar at a time.
- ``engine``: full, incremental and roll-forward syncs of one calendar, and of many.
"""

from calcache.sync.engine import SyncOutcome, SyncResult, sync_calendar, sync_calendars

__all__ = ["SyncOutcome", "SyncResult", "sync_calendar", "sync_calendars"]
