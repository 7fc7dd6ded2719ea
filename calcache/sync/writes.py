"""Writes of the sync: one bulk upsert per page, deletions, the longest-event bound.

On PostgreSQL a page is one binary ``COPY`` into a session-local temporary table and one
``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` from it, which also compares the stored
versions; elsewhere it is the ORM's ``bulk_create`` after a read of those versions. The
ORM path spent about two thirds of a page in Python (model instances, Django rendering
the statement, psycopg quoting its parameters); COPY's rows are encoded by psycopg's C
code, and the server's work is what remains: about 6x the events/s on PostgreSQL 15
(pages of 2,500: ~50,000/s new or updated, ~150,000/s unchanged; ``bench/write_path.py``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from calcache.extras import import_psycopg
from calcache.models import CalendarEvent, SelectedCalendar
from calcache.sync.mapping import MappedEvent

UNIQUE_FIELDS = ["credential", "calendar_id", "google_event_id"]
UPDATE_FIELDS = [
    "user",
    "etag",
    "status",
    "summary",
    "start_time",
    "end_time",
    "timezone",
    "is_all_day",
    "transparency",
    "self_response_status",
    "recurring_event_id",
    "google_created_at",
    "google_updated_at",
    "sequence",
    "ical_uid",
    "updated_at",
]
DELETE_BATCH = 1000


@dataclass
class PageWrite:
    upserted: int = 0
    unchanged: int = 0
    deleted: int = 0


# What a row must still equal for an event with an unchanged etag to be skipped: the etag,
# and the columns that also depend on something else than the event (its instants on the
# calendar's time zone for all-day events, its title on CALCACHE_STORE_SUMMARY).
VERSION_FIELDS = ("etag", "start_time", "end_time", "summary")


def _stored_versions(selected: SelectedCalendar, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    if not ids:
        return {}
    rows = CalendarEvent.objects.filter(
        credential_id=selected.credential_id,
        calendar_id=selected.calendar_id,
        google_event_id__in=ids,
    ).values_list("google_event_id", *VERSION_FIELDS)
    return {row[0]: tuple(row[1:]) for row in rows}


def _unchanged(event: MappedEvent, stored: tuple[Any, ...] | None) -> bool:
    return bool(event.fields["etag"]) and stored == tuple(
        event.fields[name] for name in VERSION_FIELDS
    )


def grow_longest_event(selected: SelectedCalendar, durations: Iterable[timedelta]) -> None:
    """Raise the calendar's longest-event bound (the caller holds the calendar's lock)."""
    longest = max(durations, default=timedelta(0))
    if longest > selected.longest_event:
        selected.longest_event = longest
        SelectedCalendar.objects.filter(pk=selected.pk).update(longest_event=longest)


def apply_page(
    *, selected: SelectedCalendar, changed: list[MappedEvent], cancelled_ids: list[str]
) -> PageWrite:
    """Upsert the page's events and delete its cancelled ones, in one transaction.

    Events whose etag is unchanged are not written again (unless the row differs in what
    the etag does not cover: see ``VERSION_FIELDS``).
    """
    by_id = {event.google_event_id: event for event in changed}  # the last one wins
    gone = [eid for eid in dict.fromkeys(cancelled_ids) if eid not in by_id]
    result = PageWrite()
    with transaction.atomic():
        if by_id:
            upsert = _upsert_postgresql if connection.vendor == "postgresql" else _upsert_orm
            result.upserted, longest = upsert(selected, list(by_id.values()))
            result.unchanged = len(by_id) - result.upserted
            grow_longest_event(selected, longest)
        if gone:
            result.deleted, _ = CalendarEvent.objects.filter(
                credential_id=selected.credential_id,
                calendar_id=selected.calendar_id,
                google_event_id__in=gone,
            ).delete()
    return result


def _upsert_orm(
    selected: SelectedCalendar, events: list[MappedEvent]
) -> tuple[int, list[timedelta]]:
    """Any database: read the stored versions, then ``bulk_create`` what changed.

    Returns how many rows were written and their durations.
    """
    stored = _stored_versions(selected, [event.google_event_id for event in events])
    to_write = [
        event for event in events if not _unchanged(event, stored.get(event.google_event_id))
    ]
    if to_write:
        user_id = selected.credential.user_id
        CalendarEvent.objects.bulk_create(
            [
                CalendarEvent(
                    credential_id=selected.credential_id,
                    user_id=user_id,
                    calendar_id=selected.calendar_id,
                    google_event_id=event.google_event_id,
                    **event.fields,
                )
                for event in to_write
            ],
            update_conflicts=True,
            unique_fields=UNIQUE_FIELDS,
            update_fields=UPDATE_FIELDS,
        )
    return len(to_write), [event.duration for event in to_write]


def _upsert_postgresql(
    selected: SelectedCalendar, events: list[MappedEvent]
) -> tuple[int, list[timedelta]]:
    """PostgreSQL: COPY the page into the session's page table, then one upsert from it
    that skips unchanged events itself (no separate read of the stored versions).

    Writes the columns ``_upsert_orm`` writes, with one ``now`` for the page's
    ``created_at``/``updated_at`` where the ORM takes one per row. It runs on Django's
    connection, in the caller's transaction, with Django's error classes; psycopg
    prepares the upsert after a few pages (``prepare_threshold``, as for
    ``selectors._PG_BUSY_SQL``). Returns how many rows were written and the longest of
    their durations.
    """
    psycopg = import_psycopg()

    params = {
        "credential_id": selected.credential_id,
        "user_id": selected.credential.user_id,
        "calendar_id": selected.calendar_id,
        "now": timezone.now(),
    }
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_PG_CREATE_PAGE_TABLE, prepare=False)
        with cursor.copy(_PG_COPY_PAGE) as copy:
            copy.set_types(_PG_PAGE_TYPES)
            for event in events:
                copy.write_row((event.google_event_id, *_event_values(event.fields)))
        cursor.execute(_PG_UPSERT_PAGE, params)
        row = cursor.fetchone()
    assert row is not None  # an aggregate without GROUP BY
    written, longest = row
    return written, [longest] if written else []


def delete_missing(
    *, selected: SelectedCalendar, seen_ids: set[str], window_start: datetime
) -> int:
    """After a full sync: delete the calendar's rows that overlap the synced window but
    that Google no longer returned; recompute the longest-event bound exactly.

    Runs inside the caller's transaction (the one that stores the new sync token).
    Rows that ended before the window stay until cleanup.
    """
    rows = CalendarEvent.objects.filter(
        credential_id=selected.credential_id, calendar_id=selected.calendar_id
    ).values_list("pk", "google_event_id", "start_time", "end_time")
    stale: list[int] = []
    longest = timedelta(0)
    for pk, google_event_id, start, end in rows.iterator(chunk_size=5000):
        if google_event_id not in seen_ids and end > window_start:
            stale.append(pk)
        else:
            longest = max(longest, end - start)
    deleted = 0
    for offset in range(0, len(stale), DELETE_BATCH):
        deleted += CalendarEvent.objects.filter(
            pk__in=stale[offset : offset + DELETE_BATCH]
        ).delete()[0]
    selected.longest_event = longest
    SelectedCalendar.objects.filter(pk=selected.pk).update(longest_event=longest)
    return deleted


_FIELDS = {field.name: field for field in CalendarEvent._meta.concrete_fields}
# The columns that are the same for the whole page: parameters of the upsert.
_PAGE_CONSTANTS = ("credential", "user", "calendar_id", "created_at", "updated_at")
# The columns of MappedEvent.fields (map_event fills every one), in the model's order.
_EVENT_FIELDS = tuple(
    name
    for name, field in _FIELDS.items()
    if not field.primary_key and name not in (*_PAGE_CONSTANTS, "google_event_id")
)
_PAGE_FIELDS = ("google_event_id", *_EVENT_FIELDS)
_event_values = itemgetter(*_EVENT_FIELDS)
# The binary COPY format of each page column (varchar's is text's).
_PG_COPY_TYPES = {
    "CharField": "text",
    "TextField": "text",
    "DateTimeField": "timestamptz",
    "BooleanField": "bool",
    "PositiveIntegerField": "int4",
}
_PG_PAGE_TYPES = [_PG_COPY_TYPES[_FIELDS[name].get_internal_type()] for name in _PAGE_FIELDS]
_PG_EVENTS = CalendarEvent._meta.db_table


def _column(name: str) -> str:
    return _FIELDS[name].column


def _columns(names: Iterable[str], prefix: str = "") -> str:
    return ", ".join(prefix + _column(name) for name in names)


# The page table lives as long as the database session. Every upsert empties it (DELETE
# ... RETURNING), so pages of one outer transaction never see each other's rows; a failed
# page's COPY rolls back with it; ON COMMIT DELETE ROWS truncates the dead rows those
# deletes leave (temporary tables are never vacuumed), about 0.4 ms a commit. Its columns
# have the types binary COPY writes (text for varchar: the insert checks the lengths), and
# its name a digest of them, so a session that outlives a deploy (a pooled server
# connection) never meets a page table of another shape.
_PG_PAGE_COLUMNS = ", ".join(
    f"{_column(name)} {pg_type}" for name, pg_type in zip(_PAGE_FIELDS, _PG_PAGE_TYPES, strict=True)
)
_PG_PAGE_TABLE = f"pg_temp.calcache_event_page_{zlib.crc32(_PG_PAGE_COLUMNS.encode()):08x}"
_PG_CREATE_PAGE_TABLE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_PG_PAGE_TABLE} ({_PG_PAGE_COLUMNS}) "
    "ON COMMIT DELETE ROWS"
)
_PG_COPY_PAGE = f"COPY {_PG_PAGE_TABLE} ({_columns(_PAGE_FIELDS)}) FROM STDIN (FORMAT BINARY)"
# The WHERE is _unchanged negated: an event without an etag, or without a row, or whose
# versions differ from its row's, is written. Its scalar subquery (NULL without a row) is
# one probe of the unique index per event, whatever the calendar's size: NOT EXISTS may be
# planned as a hash of all the calendar's rows, and a WHERE on DO UPDATE would still lock
# (so write) every unchanged row. ::text as psycopg sends a str untyped and both uses must
# agree on a type.
_PG_UPSERT_PAGE = f"""
WITH page AS (
    DELETE FROM {_PG_PAGE_TABLE} RETURNING {_columns(_PAGE_FIELDS)}
), written AS (
    INSERT INTO {_PG_EVENTS} AS stored ({_columns(_PAGE_CONSTANTS)}, {_columns(_PAGE_FIELDS)})
    SELECT %(credential_id)s, %(user_id)s, %(calendar_id)s::text, %(now)s, %(now)s,
        {_columns(_PAGE_FIELDS, "page.")}
    FROM page
    WHERE page.{_column("etag")} = ''
       OR (
           SELECT ({_columns(VERSION_FIELDS, "same.")})
               IS NOT DISTINCT FROM ({_columns(VERSION_FIELDS, "page.")})
           FROM {_PG_EVENTS} AS same
           WHERE ({_columns(UNIQUE_FIELDS, "same.")})
               = (%(credential_id)s, %(calendar_id)s::text, page.{_column("google_event_id")})
       ) IS NOT TRUE
    ON CONFLICT ({_columns(UNIQUE_FIELDS)}) DO UPDATE SET
        {", ".join(f"{_column(name)} = EXCLUDED.{_column(name)}" for name in UPDATE_FIELDS)}
    RETURNING stored.{_column("end_time")} - stored.{_column("start_time")} AS duration
)
SELECT count(*), max(duration) FROM written
"""
