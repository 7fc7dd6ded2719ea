"""Errors: injected 5xx / 429 (with Retry-After) / 403 rate and quota limits reach the
client with Google's status, reason and headers; 401 without a valid bearer token,
after revocation and after access-token expiry (refreshed once by google-auth)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from calcache.emulator.client import EmulatorClient
from tests.calcache.emulator.helpers import ADA, build_service, error_body, reason


def list_events(service: Any, **kwargs: Any) -> dict[str, Any]:
    return dict(service.events().list(calendarId="primary").execute(**kwargs))


@pytest.mark.parametrize(
    ("status", "error_reason", "domain"),
    [
        (500, "backendError", "global"),
        (503, "backendError", "global"),
        (403, "rateLimitExceeded", "usageLimits"),
        (403, "userRateLimitExceeded", "usageLimits"),
        (403, "quotaExceeded", "usageLimits"),
        (429, "rateLimitExceeded", "usageLimits"),
    ],
)
def test_injected_errors_reach_the_client(
    emulator: EmulatorClient, service: Any, status: int, error_reason: str, domain: str
) -> None:
    emulator.fail_next(status=status, reason=error_reason)
    with pytest.raises(HttpError) as caught:
        list_events(service)
    assert caught.value.resp.status == status
    assert reason(caught.value) == error_reason
    assert error_body(caught.value)["error"]["errors"][0]["domain"] == domain
    assert error_body(caught.value)["error"]["code"] == status
    list_events(service)  # one-shot: the next call works


@pytest.mark.parametrize(
    ("status", "error_reason"),
    [(429, "rateLimitExceeded"), (503, "backendError"), (403, "userRateLimitExceeded")],
)
def test_retry_after_header(
    emulator: EmulatorClient, service: Any, status: int, error_reason: str
) -> None:
    emulator.fail_next(status=status, reason=error_reason, retry_after=7)
    with pytest.raises(HttpError) as caught:
        list_events(service)
    assert caught.value.resp.status == status
    assert reason(caught.value) == error_reason
    assert caught.value.resp["retry-after"] == "7"


def test_no_retry_after_header_unless_injected(emulator: EmulatorClient, service: Any) -> None:
    emulator.fail_next(status=503)
    with pytest.raises(HttpError) as caught:
        list_events(service)
    assert "retry-after" not in caught.value.resp


def test_faults_match_method_path_and_count(emulator: EmulatorClient, service: Any) -> None:
    emulator.fail_next(2, status=503, path="/freeBusy")
    list_events(service)  # not matched
    body = {
        "timeMin": "2026-06-02T00:00:00Z",
        "timeMax": "2026-06-03T00:00:00Z",
        "items": [{"id": ADA}],
    }
    for _ in range(2):
        with pytest.raises(HttpError) as caught:
            service.freebusy().query(body=body).execute()
        assert caught.value.resp.status == 503
    service.freebusy().query(body=body).execute()
    emulator.fail_next(status=500, method="POST")
    list_events(service)  # a GET
    with pytest.raises(HttpError):
        service.freebusy().query(body=body).execute()


@pytest.mark.parametrize(
    ("status", "error_reason"),
    [(503, "backendError"), (429, "rateLimitExceeded"), (403, "rateLimitExceeded")],
)
def test_client_retries_through_a_transient_error(
    emulator: EmulatorClient, service: Any, status: int, error_reason: str
) -> None:
    """execute(num_retries=N) retries 5xx, 429 and rate-limit 403s
    (docs/google-calendar.md#retries-and-backoff)."""
    emulator.fail_next(status=status, reason=error_reason)
    emulator.clear_requests()
    request = service.events().list(calendarId="primary")
    request._sleep = lambda seconds: None  # skip the client's backoff sleep
    request.execute(num_retries=2)
    assert [r["status"] for r in emulator.requests()] == [status, 200]


def test_client_does_not_retry_quota_exceeded(emulator: EmulatorClient, service: Any) -> None:
    emulator.fail_next(status=403, reason="quotaExceeded")
    emulator.clear_requests()
    request = service.events().list(calendarId="primary")
    request._sleep = lambda seconds: None
    with pytest.raises(HttpError) as caught:
        request.execute(num_retries=2)
    assert reason(caught.value) == "quotaExceeded"
    assert [r["status"] for r in emulator.requests()] == [403]


def test_401_without_a_bearer_token(emulator: EmulatorClient, make_service: Any) -> None:
    make_service(ADA)
    for bogus in ("", "ya29.not-a-token"):
        token = {"token": bogus, "refresh_token": None, "client_id": None, "client_secret": None}
        service = build_service(emulator, token, refresh=False)
        with pytest.raises(HttpError) as caught:
            list_events(service)
        assert caught.value.resp.status == 401
        assert reason(caught.value) == "authError"
        assert caught.value.resp["www-authenticate"].startswith("Bearer")


def test_401_after_revoke_and_refresh_is_invalid_grant(
    emulator: EmulatorClient, make_service: Any
) -> None:
    plain = make_service(ADA, refresh=False)
    token = emulator.authorized_token(ADA)
    refreshing = build_service(emulator, token)
    list_events(plain)
    emulator.revoke(ADA)
    with pytest.raises(HttpError) as caught:
        list_events(plain)
    assert caught.value.resp.status == 401
    # google-auth refreshes once on 401; the revoked refresh token fails with invalid_grant
    emulator.clear_requests()
    with pytest.raises(RefreshError) as refused:
        list_events(refreshing)
    assert "invalid_grant" in str(refused.value)
    assert [(r["path"], r["status"]) for r in emulator.requests()] == [
        ("/calendar/v3/calendars/primary/events", 401),
        ("/token", 400),
    ]


def test_expired_access_token_is_401_then_refreshed(
    emulator: EmulatorClient, make_service: Any
) -> None:
    plain = make_service(ADA, refresh=False)
    refreshing = build_service(emulator, emulator.authorized_token(ADA))
    emulator.expire_access_tokens(ADA)
    with pytest.raises(HttpError) as caught:
        list_events(plain)
    assert caught.value.resp.status == 401
    emulator.clear_requests()
    list_events(refreshing)
    assert [(r["path"], r["status"]) for r in emulator.requests()] == [
        ("/calendar/v3/calendars/primary/events", 401),
        ("/token", 200),
        ("/calendar/v3/calendars/primary/events", 200),
    ]
    list_events(refreshing)  # the new access token keeps working


def test_access_token_expires_with_the_clock(emulator: EmulatorClient, make_service: Any) -> None:
    plain = make_service(ADA, refresh=False)
    emulator.advance_clock(timedelta(minutes=59))
    list_events(plain)
    emulator.advance_clock(timedelta(minutes=2))
    with pytest.raises(HttpError) as caught:
        list_events(plain)
    assert caught.value.resp.status == 401
