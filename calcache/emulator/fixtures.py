"""pytest fixtures for the emulator. A host site's tests can use them too:

    # conftest.py
    pytest_plugins = ["calcache.emulator.fixtures"]

``google_emulator_server`` runs one emulator (a real HTTP server on a free
loopback port) for the test session; ``emulator`` resets it for each test,
points calcache's settings at it and returns an ``EmulatorClient``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from calcache.emulator.client import EmulatorClient
from calcache.emulator.server import EmulatorServer


@pytest.fixture(scope="session")
def google_emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def emulator(google_emulator_server: EmulatorServer, settings: Any) -> Iterator[EmulatorClient]:
    google_emulator_server.state.reset()
    settings.CALCACHE_GOOGLE_API_URL = google_emulator_server.api_url
    settings.CALCACHE_GOOGLE_TOKEN_URI = google_emulator_server.token_uri
    settings.CALCACHE_GOOGLE_AUTH_URI = google_emulator_server.auth_uri
    # keep retries fast: backoff steps of milliseconds, Retry-After still honoured
    settings.CALCACHE_GOOGLE_BACKOFF_SECONDS = 0.01
    client = EmulatorClient(google_emulator_server.url)
    yield client
    google_emulator_server.push.wait_idle()
