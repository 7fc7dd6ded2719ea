"""The live read: Google's freeBusy, asked for a user's calendars.

A query is widened to whole months (``month_bounds``) so that its answer can be kept
by the JSON cache (``calcache.availability.json_cache``) and answer later windows of
the same months; ``live_busy`` hands each answer to ``keep`` for that.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from calcache.conf import conf
from calcache.google.client import freebusy_calendar_error
from calcache.google.credentials import client_for
from calcache.intervals import Interval, merge_intervals
from calcache.models import Credential, SelectedCalendar


@dataclass(frozen=True)
class FreeBusyQuery:
    """One freeBusy question: a credential's calendars over whole months."""

    credential: Credential
    calendar_ids: list[str]
    time_min: datetime
    time_max: datetime


def month_bounds(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The first instant of ``start``'s month and the first instant after ``end``'s month (UTC)."""
    start, last = start.astimezone(UTC), (end - timedelta(microseconds=1)).astimezone(UTC)
    time_min = datetime(start.year, start.month, 1, tzinfo=UTC)
    year, month = (last.year + 1, 1) if last.month == 12 else (last.year, last.month + 1)
    return time_min, datetime(year, month, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    """``2026-06-01T09:00:00Z``: the form of Google's freeBusy times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_queries(*, user: Any, start: datetime, end: datetime) -> list[FreeBusyQuery]:
    """One widened query per valid credential of the user, over its enabled calendars."""
    by_credential: defaultdict[int, list[str]] = defaultdict(list)
    credentials: dict[int, Credential] = {}
    selected = SelectedCalendar.objects.filter(
        credential__user=user, enabled=True, credential__invalid=False
    ).select_related("credential")
    for calendar in selected:
        by_credential[calendar.credential_id].append(calendar.calendar_id)
        credentials[calendar.credential_id] = calendar.credential
    time_min, time_max = month_bounds(start, end)
    return [
        FreeBusyQuery(credentials[cid], sorted(ids), time_min, time_max)
        for cid, ids in sorted(by_credential.items())
    ]


def _error_reasons(errors: Any) -> list[str]:
    if not isinstance(errors, list):
        return ["unknown"]
    return [
        str(error.get("reason") or "unknown") if isinstance(error, dict) else "unknown"
        for error in errors
    ]


def busy_from_value(value: dict[str, Any], calendar_ids: list[str]) -> list[Interval]:
    """The busy blocks of ``calendar_ids`` in a freeBusy answer (Google's JSON shape).

    A calendar whose entry carries ``errors`` has no known busy time, so it is never
    answered as free: ``GoogleError`` (``freebusy_calendar_error``: ``CalendarNotFound``
    for ``notFound``, else ``GoogleUnavailable``)."""
    intervals: list[Interval] = []
    for calendar_id in calendar_ids:
        entry = (value.get("calendars") or {}).get(calendar_id) or {}
        if entry.get("errors"):
            raise freebusy_calendar_error(calendar_id, _error_reasons(entry["errors"]))
        for block in entry.get("busy", []):
            intervals.append(
                (
                    datetime.fromisoformat(block["start"].replace("Z", "+00:00")),
                    datetime.fromisoformat(block["end"].replace("Z", "+00:00")),
                )
            )
    return intervals


def fetch_freebusy(query: FreeBusyQuery, *, for_request: bool = False) -> dict[str, Any]:
    """Google's freeBusy answer for the widened query, in Google's JSON shape.

    A calendar Google could not read keeps its ``errors`` here (the JSON cache stores
    them, and never answers from such an entry); ``busy_from_value`` refuses it.
    ``for_request``: a person is waiting, so one attempt within ``CALCACHE_LIVE_TIMEOUT``
    (a timeout or a failure raises ``GoogleError``); background work keeps its retries.
    """
    if for_request:
        client = client_for(query.credential, max_attempts=1, timeout=conf.live_timeout)
    else:
        client = client_for(query.credential)
    result = client.freebusy(query.calendar_ids, query.time_min, query.time_max)
    return {
        "kind": "calendar#freeBusy",
        "timeMin": iso(query.time_min),
        "timeMax": iso(query.time_max),
        "calendars": {
            calendar_id: {
                "busy": [{"start": iso(s), "end": iso(e)} for s, e in busy.busy],
                **({"errors": [{"reason": r} for r in busy.errors]} if busy.errors else {}),
            }
            for calendar_id, busy in result.items()
        },
    }


def live_busy(
    *,
    user: Any,
    start: datetime,
    end: datetime,
    keep: Callable[[FreeBusyQuery, dict[str, Any]], None] | None = None,
) -> list[Interval]:
    """Ask Google (freeBusy) for the user's busy time; each widened answer goes to ``keep``
    (the JSON cache's ``store_blob``) when given. A calendar Google could not read raises
    ``GoogleError`` (``busy_from_value``), after its answer was kept."""
    intervals: list[Interval] = []
    for query in user_queries(user=user, start=start, end=end):
        value = fetch_freebusy(query)
        if keep is not None:
            keep(query, value)
        intervals.extend(busy_from_value(value, query.calendar_ids))
    return merge_intervals(intervals, start=start.astimezone(UTC), end=end.astimezone(UTC))


def fetch_calendars(
    *,
    credential: Credential,
    calendar_ids: list[str],
    start: datetime,
    end: datetime,
    keep: Callable[[FreeBusyQuery, dict[str, Any]], None] | None = None,
) -> dict[str, list[Interval]]:
    """One freeBusy call for exactly ``calendar_ids`` of ``credential``, made for a
    request (one attempt, ``CALCACHE_LIVE_TIMEOUT``): calendar id -> busy time, clipped
    to ``[start, end)``. The month-widened answer goes to ``keep`` when given; then a
    calendar Google could not read raises ``GoogleError`` (``busy_from_value``)."""
    time_min, time_max = month_bounds(start, end)
    query = FreeBusyQuery(credential, sorted(calendar_ids), time_min, time_max)
    value = fetch_freebusy(query, for_request=True)
    if keep is not None:
        keep(query, value)
    return {
        calendar_id: merge_intervals(busy_from_value(value, [calendar_id]), start=start, end=end)
        for calendar_id in calendar_ids
    }
