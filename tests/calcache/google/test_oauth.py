"""The connect flow's OAuth code exchange, end to end against the emulator's endpoints."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from calcache.emulator import EmulatorClient
from calcache.emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from calcache.exceptions import CredentialInvalid
from calcache.google.client import GoogleCalendarClient
from calcache.google.oauth import SCOPES, exchange_code, start_authorization

REDIRECT = "http://127.0.0.1:8000/calendar-cache/connect/google/callback/"


@pytest.fixture(autouse=True)
def _oauth_client(settings: Any, emulator: EmulatorClient) -> None:
    settings.CALCACHE_GOOGLE_CLIENT_ID = DEFAULT_CLIENT_ID
    settings.CALCACHE_GOOGLE_CLIENT_SECRET = DEFAULT_CLIENT_SECRET


def consent(url: str, *, email: str, decision: str = "allow") -> dict[str, list[str]]:
    """What a person does on the consent page: pick an account, allow or deny."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "Allow" in page.text
    answer = requests.post(
        url.split("?")[0],
        data={**query, "email": email, "decision": decision},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


def test_authorization_code_flow_with_pkce(emulator: EmulatorClient) -> None:
    emulator.add_account("ada@example.com", time_zone="Europe/London")
    request = start_authorization(redirect_uri=REDIRECT, login_hint="ada@example.com")
    params = parse_qs(urlsplit(request.url).query)
    assert request.url.startswith(emulator.auth_uri)
    assert params["code_challenge_method"] == ["S256"] and params["access_type"] == ["offline"]
    assert params["state"] == [request.state] and request.code_verifier

    callback = consent(request.url, email="ada@example.com")
    assert callback["state"] == [request.state]
    token = exchange_code(
        code=callback["code"][0],
        redirect_uri=REDIRECT,
        state=request.state,
        code_verifier=request.code_verifier,
    )
    assert token["refresh_token"] and token["token"] and token["expiry"]
    assert token["client_id"] == DEFAULT_CLIENT_ID and token["scopes"] == SCOPES
    # the token works against the API
    assert [c.id for c in GoogleCalendarClient(token).list_calendars()] == ["ada@example.com"]


def test_wrong_code_verifier_is_refused(emulator: EmulatorClient) -> None:
    emulator.add_account("ada@example.com")
    request = start_authorization(redirect_uri=REDIRECT)
    callback = consent(request.url, email="ada@example.com")
    with pytest.raises(CredentialInvalid, match="refused the code"):
        exchange_code(
            code=callback["code"][0],
            redirect_uri=REDIRECT,
            state=request.state,
            code_verifier="not-the-verifier-" + "x" * 40,
        )


def test_code_cannot_be_used_twice(emulator: EmulatorClient) -> None:
    emulator.add_account("ada@example.com")
    request = start_authorization(redirect_uri=REDIRECT)
    code = consent(request.url, email="ada@example.com")["code"][0]
    kwargs = {
        "redirect_uri": REDIRECT,
        "state": request.state,
        "code_verifier": request.code_verifier,
    }
    exchange_code(code=code, **kwargs)
    with pytest.raises(CredentialInvalid):
        exchange_code(code=code, **kwargs)


def test_denied_consent_comes_back_as_access_denied(emulator: EmulatorClient) -> None:
    request = start_authorization(redirect_uri=REDIRECT)
    callback = consent(request.url, email="ada@example.com", decision="deny")
    assert callback == {"error": ["access_denied"], "state": [request.state]}
