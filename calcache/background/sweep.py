"""Which calendars the periodic sweep should sync: those a lost notification left marked
and those not synced for a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, Subquery

from calcache.models import CalendarSyncToken, SelectedCalendar
from flags.models import Flag
from flags.names import WRITE_FLAG
from flags.selectors import enabled_user_ids

STALE_SCAN_BATCH = 2000


@dataclass(frozen=True)
class CalendarsNeedingSync:
    """Selected calendar ids for the ``refresh_stale`` sweep, most overdue first."""

    dirty: list[int]
    stale: list[int]


def calendars_needing_sync(
    *, now: datetime, stale_after: timedelta, dirty_grace: timedelta, limit: int
) -> CalendarsNeedingSync:
    """Enabled calendars of valid credentials that a background sync should visit:

    - ``dirty``: marked by a push notification longer than ``dirty_grace`` ago (their
      own refresh was lost or failed);
    - ``stale``: no sync, successful or failed, since ``now - stale_after`` (or never),
      limited to users with the write flag on, for whom a sync writes anything.

    At most ``limit`` ids in all, dirty ones first.
    """
    wanted = SelectedCalendar.objects.filter(enabled=True, credential__invalid=False)
    dirty = list(
        wanted.filter(dirty_since__lt=now - dirty_grace)
        .order_by("dirty_since", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    tokens = CalendarSyncToken.objects.filter(
        credential_id=OuterRef("credential_id"), calendar_id=OuterRef("calendar_id")
    )
    candidates = (
        wanted.filter(dirty_since__isnull=True)
        # A calendar that succeeded or failed since the cutoff waits for the next period:
        # one that keeps failing (a refused request) is not retried every sweep.
        .exclude(
            Exists(
                tokens.filter(
                    Q(last_sync_at__gte=now - stale_after) | Q(last_error_at__gte=now - stale_after)
                )
            )
        )
        .annotate(last_sync_at=Subquery(tokens.values("last_sync_at")[:1]))
        .order_by(F("last_sync_at").asc(nulls_first=True), "pk")
        .values_list("pk", "credential__user_id")
    )
    flag = Flag.objects.filter(name=WRITE_FLAG).first()
    room = max(0, limit - len(dirty))
    stale: list[int] = []
    batch: list[tuple[int, Any]] = []

    def take(batch: list[tuple[int, Any]]) -> None:
        writers = (
            enabled_user_ids(flag=flag, user_ids={user_id for _, user_id in batch})
            if flag is not None
            else set()
        )
        stale.extend(pk for pk, user_id in batch if user_id in writers)

    # Users outside the write flag never sync, so they stay the most overdue: filter as
    # we go rather than after a LIMIT they could fill.
    for row in candidates.iterator(chunk_size=STALE_SCAN_BATCH):
        if len(stale) >= room:
            break
        batch.append(row)
        if len(batch) == STALE_SCAN_BATCH:
            take(batch)
            batch = []
    if batch and len(stale) < room:
        take(batch)
    return CalendarsNeedingSync(dirty=dirty, stale=stale[:room])
