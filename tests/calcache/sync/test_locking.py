"""One sync per calendar at a time.

Two (or more) threads, each on its own connection, sync the same calendar: exactly one
does the work, the others get ``SyncOutcome.LOCKED`` without asking Google, no row is
duplicated and no update is lost (a later sync brings the copy to Google's state). On
PostgreSQL that is the advisory lock (also: held by another session, dead with its
session); on SQLite the lease on the token row (also: held, expired, released when the
sync dies). Thread tests need a file SQLite test database (project/settings.py sets
one); with an in-memory one they are skipped.

Every test here is transactional (threads need committed data) and uses
``serialized_rollback`` so that the rows created by data migrations (the rollout flags)
are back for the tests that run after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar, cast

import pytest
from django.db import connection
from django.utils import timezone

from calcache.emulator import EmulatorClient
from calcache.models import CalendarEvent, CalendarSyncToken
from calcache.sync import engine
from calcache.sync.engine import SyncOutcome, SyncResult, sync_calendar, sync_calendars
from calcache.sync.locking import ADVISORY_NAMESPACE, calendar_lock, uses_advisory_lock
from tests.calcache.sync.conftest import Mirror, make_mirror

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

T = TypeVar("T")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
JOIN_TIMEOUT = 30


def postgresql_only() -> None:
    if not uses_advisory_lock():
        pytest.skip("PostgreSQL's advisory lock (the lease is tested below)")


def threads_supported() -> None:
    if connection.vendor == "sqlite" and cast(Any, connection).is_in_memory_db():
        pytest.skip(
            "an in-memory shared-cache SQLite test database answers concurrent writers "
            "with SQLITE_LOCKED at once (no busy timeout); set a file test database"
        )


def lease_only() -> None:
    if uses_advisory_lock():
        pytest.skip("PostgreSQL takes an advisory lock, not the lease on the token row")


def in_threads(*functions: Callable[[], T]) -> list[T]:
    """Run the functions at once (a barrier releases them together), each in its own
    thread with its own database connection, closed at the end; return their results."""
    barrier = threading.Barrier(len(functions))
    results: list[Any] = [None] * len(functions)
    errors: list[BaseException] = []

    def run(index: int, function: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            results[index] = function()
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(index, function))
        for index, function in enumerate(functions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive(), "a sync thread hung"
    if errors:
        raise errors[0]
    return results


def syncer(mirror: Mirror, calendar_id: str | None = None) -> Callable[[], SyncResult]:
    selected = mirror.selected(calendar_id)
    return lambda: sync_calendar(selected, now=mirror.now)


def events_requests(emulator: EmulatorClient) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["path"].endswith("/events")]


def assert_no_duplicates(mirror: Mirror) -> None:
    ids = list(mirror.rows().values_list("google_event_id", flat=True))
    assert len(ids) == len(set(ids))


@pytest.fixture
def locked_mirror(emulator: EmulatorClient, write_flag_on: None) -> Mirror:
    mirror = make_mirror(emulator)
    for n in range(20):
        start = mirror.now + n * 7 * HOUR
        emulator.add_event(mirror.email, start=start, end=start + HOUR)
    return mirror


# --- PostgreSQL: advisory locks ------------------------------------------------------------


def test_two_threads_first_sync_one_does_the_work(
    locked_mirror: Mirror, emulator: EmulatorClient
) -> None:
    threads_supported()
    mirror = locked_mirror
    emulator.clear_requests()
    emulator.fail_next(1, kind="slow", delay=1.0, path="/events")  # the winner holds the lock
    results = in_threads(syncer(mirror), syncer(mirror))
    assert sorted(r.outcome for r in results) == sorted([SyncOutcome.FULL, SyncOutcome.LOCKED])
    assert len(events_requests(emulator)) == 1  # the loser never asked Google
    assert mirror.rows().count() == 20
    assert_no_duplicates(mirror)
    assert CalendarSyncToken.objects.count() == 1
    mirror.assert_mirrors_window()


def test_two_threads_incremental_no_lost_update(
    locked_mirror: Mirror, emulator: EmulatorClient
) -> None:
    threads_supported()
    mirror = locked_mirror
    assert mirror.sync().outcome == SyncOutcome.FULL
    ids = sorted(mirror.row_ids())
    emulator.delete_event(mirror.email, ids[0])
    emulator.patch_event(mirror.email, ids[1], start=mirror.now + 3 * DAY, end=mirror.now + 4 * DAY)
    token_before = mirror.token().sync_token

    emulator.fail_next(1, kind="slow", delay=1.0, path="/events")
    outcome: dict[str, SyncResult] = {}
    late: dict[str, Any] = {}

    def loser_then_edit() -> SyncResult:
        # Runs while the winner sleeps in its request (or wins itself; either is fine).
        result = sync_calendar(mirror.selected(), now=mirror.now)
        outcome["second"] = result
        if result.outcome == SyncOutcome.LOCKED:
            # A change made while the other sync holds the calendar.
            start = mirror.now + 5 * DAY
            late.update(emulator.add_event(mirror.email, start=start, end=start + HOUR))
        return result

    results = in_threads(syncer(mirror), loser_then_edit)
    assert sorted(r.outcome for r in results) == sorted(
        [SyncOutcome.INCREMENTAL, SyncOutcome.LOCKED]
    )
    assert mirror.token().sync_token != token_before
    assert_no_duplicates(mirror)
    # Nothing is lost: the next sync has whatever the busy one may have missed.
    result = mirror.sync()
    assert result.outcome == SyncOutcome.INCREMENTAL
    if late:
        assert late["id"] in mirror.row_ids()
    assert ids[0] not in mirror.row_ids()
    mirror.assert_mirrors_window()
    assert_no_duplicates(mirror)


def test_many_racing_threads_never_duplicate_or_lose_anything(
    locked_mirror: Mirror, emulator: EmulatorClient
) -> None:
    threads_supported()
    mirror = locked_mirror
    for round_ in range(4):
        start = mirror.now + (round_ + 1) * DAY + 30 * timedelta(minutes=1)
        emulator.add_event(mirror.email, start=start, end=start + HOUR)
        if round_ == 2:
            emulator.invalidate_sync_tokens()
        results = in_threads(*(syncer(mirror) for _ in range(4)))
        synced = [r for r in results if r.outcome.synced]
        assert len(synced) >= 1
        assert {r.outcome for r in results} <= {
            SyncOutcome.FULL,
            SyncOutcome.INCREMENTAL,
            SyncOutcome.LOCKED,
        }
        assert_no_duplicates(mirror)
        # Whoever won last left a consistent copy: one more sync changes nothing.
        assert mirror.sync().upserted == 0
        mirror.assert_mirrors_window()
    assert CalendarSyncToken.objects.count() == 1


def test_different_calendars_do_not_block_each_other(
    locked_mirror: Mirror, emulator: EmulatorClient
) -> None:
    threads_supported()
    mirror = locked_mirror
    other = emulator.add_calendar(mirror.email, summary="Other")["id"]
    emulator.add_event(other, start=mirror.now + DAY, end=mirror.now + DAY + HOUR)
    mirror.selected().credential.selected_calendars.create(calendar_id=other)
    emulator.fail_next(2, kind="slow", delay=0.5, path="/events")
    results = in_threads(syncer(mirror), syncer(mirror, other))
    assert [r.outcome for r in results] == [SyncOutcome.FULL, SyncOutcome.FULL]


def test_sync_calendars_with_workers(locked_mirror: Mirror, emulator: EmulatorClient) -> None:
    threads_supported()
    mirror = locked_mirror
    other = emulator.add_calendar(mirror.email, summary="Other")["id"]
    emulator.add_event(other, start=mirror.now + DAY, end=mirror.now + DAY + HOUR)
    mirror.selected().credential.selected_calendars.create(calendar_id=other)
    # The same calendar twice: one of the two entries is LOCKED or runs after the other.
    calendars = [mirror.selected(), mirror.selected(), mirror.selected(other)]
    emulator.fail_next(1, kind="slow", delay=0.5, path="/events")
    results = sync_calendars(calendars, workers=3, now=mirror.now)
    assert len(results) == 3
    assert all(r.outcome.synced or r.outcome == SyncOutcome.LOCKED for r in results)
    assert_no_duplicates(mirror)
    mirror.assert_mirrors_window()
    mirror.assert_mirrors_window(other)


def _hold_advisory_lock(
    token: CalendarSyncToken, acquired: threading.Event, release: threading.Event
) -> None:
    try:
        with calendar_lock(token) as got:
            assert got
            acquired.set()
            release.wait(JOIN_TIMEOUT)
    finally:
        connection.close()


def test_lock_held_by_another_session_means_locked(
    locked_mirror: Mirror, emulator: EmulatorClient
) -> None:
    postgresql_only()
    mirror = locked_mirror
    assert mirror.sync().outcome == SyncOutcome.FULL
    acquired, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_advisory_lock, args=(mirror.token(), acquired, release))
    holder.start()
    try:
        assert acquired.wait(JOIN_TIMEOUT)
        emulator.clear_requests()
        assert mirror.sync().outcome == SyncOutcome.LOCKED
        assert events_requests(emulator) == []
    finally:
        release.set()
        holder.join(JOIN_TIMEOUT)
    assert mirror.sync().outcome == SyncOutcome.INCREMENTAL


def test_lock_of_a_dead_session_is_gone(locked_mirror: Mirror) -> None:
    """A worker killed mid-sync: its connection closes, and so does its advisory lock."""
    postgresql_only()
    mirror = locked_mirror
    assert mirror.sync().outcome == SyncOutcome.FULL
    token = mirror.token()

    def take_and_die() -> None:
        try:
            with connection.cursor() as cursor:
                key = token.pk % (2**31)
                cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_NAMESPACE, key])
                assert cursor.fetchone()[0]
        finally:
            connection.close()  # no unlock: the session ends

    thread = threading.Thread(target=take_and_die)
    thread.start()
    thread.join(JOIN_TIMEOUT)
    assert mirror.sync().outcome == SyncOutcome.INCREMENTAL


def test_lock_is_released_after_a_failed_sync(
    locked_mirror: Mirror, emulator: EmulatorClient
) -> None:
    threads_supported()
    mirror = locked_mirror
    emulator.fail_next(100, status=503, path="/events")
    assert in_threads(syncer(mirror))[0].outcome == SyncOutcome.FAILED
    emulator.clear_faults()
    assert in_threads(syncer(mirror))[0].outcome == SyncOutcome.FULL
    if not uses_advisory_lock():
        token = mirror.token()
        assert (token.lock_owner, token.locked_until) == ("", None)


# --- both databases: a deterministic overlap ------------------------------------------------


@contextmanager
def pause_inside_the_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The first sync to get its calendar's lock signals ``inside`` and waits for
    ``go_on`` before doing anything else."""
    inside, go_on = threading.Event(), threading.Event()
    original = engine.calendar_lock
    first = threading.Lock()

    @contextmanager
    def pausing(token: CalendarSyncToken) -> Iterator[bool]:
        with original(token) as acquired:
            if acquired and first.acquire(blocking=False):
                inside.set()
                go_on.wait(JOIN_TIMEOUT)
            yield acquired

    monkeypatch.setattr(engine, "calendar_lock", pausing)
    try:
        yield inside, go_on
    finally:
        go_on.set()


def test_second_sync_during_the_first_is_locked(
    locked_mirror: Mirror, emulator: EmulatorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No timing involved: the second sync starts while the first holds the lock (a
    lease on SQLite, an advisory lock on PostgreSQL)."""
    threads_supported()
    mirror = locked_mirror
    results: dict[str, SyncResult] = {}

    def first() -> None:
        try:
            results["first"] = sync_calendar(mirror.selected(), now=mirror.now)
        finally:
            connection.close()

    with pause_inside_the_lock(monkeypatch) as (inside, go_on):
        thread = threading.Thread(target=first)
        thread.start()
        assert inside.wait(JOIN_TIMEOUT)
        emulator.clear_requests()
        results["second"] = in_threads(syncer(mirror))[0]
        assert events_requests(emulator) == []
        go_on.set()
        thread.join(JOIN_TIMEOUT)
    assert results["first"].outcome == SyncOutcome.FULL
    assert results["second"].outcome == SyncOutcome.LOCKED
    assert mirror.rows().count() == 20
    assert_no_duplicates(mirror)
    mirror.assert_mirrors_window()


# --- the lease (databases without advisory locks) -----------------------------------------


def test_held_lease_means_locked(locked_mirror: Mirror, emulator: EmulatorClient) -> None:
    lease_only()
    mirror = locked_mirror
    assert mirror.sync().outcome == SyncOutcome.FULL
    token = mirror.token()
    assert (token.lock_owner, token.locked_until) == ("", None)  # released after the sync
    CalendarSyncToken.objects.filter(pk=token.pk).update(
        lock_owner="another-worker", locked_until=timezone.now() + timedelta(minutes=10)
    )
    emulator.clear_requests()
    assert mirror.sync().outcome == SyncOutcome.LOCKED
    assert events_requests(emulator) == []
    # The holder's lease is untouched by the loser.
    assert mirror.token().lock_owner == "another-worker"


def test_expired_lease_is_taken_over(locked_mirror: Mirror) -> None:
    """A worker that died holding the lease blocks the calendar only until it expires."""
    lease_only()
    mirror = locked_mirror
    assert mirror.sync().outcome == SyncOutcome.FULL
    CalendarSyncToken.objects.filter(pk=mirror.token().pk).update(
        lock_owner="dead-worker", locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert mirror.sync().outcome == SyncOutcome.INCREMENTAL
    token = mirror.token()
    assert (token.lock_owner, token.locked_until) == ("", None)


def test_lease_is_released_when_the_sync_dies(
    locked_mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease_only()
    mirror = locked_mirror

    class Killed(BaseException):
        pass

    def die(*args: Any, **kwargs: Any) -> Any:
        raise Killed()

    monkeypatch.setattr(engine, "apply_page", die)
    with pytest.raises(Killed):
        mirror.sync()
    token = mirror.token()
    assert (token.lock_owner, token.locked_until) == ("", None)
    assert CalendarEvent.objects.count() == 0
