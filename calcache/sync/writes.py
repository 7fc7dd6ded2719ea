"""Writes of the sync: one bulk upsert per page, deletions, the longest-event bound."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

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
        stored = _stored_versions(selected, list(by_id))
        to_write = [
            event
            for event in by_id.values()
            if not _unchanged(event, stored.get(event.google_event_id))
        ]
        result.unchanged = len(by_id) - len(to_write)
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
            result.upserted = len(to_write)
            grow_longest_event(selected, (event.duration for event in to_write))
        if gone:
            result.deleted, _ = CalendarEvent.objects.filter(
                credential_id=selected.credential_id,
                calendar_id=selected.calendar_id,
                google_event_id__in=gone,
            ).delete()
    return result


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
