"""calcache.availability.stats: per-minute answer counts and latencies by source."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db.models import Max, Sum
from django.test import Client
from django.utils import timezone

from calcache.availability.stats import STATS_FLUSH_SECONDS, stats
from calcache.models import AvailabilityStat

pytestmark = pytest.mark.django_db


def this_minute() -> datetime:
    return timezone.now().replace(second=0, microsecond=0)


def totals() -> dict[str, tuple[int, int, float, float]]:
    """Per source, over every minute: requests, errors, total ms and the slowest ms."""
    rows = AvailabilityStat.objects.values("source").annotate(
        requests=Sum("requests"), errors=Sum("errors"), total=Sum("total_ms"), slowest=Max("max_ms")
    )
    return {
        row["source"]: (row["requests"], row["errors"], round(row["total"], 6), row["slowest"])
        for row in rows
    }


def test_record_then_flush_aggregates_per_minute_and_source() -> None:
    before = this_minute()
    stats.record("sql", 0.002)
    stats.record("sql", 0.004)
    stats.record("json", 0.010)
    stats.record("live", 0.250)
    stats.flush()
    assert totals() == {
        "sql": (2, 0, 6.0, 4.0),
        "json": (1, 0, 10.0, 10.0),
        "live": (1, 0, 250.0, 250.0),
    }
    minutes = set(AvailabilityStat.objects.values_list("minute", flat=True))
    assert minutes <= {before, this_minute()}  # whole minutes, as the answers came


def test_each_minute_is_a_row_of_its_own() -> None:
    earlier = this_minute() - timedelta(minutes=1)
    AvailabilityStat.objects.create(
        minute=earlier, source="sql", requests=5, total_ms=50, max_ms=20
    )
    stats.record("sql", 0.001)
    stats.flush()
    old = AvailabilityStat.objects.get(minute=earlier)
    assert (old.requests, old.total_ms, old.max_ms) == (5, 50, 20)
    new = AvailabilityStat.objects.exclude(pk=old.pk).get()
    assert new.minute > earlier and (new.source, new.requests) == ("sql", 1)


def test_errors_are_counted_among_the_requests() -> None:
    stats.record("live", 0.5, error=True)
    stats.record("live", 0.2)
    stats.record("sql", 0.001, error=True)
    stats.flush()
    assert {source: figures[:2] for source, figures in totals().items()} == {
        "live": (2, 1),
        "sql": (1, 1),
    }


def test_two_flushes_add_up_and_the_max_is_kept() -> None:
    now = this_minute()
    for minute in (now, now + timedelta(minutes=1)):  # the records land in one of these
        AvailabilityStat.objects.create(
            minute=minute, source="sql", requests=1, total_ms=50, max_ms=50
        )
    stats.record("sql", 0.003)
    stats.record("sql", 0.004, error=True)
    stats.flush()
    assert totals() == {"sql": (4, 1, 107.0, 50.0)}  # the slower earlier answer stays the max
    stats.record("sql", 0.080)
    stats.flush()
    assert totals() == {"sql": (5, 1, 187.0, 80.0)}
    assert AvailabilityStat.objects.count() == 2  # added to the minute's row, never a new one


def test_nothing_is_written_until_a_flush_is_due() -> None:
    stats.record("json", 0.001)
    stats.flush()
    stats.flush()  # nothing pending: nothing added twice
    stats.record("json", 0.001)
    assert totals() == {"json": (1, 0, 1.0, 1.0)}
    stats.last_flush = time.monotonic() - STATS_FLUSH_SECONDS  # the last flush is due
    stats.record("json", 0.002)
    assert totals() == {"json": (3, 0, 4.0, 2.0)}


def test_reset_forgets_what_was_not_flushed() -> None:
    stats.record("sql", 0.001)
    stats.reset()
    stats.flush()
    assert not AvailabilityStat.objects.exists()


def test_records_from_many_threads_all_count() -> None:
    def answer_many() -> None:
        for _ in range(500):
            stats.record("sql", 0.001)

    threads = [threading.Thread(target=answer_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats.flush()
    assert totals()["sql"][:2] == (4000, 0)


def test_inside_a_request_the_write_waits_for_the_request_to_finish() -> None:
    from calcache.availability import stats as module

    module.request_started()
    stats.last_flush = time.monotonic() - STATS_FLUSH_SECONDS - 1  # due
    stats.record("sql", 0.001)
    assert not AvailabilityStat.objects.exists()  # the answer did not wait for the write
    module.request_finished()
    assert AvailabilityStat.objects.get().requests == 1


def test_a_request_through_django_flushes_due_counters_when_it_finishes(
    client: Client, user: Any
) -> None:
    client.force_login(user)
    stats.record("json", 0.002)
    stats.last_flush = time.monotonic() - STATS_FLUSH_SECONDS - 1
    response = client.get(
        "/calendar-cache/availability/",
        {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"},
    )
    assert response.status_code == 200
    assert AvailabilityStat.objects.filter(source="json").get().requests == 1
