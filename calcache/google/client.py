"""The one place that talks to Google Calendar (google-api-python-client + google-auth).

It knows nothing of Django models: it takes a credential's token dict, returns
plain dataclasses and raises calcache's own exceptions (``calcache.exceptions``)
carrying the HTTP status and Google's reason.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from calcache import signals
from calcache.conf import conf
from calcache.exceptions import (
    CalendarNotFound,
    CredentialInvalid,
    GoogleBadRequest,
    GoogleError,
    GoogleUnavailable,
    QuotaExceeded,
    RateLimited,
    SyncTokenExpired,
)
from calcache.google.types import CalendarInfo, ChannelInfo, EventPage, FreeBusyCalendar

logger = logging.getLogger("calcache.google")

T = TypeVar("T")

FREEBUSY_MAX_DAYS = 90
FREEBUSY_MAX_CALENDARS = 50
EVENTS_PAGE_SIZE = 2500
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
MAX_SINGLE_WAIT = 30.0

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    httplib2.HttpLib2Error,
    http.client.HTTPException,
    socket.timeout,
    ConnectionError,
    TimeoutError,
    TransportError,
    OSError,
)


def _error_reason(exc: HttpError) -> str:
    details = getattr(exc, "error_details", None)
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("reason", ""))
    try:
        body = json.loads(exc.content)
        return str(body["error"]["errors"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


def _retry_after(exc: HttpError) -> float | None:
    value = exc.resp.get("retry-after") if exc.resp is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def translate_http_error(exc: HttpError) -> GoogleError:
    """Map google-api-python-client's HttpError to calcache's exception for it."""
    status = int(exc.resp.status) if exc.resp is not None else 0
    reason = _error_reason(exc)
    message = exc.reason if isinstance(exc.reason, str) and exc.reason else f"HTTP {status}"
    kwargs: dict[str, Any] = {"status": status, "reason": reason}
    if status == 410:
        return SyncTokenExpired(message, **kwargs)
    if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS):
        return RateLimited(message, retry_after=_retry_after(exc), **kwargs)
    if status == 403 and reason in ("quotaExceeded", "dailyLimitExceeded"):
        return QuotaExceeded(message, **kwargs)
    if status == 401:
        return CredentialInvalid(message, **kwargs)
    if status == 404:
        return CalendarNotFound(message, **kwargs)
    if status >= 500:
        return GoogleUnavailable(message, retry_after=_retry_after(exc), **kwargs)
    return GoogleBadRequest(message, **kwargs)


def freebusy_calendar_error(calendar_id: str, reasons: list[str]) -> GoogleError:
    """The exception for a calendar whose freeBusy entry carries ``errors`` (inside a 200):
    its busy time is unknown, never free (docs/google-calendar.md, "freeBusy queries").

    ``notFound`` alone (the calendar is gone or no longer shared) is ``CalendarNotFound``;
    any other reason (``internalError``, ``backendError``, one we do not know) means Google
    could not compute that calendar just now: ``GoogleUnavailable``, like an outage. Both
    are ``GoogleError``s, which the availability API answers with a 503."""
    message = f"freeBusy could not read calendar {calendar_id!r}"
    transient = [reason for reason in reasons if reason != "notFound"]
    if reasons and not transient:
        return CalendarNotFound(message, reason="notFound")
    return GoogleUnavailable(message, reason=transient[0] if transient else "unknown")


def translate_refresh_error(exc: RefreshError) -> GoogleError:
    text = str(exc)
    if "invalid_grant" in text or "invalid_client" in text or "unauthorized_client" in text:
        reason = "invalid_grant" if "invalid_grant" in text else text.split(":", 1)[0]
        return CredentialInvalid(f"Token refresh refused: {text}", status=400, reason=reason)
    return GoogleUnavailable(f"Token refresh failed: {text}", reason="refreshFailed")


def _translate(exc: BaseException) -> GoogleError:
    if isinstance(exc, HttpError):
        return translate_http_error(exc)
    if isinstance(exc, RefreshError):
        return translate_refresh_error(exc)
    return GoogleUnavailable(f"{type(exc).__name__}: {exc}", reason="transport")


class _Wait:
    """Honour Retry-After when Google sent one, else exponential backoff with full jitter."""

    def __init__(self) -> None:
        self.backoff = wait_random_exponential(
            multiplier=conf.google_backoff_seconds, max=MAX_SINGLE_WAIT
        )

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(min(retry_after, MAX_SINGLE_WAIT))
        return float(self.backoff(state))


def _token_expiry(token: dict[str, Any]) -> datetime | None:
    raw = token.get("expiry")
    if not raw:
        return None
    # google-auth keeps expiry as naive UTC
    parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def credentials_from_token(token: dict[str, Any]) -> Credentials:
    """google-auth credentials from an authorized-user dict, refreshed at CALCACHE_GOOGLE_TOKEN_URI.

    (``Credentials.from_authorized_user_info`` ignores ``token_uri`` and treats a
    token without ``expiry`` as expired, so it is not used.)
    """
    return Credentials(
        token=token.get("token"),
        refresh_token=token.get("refresh_token"),
        token_uri=conf.google_token_uri,
        client_id=token.get("client_id") or conf.google_client_id,
        client_secret=token.get("client_secret") or conf.google_client_secret,
        scopes=token.get("scopes"),
        expiry=_token_expiry(token),
    )


def token_from_credentials(credentials: Credentials, previous: dict[str, Any]) -> dict[str, Any]:
    token = dict(previous)
    token["token"] = credentials.token
    if credentials.refresh_token:
        token["refresh_token"] = credentials.refresh_token
    if credentials.expiry is not None:
        token["expiry"] = credentials.expiry.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return token


class GoogleCalendarClient:
    """Calendar API calls for one credential.

    ``on_token_refresh`` receives the updated token dict whenever google-auth
    refreshed the access token, so the caller can store it.
    """

    def __init__(
        self,
        token: dict[str, Any],
        *,
        on_token_refresh: Callable[[dict[str, Any]], None] | None = None,
        sleep: Callable[[float], None] | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self._max_attempts = max_attempts
        self._token = dict(token)
        self._on_token_refresh = on_token_refresh
        self._sleep = sleep
        self.credentials = credentials_from_token(self._token)
        self._last_access_token = self.credentials.token
        http = AuthorizedHttp(
            self.credentials, http=httplib2.Http(timeout=timeout or conf.google_timeout)
        )
        self.service = build(
            "calendar",
            "v3",
            http=http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": conf.google_api_url},
        )

    # --- plumbing ---------------------------------------------------------------
    def _execute_once(self, make_request: Callable[[], Any]) -> Any:
        try:
            return make_request().execute(num_retries=0)
        except (HttpError, RefreshError, *TRANSPORT_ERRORS) as exc:
            error = _translate(exc)
            signals.send(signals.google_error, sender=GoogleCalendarClient, error=error)
            raise error from exc
        finally:
            self._notice_refresh()

    def _notice_refresh(self) -> None:
        if self.credentials.token and self.credentials.token != self._last_access_token:
            self._last_access_token = self.credentials.token
            self._token = token_from_credentials(self.credentials, self._token)
            if self._on_token_refresh is not None:
                self._on_token_refresh(dict(self._token))

    def call(self, make_request: Callable[[], Any]) -> Any:
        """Execute a request, retrying only what Google says is transient."""
        kwargs: dict[str, Any] = {
            "retry": retry_if_exception_type((RateLimited, GoogleUnavailable)),
            "stop": stop_after_attempt(max(1, self._max_attempts or conf.google_max_attempts))
            | stop_after_delay(conf.google_retry_max_seconds),
            "wait": _Wait(),
            "reraise": True,
            "before_sleep": self._log_retry,
        }
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        return Retrying(**kwargs)(self._execute_once, make_request)

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        logger.warning(
            "Google call failed (%s); retry %d in %.2f s", exc, state.attempt_number, wait
        )

    @property
    def token(self) -> dict[str, Any]:
        """The token as it stands now (refreshed if google-auth refreshed it)."""
        return dict(self._token)

    # --- calendars ----------------------------------------------------------------
    def list_calendars(self) -> list[CalendarInfo]:
        """Every calendar in the account's calendar list."""
        calendars: list[CalendarInfo] = []
        page_token: str | None = None
        while True:
            response = self.call(
                lambda token=page_token: self.service.calendarList().list(  # type: ignore[misc]
                    pageToken=token, maxResults=250
                )
            )
            calendars.extend(CalendarInfo.from_json(item) for item in response.get("items", []))
            page_token = response.get("nextPageToken")
            if not page_token:
                return calendars

    def get_calendar(self, calendar_id: str) -> CalendarInfo:
        return CalendarInfo.from_json(
            self.call(lambda: self.service.calendars().get(calendarId=calendar_id))
        )

    # --- events -------------------------------------------------------------------
    def iter_event_pages(
        self,
        calendar_id: str,
        *,
        sync_token: str | None = None,
        time_min: datetime | None = None,
        time_max: datetime | None = None,
        page_size: int = EVENTS_PAGE_SIZE,
    ) -> Iterator[EventPage]:
        """Pages of ``events.list`` with ``singleEvents=true``; the last one carries
        ``next_sync_token``.

        Full sync: ``time_min``/``time_max`` bound it (events overlapping the
        window). Incremental: ``sync_token`` alone (Google forbids the bounds),
        cancelled entries included. Raises ``SyncTokenExpired`` on 410.
        """
        params: dict[str, Any] = {
            "calendarId": calendar_id,
            "singleEvents": True,
            "maxResults": page_size,
        }
        if sync_token:
            if time_min or time_max:
                raise ValueError("Google forbids timeMin/timeMax together with a sync token")
            params["syncToken"] = sync_token
        else:
            params["showDeleted"] = False
            if time_min is not None:
                params["timeMin"] = time_min.astimezone(UTC).isoformat()
            if time_max is not None:
                params["timeMax"] = time_max.astimezone(UTC).isoformat()
        page_token: str | None = None
        while True:
            request_params = dict(params, pageToken=page_token) if page_token else params
            response = self.call(lambda p=request_params: self.service.events().list(**p))  # type: ignore[misc]
            page_token = response.get("nextPageToken")
            yield EventPage(
                items=list(response.get("items", [])),
                time_zone=response.get("timeZone") or "UTC",
                next_sync_token=None if page_token else response.get("nextSyncToken"),
            )
            if not page_token:
                return

    # --- freeBusy -----------------------------------------------------------------
    def freebusy(
        self, calendar_ids: list[str], start: datetime, end: datetime
    ) -> dict[str, FreeBusyCalendar]:
        """Busy intervals per calendar over [start, end): ranges are split at 90 days
        and calendars batched by 50, as Google requires; results are merged."""
        if end <= start:
            raise ValueError("end must be after start")
        results = {cid: FreeBusyCalendar() for cid in calendar_ids}
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(end, chunk_start + timedelta(days=FREEBUSY_MAX_DAYS))
            for offset in range(0, len(calendar_ids), FREEBUSY_MAX_CALENDARS):
                batch = calendar_ids[offset : offset + FREEBUSY_MAX_CALENDARS]
                body = {
                    "timeMin": chunk_start.astimezone(UTC).isoformat(),
                    "timeMax": chunk_end.astimezone(UTC).isoformat(),
                    "timeZone": "UTC",
                    "items": [{"id": cid} for cid in batch],
                }
                response = self.call(lambda b=body: self.service.freebusy().query(body=b))  # type: ignore[misc]
                for cid, data in (response.get("calendars") or {}).items():
                    if cid in results:
                        results[cid].add(data)
            chunk_start = chunk_end
        for calendar_id, result in results.items():
            result.merge()
            if result.errors:  # Google's error, inside a 200: counted like any other
                error = freebusy_calendar_error(calendar_id, list(result.errors))
                signals.send(signals.google_error, sender=GoogleCalendarClient, error=error)
        return results

    # --- push channels --------------------------------------------------------------
    def watch(
        self,
        calendar_id: str,
        *,
        channel_id: str,
        address: str,
        token: str | None = None,
        expiration: datetime | None = None,
    ) -> ChannelInfo:
        """Open a push channel for the calendar's events (``events.watch``)."""
        body: dict[str, Any] = {"id": channel_id, "type": "web_hook", "address": address}
        if token:
            body["token"] = token
        if expiration is not None:
            body["expiration"] = str(int(expiration.timestamp() * 1000))
        response = self.call(lambda: self.service.events().watch(calendarId=calendar_id, body=body))
        return ChannelInfo.from_json(response)

    def stop_channel(self, *, channel_id: str, resource_id: str) -> None:
        """Stop a push channel; an unknown channel (404) counts as stopped."""
        try:
            self.call(
                lambda: self.service.channels().stop(
                    body={"id": channel_id, "resourceId": resource_id}
                )
            )
        except CalendarNotFound:
            logger.info("Channel %s was already gone", channel_id)
