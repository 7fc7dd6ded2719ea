"""The OAuth 2.0 authorization-code flow (with PKCE) for connecting a Google account.

google-auth-oauthlib does the protocol; endpoints and client come from
``CALCACHE_GOOGLE_AUTH_URI``, ``CALCACHE_GOOGLE_TOKEN_URI`` and the client settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from calcache.conf import conf
from calcache.exceptions import CredentialInvalid, GoogleBadRequest, GoogleUnavailable
from calcache.google.client import token_from_credentials

SCOPES = ["https://www.googleapis.com/auth/calendar.readonly"]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the user, and what to keep in their session until the callback."""

    url: str
    state: str
    code_verifier: str


def _allow_loopback_http() -> None:
    # oauthlib refuses plain http; the bundled emulator serves it on loopback only.
    parts = urlsplit(conf.google_token_uri)
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _flow(redirect_uri: str, **kwargs: Any) -> Flow:
    _allow_loopback_http()
    client_config = {
        "web": {
            "client_id": conf.google_client_id,
            "client_secret": conf.google_client_secret,
            "auth_uri": conf.google_auth_uri,
            "token_uri": conf.google_token_uri,
            "redirect_uris": [redirect_uri],
        }
    }
    return Flow.from_client_config(
        client_config, scopes=SCOPES, redirect_uri=redirect_uri, **kwargs
    )


def start_authorization(
    *, redirect_uri: str, login_hint: str | None = None
) -> AuthorizationRequest:
    """Build the consent URL (offline access, PKCE S256, a fresh ``state``)."""
    flow = _flow(redirect_uri, autogenerate_code_verifier=True)
    extra = {"login_hint": login_hint} if login_hint else {}
    url, state = flow.authorization_url(
        access_type="offline", prompt="consent", include_granted_scopes="true", **extra
    )
    return AuthorizationRequest(url=url, state=state, code_verifier=flow.code_verifier or "")


def exchange_code(
    *, code: str, redirect_uri: str, state: str, code_verifier: str
) -> dict[str, Any]:
    """Trade the callback's ``code`` for a google-auth authorized-user token dict."""
    flow = _flow(redirect_uri, state=state, code_verifier=code_verifier)
    try:
        flow.fetch_token(code=code)
    except OAuth2Error as exc:
        error = exc.error or "oauth_error"
        if error in ("invalid_grant", "invalid_client", "unauthorized_client"):
            raise CredentialInvalid(
                f"Google refused the code: {exc.description or error}",
                status=exc.status_code,
                reason=error,
            ) from exc
        raise GoogleBadRequest(
            f"OAuth error: {exc.description or error}", status=exc.status_code, reason=error
        ) from exc
    except (OSError, ValueError) as exc:
        raise GoogleUnavailable(f"Token exchange failed: {exc}", reason="transport") from exc
    credentials = flow.credentials
    base = {
        "client_id": conf.google_client_id,
        "client_secret": conf.google_client_secret,
        "token_uri": conf.google_token_uri,
        "scopes": list(credentials.scopes or SCOPES),
    }
    return token_from_credentials(credentials, base)
