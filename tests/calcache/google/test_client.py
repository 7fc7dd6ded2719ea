"""calcache.google against the emulator, through google-api-python-client over HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calcache.emulator import EmulatorClient
from calcache.exceptions import (
    CalendarNotFound,
    CredentialInvalid,
    GoogleBadRequest,
    GoogleUnavailable,
    QuotaExceeded,
    RateLimited,
    SyncTokenExpired,
)
from calcache.google.client import GoogleCalendarClient

EMAIL = "ada@example.com"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def account(emulator: EmulatorClient) -> dict[str, Any]:
    emulator.set_clock(NOW)
    return emulator.add_account(EMAIL, time_zone="Europe/London")


@pytest.fixture
def client(account: dict[str, Any]) -> GoogleCalendarClient:
    return GoogleCalendarClient(account)


def add_events(emulator: EmulatorClient, count: int, *, start: datetime = NOW) -> None:
    for i in range(count):
        begin = start + timedelta(hours=i)
        emulator.add_event(EMAIL, start=begin, end=begin + timedelta(minutes=30), summary=f"e{i}")


def test_list_calendars_reports_primary_and_time_zone(
    emulator: EmulatorClient, client: GoogleCalendarClient
) -> None:
    emulator.add_calendar(
        EMAIL, calendar_id="team@group.calendar.google.com", time_zone="Asia/Tokyo"
    )
    calendars = {c.id: c for c in client.list_calendars()}
    assert calendars[EMAIL].primary and calendars[EMAIL].time_zone == "Europe/London"
    assert not calendars["team@group.calendar.google.com"].primary
    assert calendars["team@group.calendar.google.com"].time_zone == "Asia/Tokyo"
    assert client.get_calendar("primary").id == EMAIL


def test_full_sync_pages_and_sync_token_on_last_page_only(
    emulator: EmulatorClient, client: GoogleCalendarClient
) -> None:
    add_events(emulator, 7)
    emulator.set_page_shape("short")  # full, empty and short pages
    pages = list(
        client.iter_event_pages(
            "primary",
            time_min=NOW - timedelta(days=1),
            time_max=NOW + timedelta(days=1),
            page_size=3,
        )
    )
    assert sum(len(p.items) for p in pages) == 7
    assert any(not p.items for p in pages[:-1]), "an empty page must not end the listing"
    assert [p.next_sync_token is not None for p in pages] == [False] * (len(pages) - 1) + [True]
    assert all(p.time_zone == "Europe/London" for p in pages)
    requests = [r for r in emulator.requests() if r["path"].endswith("/events")]
    assert all(r["query"]["singleEvents"] == "true" for r in requests)


def test_incremental_sync_returns_changes_and_cancellations(
    emulator: EmulatorClient, client: GoogleCalendarClient
) -> None:
    add_events(emulator, 3)
    token = list(client.iter_event_pages("primary"))[-1].next_sync_token
    assert token
    moved = emulator.add_event(
        EMAIL, start=NOW + timedelta(days=2), end=NOW + timedelta(days=2, hours=1)
    )
    emulator.delete_event(EMAIL, moved["id"])
    pages = list(client.iter_event_pages("primary", sync_token=token))
    items = [item for page in pages for item in page.items]
    assert [(i["id"], i["status"]) for i in items] == [(moved["id"], "cancelled")]
    assert pages[-1].next_sync_token and pages[-1].next_sync_token != token


def test_sync_token_and_window_together_are_refused_before_any_call(
    client: GoogleCalendarClient,
) -> None:
    with pytest.raises(ValueError, match="sync token"):
        next(client.iter_event_pages("primary", sync_token="x", time_min=NOW))


def test_invalidated_token_raises_sync_token_expired(
    emulator: EmulatorClient, client: GoogleCalendarClient
) -> None:
    token = list(client.iter_event_pages("primary"))[-1].next_sync_token
    emulator.invalidate_sync_tokens()
    with pytest.raises(SyncTokenExpired) as caught:
        list(client.iter_event_pages("primary", sync_token=token))
    assert caught.value.status == 410 and caught.value.reason == "fullSyncRequired"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(
    emulator: EmulatorClient, client: GoogleCalendarClient, status: int
) -> None:
    add_events(emulator, 2)
    emulator.fail_next(2, status=status, path="/events")
    pages = list(client.iter_event_pages("primary"))
    assert sum(len(p.items) for p in pages) == 2
    statuses = [r["status"] for r in emulator.requests() if r["path"].endswith("/events")]
    assert statuses == [status, status, 200]


def test_dropped_connection_is_retried(
    emulator: EmulatorClient, client: GoogleCalendarClient
) -> None:
    emulator.fail_next(1, kind="drop", path="/calendarList")
    assert [c.id for c in client.list_calendars()] == [EMAIL]


def test_persistent_outage_raises_google_unavailable_after_max_attempts(
    emulator: EmulatorClient, client: GoogleCalendarClient, settings: Any
) -> None:
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 3
    emulator.fail_next(10, status=503, path="/calendarList")
    with pytest.raises(GoogleUnavailable) as caught:
        client.list_calendars()
    assert caught.value.status == 503
    assert len([r for r in emulator.requests() if "calendarList" in r["path"]]) == 3


def test_slow_answer_times_out_and_is_retried(
    emulator: EmulatorClient, client: GoogleCalendarClient, settings: Any
) -> None:
    settings.CALCACHE_GOOGLE_TIMEOUT = 0.3
    client = GoogleCalendarClient(client.token)  # the timeout is read when the client is built
    emulator.fail_next(1, kind="slow", delay=1.0, path="/calendarList")
    assert [c.id for c in client.list_calendars()] == [EMAIL]


def test_retry_after_is_honoured(emulator: EmulatorClient, account: dict[str, Any]) -> None:
    waits: list[float] = []
    client = GoogleCalendarClient(account, sleep=waits.append)
    emulator.fail_next(1, status=429, reason="rateLimitExceeded", retry_after=7)
    client.list_calendars()
    assert waits == [7.0]


def test_retry_after_really_waits(emulator: EmulatorClient, client: GoogleCalendarClient) -> None:
    emulator.fail_next(1, status=403, reason="userRateLimitExceeded", retry_after=1)
    began = time.monotonic()
    client.list_calendars()
    assert 0.9 <= time.monotonic() - began < 2.0


def test_rate_limit_that_persists_raises_rate_limited_with_retry_after(
    emulator: EmulatorClient, account: dict[str, Any], settings: Any
) -> None:
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 2
    client = GoogleCalendarClient(account, sleep=lambda seconds: None)
    emulator.fail_next(5, status=403, reason="rateLimitExceeded", retry_after=3)
    with pytest.raises(RateLimited) as caught:
        client.list_calendars()
    assert caught.value.status == 403 and caught.value.retry_after == 3.0


def test_quota_exceeded_is_not_retried(
    emulator: EmulatorClient, client: GoogleCalendarClient
) -> None:
    emulator.fail_next(3, status=403, reason="quotaExceeded")
    with pytest.raises(QuotaExceeded):
        client.list_calendars()
    assert len(emulator.requests()) == 1


@pytest.mark.parametrize(
    ("status", "reason", "exception"),
    [(400, "invalid", GoogleBadRequest), (404, "notFound", CalendarNotFound)],
)
def test_client_errors_are_not_retried(
    emulator: EmulatorClient,
    client: GoogleCalendarClient,
    status: int,
    reason: str,
    exception: type[Exception],
) -> None:
    emulator.fail_next(3, status=status, reason=reason)
    with pytest.raises(exception):
        client.list_calendars()
    assert len(emulator.requests()) == 1


def test_unknown_calendar_raises_calendar_not_found(client: GoogleCalendarClient) -> None:
    with pytest.raises(CalendarNotFound) as caught:
        list(client.iter_event_pages("nobody@example.com"))
    assert caught.value.status == 404


def test_expired_access_token_is_refreshed_and_handed_back(
    emulator: EmulatorClient, account: dict[str, Any]
) -> None:
    refreshed: list[dict[str, Any]] = []
    client = GoogleCalendarClient(account, on_token_refresh=refreshed.append)
    emulator.expire_access_tokens(EMAIL)  # the next call gets a 401, then refreshes
    assert [c.id for c in client.list_calendars()] == [EMAIL]
    assert len(refreshed) == 1
    new = refreshed[0]
    assert new["token"] != account["token"] and new["refresh_token"] == account["refresh_token"]
    assert new["expiry"]
    # the refreshed token works on its own
    assert [c.id for c in GoogleCalendarClient(new).list_calendars()] == [EMAIL]


def test_token_without_expiry_refreshes_first(
    emulator: EmulatorClient, account: dict[str, Any]
) -> None:
    refreshed: list[dict[str, Any]] = []
    token = dict(account, token=None, expiry=None)
    GoogleCalendarClient(token, on_token_refresh=refreshed.append).list_calendars()
    assert len(refreshed) == 1
    assert [r["path"] for r in emulator.requests()][-1].endswith("calendarList")


def test_revoked_refresh_token_raises_credential_invalid(
    emulator: EmulatorClient, account: dict[str, Any]
) -> None:
    emulator.revoke(EMAIL)
    with pytest.raises(CredentialInvalid) as caught:
        GoogleCalendarClient(account).list_calendars()
    assert caught.value.reason == "invalid_grant"


def test_freebusy_splits_long_ranges_and_batches_calendars(
    emulator: EmulatorClient, client: GoogleCalendarClient
) -> None:
    # Two events straddling the 90-day seam merge back into one busy block.
    seam = NOW + timedelta(days=90)
    emulator.add_event(EMAIL, start=seam - timedelta(hours=1), end=seam + timedelta(hours=1))
    emulator.add_event(
        EMAIL, start=NOW + timedelta(days=150), end=NOW + timedelta(days=150, hours=2)
    )
    calendar_ids = [EMAIL] + [f"missing{i}@example.com" for i in range(60)]
    result = client.freebusy(calendar_ids, NOW, NOW + timedelta(days=200))
    assert result[EMAIL].busy == [
        (seam - timedelta(hours=1), seam + timedelta(hours=1)),
        (NOW + timedelta(days=150), NOW + timedelta(days=150, hours=2)),
    ]
    assert result["missing0@example.com"].errors == ["notFound"]
    calls = [r for r in emulator.requests() if r["path"].endswith("/freeBusy")]
    assert len(calls) == 3 * 2  # three 90-day chunks, two batches of at most 50 calendars


def test_watch_and_stop_channel(emulator: EmulatorClient, client: GoogleCalendarClient) -> None:
    channel = client.watch(
        "primary",
        channel_id="chan-1",
        address="http://127.0.0.1:9/calendar-cache/webhooks/google/",  # nothing listens here
        token="secret",
        expiration=NOW + timedelta(days=2),
    )
    assert channel.id == "chan-1" and channel.resource_id
    assert channel.expiration == NOW + timedelta(days=2)
    client.stop_channel(channel_id="chan-1", resource_id=channel.resource_id)
    client.stop_channel(channel_id="chan-1", resource_id=channel.resource_id)  # already gone: fine
