"""One sync per calendar at a time.

PostgreSQL: a session-level advisory lock keyed by the sync-token row, taken
with ``pg_try_advisory_lock`` (never waits) and released in ``finally``; a
crashed worker's lock dies with its connection. Other databases (SQLite), and
PostgreSQL behind a transaction-pooling PgBouncer (``CALCACHE_SYNC_LOCKING = "lease"``,
where consecutive transactions of one sync may run on different server sessions, so a
session's lock would neither hold nor be released): a lease on the token row taken with
a compare-and-set UPDATE, which expires (``CALCACHE_SYNC_LEASE_SECONDS``) so a crashed
worker cannot block the calendar forever.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import InterfaceError, OperationalError, connection
from django.db.models import Q
from django.utils import timezone

from calcache.conf import conf
from calcache.models import CalendarSyncToken

logger = logging.getLogger("calcache.sync")

# First key of the two-int advisory lock: calcache's own namespace.
ADVISORY_NAMESPACE = 0x6361_6C63  # "calc"


def uses_advisory_lock() -> bool:
    """Whether syncs lock calendars with PostgreSQL's advisory lock (else the lease)."""
    return connection.vendor == "postgresql" and conf.sync_locking != "lease"


@contextmanager
def calendar_lock(token: CalendarSyncToken) -> Iterator[bool]:
    """Yields True when this process holds the calendar; False when another one does."""
    if uses_advisory_lock():
        key = token.pk % (2**31)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_NAMESPACE, key])
            acquired = bool(cursor.fetchone()[0])
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(
                            "SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_NAMESPACE, key]
                        )
                except (OperationalError, InterfaceError):
                    # A database outage: the session, and its lock with it, is gone (closing
                    # makes sure); the error that ended the sync is the one worth raising.
                    logger.debug("Advisory lock of %s died with its session", token)
                    if not connection.in_atomic_block:
                        connection.close()
        return

    owner = uuid.uuid4().hex
    now = timezone.now()
    acquired = bool(
        CalendarSyncToken.objects.filter(pk=token.pk)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(lock_owner=owner, locked_until=now + timedelta(seconds=conf.sync_lease_seconds))
    )
    try:
        yield acquired
    finally:
        if acquired:
            try:
                CalendarSyncToken.objects.filter(pk=token.pk, lock_owner=owner).update(
                    lock_owner="", locked_until=None
                )
            except (OperationalError, InterfaceError):
                # The lease runs out by itself (CALCACHE_SYNC_LEASE_SECONDS).
                logger.warning("Lease of %s not released (database unavailable)", token)


def seconds_until_free(token: CalendarSyncToken) -> float | None:
    """How long the calendar stays taken by someone else's lock, when that can be known:
    the remaining lease; None for the advisory lock (held by a live session, and a dead
    session's lock is gone already)."""
    if uses_advisory_lock():
        return None
    until = (
        CalendarSyncToken.objects.filter(pk=token.pk).values_list("locked_until", flat=True).first()
    )
    if until is None:
        return 0.0
    return max(0.0, (until - timezone.now()).total_seconds())
