"""What the metrics count, after real answers (``get_availability``) and real syncs
against the emulator, read back through the exposition view."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from waffle.models import Switch

from calcache.emulator import EmulatorClient
from calcache.exceptions import GoogleUnavailable
from calcache.models import CalendarEvent
from calcache.rollout.stages import rollout_status, set_flag
from calcache.services import get_availability
from calcache.sync.engine import SyncOutcome, sync_calendar
from flags.models import Flag
from flags.names import KILL_SWITCH, READ_FLAG, WRITE_FLAG
from tests.calcache.metrics.conftest import NOW, Scrape, connected_calendar
from tests.factories import CacheComparisonFactory

pytestmark = pytest.mark.django_db

Scraper = Callable[[], Scrape]
ANSWERS = "calcache_availability_answers_total"
LATENCY = "calcache_availability_answer_seconds"


def test_answers_are_counted_by_source_with_latency_histograms(
    emulator: EmulatorClient, write_flag_on: None, scrape: Scraper
) -> None:
    synced = connected_calendar(emulator, events=3)
    assert sync_calendar(synced, now=NOW).outcome == SyncOutcome.FULL
    unsynced = connected_calendar(emulator, "grace@example.com", events=2)
    set_flag(name=READ_FLAG, everyone=True)
    before = scrape()

    answers = [
        get_availability(user=selected.credential.user, start=NOW, end=NOW + timedelta(days=1))
        for selected in (synced, synced, synced, unsynced)
    ]
    after = scrape()

    by_source = Counter(answer.source for answer in answers)
    assert by_source["sql"] == 3 and sum(by_source.values()) == 4
    for source in ("sql", "json", "live", "mixed"):
        assert after.delta(before, ANSWERS, source=source) == by_source[source]
        assert after.delta(before, f"{LATENCY}_count", source=source) == by_source[source]
        assert (
            after.delta(before, f"{LATENCY}_bucket", source=source, le="+Inf")
            == (by_source[source])
        )
    assert after.delta(before, f"{LATENCY}_sum", source="sql") > 0
    # every SQL answer took under 10 s: all of them are in the largest finite bucket
    assert after.delta(before, f"{LATENCY}_bucket", source="sql", le="10.0") == 3


def test_a_failed_live_read_counts_a_read_error_and_a_google_error(
    emulator: EmulatorClient, scrape: Scraper
) -> None:
    selected = connected_calendar(emulator, events=1)
    before = scrape()
    emulator.fail_next(1, status=503, path="/freeBusy")
    with pytest.raises(GoogleUnavailable):
        get_availability(user=selected.credential.user, start=NOW, end=NOW + timedelta(days=1))
    after = scrape()
    assert after.delta(before, "calcache_availability_read_errors_total", source="live") == 1
    assert after.delta(before, ANSWERS, source="live") == 0
    errors = after.delta(
        before, "calcache_google_errors_total", reason="backendError", status="503"
    )
    assert errors == 1


def test_a_calendar_freebusy_could_not_read_counts_a_google_error(
    emulator: EmulatorClient, scrape: Scraper
) -> None:
    selected = connected_calendar(emulator, events=1)
    before = scrape()
    emulator.fail_freebusy(selected.calendar_id, reason="internalError")
    with pytest.raises(GoogleUnavailable):
        get_availability(user=selected.credential.user, start=NOW, end=NOW + timedelta(days=1))
    after = scrape()
    assert after.delta(before, "calcache_availability_read_errors_total", source="live") == 1
    # a 200 from Google with the calendar's error inside: no HTTP status of its own
    errors = after.delta(before, "calcache_google_errors_total", reason="internalError", status="0")
    assert errors == 1


def test_sync_runs_by_outcome_and_events_written_and_deleted(
    emulator: EmulatorClient, write_flag_on: None, scrape: Scraper
) -> None:
    selected = connected_calendar(emulator, events=4)
    before = scrape()
    started = time.time()

    full = sync_calendar(selected, now=NOW)
    event_id = CalendarEvent.objects.filter(credential=selected.credential)[0].google_event_id
    emulator.delete_event(selected.calendar_id, event_id)
    emulator.add_event(selected.calendar_id, start=NOW, end=NOW + timedelta(minutes=30))
    incremental = sync_calendar(selected, now=NOW)
    emulator.fail_next(1, status=400, reason="invalid", path="/events")
    failed = sync_calendar(selected, now=NOW, full=True)
    flag = Flag.objects.get(name=WRITE_FLAG)
    flag.everyone = None
    flag.save()
    skipped = sync_calendar(selected, now=NOW)
    after = scrape()

    outcomes = [r.outcome for r in (full, incremental, failed, skipped)]
    assert outcomes == [
        SyncOutcome.FULL,
        SyncOutcome.INCREMENTAL,
        SyncOutcome.FAILED,
        SyncOutcome.FLAG_OFF,
    ]
    for outcome in ("full", "incremental", "failed", "flag_off"):
        assert after.delta(before, "calcache_sync_runs_total", outcome=outcome) == 1
    assert after.delta(before, "calcache_sync_runs_total", outcome="locked") == 0
    assert (full.upserted, incremental.upserted, incremental.deleted) == (4, 1, 1)
    assert after.delta(before, "calcache_sync_events_written_total") == 5
    assert after.delta(before, "calcache_sync_events_deleted_total") == 1
    assert after.delta(before, "calcache_google_errors_total", reason="invalid", status="400") == 1
    assert after.value("calcache_sync_last_success_timestamp_seconds") >= started


def test_retried_google_errors_count_each_attempt(
    emulator: EmulatorClient, write_flag_on: None, scrape: Scraper
) -> None:
    selected = connected_calendar(emulator, events=1)
    before = scrape()
    emulator.fail_next(2, status=503, path="/events")
    assert sync_calendar(selected, now=NOW).outcome == SyncOutcome.FULL
    after = scrape()
    assert (
        after.delta(before, "calcache_google_errors_total", reason="backendError", status="503")
        == 2
    )
    assert after.delta(before, "calcache_sync_runs_total", outcome="full") == 1


def test_rollout_gauges_follow_the_flags_and_the_comparisons(
    emulator: EmulatorClient, scrape: Scraper, settings: Any
) -> None:
    settings.CALCACHE_ROLLBACK_MIN_SAMPLES = 200
    connected_calendar(emulator)
    first = scrape()
    assert first.value("calcache_metrics_database_up") == 1
    assert first.value("calcache_rollout_stage") == 1
    assert first.value("calcache_kill_switch_active") == 0
    assert first.value("calcache_calendars_enabled") == 1
    assert first.value("calcache_calendars_covered") == 0
    assert first.value("calcache_shadow_comparisons") == 0
    assert first.value("calcache_shadow_mismatch_ratio") == 0

    set_flag(name=WRITE_FLAG, everyone=True)
    assert scrape().value("calcache_rollout_stage") == 2
    set_flag(name=READ_FLAG, percent="10")
    assert scrape().value("calcache_rollout_stage") == 3
    set_flag(name=READ_FLAG, everyone=True)
    switch = Switch.objects.get(name=KILL_SWITCH)
    switch.active = True
    switch.save()
    switch.flush()  # waffle flushes its cache on commit, which a test never reaches
    CacheComparisonFactory.create_batch(3, equal=True)
    CacheComparisonFactory.create_batch(1, equal=False)
    last = scrape()
    status = rollout_status()
    assert last.value("calcache_rollout_stage") == status.stage == 4
    assert last.value("calcache_kill_switch_active") == 1
    assert last.value("calcache_shadow_comparisons") == 4
    assert last.value("calcache_shadow_mismatches") == 1
    assert last.value("calcache_shadow_mismatch_ratio") == 0.25
