"""Full, incremental and roll-forward syncs of selected calendars.

The token row says exactly what the SQL copy covers: ``window_start`` to
``window_end``, complete as of ``last_sync_at``.

- Full sync (no token, ``--full``, or after a 410): every event overlapping
  ``[now - CALCACHE_SYNC_PAST_DAYS, now + CALCACHE_SYNC_FUTURE_DAYS]``, one
  transaction per page; then, in one transaction, rows of that window Google no
  longer returned are deleted and the new token is stored.
- Incremental sync: the changes since the token, each page in one transaction;
  the next token is stored only after the last page.
- Roll forward: an incremental sync only reports changes, so events that exist
  unchanged beyond ``window_end`` would never arrive; when the wanted end moved on,
  the new slice is listed and upserted before ``window_end`` moves.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone

import flags
from calcache import signals
from calcache.conf import conf
from calcache.exceptions import (
    CalendarNotFound,
    CredentialInvalid,
    GoogleBadRequest,
    GoogleError,
    SyncTokenExpired,
    TokenDecryptionError,
)
from calcache.google.credentials import client_for
from calcache.google.types import EventPage
from calcache.models import CalendarSyncToken, Credential, SelectedCalendar
from calcache.sync.locking import calendar_lock
from calcache.sync.mapping import MappedEvent, UnusableEvent, calendar_zone, is_cancelled, map_event
from calcache.sync.writes import PageWrite, apply_page, delete_missing
from flags.names import WRITE_FLAG

logger = logging.getLogger("calcache.sync")

# The window's end is rolled forward once it lags the wanted end by this much.
ROLL_FORWARD_STEP = timedelta(hours=1)
ERROR_MAX_LENGTH = 2000
# Errors that mean the database is unreachable (down, restarting, connection cut, or
# SQLite locked), not that a statement was wrong.
DATABASE_OUTAGE = (OperationalError, InterfaceError)
# While waiting for the database to come back, seconds between connection attempts.
RECONNECT_INTERVAL = 0.5


class SyncOutcome(enum.StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"
    LOCKED = "skipped: locked"
    FLAG_OFF = "skipped: write flag off"
    CREDENTIAL_INVALID = "skipped: credential invalid"
    DISABLED = "skipped: calendar disabled"
    FAILED = "failed"
    # Only for the refresh of a notified calendar (``sync_calendars --dirty``):
    ALREADY_REFRESHED = "skipped: refreshed since the notification"
    DEFERRED = "deferred: try again later"

    @property
    def synced(self) -> bool:
        return self in (SyncOutcome.FULL, SyncOutcome.INCREMENTAL)


@dataclass
class SyncResult:
    selected_calendar_id: int
    calendar_id: str
    outcome: SyncOutcome = SyncOutcome.FAILED
    upserted: int = 0
    unchanged: int = 0
    deleted: int = 0
    pages: int = 0
    full_reason: str = ""
    rolled_forward: bool = False
    error: str = ""
    # What made a FAILED sync fail, for callers that decide about retrying (calcache.tasks).
    exception: Exception | None = field(default=None, repr=False, compare=False)
    # False while a database failure keeps ``error`` from the token row; ``failed_at`` is
    # when it failed (``record_sync_errors`` writes both once the database answers).
    error_recorded: bool = True
    failed_at: datetime | None = None

    def add(self, write: PageWrite) -> None:
        self.upserted += write.upserted
        self.unchanged += write.unchanged
        self.deleted += write.deleted
        self.pages += 1


class _FullSyncNeeded(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _CalendarSync:
    """One sync run of one selected calendar, holding its lock."""

    def __init__(self, selected: SelectedCalendar, token: CalendarSyncToken, now: datetime) -> None:
        self.selected = selected
        self.credential: Credential = selected.credential
        self.token = token
        self.now = now
        self.result = SyncResult(selected_calendar_id=selected.pk, calendar_id=selected.calendar_id)
        self.client = client_for(self.credential)

    def wanted_window(self) -> tuple[datetime, datetime]:
        return (
            self.now - timedelta(days=conf.sync_past_days),
            self.now + timedelta(days=conf.sync_future_days),
        )

    def _map_page(self, page: EventPage) -> tuple[list[MappedEvent], list[str]]:
        tz = calendar_zone(page.time_zone)
        changed: list[MappedEvent] = []
        gone: list[str] = []
        for item in page.items:
            if is_cancelled(item):
                gone.append(item["id"])
                continue
            try:
                changed.append(map_event(item, calendar_tz=tz, store_summary=conf.store_summary))
            except (UnusableEvent, ValueError, KeyError) as exc:
                # Without usable times it cannot be mirrored; a stale copy must not stay.
                logger.warning(
                    "Event %s of %s unusable (%s); removed",
                    item.get("id"),
                    self.selected.calendar_id,
                    exc,
                )
                if item.get("id"):
                    gone.append(item["id"])
        return changed, gone

    def _apply(self, pages: Iterable[EventPage], seen: set[str] | None = None) -> EventPage | None:
        last: EventPage | None = None
        for page in pages:
            changed, gone = self._map_page(page)
            self.result.add(apply_page(selected=self.selected, changed=changed, cancelled_ids=gone))
            if seen is not None:
                seen.update(event.google_event_id for event in changed)
            last = page
        if last is not None and last.time_zone != self.selected.time_zone:
            self.selected.time_zone = last.time_zone
            SelectedCalendar.objects.filter(pk=self.selected.pk).update(time_zone=last.time_zone)
        return last

    def full(self, reason: str) -> None:
        window_start, window_end = self.wanted_window()
        seen: set[str] = set()
        last = self._apply(
            self.client.iter_event_pages(
                self.selected.calendar_id,
                time_min=window_start,
                time_max=window_end,
                page_size=conf.sync_page_size,
            ),
            seen,
        )
        with transaction.atomic():
            self.result.deleted += delete_missing(
                selected=self.selected, seen_ids=seen, window_start=window_start
            )
            token = self.token
            token.sync_token = (last.next_sync_token if last else None) or ""
            token.window_start, token.window_end = window_start, window_end
            token.last_full_sync_at = token.last_sync_at = self.now
            token.last_error, token.last_error_at = "", None
            token.save()
        self.result.outcome = SyncOutcome.FULL
        self.result.full_reason = reason

    def incremental(self) -> None:
        zone_before = self.selected.time_zone
        try:
            last = self._apply(
                self.client.iter_event_pages(
                    self.selected.calendar_id,
                    sync_token=self.token.sync_token,
                    page_size=conf.sync_page_size,
                )
            )
        except SyncTokenExpired as exc:
            raise _FullSyncNeeded("sync token expired (410)") from exc
        except GoogleBadRequest as exc:
            # Google answers some token problems with 400; one full sync settles it,
            # and a second 400 (from the full sync) is reported as an error.
            raise _FullSyncNeeded(f"sync token refused ({exc.status} {exc.reason})") from exc
        if last is not None and last.time_zone != zone_before:
            # All-day events start at the calendar's midnight: every stored one moved,
            # and an incremental sync does not return them (they did not change).
            raise _FullSyncNeeded(f"calendar time zone changed ({zone_before} -> {last.time_zone})")
        self.roll_forward()
        with transaction.atomic():
            token = self.token
            if last is not None and last.next_sync_token:
                token.sync_token = last.next_sync_token
            token.last_sync_at = self.now
            token.last_error, token.last_error_at = "", None
            token.save()
        self.result.outcome = SyncOutcome.INCREMENTAL

    def roll_forward(self) -> None:
        assert self.token.window_end is not None
        _, wanted_end = self.wanted_window()
        if wanted_end - self.token.window_end < ROLL_FORWARD_STEP:
            return
        self._apply(
            self.client.iter_event_pages(
                self.selected.calendar_id,
                time_min=self.token.window_end,
                time_max=wanted_end,
                page_size=conf.sync_page_size,
            )
        )
        self.token.window_end = wanted_end
        self.result.rolled_forward = True

    def run(self, *, force_full: bool) -> None:
        token = self.token
        if force_full:
            self.full("requested")
        elif not token.sync_token or token.window_start is None or token.window_end is None:
            self.full("first sync")
        else:
            try:
                self.incremental()
            except _FullSyncNeeded as needed:
                logger.info("%s: %s; full sync", self.selected.calendar_id, needed.reason)
                token.sync_token = ""
                token.save(update_fields=["sync_token"])
                self.full(needed.reason)


def _record_error(token: CalendarSyncToken, message: str, now: datetime) -> None:
    CalendarSyncToken.objects.filter(pk=token.pk).update(
        last_error=message[:ERROR_MAX_LENGTH], last_error_at=now
    )


def sync_calendar(
    selected: SelectedCalendar,
    *,
    full: bool = False,
    now: datetime | None = None,
) -> SyncResult:
    """Bring one selected calendar's SQL copy up to date. Never raises for Google's errors:
    the result says what happened, and the token row keeps the last error.

    A push notification's mark (``dirty_since``) is left alone: it belongs to the
    notification's refresh (``calcache.jobs.refresh_notified``), which also rewrites the
    JSON blobs. Every run ends with ``calcache.signals.calendar_synced``.
    """
    now = now or timezone.now()
    try:
        selected = SelectedCalendar.objects.select_related("credential", "credential__user").get(
            pk=selected.pk
        )
        result = _sync_calendar(selected, full=full, now=now)
    except (DatabaseError, InterfaceError) as exc:
        # The caller (sync_calendars, a background job) decides what a database failure
        # means; the receivers hear of it here, once, whoever called.
        send_calendar_synced(selected, _database_failure_result(selected, exc))
        setattr(exc, _SIGNALLED, True)
        raise
    send_calendar_synced(selected, result)
    return result


_SIGNALLED = "calcache_calendar_synced_sent"


def send_calendar_synced(selected: SelectedCalendar, result: SyncResult) -> None:
    """Tell ``calendar_synced``'s receivers how the run of ``selected`` went."""
    signals.send(
        signals.calendar_synced,
        sender=SelectedCalendar,
        selected_calendar=selected,
        result=result,
        outcome=result.outcome.name.lower(),
        events_written=result.upserted,
        events_deleted=result.deleted,
    )


def _sync_calendar(selected: SelectedCalendar, *, full: bool, now: datetime) -> SyncResult:
    result = SyncResult(selected_calendar_id=selected.pk, calendar_id=selected.calendar_id)
    credential = selected.credential
    if not selected.enabled:
        result.outcome = SyncOutcome.DISABLED
        return result
    if credential.invalid:
        result.outcome = SyncOutcome.CREDENTIAL_INVALID
        result.error = credential.invalid_reason
        return result
    if not flags.is_enabled(WRITE_FLAG, user=credential.user):
        result.outcome = SyncOutcome.FLAG_OFF
        return result
    token, _ = CalendarSyncToken.objects.get_or_create(
        credential=credential, calendar_id=selected.calendar_id
    )
    with calendar_lock(token) as acquired:
        if not acquired:
            result.outcome = SyncOutcome.LOCKED
            return result
        token.refresh_from_db()
        try:
            run = _CalendarSync(selected, token, now)
            result = run.result
            run.run(force_full=full)
        except CredentialInvalid as exc:
            credential.mark_invalid(str(exc))
            _fail(result, token, exc, f"credential invalid: {exc}", now)
        except TokenDecryptionError as exc:
            _fail(result, token, exc, str(exc), now)
        except CalendarNotFound as exc:
            SelectedCalendar.objects.filter(pk=selected.pk).update(enabled=False)
            _fail(result, token, exc, f"calendar not found, selection disabled: {exc}", now)
        except GoogleError as exc:  # rate limits after retries, outages, bad requests
            _fail(result, token, exc, f"{type(exc).__name__}: {exc}", now)
        except DATABASE_OUTAGE:
            # The database went away mid-sync: recording the error would fail the same
            # way. The caller sees the error (sync_calendars records it once it answers).
            raise
        except Exception as exc:  # one calendar's failure never stops the others
            logger.exception("Sync of %s failed unexpectedly", selected.calendar_id)
            _fail(result, token, exc, f"{type(exc).__name__}: {exc}", now)
    return result


def _fail(
    result: SyncResult, token: CalendarSyncToken, exc: Exception, message: str, now: datetime
) -> None:
    result.outcome = SyncOutcome.FAILED
    result.error = message
    result.exception = exc
    logger.warning("Sync of %s failed: %s", result.calendar_id, message)
    _record_error(token, message, now)


def sync_calendars(
    selected_calendars: Iterable[SelectedCalendar],
    *,
    full: bool = False,
    workers: int = 1,
    now: datetime | None = None,
    on_result: Callable[[SyncResult], None] | None = None,
    sync_one: Callable[[SelectedCalendar], SyncResult] | None = None,
) -> list[SyncResult]:
    """Sync many calendars, ``workers`` at a time (threads, each with its own connection).

    ``sync_one`` replaces ``sync_calendar(selected, full=full, now=now)`` for each one.
    A database error fails that calendar only (the next one reconnects); its result has
    ``error_recorded=False`` until ``record_sync_errors`` writes it to the token row.
    """
    calendars = list(selected_calendars)
    results: list[SyncResult] = []

    def one(selected: SelectedCalendar) -> SyncResult:
        try:
            if sync_one is not None:
                return sync_one(selected)
            return sync_calendar(selected, full=full, now=now)
        except (DatabaseError, InterfaceError) as exc:
            _drop_connection()
            failure = _database_failure(selected, exc)
            if not getattr(exc, _SIGNALLED, False):  # failed before sync_calendar's own send
                send_calendar_synced(selected, failure)
            return failure
        finally:
            if workers > 1:
                connection.close()

    def done(result: SyncResult) -> None:
        results.append(result)
        if on_result:
            on_result(result)

    if workers <= 1:
        for selected in calendars:
            done(one(selected))
        return results
    close_old_connections()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="calcache-sync") as pool:
        for future in as_completed([pool.submit(one, selected) for selected in calendars]):
            done(future.result())
    return results


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (psycopg's run over several lines)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _database_failure_result(selected: SelectedCalendar, exc: Exception) -> SyncResult:
    what = "database unavailable" if isinstance(exc, DATABASE_OUTAGE) else "database error"
    return SyncResult(
        selected_calendar_id=selected.pk,
        calendar_id=selected.calendar_id,
        outcome=SyncOutcome.FAILED,
        error=f"{what}: {first_line(exc)}",
        exception=exc,
        error_recorded=False,
        failed_at=timezone.now(),
    )


def _database_failure(selected: SelectedCalendar, exc: Exception) -> SyncResult:
    result = _database_failure_result(selected, exc)
    logger.warning("Sync of %s failed: %s", selected.calendar_id, result.error)
    logger.debug("Sync of %s failed", selected.calendar_id, exc_info=exc)
    return result


def _drop_connection() -> None:
    """Close this thread's broken connection so the next query opens a new one; Django
    only checks a connection's health between requests, and a command has none. Inside
    a transaction (a test's) the connection is left to it."""
    if connection.in_atomic_block:
        return
    try:
        connection.close()
    except (DatabaseError, InterfaceError):
        logger.debug("Closing the broken database connection failed", exc_info=True)


def _database_answers(deadline: float) -> bool:
    while True:
        try:
            connection.ensure_connection()
            return True
        except (DatabaseError, InterfaceError):
            _drop_connection()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(RECONNECT_INTERVAL, remaining))


def record_sync_errors(
    *,
    calendars: Iterable[SelectedCalendar],
    results: Iterable[SyncResult],
    wait: float = 0.0,
    on_wait: Callable[[int], None] | None = None,
) -> list[SyncResult]:
    """Write the errors that a database failure kept off the token rows (``last_error``,
    ``last_error_at``), so the dashboard shows them; returns the results still unwritten.

    When the database does not answer, waits up to ``wait`` seconds for it to come back
    (``on_wait(count)`` is called once before waiting) and tries once more.
    """
    pending = [result for result in results if not result.error_recorded]
    if not pending:
        return []
    by_pk = {selected.pk: selected for selected in calendars}
    deadline = time.monotonic() + wait
    waited = False
    while True:
        try:
            for result in pending:
                if not result.error_recorded:
                    _write_error(by_pk[result.selected_calendar_id], result)
            return []
        except (DatabaseError, InterfaceError) as exc:
            _drop_connection()
            unwritten = [result for result in pending if not result.error_recorded]
            if waited or wait <= 0:
                logger.warning(
                    "%d sync error(s) not recorded, the database is unavailable: %s",
                    len(unwritten),
                    first_line(exc),
                )
                return unwritten
            waited = True
            if on_wait is not None:
                on_wait(len(unwritten))
            if not _database_answers(deadline):
                logger.warning(
                    "%d sync error(s) not recorded: the database did not answer within %g s",
                    len(unwritten),
                    wait,
                )
                return unwritten


def _write_error(selected: SelectedCalendar, result: SyncResult) -> None:
    CalendarSyncToken.objects.update_or_create(
        credential_id=selected.credential_id,
        calendar_id=selected.calendar_id,
        defaults={
            "last_error": result.error[:ERROR_MAX_LENGTH],
            "last_error_at": result.failed_at or timezone.now(),
        },
    )
    result.error_recorded = True
