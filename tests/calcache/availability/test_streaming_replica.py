"""Availability reads on a real streaming replica: a throwaway primary and a
``pg_basebackup -R`` replica of it, each on a free port, with the site's processes
(tests/calcache/availability/replica_probe.py) reading through
``CALCACHE_READ_DATABASE=replica``. Runs the same on both CI legs (the clusters are
independent of DATABASE_URL); skipped only where PostgreSQL's server binaries are absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calcache.availability.replica import LAG_SQL
from calcache.emulator import EmulatorClient
from calcache.emulator.server import EmulatorServer
from calcache.intervals import merge_intervals
from tests.postgres_server import PostgresServer
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
EMAIL = "replica@example.com"
CALENDARS = [EMAIL, "rota@example.com"]
DATABASE = "calcache_replica"
MAX_LAG = 1.0


@pytest.fixture
def replica(throwaway_postgres: PostgresServer) -> Iterator[PostgresServer]:
    replica = PostgresServer.replica_of(throwaway_postgres)
    try:
        yield replica
    finally:
        replica.remove()


class Site:
    """The host project's processes, on the primary with reads on the replica."""

    def __init__(self, primary: PostgresServer, replica: PostgresServer, google: Any) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DATABASE_URL": primary.url(DATABASE),
            "DATABASE_REPLICA_URL": replica.url(DATABASE),
            "CALCACHE_READ_DATABASE": "replica",
            "CALCACHE_REPLICA_MAX_LAG_SECONDS": str(MAX_LAG),
            "CACHE_URL": "locmemcache://",
            "CELERY_BROKER_URL": "",
            "CALCACHE_GOOGLE_API_URL": google.api_url,
            "CALCACHE_GOOGLE_TOKEN_URI": google.token_uri,
            "CALCACHE_GOOGLE_AUTH_URI": google.auth_uri,
            "CALCACHE_SHADOW_SAMPLE_RATE": "0",
        }

    def run(self, *args: str, given: Any = None) -> Any:
        completed = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            input=json.dumps(given or {}),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr[-3000:]
        return json.loads(completed.stdout) if completed.stdout.strip() else None

    def probe(self, action: str, given: Any = None) -> Any:
        return self.run("-m", "tests.calcache.availability.replica_probe", action, given=given)


def rows(server: PostgresServer) -> int:
    return int(server.psql("SELECT count(*) FROM calcache_calendarevent", DATABASE))


def lag(replica: PostgresServer) -> float:
    return float(replica.psql(LAG_SQL, DATABASE))


def test_reads_follow_the_replica_and_move_to_the_primary_when_it_lags_or_stops(
    throwaway_postgres: PostgresServer,
    replica: PostgresServer,
    google_emulator_server: EmulatorServer,
    emulator: EmulatorClient,
) -> None:
    primary = throwaway_postgres
    primary.create_database(DATABASE)  # streamed to the replica like everything after
    site = Site(primary, replica, google_emulator_server)
    site.run("manage.py", "migrate", "--no-input", "-v", "0")

    emulator.add_account(EMAIL)
    emulator.add_calendar(EMAIL, calendar_id=CALENDARS[1], summary="Rota")
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=7)
    for day, calendar_id in enumerate(CALENDARS * 2):
        begins = start + timedelta(days=day, hours=9 + day)
        emulator.add_event(calendar_id, start=begins, end=begins + timedelta(hours=1))

    def google() -> list[list[str]]:
        merged = merge_intervals(
            interval
            for calendar_id in CALENDARS
            for interval in emulator.busy(calendar_id, start, end)
        )
        return [[b.astimezone(UTC).isoformat(), e.astimezone(UTC).isoformat()] for b, e in merged]

    def read() -> dict[str, Any]:
        window = {"user": user, "start": start.isoformat(), "end": end.isoformat()}
        found: dict[str, Any] = site.probe("read", window)
        assert found["source"] == "sql"
        assert found["busy"] == google()  # whichever server answered
        return found

    token = emulator.authorized_token(EMAIL)
    user = site.probe("setup", {"token": token, "calendars": CALENDARS})["user"]
    assert rows(primary) == 4

    # The sync on the primary reaches the replica; reads are served there.
    wait_for(lambda: rows(replica) == 4, timeout=60)
    wait_for(lambda: lag(replica) == 0, timeout=60)
    found = read()
    assert (found["reason"], found["fallbacks"]) == ("healthy", 0)
    print(f"\nsynced: primary {rows(primary)} rows, replica {rows(replica)}, lag 0 s: {found}")

    # Replay paused, a new event synced on the primary: the replica falls behind, and once
    # it is more than MAX_LAG seconds behind reads move to the primary, which has it.
    replica.psql("SELECT pg_wal_replay_pause()", DATABASE)
    begins = start + timedelta(days=5, hours=15)
    emulator.add_event(CALENDARS[1], start=begins, end=begins + timedelta(hours=2))
    site.probe("sync")
    assert rows(primary) == 5
    wait_for(lambda: lag(replica) > MAX_LAG, timeout=60)
    assert rows(replica) == 4
    found = read()
    assert (found["reason"], found["fallbacks"]) == ("lagging", 1)
    print(
        f"replay paused: primary {rows(primary)} rows, replica {rows(replica)}, "
        f"lag {lag(replica):.2f} s > {MAX_LAG} s: {found}"
    )

    # Replay resumed: the replica catches up and answers again.
    replica.psql("SELECT pg_wal_replay_resume()", DATABASE)
    wait_for(lambda: rows(replica) == 5 and lag(replica) == 0, timeout=60)
    found = read()
    assert (found["reason"], found["fallbacks"]) == ("healthy", 1)
    print(f"replay resumed: replica {rows(replica)} rows, lag 0 s: {found}")

    # The replica stopped: reads move to the primary, no error reaches the answer.
    replica.stop()
    found = read()
    assert (found["reason"], found["fallbacks"]) == ("unreachable", 2)
    print(f"replica stopped: {found}")
