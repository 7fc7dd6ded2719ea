"""The legacy JSON cache that the SQL tables replace, as the host app had it before.

A freeBusy query is widened to whole months; its key is the canonical JSON of
``{"timeMin", "timeMax", "items"}`` and its value Google's freeBusy response,
kept for 90 days. A window inside a cached key's months is answered from the
blob; a miss asks Google (``calcache.availability.live``) and stores the widened
answer. docs/rollout.md describes its place in the migration.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calcache.availability.live import (
    FreeBusyQuery,
    busy_from_value,
    fetch_freebusy,
    iso,
    month_bounds,
    user_queries,
)
from calcache.exceptions import GoogleError
from calcache.intervals import Interval, merge_intervals
from calcache.models import CalendarCache, SelectedCalendar

JSON_CACHE_TTL = timedelta(days=90)


def cache_key(calendar_ids: list[str], time_min: datetime, time_max: datetime) -> str:
    """Canonical JSON of the widened freeBusy query."""
    query = {"timeMin": iso(time_min), "timeMax": iso(time_max), "items": sorted(calendar_ids)}
    return json.dumps(query, sort_keys=True, separators=(",", ":"))


def query_key(query: FreeBusyQuery) -> str:
    """The cache key of ``query``."""
    return cache_key(query.calendar_ids, query.time_min, query.time_max)


def parse_key(key: str) -> tuple[list[str], datetime, datetime] | None:
    """A stored key's calendar ids and months, or None for a key not in our form (rows
    written by other code are skipped, never fatal)."""
    try:
        parsed = json.loads(key)
        items = parsed["items"]
        time_min = datetime.fromisoformat(parsed["timeMin"].replace("Z", "+00:00"))
        time_max = datetime.fromisoformat(parsed["timeMax"].replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        return None
    return items, time_min, time_max


def _covering_value(
    rows: list[CalendarCache], query: FreeBusyQuery, start: datetime, end: datetime
) -> dict[str, Any] | None:
    """The exact widened key's blob, else any blob of the same calendars whose months
    contain the window (a week's blob answers a day inside it)."""
    key = query_key(query)
    for row in rows:
        if row.key == key:
            return dict(row.value)
    for row in rows:
        parsed = parse_key(row.key)
        if parsed is None:
            continue
        items, time_min, time_max = parsed
        if items == query.calendar_ids and time_min <= start and end <= time_max:
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
        try:
            intervals.extend(busy_from_value(value, query.calendar_ids))
        except GoogleError:  # a calendar Google could not read: no blob answers for it
            return None
    return merge_intervals(intervals, start=start.astimezone(UTC), end=end.astimezone(UTC))


def cached_calendars(
    *,
    wanted: Mapping[int, Iterable[str]],
    selected: Mapping[int, Iterable[str]],
    start: datetime,
    end: datetime,
) -> dict[tuple[int, str], list[Interval]]:
    """Busy time of each wanted (credential id, calendar id) that a fresh blob answers:
    a blob of that credential whose months contain the window and whose answer lists the
    calendar without errors. Calendars no blob answers are missing from the result.

    ``selected``: each credential's enabled calendars; the blob of that whole set (what
    an all-JSON answer stores) is looked up by its exact key first, in one query.
    """
    asked = {cid: sorted(set(ids)) for cid, ids in wanted.items() if ids}
    if not asked:
        return {}
    time_min, time_max = month_bounds(start, end)
    keys = {(cid, cache_key(ids, time_min, time_max)) for cid, ids in asked.items()}
    keys |= {
        (cid, cache_key(sorted(selected[cid]), time_min, time_max))
        for cid in asked
        if selected.get(cid)
    }
    which = Q()
    for cid, key in keys:
        which |= Q(credential_id=cid, key=key)
    fresh = CalendarCache.objects.filter(expires_at__gt=timezone.now())
    found: dict[tuple[int, str], list[Interval]] = {}
    exact = fresh.filter(which).order_by("-updated_at", "-pk")
    _answer_from(exact.values_list("credential_id", "key", "value"), asked, start, end, found)
    missing = {cid for cid, ids in asked.items() if any((cid, cal) not in found for cal in ids)}
    if missing:
        others = fresh.filter(credential_id__in=missing).order_by("-updated_at", "-pk")
        _answer_from(others.values_list("credential_id", "key", "value"), asked, start, end, found)
    return found


def _answer_from(
    rows: Iterable[tuple[int, str, Any]],
    wanted: Mapping[int, list[str]],
    start: datetime,
    end: datetime,
    found: dict[tuple[int, str], list[Interval]],
) -> None:
    for credential_id, key, value in rows:
        parsed = parse_key(key)
        if parsed is None or not isinstance(value, dict):
            continue
        items, time_min, time_max = parsed
        if not (time_min <= start and end <= time_max):
            continue
        calendars = value.get("calendars") or {}
        for calendar_id in wanted[credential_id]:
            entry = calendars.get(calendar_id)
            if (credential_id, calendar_id) in found or calendar_id not in items:
                continue
            if not isinstance(entry, dict) or entry.get("errors"):
                continue
            found[(credential_id, calendar_id)] = merge_intervals(
                busy_from_value(value, [calendar_id]), start=start, end=end
            )


def store_blob(
    query: FreeBusyQuery, value: dict[str, Any], *, expires_at: datetime | None = None
) -> None:
    """``upsertCachedAvailability``: the widened answer, fresh for 90 days (or until
    ``expires_at``)."""
    with transaction.atomic():
        CalendarCache.objects.update_or_create(
            credential=query.credential,
            key=query_key(query),
            defaults={"value": value, "expires_at": expires_at or timezone.now() + JSON_CACHE_TTL},
        )


def refresh_calendar_blobs(selected: SelectedCalendar) -> int:
    """Rewrite the fresh JSON blobs that cover ``selected`` from Google; returns how many.

    A rewritten blob keeps its expiry: a calendar that keeps changing must not keep
    every blob it was ever asked about alive (and refreshed on every change)."""
    credential = selected.credential
    refreshed = 0
    rows = CalendarCache.objects.filter(credential=credential, expires_at__gt=timezone.now())
    for row in rows:
        parsed = parse_key(row.key)
        if parsed is None or selected.calendar_id not in parsed[0]:
            continue
        items, time_min, time_max = parsed
        query = FreeBusyQuery(credential, list(items), time_min, time_max)
        store_blob(query, fetch_freebusy(query), expires_at=row.expires_at)
        refreshed += 1
    return refreshed
