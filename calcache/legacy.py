"""The legacy JSON cache that the SQL tables replace, as the seed's host app had it.

A freeBusy query is widened to whole months; its key is the canonical JSON of
``{"timeMin", "timeMax", "items"}`` and its value Google's freeBusy response,
kept for 90 days. A window inside a cached key's months is answered from the
blob; a miss asks Google and stores the widened answer.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from calcache.google import GoogleCalendarClient
from calcache.models import CalendarCache, Credential, SelectedCalendar
from calcache.selectors import Interval, merge_intervals

logger = logging.getLogger("calcache.legacy")

JSON_CACHE_TTL = timedelta(days=90)


@dataclass(frozen=True)
class CachedQuery:
    credential: Credential
    calendar_ids: list[str]
    time_min: datetime
    time_max: datetime

    @property
    def key(self) -> str:
        return cache_key(self.calendar_ids, self.time_min, self.time_max)


def month_bounds(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The first instant of ``start``'s month and the first instant after ``end``'s month (UTC)."""
    start, last = start.astimezone(UTC), (end - timedelta(microseconds=1)).astimezone(UTC)
    time_min = datetime(start.year, start.month, 1, tzinfo=UTC)
    year, month = (last.year + 1, 1) if last.month == 12 else (last.year, last.month + 1)
    return time_min, datetime(year, month, 1, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cache_key(calendar_ids: list[str], time_min: datetime, time_max: datetime) -> str:
    """Canonical JSON of the widened freeBusy query."""
    query = {"timeMin": _iso(time_min), "timeMax": _iso(time_max), "items": sorted(calendar_ids)}
    return json.dumps(query, sort_keys=True, separators=(",", ":"))


def user_queries(*, user: Any, start: datetime, end: datetime) -> list[CachedQuery]:
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
        CachedQuery(credentials[cid], sorted(ids), time_min, time_max)
        for cid, ids in sorted(by_credential.items())
    ]


def _busy_from_value(value: dict[str, Any], calendar_ids: list[str]) -> list[Interval]:
    intervals: list[Interval] = []
    for calendar_id in calendar_ids:
        entry = (value.get("calendars") or {}).get(calendar_id) or {}
        for block in entry.get("busy", []):
            intervals.append(
                (
                    datetime.fromisoformat(block["start"].replace("Z", "+00:00")),
                    datetime.fromisoformat(block["end"].replace("Z", "+00:00")),
                )
            )
    return intervals


def _covering_value(
    rows: list[CalendarCache], query: CachedQuery, start: datetime, end: datetime
) -> dict[str, Any] | None:
    """The exact widened key's blob, else any blob of the same calendars whose months
    contain the window (a week's blob answers a day inside it)."""
    for row in rows:
        if row.key == query.key:
            return dict(row.value)
    for row in rows:
        try:
            key = json.loads(row.key)
            time_min = datetime.fromisoformat(key["timeMin"].replace("Z", "+00:00"))
            time_max = datetime.fromisoformat(key["timeMax"].replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if key.get("items") == query.calendar_ids and time_min <= start and end <= time_max:
            return dict(row.value)
    return None


def cached_busy(*, user: Any, start: datetime, end: datetime) -> list[Interval] | None:
    """The user's busy time from fresh JSON blobs, or None when any blob is missing."""
    queries = user_queries(user=user, start=start, end=end)
    if not queries:
        return None
    rows_by_credential: defaultdict[int, list[CalendarCache]] = defaultdict(list)
    for row in CalendarCache.objects.filter(
        credential_id__in=[q.credential.pk for q in queries], expires_at__gt=timezone.now()
    ):
        rows_by_credential[row.credential_id].append(row)
    intervals: list[Interval] = []
    for query in queries:
        value = _covering_value(rows_by_credential[query.credential.pk], query, start, end)
        if value is None:
            return None
        intervals.extend(_busy_from_value(value, query.calendar_ids))
    return merge_intervals(intervals, start=start.astimezone(UTC), end=end.astimezone(UTC))


def _save_refreshed_token(credential: Credential) -> Any:
    def save(token: dict[str, Any]) -> None:
        credential.token = token
        credential.save(update_fields=["encrypted_token", "updated_at"])

    return save


def fetch_freebusy(query: CachedQuery) -> dict[str, Any]:
    """Google's freeBusy answer for the widened query, in Google's JSON shape."""
    client = GoogleCalendarClient(
        query.credential.token, on_token_refresh=_save_refreshed_token(query.credential)
    )
    result = client.freebusy(query.calendar_ids, query.time_min, query.time_max)
    return {
        "kind": "calendar#freeBusy",
        "timeMin": _iso(query.time_min),
        "timeMax": _iso(query.time_max),
        "calendars": {
            calendar_id: {
                "busy": [{"start": _iso(s), "end": _iso(e)} for s, e in busy.busy],
                **({"errors": [{"reason": r} for r in busy.errors]} if busy.errors else {}),
            }
            for calendar_id, busy in result.items()
        },
    }


def store_blob(query: CachedQuery, value: dict[str, Any]) -> None:
    """``upsertCachedAvailability``: the widened answer, fresh for 90 days."""
    with transaction.atomic():
        CalendarCache.objects.update_or_create(
            credential=query.credential,
            key=query.key,
            defaults={"value": value, "expires_at": timezone.now() + JSON_CACHE_TTL},
        )


def live_busy(*, user: Any, start: datetime, end: datetime, store: bool = True) -> list[Interval]:
    """Ask Google (freeBusy) and, with ``store``, keep the widened answers as JSON blobs."""
    intervals: list[Interval] = []
    for query in user_queries(user=user, start=start, end=end):
        value = fetch_freebusy(query)
        if store:
            store_blob(query, value)
        intervals.extend(_busy_from_value(value, query.calendar_ids))
    return merge_intervals(intervals, start=start.astimezone(UTC), end=end.astimezone(UTC))


def refresh_calendar_blobs(selected: SelectedCalendar) -> int:
    """Rewrite the fresh JSON blobs that cover ``selected`` from Google; returns how many."""
    credential = selected.credential
    refreshed = 0
    rows = CalendarCache.objects.filter(credential=credential, expires_at__gt=timezone.now())
    for row in rows:
        try:
            query_json = json.loads(row.key)
        except ValueError:
            continue
        if selected.calendar_id not in query_json.get("items", []):
            continue
        query = CachedQuery(
            credential=credential,
            calendar_ids=list(query_json["items"]),
            time_min=datetime.fromisoformat(query_json["timeMin"].replace("Z", "+00:00")),
            time_max=datetime.fromisoformat(query_json["timeMax"].replace("Z", "+00:00")),
        )
        store_blob(query, fetch_freebusy(query))
        refreshed += 1
    return refreshed
