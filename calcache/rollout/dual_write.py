"""Dual write: while both caches are in use, a calendar's change is written to both.

``refresh_calendar`` is what a push notification (or a scheduled refresh) causes: the
JSON blobs covering the calendar are rewritten from Google, and the SQL copy is synced
when the write flag is on for the calendar's user (``sync_calendar`` checks it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from calcache.availability import json_cache
from calcache.conf import conf
from calcache.models import SelectedCalendar
from calcache.sync.engine import SyncResult, sync_calendar

logger = logging.getLogger("calcache.rollout")


@dataclass
class RefreshResult:
    json_blobs: int = 0
    json_error: str = ""
    # What made the JSON side fail, for callers that decide about retrying.
    json_exception: Exception | None = field(default=None, repr=False, compare=False)
    sync: SyncResult | None = None


def refresh_calendar(selected: SelectedCalendar, *, now: datetime | None = None) -> RefreshResult:
    """Rewrite the JSON blobs covering the calendar and sync its SQL copy (when the write
    flag is on). A failure of one side is logged and recorded and never breaks the other."""
    result = RefreshResult()
    if conf.json_cache_enabled:
        try:
            result.json_blobs = json_cache.refresh_calendar_blobs(selected)
        except Exception as exc:
            logger.warning("JSON cache refresh of %s failed: %s", selected.calendar_id, exc)
            result.json_error = f"{type(exc).__name__}: {exc}"
            result.json_exception = exc
    result.sync = sync_calendar(selected, now=now)
    return result
