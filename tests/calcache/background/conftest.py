"""A connected user at the real clock, for the background jobs and their runners."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from calcache.emulator import EmulatorClient
from calcache.models import SelectedCalendar
from tests.calcache.sync.conftest import Mirror, make_mirror


def make_live_mirror(emulator: EmulatorClient) -> Mirror:
    """``make_mirror`` moved to the real clock (jobs sync at ``timezone.now()``), with an
    hour's event on each of the next three days."""
    mirror = make_mirror(emulator)
    mirror.advance(timezone.now() - mirror.now)
    start = mirror.now.replace(minute=0, second=0, microsecond=0)
    for day in range(1, 4):
        emulator.add_event(
            mirror.email,
            start=start + timedelta(days=day),
            end=start + timedelta(days=day, hours=1),
        )
    return mirror


@pytest.fixture
def mirror(emulator: EmulatorClient, write_flag_on: None) -> Mirror:
    return make_live_mirror(emulator)


def listing_statuses(emulator: EmulatorClient) -> list[int]:
    """The HTTP status of each events.list call the emulator answered, in order."""
    return [r["status"] for r in emulator.requests() if r["path"].endswith("/events")]


def listings(emulator: EmulatorClient) -> int:
    """How many events.list calls the emulator answered."""
    return len(listing_statuses(emulator))


def mark(mirror: Mirror, at: datetime | None = None) -> datetime:
    """What a notification does: stamp the calendar's dirty mark (now, unless ``at``)."""
    marked_at = at or timezone.now()
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(dirty_since=marked_at)
    return marked_at
