"""Which database answers availability reads: ``CALCACHE_READ_DATABASE`` (a streaming
replica) while it answers and its replay lag is within
``CALCACHE_REPLICA_MAX_LAG_SECONDS``, else ``default``.

The lag is measured at most once a second per process, with one query on the replica.
A replica that has replayed everything it received counts as current, however long
ago its last transaction was (an idle primary sends nothing to replay). Writes, syncs,
locks and the rollout never come here: they always use ``default``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from calcache.conf import conf

logger = logging.getLogger("calcache.availability")

CHECK_EVERY_SECONDS = 1.0
LAG_SQL = """
SELECT CASE
  WHEN NOT pg_is_in_recovery() THEN 0
  WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
  ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)
END
"""


@dataclass(frozen=True)
class Verdict:
    """The alias reads use until ``checked + CHECK_EVERY_SECONDS``, and why."""

    alias: str
    reason: str  # "healthy", "lagging", "unreachable", "not configured"
    lag_seconds: float | None
    checked: float


class ReadRouter:
    """The process's memo of the read database's health."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.verdicts: dict[str, Verdict] = {}

    def reset(self) -> None:
        with self.lock:
            self.verdicts.clear()

    def alias(self) -> str:
        """The alias the next availability read uses."""
        wanted = conf.read_database
        if wanted == DEFAULT_DB_ALIAS:
            return wanted
        return self.verdict(wanted).alias

    def verdict(self, wanted: str) -> Verdict:
        now = time.monotonic()
        with self.lock:
            known = self.verdicts.get(wanted)
        if known is not None and now - known.checked < CHECK_EVERY_SECONDS:
            return known
        found = self._measure(wanted, now)
        with self.lock:
            self.verdicts[wanted] = found
        return found

    def failed(self, alias: str, error: Exception) -> None:
        """A read on the replica failed: use ``default`` until the next check."""
        logger.warning("Availability read on %r failed (%s); reading from default", alias, error)
        _close_quietly(alias)
        with self.lock:
            self.verdicts[alias] = Verdict(DEFAULT_DB_ALIAS, "unreachable", None, time.monotonic())

    def _measure(self, wanted: str, now: float) -> Verdict:
        if wanted not in connections.settings:
            return Verdict(DEFAULT_DB_ALIAS, "not configured", None, now)
        try:
            with connections[wanted].cursor() as cursor:
                # Another engine has no replay to measure: a working connection is current.
                cursor.execute(
                    LAG_SQL if connections[wanted].vendor == "postgresql" else "SELECT 0"
                )
                row = cursor.fetchone()
        except DatabaseError as exc:
            logger.warning("Read database %r unreachable (%s); reading from default", wanted, exc)
            _close_quietly(wanted)
            return Verdict(DEFAULT_DB_ALIAS, "unreachable", None, now)
        lag = float(row[0]) if row and row[0] is not None else 0.0
        if lag > conf.replica_max_lag_seconds:
            logger.warning(
                "Read database %r is %.1f s behind (more than %s); reading from default",
                wanted,
                lag,
                conf.replica_max_lag_seconds,
            )
            return Verdict(DEFAULT_DB_ALIAS, "lagging", lag, now)
        return Verdict(wanted, "healthy", lag, now)


def _close_quietly(alias: str) -> None:
    with contextlib.suppress(DatabaseError):
        connections[alias].close()


router = ReadRouter()
