"""A hypothesis state machine: random edits in Google, faults, clock moves and syncs;
after every sync that succeeded, ``busy_intervals`` (SQL alone) must equal the
emulator's freeBusy over the synced window and over random windows inside it.

Rules: insert timed / all-day / weekly (COUNT) events that are opaque, transparent,
tentative, declined or accepted; move, re-classify and delete them; cancel or move one
instance of a series; change the calendar's time zone; void the sync tokens (410) or
purge tombstones; queue 503/500/429 bursts; advance the clock by hours or days; sync
(incremental, or forced full); and a sync that dies part way: after ``k`` pages either
every further events request fails (``CALCACHE_GOOGLE_MAX_ATTEMPTS=1``, so the sync
fails and records its error) or the process "crashes" (an exception the engine does not
catch, as a killed worker would leave things, minus the lock). Pages hold 3 events, so
even small calendars page. After a failed sync the check is that the error is recorded
and ``sync_coverage`` is False; every example ends with one more sync without faults,
which must converge.

Each example starts from an empty emulator and empty calcache tables. The example count
is ``HYPOTHESIS_STATEFUL_EXAMPLES`` (15 by default, for CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from calcache.emulator import EmulatorClient
from calcache.emulator.server import EmulatorServer
from calcache.google.client import GoogleCalendarClient
from calcache.models import CalendarSyncToken, Credential
from calcache.sync.engine import SyncOutcome, SyncResult
from tests.calcache.sync.conftest import Mirror, make_mirror

pytestmark = pytest.mark.django_db

PAGE_SIZE = 3
EMAIL = "ada@example.com"
OTHER = "bob@example.com"
QUARTER = timedelta(minutes=15)

STATEFUL_SETTINGS = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_STATEFUL_EXAMPLES", "15")),
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)

# Offsets from "now", in quarter hours: mostly near, sometimes anywhere around the
# window (which is [now - 30 days, now + 180 days]), including beyond both ends.
NEAR = st.integers(-3 * 96, 14 * 96)
FAR = st.integers(-45 * 96, 200 * 96)
OFFSETS = st.one_of(NEAR, NEAR, FAR).map(lambda q: q * QUARTER)
DURATIONS = st.one_of(
    st.integers(1, 16), st.integers(1, 16), st.integers(1, 3 * 96), st.integers(1, 50 * 96)
).map(lambda q: q * QUARTER)
DAY_OFFSETS = st.one_of(st.integers(-3, 14), st.integers(-45, 200))
KINDS = st.sampled_from(["opaque", "opaque", "transparent", "tentative", "declined", "accepted"])
ZONES = st.sampled_from(["Europe/London", "America/Los_Angeles", "Asia/Tokyo", "UTC"])
FRACTIONS = st.lists(st.tuples(st.floats(0, 1), st.floats(0, 0.25)), min_size=1, max_size=3)


def kind_fields(kind: str) -> dict[str, Any]:
    """Google fields for a kind; every field is set so that a patch fully re-classifies."""
    fields: dict[str, Any] = {"transparency": "opaque", "status": "confirmed", "attendees": []}
    if kind == "transparent":
        fields["transparency"] = "transparent"
    elif kind == "tentative":
        fields["status"] = "tentative"
    elif kind in ("declined", "accepted"):
        fields["attendees"] = [
            {"email": OTHER, "responseStatus": "accepted", "organizer": True},
            {"email": EMAIL, "responseStatus": kind},
        ]
    return fields


@dataclass
class Tracked:
    """What the machine remembers of an event it created (the emulator is the truth)."""

    all_day: bool
    series: bool


class Killed(BaseException):
    """A worker killed mid-sync: not an ``Exception``, so the engine cannot catch it."""


class SyncMachine(RuleBasedStateMachine):
    # Set by the test function before the machine runs.
    emulator: ClassVar[EmulatorClient]
    server: ClassVar[EmulatorServer]
    current: ClassVar[SyncMachine | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[str, Tracked] = {}
        self.kill_after: int | None = None
        self.kill_how = "fault"
        self.pages = 0
        self.time_zone = "UTC"
        self.mirror: Mirror | None = None

    # --- set-up -------------------------------------------------------------------
    @initialize(
        time_zone=ZONES,
        timed=st.lists(st.tuples(OFFSETS, DURATIONS, KINDS), max_size=10),
        all_day=st.lists(st.tuples(DAY_OFFSETS, st.integers(1, 3), KINDS), max_size=3),
    )
    def start(
        self,
        time_zone: str,
        timed: list[tuple[timedelta, timedelta, str]],
        all_day: list[tuple[int, int, str]],
    ) -> None:
        """A fresh emulator and empty tables, and a few events to begin with."""
        type(self).current = self
        self.emulator.reset()
        Credential.objects.all().delete()  # cascades to calendars, events, tokens
        self.time_zone = time_zone
        self.mirror = make_mirror(self.emulator, EMAIL, time_zone)
        for offset, duration, kind in timed:
            self.add_timed(offset, duration, kind)
        for day, days, kind in all_day:
            self.add_all_day(day, days, kind)

    @property
    def m(self) -> Mirror:
        assert self.mirror is not None
        return self.mirror

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def today(self) -> date:
        return self.m.now.astimezone(self.zone).date()

    def pick(self, index: int, *, series: bool = False) -> str:
        # In creation order: event ids are random, so sorting them would make the choice
        # (and the preconditions after it) differ when hypothesis replays an example.
        ids = [eid for eid, t in self.events.items() if t.series or not series]
        return ids[index % len(ids)]

    def has_series(self) -> bool:
        return any(t.series for t in self.events.values())

    # --- edits in Google ------------------------------------------------------------
    @rule(offset=OFFSETS, duration=DURATIONS, kind=KINDS)
    def add_timed(self, offset: timedelta, duration: timedelta, kind: str) -> None:
        start = self.m.now + offset
        event = self.emulator.add_event(
            EMAIL, start=start, end=start + duration, **kind_fields(kind)
        )
        self.events[event["id"]] = Tracked(all_day=False, series=False)

    @rule(day=DAY_OFFSETS, days=st.integers(1, 3), kind=KINDS)
    def add_all_day(self, day: int, days: int, kind: str) -> None:
        first = self.today() + timedelta(days=day)
        event = self.emulator.add_event(
            EMAIL, start=first, end=first + timedelta(days=days), **kind_fields(kind)
        )
        self.events[event["id"]] = Tracked(all_day=True, series=False)

    @rule(
        offset=OFFSETS,
        duration=st.integers(1, 12).map(lambda q: q * QUARTER),
        count=st.integers(2, 6),
        all_day=st.booleans(),
        kind=KINDS,
    )
    def add_weekly(
        self, offset: timedelta, duration: timedelta, count: int, all_day: bool, kind: str
    ) -> None:
        recurrence = [f"RRULE:FREQ=WEEKLY;COUNT={count}"]
        if all_day:
            first = (self.m.now + offset).astimezone(self.zone).date()
            event = self.emulator.add_event(
                EMAIL,
                start=first,
                end=first + timedelta(days=1),
                recurrence=recurrence,
                **kind_fields(kind),
            )
        else:
            start = self.m.now + offset
            event = self.emulator.add_event(
                EMAIL,
                start=start,
                end=start + duration,
                time_zone=self.time_zone,
                recurrence=recurrence,
                **kind_fields(kind),
            )
        self.events[event["id"]] = Tracked(all_day=all_day, series=True)

    @precondition(lambda self: self.events)
    @rule(index=st.integers(0, 99), offset=OFFSETS, duration=DURATIONS, days=st.integers(1, 3))
    def move_event(self, index: int, offset: timedelta, duration: timedelta, days: int) -> None:
        event_id = self.pick(index)
        tracked = self.events[event_id]
        if tracked.all_day:
            first = (self.m.now + offset).astimezone(self.zone).date()
            last = first + timedelta(days=1 if tracked.series else days)
            self.emulator.patch_event(EMAIL, event_id, start=first, end=last)
        elif tracked.series:
            start = self.m.now + offset
            self.emulator.patch_event(
                EMAIL,
                event_id,
                start=start,
                end=start + min(duration, 3 * timedelta(hours=1)),
                time_zone=self.time_zone,
            )
        else:
            start = self.m.now + offset
            self.emulator.patch_event(EMAIL, event_id, start=start, end=start + duration)

    @precondition(lambda self: self.events)
    @rule(index=st.integers(0, 99), kind=KINDS)
    def reclassify(self, index: int, kind: str) -> None:
        self.emulator.patch_event(EMAIL, self.pick(index), **kind_fields(kind))

    @precondition(lambda self: self.events)
    @rule(index=st.integers(0, 99))
    def delete_event(self, index: int) -> None:
        event_id = self.pick(index)
        self.emulator.delete_event(EMAIL, event_id)
        del self.events[event_id]

    def instance_ids(self, parent: str) -> list[str]:
        page = self.server.state.instances(EMAIL, parent, {"maxResults": "2500"}, account=None)
        return sorted(item["id"] for item in page["items"])

    @precondition(lambda self: self.has_series())
    @rule(
        index=st.integers(0, 99), which=st.integers(0, 9), how=st.sampled_from(["delete", "patch"])
    )
    def cancel_instance(self, index: int, which: int, how: str) -> None:
        instances = self.instance_ids(self.pick(index, series=True))
        if not instances:
            return
        instance = instances[which % len(instances)]
        if how == "delete":
            self.emulator.delete_event(EMAIL, instance)
        else:
            self.emulator.patch_event(EMAIL, instance, status="cancelled")

    @precondition(lambda self: self.has_series())
    @rule(index=st.integers(0, 99), which=st.integers(0, 9), shift=st.integers(-96, 96))
    def move_instance(self, index: int, which: int, shift: int) -> None:
        parent = self.pick(index, series=True)
        instances = self.instance_ids(parent)
        if not instances or self.events[parent].all_day:
            return
        instance = instances[which % len(instances)]
        event = self.server.state.get_event(EMAIL, instance, {}, account=None)
        start = datetime.fromisoformat(event["start"]["dateTime"]) + shift * QUARTER
        end = datetime.fromisoformat(event["end"]["dateTime"]) + shift * QUARTER
        self.emulator.patch_event(EMAIL, instance, start=start, end=end)

    # --- Google's side of things ----------------------------------------------------
    @rule(purge=st.booleans())
    def void_sync_tokens(self, purge: bool) -> None:
        if purge:
            self.emulator.purge_tombstones()
        else:
            self.emulator.invalidate_sync_tokens()

    @rule(time_zone=ZONES)
    def change_calendar_time_zone(self, time_zone: str) -> None:
        """The owner changes the calendar's zone (no API in the emulator: its state)."""
        with self.server.state.lock:
            self.server.state.calendars[EMAIL].time_zone = time_zone
        self.time_zone = time_zone

    @rule(
        count=st.integers(1, 4),
        status=st.sampled_from([503, 500, 429]),
    )
    def queue_transient_errors(self, count: int, status: int) -> None:
        reason = "rateLimitExceeded" if status == 429 else "backendError"
        self.emulator.fail_next(count, status=status, reason=reason, path="/events")

    @rule(
        amount=st.one_of(
            st.integers(1, 12).map(lambda h: timedelta(hours=h)),
            st.integers(1, 5).map(lambda d: timedelta(days=d)),
        )
    )
    def advance_clock(self, amount: timedelta) -> None:
        self.m.advance(amount)

    # --- syncs ----------------------------------------------------------------------
    @rule(fractions=FRACTIONS)
    def sync(self, fractions: list[tuple[float, float]]) -> None:
        self.check(self.m.sync(), fractions)

    @rule(fractions=FRACTIONS)
    def forced_full_sync(self, fractions: list[tuple[float, float]]) -> None:
        self.check(self.m.sync(full=True), fractions)

    @rule(
        after_pages=st.integers(0, 4), how=st.sampled_from(["fault", "crash"]), fractions=FRACTIONS
    )
    def killed_sync(self, after_pages: int, how: str, fractions: list[tuple[float, float]]) -> None:
        self.kill_after, self.kill_how, self.pages = after_pages, how, 0
        try:
            with override_settings(CALCACHE_GOOGLE_MAX_ATTEMPTS=1):
                if after_pages == 0 and how == "fault":
                    self.emulator.fail_next(1000, status=500, path="/events")
                try:
                    result = self.m.sync()
                except Killed:
                    return  # nothing recorded: as after a killed worker
        finally:
            self.kill_after = None
            self.emulator.clear_faults()
        # Fewer pages than the kill point: the sync simply finished.
        self.check(result, fractions)

    def on_page(self) -> None:
        """Called by the page hook after each page the sync consumed."""
        self.pages += 1
        if self.kill_after is None or self.pages < self.kill_after:
            return
        if self.kill_how == "crash":
            raise Killed()
        self.emulator.fail_next(1000, status=500, path="/events")

    # --- the property ---------------------------------------------------------------
    def check(self, result: SyncResult, fractions: list[tuple[float, float]]) -> None:
        event(f"sync outcome: {result.outcome.value}")
        token = CalendarSyncToken.objects.filter(
            credential__user=self.m.user, calendar_id=EMAIL
        ).first()
        if not result.outcome.synced:
            assert result.outcome == SyncOutcome.FAILED, result
            assert token is not None and token.last_error and token.last_error_at == self.m.now
            if token.window_start is not None and token.window_end is not None:
                assert not self.m.coverage(token.window_start, token.window_end)
            return
        assert token is not None
        assert token.last_error == "" and token.last_sync_at == self.m.now
        assert token.window_start is not None and token.window_end is not None
        window_start, window_end = token.window_start, token.window_end
        assert window_end >= self.m.now + timedelta(days=180) - timedelta(hours=1)
        assert self.m.coverage(window_start, window_end)
        assert not self.m.coverage(window_start, window_end + timedelta(seconds=1))
        self.m.assert_mirrors(window_start, window_end)
        span = window_end - window_start
        for where, length in fractions:
            start = window_start + span * where
            start = start.replace(microsecond=0)
            end = min(window_end, start + span * length + timedelta(minutes=1))
            self.m.assert_mirrors(start, end)

    def teardown(self) -> None:
        """Whatever happened, one more sync without faults converges."""
        try:
            if self.mirror is not None:
                self.emulator.clear_faults()
                result = self.m.sync()
                assert result.outcome.synced, result
                self.check(result, [(0.0, 1.0)])
        finally:
            type(self).current = None


@pytest.fixture
def page_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of ``PAGE_SIZE`` events, and the machine's hook after every page."""
    original = GoogleCalendarClient.iter_event_pages

    def pages(self: GoogleCalendarClient, *args: Any, **kwargs: Any) -> Iterator[Any]:
        kwargs["page_size"] = PAGE_SIZE
        for page in original(self, *args, **kwargs):
            yield page
            machine = SyncMachine.current
            if machine is not None:
                machine.on_page()

    monkeypatch.setattr(GoogleCalendarClient, "iter_event_pages", pages)


def test_sql_busy_equals_google_busy(
    emulator: EmulatorClient,
    google_emulator_server: EmulatorServer,
    write_flag_on: None,
    page_hook: None,
) -> None:
    SyncMachine.emulator = emulator
    SyncMachine.server = google_emulator_server
    run_state_machine_as_test(SyncMachine, settings=STATEFUL_SETTINGS)
