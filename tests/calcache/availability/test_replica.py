"""calcache.availability.replica: availability reads on CALCACHE_READ_DATABASE while it
answers and keeps up, else on default. Here the read database is a second connection to
the test database (committed data, so these tests commit); the streaming-replica tests
with a real replay lag start a replica of their own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from calcache.availability.replica import Verdict, router
from calcache.availability.stats import FALLBACK, stats
from calcache.models import AvailabilityStat
from calcache.selectors import busy_intervals
from calcache.services import get_availability
from flags.models import Flag
from flags.names import READ_FLAG
from tests.calcache.availability.conftest import READ_REPLICA, READ_REPLICA_DOWN
from tests.calcache.sync.conftest import Mirror, make_mirror

pytestmark = pytest.mark.django_db(
    transaction=True,  # the read database is another connection: it sees what committed
    serialized_rollback=True,
    databases=[
        alias
        for alias in (DEFAULT_DB_ALIAS, READ_REPLICA, READ_REPLICA_DOWN)
        if alias in connections.settings
    ],
)


@pytest.fixture(autouse=True)
def _fresh_router() -> Iterator[None]:
    router.reset()
    yield
    router.reset()


@pytest.fixture
def down(settings: Any) -> str:
    if READ_REPLICA_DOWN not in connections.settings:
        pytest.skip("an unreachable server needs a network database (PostgreSQL)")
    settings.CALCACHE_READ_DATABASE = READ_REPLICA_DOWN
    return READ_REPLICA_DOWN


@pytest.fixture
def replica(settings: Any) -> str:
    settings.CALCACHE_READ_DATABASE = READ_REPLICA
    return READ_REPLICA


@pytest.fixture
def mirror(emulator: Any, write_flag_on: None) -> Mirror:
    mirror = make_mirror(emulator)
    for day in range(3):
        start = mirror.now + timedelta(days=day, hours=9)
        mirror.emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=1))
    mirror.sync()
    flag = Flag.objects.get(name=READ_FLAG)
    flag.everyone = True
    flag.save()
    return mirror


def fallbacks() -> int:
    stats.flush()
    return sum(AvailabilityStat.objects.filter(source=FALLBACK).values_list("requests", flat=True))


def week(mirror: Mirror) -> dict[str, Any]:
    return {"start": mirror.now, "end": mirror.now + timedelta(days=7)}


def test_the_default_read_database_asks_nothing_about_lag(
    mirror: Mirror, django_assert_num_queries: Any
) -> None:
    assert router.alias() == "default"
    assert router.verdicts == {}
    with django_assert_num_queries(0):
        router.alias()


def test_a_healthy_read_database_answers_and_is_checked_at_most_once_a_second(
    mirror: Mirror, replica: str
) -> None:
    alias = replica
    answer = get_availability(user=mirror.user, **week(mirror))
    assert answer.source == "sql"
    assert answer.busy == mirror.google_busy(**week(mirror))
    verdict = router.verdicts[alias]
    assert (verdict.alias, verdict.reason, verdict.lag_seconds) == (alias, "healthy", 0.0)
    busy_intervals(user=mirror.user, **week(mirror))
    assert router.verdicts[alias] is verdict  # not measured again within the second
    assert fallbacks() == 0


def test_an_unreachable_read_database_moves_reads_to_default_without_an_error(
    mirror: Mirror, down: str
) -> None:
    alias = down
    answer = get_availability(user=mirror.user, **week(mirror))
    assert answer.source == "sql"
    assert answer.busy == mirror.google_busy(**week(mirror))
    assert router.verdicts[alias].reason == "unreachable"
    assert router.alias() == "default"
    assert fallbacks() >= 1


def test_a_read_that_fails_on_the_read_database_is_repeated_on_default(
    mirror: Mirror, down: str
) -> None:
    alias = down
    # Healthy when last measured, gone by the time of the read.
    router.verdicts[alias] = Verdict(alias, "healthy", 0.0, checked=float("inf"))
    assert busy_intervals(user=mirror.user, **week(mirror)) == mirror.google_busy(**week(mirror))
    assert router.verdicts[alias].alias == "default"
    assert fallbacks() == 1


def test_a_read_database_behind_the_lag_limit_moves_reads_to_default(
    mirror: Mirror, replica: str, settings: Any
) -> None:
    alias = replica
    # Any measured lag, even a caught-up replica's 0 s, exceeds a negative limit.
    settings.CALCACHE_REPLICA_MAX_LAG_SECONDS = -1
    assert busy_intervals(user=mirror.user, **week(mirror)) == mirror.google_busy(**week(mirror))
    assert router.verdicts[alias].reason == "lagging"
    assert fallbacks() == 1


def test_an_alias_that_is_not_configured_reads_from_default(mirror: Mirror, settings: Any) -> None:
    settings.CALCACHE_READ_DATABASE = "nowhere"
    assert busy_intervals(user=mirror.user, **week(mirror)) == mirror.google_busy(**week(mirror))
    assert router.verdicts["nowhere"].reason == "not configured"
    assert fallbacks() == 1
