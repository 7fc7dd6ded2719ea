"""Fixtures for the emulator conformance tests (the ``emulator`` fixture comes from
calcache.emulator.fixtures, loaded by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from calcache.emulator.client import EmulatorClient
from tests.calcache.emulator.helpers import ADA, NOW, build_service


@pytest.fixture
def clock(emulator: EmulatorClient) -> datetime:
    """Freeze the emulator's clock at NOW (before any account gets a token)."""
    emulator.set_clock(NOW)
    return NOW


@pytest.fixture
def make_service(emulator: EmulatorClient, clock: datetime) -> Callable[..., Any]:
    """``make_service(email, time_zone=..., refresh=True)``: add the account, return its
    google-api-python-client calendar service."""

    def make(email: str = ADA, *, time_zone: str = "Europe/London", refresh: bool = True) -> Any:
        token = emulator.add_account(email, time_zone=time_zone)
        return build_service(emulator, token, refresh=refresh)

    return make


@pytest.fixture
def service(make_service: Callable[..., Any]) -> Any:
    """Ada's service (Europe/London primary calendar)."""
    return make_service()
