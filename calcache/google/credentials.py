"""The one place a Google client is built for a stored credential.

``client_for`` hands the credential's decrypted token to ``GoogleCalendarClient`` and
stores every token google-auth refreshes on the way, so the next client starts from
it. This is the only module of ``calcache.google`` that knows a Django model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from calcache.google.client import GoogleCalendarClient

if TYPE_CHECKING:
    from calcache.models import Credential


def client_for(
    credential: Credential, *, max_attempts: int | None = None, timeout: float | None = None
) -> GoogleCalendarClient:
    """A client acting for ``credential``; refreshed tokens are saved to it.

    ``max_attempts``: tries per call (default ``CALCACHE_GOOGLE_MAX_ATTEMPTS``) and
    ``timeout``: seconds per HTTP request (default ``CALCACHE_GOOGLE_TIMEOUT``); a person
    waiting for a page gets less of both than a background sync.
    """
    return GoogleCalendarClient(
        credential.token,
        on_token_refresh=credential.save_token,
        max_attempts=max_attempts,
        timeout=timeout,
    )
