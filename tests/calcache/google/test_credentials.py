"""calcache.google.credentials: client_for builds a client that saves refreshed tokens."""

from __future__ import annotations

from typing import Any

import pytest

from calcache.emulator import EmulatorClient
from calcache.exceptions import GoogleUnavailable
from calcache.google.credentials import client_for
from calcache.models import Credential
from calcache.services import connect_google_account

pytestmark = pytest.mark.django_db

EMAIL = "ada@example.com"


@pytest.fixture
def credential(emulator: EmulatorClient, user: Any) -> Credential:
    return connect_google_account(user=user, token=emulator.add_account(EMAIL))


def token_calls(emulator: EmulatorClient) -> int:
    return sum(1 for r in emulator.requests() if r["path"].endswith("/token"))


def test_a_refreshed_token_is_saved_to_the_credential(
    credential: Credential, emulator: EmulatorClient
) -> None:
    before = credential.token
    emulator.expire_access_tokens(EMAIL)  # the next call gets a 401, then refreshes
    emulator.clear_requests()
    assert [c.id for c in client_for(credential).list_calendars()] == [EMAIL]
    assert token_calls(emulator) == 1
    stored = Credential.objects.get(pk=credential.pk).token
    assert stored["token"] != before["token"]
    assert stored["refresh_token"] == before["refresh_token"]
    # the next client starts from the stored token: no refresh
    emulator.clear_requests()
    client_for(Credential.objects.get(pk=credential.pk)).list_calendars()
    assert token_calls(emulator) == 0


@pytest.mark.parametrize(("max_attempts", "expected"), [(2, 2), (None, 3)])
def test_max_attempts_passes_through_and_defaults_to_the_setting(
    credential: Credential,
    emulator: EmulatorClient,
    settings: Any,
    max_attempts: int | None,
    expected: int,
) -> None:
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 3
    emulator.fail_next(10, status=503, path="/calendarList")
    emulator.clear_requests()
    with pytest.raises(GoogleUnavailable):
        client_for(credential, max_attempts=max_attempts).list_calendars()
    assert sum(1 for r in emulator.requests() if r["path"].endswith("/calendarList")) == expected
