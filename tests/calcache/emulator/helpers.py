"""Shared helpers for the emulator conformance tests: a real google-api-python-client
service pointed at the emulator, paging, and error inspection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import google_auth_httplib2
import httplib2
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from calcache.emulator.client import EmulatorClient

# Every test freezes the emulator's clock here (a Monday) before creating accounts.
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ADA = "ada@example.com"


def credentials(emulator: EmulatorClient, token: dict[str, Any]) -> Credentials:
    return Credentials(
        token=token["token"],
        refresh_token=token["refresh_token"],
        token_uri=emulator.token_uri,
        client_id=token["client_id"],
        client_secret=token["client_secret"],
    )


def build_service(emulator: EmulatorClient, token: dict[str, Any], *, refresh: bool = True) -> Any:
    """The calendar v3 service of google-api-python-client, talking HTTP to the emulator.

    ``refresh=False`` turns off google-auth's refresh-and-retry on 401 so that the
    401 itself reaches the caller as an ``HttpError``.
    """
    creds = credentials(emulator, token)
    options = {"api_endpoint": emulator.api_url}
    if refresh:
        return build(
            "calendar",
            "v3",
            credentials=creds,
            static_discovery=True,
            cache_discovery=False,
            client_options=options,
        )
    http = google_auth_httplib2.AuthorizedHttp(
        creds, http=httplib2.Http(timeout=30), refresh_status_codes=()
    )
    return build(
        "calendar",
        "v3",
        http=http,
        static_discovery=True,
        cache_discovery=False,
        client_options=options,
    )


def read_pages(service: Any, **params: Any) -> list[dict[str, Any]]:
    """Every page of an events.list, following nextPageToken with list_next."""
    request = service.events().list(**params)
    pages = []
    while request is not None:
        response = request.execute()
        pages.append(response)
        request = service.events().list_next(request, response)
    return pages


def items_of(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page.get("items", [])]


def reason(exc: HttpError) -> str:
    details = exc.error_details
    assert isinstance(details, list) and details, exc.content
    return str(details[0]["reason"])


def error_body(exc: HttpError) -> dict[str, Any]:
    return dict(json.loads(exc.content))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
