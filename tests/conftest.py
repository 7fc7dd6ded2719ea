"""Fixtures shared by the whole suite. Tests run on SQLite or on PostgreSQL,
whichever DATABASE_URL names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import translation

from tests.factories import UserFactory
from tests.postgres_server import PostgresServer, missing_binaries

pytest_plugins = ["calcache.emulator.fixtures"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.celery_worker import NO_BROKER, available_brokers

    if not available_brokers():
        terminalreporter.write_sep("!", NO_BROKER, red=True, bold=True)
    from tests.pgbouncer_server import missing_pgbouncer
    from tests.postgres_server import missing_binaries

    for missing in (missing_binaries(), missing_pgbouncer()):
        if missing:
            message = f"{missing}: the replica, outage and pooler tests were SKIPPED"
            terminalreporter.write_sep("!", message, red=True, bold=True)


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    # The database is rolled back after every test; the flag cache, the flags' process
    # memo and the unflushed availability counters must be too.
    from calcache.availability.stats import stats
    from flags.memo import memo

    cache.clear()
    memo.clear()
    stats.reset()
    yield
    cache.clear()
    memo.clear()
    stats.reset()


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    # LocaleMiddleware activates the request's language in this thread and leaves it
    # active: a German request must not make a later test's output German.
    yield
    translation.deactivate()


@pytest.fixture
def user(db: None) -> Any:
    return UserFactory()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # PBKDF2 at production strength costs ~0.3 s per user created.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def write_flag_on(db: None) -> None:
    """calendar-cache-sql-write on for everyone: the sync writes SQL rows."""
    from flags.models import Flag
    from flags.names import WRITE_FLAG

    flag = Flag.objects.get(name=WRITE_FLAG)
    flag.everyone = True
    flag.save()


@pytest.fixture
def webhooks_on(settings: Any) -> None:
    """Push channels on, pointed at a loopback port nobody listens on: channels open at
    the emulator, and its deliveries to them fail unseen."""
    settings.CALCACHE_WEBHOOK_URL = "http://127.0.0.1:9/calendar-cache/webhooks/google/"
    settings.CALCACHE_WEBHOOK_TOKEN = "test-channel-token"


@pytest.fixture
def throwaway_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of the test's own (tests/postgres_server.py: initdb, a free
    port), running; the test may stop and start it. Not the shared server, whatever
    DATABASE_URL says; skipped where the PostgreSQL server binaries are absent."""
    reason = missing_binaries()
    if reason:
        pytest.skip(reason)
    server = PostgresServer.create()
    try:
        yield server
    finally:
        server.remove()
