"""Behind a transaction-pooling PgBouncer (Debian's pgbouncer, started here on a free
port): why a session-level advisory lock cannot guard a sync there, and that the
availability, sync and lock tests pass through it with prepared statements off and
``CALCACHE_SYNC_LOCKING = "lease"``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from calcache.sync.locking import ADVISORY_NAMESPACE
from tests.pgbouncer_server import PgBouncer, missing_pgbouncer

ROOT = Path(__file__).resolve().parents[3]


def server_of_the_test_database() -> tuple[str, int]:
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL leg runs the tests through PgBouncer")
    settings = connection.settings_dict
    return settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432)


@contextmanager
def pgbouncer(pool_size: int) -> Iterator[PgBouncer]:
    reason = missing_pgbouncer()
    if reason:
        pytest.skip(reason)
    host, port = server_of_the_test_database()
    bouncer = PgBouncer.start(target_host=host, target_port=port, pool_size=pool_size)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture
def one_server_session() -> Iterator[PgBouncer]:
    with pgbouncer(pool_size=1) as bouncer:
        yield bouncer


@pytest.fixture
def bouncer() -> Iterator[PgBouncer]:
    with pgbouncer(pool_size=20) as bouncer:
        yield bouncer


def test_a_session_advisory_lock_does_not_guard_anything_behind_a_transaction_pooler(
    one_server_session: PgBouncer,
) -> None:
    bouncer = one_server_session
    database = "postgres"  # any: the lock belongs to the server session
    key = (ADVISORY_NAMESPACE, 424242)
    one = psycopg.connect(bouncer.url(database), autocommit=True, prepare_threshold=None)
    two = psycopg.connect(bouncer.url(database), autocommit=True, prepare_threshold=None)
    try:
        take = "SELECT pg_try_advisory_lock(%s, %s)"
        assert one.execute(take, key).fetchone() == (True,)
        # Two clients, one server session: the second "takes" the lock the first holds
        # (advisory locks are re-entrant per session), and may release it for the first.
        assert two.execute(take, key).fetchone() == (True,)
        assert two.execute("SELECT pg_advisory_unlock(%s, %s)", key).fetchone() == (True,)
        assert two.execute("SELECT pg_advisory_unlock(%s, %s)", key).fetchone() == (True,)
        assert one.execute("SELECT pg_advisory_unlock(%s, %s)", key).fetchone() == (False,)
    finally:
        one.close()
        two.close()


def test_availability_sync_and_lock_tests_pass_through_pgbouncer(bouncer: PgBouncer) -> None:
    database = f"{connection.settings_dict['NAME']}_via_pgbouncer"
    env = {
        **os.environ,
        "DATABASE_URL": bouncer.url(database),
        "DB_PREPARE_THRESHOLD": "",  # no prepared statements: pgbouncer 1.18 cannot route them
        "CALCACHE_SYNC_LOCKING": "lease",
    }
    host, port = server_of_the_test_database()
    direct = f"postgres://postgres@{host}:{port}/postgres"
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/calcache/availability",
                "tests/calcache/sync",
                "--deselect",
                "tests/calcache/sync/test_pgbouncer.py",
                "-p",
                "no:cacheprovider",
                "-q",
                # pytest-django would drop its database through PgBouncer, whose pooled
                # server sessions still use it; it is dropped directly below.
                "--reuse-db",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
    finally:
        with psycopg.connect(direct, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "test_{database}" WITH (FORCE)')
    tail = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    found = re.findall(r"(\d+) (passed|failed|error)", tail)
    counts = {word: int(number) for number, word in found}
    assert counts.get("passed", 0) > 150 and not counts.get("failed"), tail
