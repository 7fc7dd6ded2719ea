"""Fixtures for the availability tests: a user with one or two Google accounts on the
emulator, with events in each."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from calcache.emulator import EmulatorClient
from calcache.services import connect_google_account
from tests.calcache.sync.conftest import Mirror, make_mirror

SECOND_ACCOUNT = "grace@example.com"
# Read databases for tests/calcache/availability/test_replica.py, configured as a host's
# test settings would configure a replica: a test mirror of "default" (a second
# connection to the test database), and one on a port where nothing listens. Added at
# collection, before the test databases are set up; no other test reads from them.
READ_REPLICA, READ_REPLICA_DOWN = "replica", "replica_down"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe is closed


def _add_read_databases() -> None:
    default = connections.settings[DEFAULT_DB_ALIAS]
    mirror = {**default, "TEST": {**default.get("TEST", {}), "MIRROR": DEFAULT_DB_ALIAS}}
    connections.settings.setdefault(READ_REPLICA, mirror)
    if default["ENGINE"] == "django.db.backends.postgresql":
        down = {**mirror, "HOST": "127.0.0.1", "PORT": str(_closed_port())}
        down["OPTIONS"] = {**mirror.get("OPTIONS", {}), "connect_timeout": 2}
        connections.settings.setdefault(READ_REPLICA_DOWN, down)


_add_read_databases()
HOUR = timedelta(hours=1)


def add_hours(mirror: Mirror, calendar_id: str, *hours: float) -> None:
    """An hour-long event in ``calendar_id`` at each of ``hours`` after ``mirror.now``."""
    for hour in hours:
        start = mirror.now + timedelta(hours=hour)
        mirror.emulator.add_event(calendar_id, start=start, end=start + HOUR)


def freebusy_requests(emulator: EmulatorClient) -> list[dict[str, Any]]:
    """The freeBusy calls Google (the emulator) received."""
    return [r for r in emulator.requests() if r["path"].endswith("/freeBusy")]


@pytest.fixture
def ada(emulator: EmulatorClient) -> Mirror:
    """One account, an event a day for three days."""
    mirror = make_mirror(emulator)
    add_hours(mirror, mirror.email, 2, 26, 50)
    return mirror


@pytest.fixture
def two_accounts(ada: Mirror, emulator: EmulatorClient) -> Mirror:
    """Ada's user with a second account, whose first event overlaps one of hers."""
    token = emulator.add_account(SECOND_ACCOUNT, time_zone="UTC")
    connect_google_account(user=ada.user, token=token)
    add_hours(ada, SECOND_ACCOUNT, 2.5, 74)
    return ada
