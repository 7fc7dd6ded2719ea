"""Shadow comparisons and the automatic rollback, against the emulator.

The comparisons run in the background runner's thread, on a connection of its own, so
these tests commit (``committing``) and wait for the runner before they look."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from waffle import switch_is_active

from calcache.background.runners import ThreadPoolRunner, get_runner
from calcache.emulator import EmulatorClient
from calcache.models import CacheComparison, CalendarEvent, RolloutEvent
from calcache.rollout.shadow import ShadowSample
from calcache.services import get_availability
from flags.models import Flag
from flags.names import KILL_SWITCH, READ_FLAG, WRITE_FLAG
from tests.calcache.sync.conftest import NOW, Mirror, make_mirror
from tests.markers import committing

pytestmark = committing


@pytest.fixture(autouse=True)
def _sample_everything(settings: Any) -> None:
    settings.CALCACHE_SHADOW_SAMPLE_RATE = 1.0


@pytest.fixture
def synced(emulator: EmulatorClient, write_flag_on: None) -> Mirror:
    mirror = make_mirror(emulator)
    for day in range(4):
        start = mirror.now + timedelta(days=day, hours=3)
        emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=1))
    mirror.sync()
    return mirror


def set_flag(name: str, everyone: bool | None) -> None:
    flag = Flag.objects.get(name=name)
    flag.everyone = everyone
    flag.save()


def ask(mirror: Mirror) -> Any:
    """An answer, once its sampled comparison (if any) has run."""
    answer = get_availability(
        user=mirror.user, start=mirror.now, end=mirror.now + timedelta(days=7)
    )
    runner().wait_idle()
    return answer


def runner() -> ThreadPoolRunner:
    found = get_runner()
    assert isinstance(found, ThreadPoolRunner)
    return found


def test_the_request_does_not_wait_for_its_comparison(synced: Mirror) -> None:
    set_flag(READ_FLAG, True)
    # the other side of a SQL answer is Google, live (no JSON blob yet), and it is slow
    synced.emulator.fail_next(1, kind="slow", delay=3, path="freeBusy")
    answer = get_availability(
        user=synced.user, start=synced.now, end=synced.now + timedelta(days=7)
    )
    assert answer.source == "sql"
    assert not CacheComparison.objects.exists()  # still waiting for Google
    runner().wait_idle()
    comparison = CacheComparison.objects.get()
    assert (comparison.source_a, comparison.source_b, comparison.equal) == ("sql", "live", True)


def test_a_sample_survives_the_trip_through_json() -> None:
    sample = ShadowSample(
        7, NOW, NOW + timedelta(days=1), "mixed", [(NOW, NOW + timedelta(hours=1))], 1.5
    )
    assert ShadowSample.from_dict(json.loads(json.dumps(sample.as_dict()))) == sample


def test_json_answers_are_compared_with_sql(synced: Mirror) -> None:
    ask(synced)  # live, fills the JSON cache; compared with SQL
    assert ask(synced).source == "json"
    comparisons = list(CacheComparison.objects.order_by("pk"))
    assert [(c.source_a, c.source_b, c.equal) for c in comparisons] == [
        ("live", "sql", True),
        ("json", "sql", True),
    ]
    assert all(c.latency_a_ms >= 0 and c.latency_b_ms >= 0 for c in comparisons)


def test_sql_answers_are_compared_with_json_or_live(synced: Mirror) -> None:
    set_flag(READ_FLAG, True)
    assert ask(synced).source == "sql"
    comparison = CacheComparison.objects.get()
    assert (comparison.source_a, comparison.source_b, comparison.equal) == ("sql", "live", True)


def test_a_missing_row_is_a_mismatch_with_the_interval_named(synced: Mirror) -> None:
    ask(synced)  # fill JSON
    set_flag(READ_FLAG, True)
    victim = CalendarEvent.objects.order_by("start_time").first()
    assert victim is not None
    victim.delete()  # the SQL copy lost an event: a double booking waiting to happen
    result = ask(synced)
    assert result.source == "sql"
    comparison = CacheComparison.objects.filter(source_a="sql").get()
    assert not comparison.equal
    assert comparison.only_in_a == []
    assert comparison.only_in_b == [[victim.start_time.isoformat(), victim.end_time.isoformat()]]


def test_no_comparison_without_the_write_flag(synced: Mirror) -> None:
    set_flag(WRITE_FLAG, None)
    ask(synced)
    ask(synced)
    assert not CacheComparison.objects.exists()


def test_mismatches_trip_the_kill_switch_and_answers_go_back_to_json(
    synced: Mirror, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CALCACHE_ROLLBACK_MIN_SAMPLES = 5
    settings.CALCACHE_ROLLBACK_MISMATCH_PERCENT = 1.0
    ask(synced)  # fill JSON
    set_flag(READ_FLAG, True)
    CalendarEvent.objects.filter(pk=CalendarEvent.objects.order_by("pk").first().pk).delete()  # type: ignore[union-attr]
    sources = [ask(synced).source for _ in range(6)]
    assert switch_is_active(KILL_SWITCH)
    assert sources[0] == "sql" and sources[-1] == "json"
    event = RolloutEvent.objects.get(action="automatic rollback")
    assert event.figures["comparisons"] == 5 and event.figures["mismatches"] >= 1
    assert any(
        r.levelname == "ERROR" and "Automatic rollback" in r.getMessage() for r in caplog.records
    )


def test_few_samples_do_not_trip_the_switch(synced: Mirror, settings: Any) -> None:
    settings.CALCACHE_ROLLBACK_MIN_SAMPLES = 200
    ask(synced)
    set_flag(READ_FLAG, True)
    CalendarEvent.objects.all().delete()
    for _ in range(3):
        ask(synced)
    assert not switch_is_active(KILL_SWITCH)
    assert not RolloutEvent.objects.exists()
