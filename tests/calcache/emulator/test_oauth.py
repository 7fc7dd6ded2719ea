"""The emulator's OAuth endpoints: refresh_token grant (and invalid_grant once revoked),
the authorization-code grant with PKCE S256 through the consent form, and denial."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from calcache.emulator.client import CALENDAR_SCOPE, EmulatorClient
from calcache.emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.calcache.emulator.helpers import ADA, build_service

REDIRECT_URI = "http://127.0.0.1:9999/oauth/callback"
CLIENT = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def consent(emulator: EmulatorClient, decision: str, email: str = ADA, **extra: str) -> Any:
    form = {
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": CALENDAR_SCOPE,
        "state": "xyz-state",
        "email": email,
        "decision": decision,
        **extra,
    }
    response = requests.post(emulator.auth_uri, data=form, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token_request(emulator: EmulatorClient, **form: str) -> requests.Response:
    return requests.post(emulator.token_uri, data={**CLIENT, **form}, timeout=10)


def api_works(emulator: EmulatorClient, access_token: str, refresh_token: str = "") -> bool:
    service = build_service(
        emulator,
        {"token": access_token, "refresh_token": refresh_token or None, **CLIENT},
        refresh=False,
    )
    return "items" in service.events().list(calendarId="primary").execute()


def test_refresh_token_grant(emulator: EmulatorClient, clock: Any) -> None:
    token = emulator.add_account(ADA)
    response = token_request(
        emulator, grant_type="refresh_token", refresh_token=token["refresh_token"]
    )
    assert response.status_code == 200
    data = response.json()
    assert data["token_type"] == "Bearer" and data["expires_in"] > 0
    assert data["access_token"] != token["token"]
    assert api_works(emulator, data["access_token"])


def test_revoked_refresh_token_is_invalid_grant(emulator: EmulatorClient, clock: Any) -> None:
    token = emulator.add_account(ADA)
    emulator.revoke(ADA)
    response = token_request(
        emulator, grant_type="refresh_token", refresh_token=token["refresh_token"]
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_unknown_refresh_token_and_bad_client(emulator: EmulatorClient, clock: Any) -> None:
    token = emulator.add_account(ADA)
    unknown = token_request(emulator, grant_type="refresh_token", refresh_token="1//nope")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"
    bad_secret = requests.post(
        emulator.token_uri,
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": "wrong",
        },
        timeout=10,
    )
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"


def test_consent_page_is_served(emulator: EmulatorClient) -> None:
    response = requests.get(
        emulator.auth_uri,
        params={
            "client_id": DEFAULT_CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": CALENDAR_SCOPE,
            "state": "s",
        },
        timeout=10,
    )
    assert response.status_code == 200 and "<form" in response.text


def test_authorization_code_with_pkce(emulator: EmulatorClient, clock: Any) -> None:
    emulator.add_account(ADA)
    verifier, challenge = pkce_pair()
    query = consent(emulator, "allow", code_challenge=challenge, code_challenge_method="S256")
    assert query["state"] == "xyz-state"
    assert query["code"]
    exchange = {
        "grant_type": "authorization_code",
        "code": query["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    response = token_request(emulator, **exchange)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["expires_in"] > 0
    assert api_works(emulator, tokens["access_token"])
    # the refresh token from the exchange refreshes
    refreshed = token_request(
        emulator, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refreshed.status_code == 200
    # a code is good for one exchange only
    again = token_request(emulator, **exchange)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_authorization_code_with_wrong_verifier_is_invalid_grant(
    emulator: EmulatorClient, clock: Any
) -> None:
    _, challenge = pkce_pair()
    query = consent(emulator, "allow", code_challenge=challenge, code_challenge_method="S256")
    response = token_request(
        emulator,
        grant_type="authorization_code",
        code=query["code"],
        redirect_uri=REDIRECT_URI,
        code_verifier=secrets.token_urlsafe(48),
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_authorization_code_for_a_new_account(emulator: EmulatorClient, clock: Any) -> None:
    verifier, challenge = pkce_pair()
    query = consent(
        emulator,
        "allow",
        email="new@example.com",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    response = token_request(
        emulator,
        grant_type="authorization_code",
        code=query["code"],
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
    )
    assert response.status_code == 200
    assert api_works(emulator, response.json()["access_token"])


def test_redirect_uri_must_match(emulator: EmulatorClient, clock: Any) -> None:
    verifier, challenge = pkce_pair()
    query = consent(emulator, "allow", code_challenge=challenge, code_challenge_method="S256")
    response = token_request(
        emulator,
        grant_type="authorization_code",
        code=query["code"],
        redirect_uri="http://127.0.0.1:9999/elsewhere",
        code_verifier=verifier,
    )
    assert response.status_code == 400


def test_deny_redirects_with_access_denied(emulator: EmulatorClient, clock: Any) -> None:
    _, challenge = pkce_pair()
    query = consent(emulator, "deny", code_challenge=challenge, code_challenge_method="S256")
    assert query == {"error": "access_denied", "state": "xyz-state"}
