"""The beat schedule of calcache's periodic tasks. A host project merges it into its own:

    from calcache.background.beat import BEAT_SCHEDULE
    CELERY_BEAT_SCHEDULE = {**BEAT_SCHEDULE, ...}

Importable from settings: it loads no models.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from calcache.extras import MissingExtra

try:
    from celery.schedules import crontab
except ImportError as exc:
    raise MissingExtra("celery", exc) from exc

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "calcache-refresh-stale": {
        "task": "calcache.refresh_stale",
        "schedule": timedelta(minutes=5),
        # A sweep that waited longer than its period is superseded by the next one.
        "options": {"expires": 5 * 60},
    },
    "calcache-renew-channels": {
        "task": "calcache.renew_channels",
        "schedule": timedelta(hours=1),
        "options": {"expires": 60 * 60},
    },
    "calcache-cleanup": {
        "task": "calcache.cleanup",
        "schedule": crontab(hour=3, minute=30),
        "options": {"expires": 12 * 60 * 60},
    },
}
