"""The SQL read: users' busy time from the mirrored events and, calendar by calendar,
whether the SQL copy covers a window.

On PostgreSQL one prepared statement answers both for any number of users, so an
answer is one snapshot: each enabled selected calendar with its coverage, joined to an
index-only range scan of its busy events. SQLite runs the same semantics through the
ORM inside one transaction.

A calendar is *covered* for ``[start, end)`` when its credential is valid, it has
completed a sync whose window contains the range, and no error is newer than that
sync's success.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import Q

from calcache.availability.replica import router
from calcache.availability.stats import stats
from calcache.conf import conf
from calcache.extras import import_psycopg
from calcache.intervals import Interval, merge_intervals
from calcache.models import (
    CalendarEvent,
    CalendarSyncToken,
    Credential,
    EventStatus,
    ResponseStatus,
    SelectedCalendar,
    Transparency,
)


@dataclass(frozen=True)
class CalendarState:
    """One enabled selected calendar of a user, and whether SQL covers the window."""

    credential_id: int
    calendar_id: str
    covered: bool
    credential_invalid: bool


@dataclass
class UserRead:
    """What SQL knows of one user for a window: their calendars, and the busy rows (not
    yet merged) of the calendars that were read."""

    calendars: list[CalendarState] = field(default_factory=list)
    rows: list[Interval] = field(default_factory=list)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


def user_ids_of(users: Iterable[Any]) -> list[Any]:
    """Primary keys of ``users`` (objects or ids), each once, in the order given."""
    seen: dict[Any, None] = {}
    for user in users:
        seen.setdefault(getattr(user, "pk", user), None)
    return list(seen)


def read_users(
    *,
    user_ids: list[Any],
    start: datetime,
    end: datetime,
    readers: Iterable[Any] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> dict[Any, UserRead]:
    """Every given user's enabled calendars with their coverage, and busy rows: of the
    covered calendars of ``readers`` (the users whose answer SQL may give), or of every
    calendar of every user when ``readers`` is None. One statement on PostgreSQL, on the
    database ``using``.

    ``start``/``end`` must be aware and UTC; every user given is a key.
    """
    result = {user_id: UserRead() for user_id in user_ids}
    if not user_ids:
        return result
    every = readers is None
    reader_ids = list(user_ids) if readers is None else list(readers)
    if connections[using].vendor == "postgresql" and (every or reader_ids):
        _read_postgresql(result, user_ids, reader_ids, every, start, end, using)
    else:
        with transaction.atomic(using=using):  # one snapshot: calendars and their rows
            _read_orm(result, user_ids, reader_ids, every, start, end, using)
    return result


def _read_postgresql(
    result: dict[Any, UserRead],
    user_ids: list[Any],
    reader_ids: list[Any],
    every: bool,
    start: datetime,
    end: datetime,
    using: str,
) -> None:
    psycopg = import_psycopg()

    connection = connections[using]
    connection.ensure_connection()
    raw = connection.connection
    # A server-side-binding cursor on Django's own connection (same transaction):
    # psycopg prepares the statement after a few runs, and planning this join costs
    # more than running it (about 1.5 ms vs 0.1 ms). Where prepared statements cannot
    # be used (a transaction-pooling PgBouncer), set OPTIONS["prepare_threshold"] to
    # None and psycopg never prepares. Binary results: psycopg's C loaders make the
    # timestamps and ids without parsing text.
    with psycopg.Cursor(raw) as cursor:
        cursor.execute(
            pg_read_sql(), pg_read_params(user_ids, reader_ids, every, start, end), binary=True
        )
        rows = cursor.fetchall()
    utc = raw.info.timezone.utcoffset(None) == timedelta(0)
    for user_id, credential_id, calendar_id, covered, invalid, starts, ends in rows:
        read = result[user_id]
        read.calendars.append(CalendarState(credential_id, calendar_id, covered, invalid))
        if starts:
            if not utc:  # binary timestamps come in the session's time zone
                starts = [value.astimezone(UTC) for value in starts]
                ends = [value.astimezone(UTC) for value in ends]
            read.rows.extend(zip(starts, ends, strict=True))


def pg_read_params(
    user_ids: list[Any], reader_ids: list[Any], every: bool, start: datetime, end: datetime
) -> dict[str, Any]:
    """The parameters of the PostgreSQL read statement, ``pg_read_sql``."""
    return {
        "user_ids": _id_array(user_ids),
        "readers": _id_array(reader_ids),
        "every": every,
        "start": start,
        "end": end,
    }


# For a prepared statement PostgreSQL compares the generic plan, costed for an array of
# unknown length (as if of 10 elements), with custom plans costed for the actual ids: with
# fewer ids every custom plan looks cheaper, so it plans every execution (about 1.5 ms, ten
# times the run). Repeating the last id up to 10 changes no answer (ANY) and lets the
# generic plan, the same nested loop, be chosen once and reused.
GENERIC_PLAN_IDS = 10


def _padded(ids: list[Any]) -> list[Any]:
    if not ids or len(ids) >= GENERIC_PLAN_IDS:
        return ids
    return ids + [ids[-1]] * (GENERIC_PLAN_IDS - len(ids))


def _id_array(ids: list[Any]) -> str:
    """``ids``, padded, as an array literal the statement casts to the user key's type:
    psycopg's list dumper inspects every element on every call, which cost as much as
    running the statement."""
    padded = _padded(ids)
    if all(type(value) is int for value in padded):
        return "{" + ",".join(map(str, padded)) + "}"
    quoted = (str(value).replace("\\", "\\\\").replace('"', '\\"') for value in padded)
    return "{" + ",".join(f'"{value}"' for value in quoted) + "}"


def _read_orm(
    result: dict[Any, UserRead],
    user_ids: list[Any],
    reader_ids: list[Any],
    every: bool,
    start: datetime,
    end: datetime,
    using: str,
) -> None:
    selected = list(
        SelectedCalendar.objects.using(using)
        .filter(credential__user_id__in=user_ids, enabled=True)
        .order_by("pk")
        .values_list("credential__user_id", "credential_id", "calendar_id", "credential__invalid")
    )
    if not selected:
        return
    tokens = {
        (t.credential_id, t.calendar_id): t
        for t in CalendarSyncToken.objects.using(using).filter(
            credential_id__in={credential_id for _, credential_id, _, _ in selected}
        )
    }
    readers = set(reader_ids)
    wanted: defaultdict[Any, list[tuple[int, str]]] = defaultdict(list)
    for user_id, credential_id, calendar_id, invalid in selected:
        covered = not invalid and _covers(tokens.get((credential_id, calendar_id)), start, end)
        result[user_id].calendars.append(
            CalendarState(credential_id, calendar_id, covered, invalid)
        )
        if every or (covered and user_id in readers):
            wanted[user_id].append((credential_id, calendar_id))
    for user_id, calendars in wanted.items():
        result[user_id].rows.extend(_rows_orm(calendars, start, end, using))


def _covers(token: CalendarSyncToken | None, start: datetime, end: datetime) -> bool:
    return (
        token is not None
        and token.last_sync_at is not None
        and token.window_start is not None
        and token.window_end is not None
        and token.window_start <= start
        and token.window_end >= end
        and (token.last_error_at is None or token.last_error_at < token.last_sync_at)
    )


def _rows_orm(
    calendars: list[tuple[int, str]], start: datetime, end: datetime, using: str
) -> list[Interval]:
    # credential_id = X AND calendar_id IN (...) per credential: with the lower bound
    # this is a range scan of calcache_event_busy_range (README "Indexes").
    by_credential: dict[int, list[str]] = defaultdict(list)
    for credential_id, calendar_id in calendars:
        by_credential[credential_id].append(calendar_id)
    which = Q()
    for credential_id, calendar_ids in by_credential.items():
        which |= Q(credential_id=credential_id, calendar_id__in=calendar_ids)
    bounds = (
        SelectedCalendar.objects.using(using).filter(which).values_list("longest_event", flat=True)
    )
    longest = max(bounds, default=timedelta(0))
    return list(
        CalendarEvent.objects.using(using)
        .busy()
        .filter(which)
        .overlapping(start, end, longest=longest)
        .order_by()
        .values_list("start_time", "end_time")
    )


# The busy predicate must read exactly like models.BUSY, or the planner cannot prove the
# partial index applies. One row per enabled calendar, with its coverage and, when read,
# its busy events' starts and ends as two arrays (NULL when it has none, or was not read).
@cache
def pg_read_sql() -> str:
    """The PostgreSQL read statement (its parameters: ``pg_read_params``)."""
    key_type = Credential._meta.get_field("user").db_type(connections[DEFAULT_DB_ALIAS])
    return f"""
SELECT k.user_id, k.credential_id, k.calendar_id, k.covered, k.invalid, e.starts, e.ends
FROM (
  SELECT c.user_id, s.credential_id, s.calendar_id, s.longest_event, c.invalid, s.id,
         COALESCE(
           NOT c.invalid
           AND t.last_sync_at IS NOT NULL
           AND t.window_start <= %(start)s
           AND t.window_end >= %(end)s
           AND (t.last_error_at IS NULL OR t.last_error_at < t.last_sync_at),
           false
         ) AS covered
  FROM {SelectedCalendar._meta.db_table} s
  JOIN {Credential._meta.db_table} c ON c.id = s.credential_id
  LEFT JOIN {CalendarSyncToken._meta.db_table} t
    ON t.credential_id = s.credential_id AND t.calendar_id = s.calendar_id
  WHERE c.user_id = ANY(%(user_ids)s::{key_type}[]) AND s.enabled
) k
LEFT JOIN LATERAL (
  SELECT array_agg(e.start_time) AS starts, array_agg(e.end_time) AS ends
  FROM {CalendarEvent._meta.db_table} e
  WHERE (%(every)s OR (k.covered AND k.user_id = ANY(%(readers)s::{key_type}[])))
    AND e.credential_id = k.credential_id
    AND e.calendar_id = k.calendar_id
    AND e.start_time < %(end)s
    AND e.start_time >= %(start)s - k.longest_event
    AND e.end_time > %(start)s
    AND NOT (e.status = '{EventStatus.CANCELLED.value}')
    AND NOT (e.transparency = '{Transparency.TRANSPARENT.value}')
    AND NOT (e.self_response_status = '{ResponseStatus.DECLINED.value}')
) e ON true
ORDER BY k.id
"""


def read_on_read_database(
    *,
    user_ids: list[Any],
    start: datetime,
    end: datetime,
    readers: Iterable[Any] | None = None,
) -> dict[Any, UserRead]:
    """``read_users`` on ``CALCACHE_READ_DATABASE`` when it is healthy
    (``calcache.availability.replica``), else on ``default``; a failed replica read is
    repeated on ``default`` and counted."""
    alias = router.alias()
    if alias != DEFAULT_DB_ALIAS:
        try:
            return read_users(user_ids=user_ids, start=start, end=end, readers=readers, using=alias)
        except DatabaseError as exc:
            router.failed(alias, exc)
    if conf.read_database != DEFAULT_DB_ALIAS:
        stats.count_fallback()
    return read_users(user_ids=user_ids, start=start, end=end, readers=readers)


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    _require_aware(start, "start")
    _require_aware(end, "end")
    return start.astimezone(UTC), end.astimezone(UTC)


def busy_intervals(*, user: Any, start: datetime, end: datetime) -> list[Interval]:
    """The user's busy time over all their enabled selected calendars, from SQL alone.

    Aware UTC datetimes, sorted, overlapping or touching intervals merged,
    clipped to ``[start, end)``. Cancelled, transparent and self-declined events
    never count; all-day events were stored as midnight to midnight in their
    calendar's time zone. Served by the partial covering index
    ``calcache_event_busy_range``, bounded below by each calendar's longest event.
    """
    user_id = getattr(user, "pk", user)
    return busy_intervals_for_users(users=[user_id], start=start, end=end)[user_id]


def busy_intervals_for_users(
    *, users: Iterable[Any], start: datetime, end: datetime
) -> dict[Any, list[Interval]]:
    """``busy_intervals`` for many users (objects or ids) in one statement: user id ->
    busy time; every user given is a key (an empty list when free)."""
    start, end = _window(start, end)
    user_ids = user_ids_of(users)
    reads = read_on_read_database(user_ids=user_ids, start=start, end=end)
    return {
        user_id: merge_intervals(read.rows, start=start, end=end) if end > start else []
        for user_id, read in reads.items()
    }


def sync_coverage(*, user: Any, start: datetime, end: datetime) -> bool:
    """Whether the SQL copy answers for ``[start, end)``: the user has enabled calendars
    and every one of them is covered (on a valid credential, a completed sync whose window
    contains the range, no error newer than its last success)."""
    start, end = _window(start, end)
    user_id = getattr(user, "pk", user)
    reads = read_on_read_database(user_ids=[user_id], start=start, end=end, readers=())
    calendars = reads[user_id].calendars
    return bool(calendars) and all(calendar.covered for calendar in calendars)
