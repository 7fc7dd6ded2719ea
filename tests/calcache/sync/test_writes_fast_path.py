"""``apply_page`` on its own: the PostgreSQL path (COPY + one upsert) against the ORM
path it replaces there, and the page semantics both must keep. Every test runs on
SQLite (where both are the ORM path) and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from calcache.models import CalendarEvent, SelectedCalendar
from calcache.sync import writes
from calcache.sync.mapping import MappedEvent, map_event
from calcache.sync.writes import PageWrite, apply_page
from tests.factories import SelectedCalendarFactory

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
# Every column apply_page writes, compared between the two paths.
COMPARED = [
    field.attname
    for field in CalendarEvent._meta.concrete_fields
    if field.name not in ("id", "calendar_id", "created_at", "updated_at")
]


def event(n: int, *, version: int = 1, minutes: int = 45, **resource: Any) -> MappedEvent:
    """Event ``n`` as the sync maps it; ``version`` changes its etag and title."""
    begin = START + n * HOUR
    item: dict[str, Any] = {
        "id": f"evt{n:04d}",
        "etag": f'"{version}-{n}"',
        "status": "confirmed",
        "summary": f"Meeting {n} v{version}",
        "start": {"dateTime": begin.isoformat(), "timeZone": "Europe/London"},
        "end": {"dateTime": (begin + timedelta(minutes=minutes)).isoformat()},
        "created": "2026-01-01T00:00:00.000Z",
        "updated": f"2026-02-01T00:00:{version:02d}.000Z",
        "sequence": version,
        "iCalUID": f"evt{n:04d}@google.com",
    }
    item.update(resource)
    return map_event(item, calendar_tz=LONDON, store_summary=True)


def write(
    selected: SelectedCalendar, changed: list[MappedEvent], gone: Sequence[str] = ()
) -> PageWrite:
    return apply_page(selected=selected, changed=changed, cancelled_ids=list(gone))


def rows(selected: SelectedCalendar) -> dict[str, dict[str, Any]]:
    return {
        row["google_event_id"]: dict(row)
        for row in CalendarEvent.objects.filter(
            credential_id=selected.credential_id, calendar_id=selected.calendar_id
        ).values()
    }


@pytest.fixture
def selected(db: None) -> SelectedCalendar:
    return SelectedCalendarFactory()


def test_page_columns_are_the_models_and_the_mappings() -> None:
    """The PostgreSQL path lists its columns; a column added to the model or the mapping
    must be in that list, or it would be left out (or fail) only there."""
    model = {field.name for field in CalendarEvent._meta.concrete_fields}
    assert model == {"id", *writes._PAGE_CONSTANTS, *writes._PAGE_FIELDS}
    assert set(event(1).fields) == set(writes._EVENT_FIELDS)
    assert set(writes.UPDATE_FIELDS) == {"user", "updated_at", *writes._EVENT_FIELDS}


def test_writes_what_the_orm_path_writes(selected: SelectedCalendar) -> None:
    other = SelectedCalendarFactory(credential=selected.credential)
    pages = [
        [event(n) for n in range(5)]
        + [
            event(5, start={"date": "2026-03-05"}, end={"date": "2026-03-07"}),
            event(6, summary="", transparency="transparent", status="tentative"),
            event(7, created=None, updated=None, recurringEventId="evt0007", sequence=None),
            event(8, summary="Réunion ☕ 'quoted' \"double\" \\ back\tslash\nnewline"),
            event(9, attendees=[{"self": True, "responseStatus": "declined"}]),
            event(10, id="x" * 1100, etag=""),
        ],
        [event(n, version=2) for n in range(0, 11, 2)],
    ]
    for page in pages:
        before = timezone.now()
        ours = write(selected, page)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(writes, "_upsert_postgresql", writes._upsert_orm)
            theirs = write(other, page)
        assert ours == theirs
        mine, orm = rows(selected), rows(other)
        assert mine.keys() == orm.keys()
        for event_id, row in mine.items():
            assert {k: row[k] for k in COMPARED} == {k: orm[event_id][k] for k in COMPARED}
        written = {e.google_event_id for e in page}
        for event_id, row in mine.items():
            assert row["created_at"] <= row["updated_at"]
            assert (row["updated_at"] >= before) == (event_id in written)
    assert mine["evt0005"]["is_all_day"] and mine["evt0005"]["timezone"] == "Europe/London"
    assert mine["evt0007"]["google_created_at"] is None
    assert mine["x" * 1100]["etag"] == ""
    assert selected.longest_event == other.longest_event == timedelta(days=2)


def test_counts_and_the_version_comparison(selected: SelectedCalendar) -> None:
    assert write(selected, [event(n) for n in range(4)]) == PageWrite(upserted=4)
    written = {k: row["updated_at"] for k, row in rows(selected).items()}
    # Same etags and versions: nothing written, the rows keep their updated_at.
    assert write(selected, [event(n) for n in range(4)]) == PageWrite(unchanged=4)
    assert {k: row["updated_at"] for k, row in rows(selected).items()} == written
    # Same etag, but a version column differs from the row (the title setting changed,
    # the calendar's zone moved the event): written.
    moved = event(1)
    moved.fields["start_time"] -= HOUR
    retitled = event(2)
    retitled.fields["summary"] = ""
    new_etag = event(3, version=2)
    page = [event(0), moved, retitled, new_etag]
    assert write(selected, page) == PageWrite(upserted=3, unchanged=1)
    stored = rows(selected)
    assert stored["evt0000"]["updated_at"] == written["evt0000"]
    assert stored["evt0001"]["start_time"] == moved.fields["start_time"]
    assert stored["evt0002"]["summary"] == ""
    assert stored["evt0003"]["etag"] == new_etag.fields["etag"]


def test_an_empty_etag_is_always_written(selected: SelectedCalendar) -> None:
    page = [event(1, etag="")]
    assert write(selected, page) == PageWrite(upserted=1)
    assert write(selected, page) == PageWrite(upserted=1)


def test_the_last_event_of_a_page_wins(selected: SelectedCalendar) -> None:
    page = [event(1), event(2), event(1, version=3, minutes=90), event(2, version=2)]
    assert write(selected, page) == PageWrite(upserted=2)
    stored = rows(selected)
    assert stored["evt0001"]["summary"] == "Meeting 1 v3"
    assert stored["evt0001"]["end_time"] - stored["evt0001"]["start_time"] == 90 * MINUTE
    assert stored["evt0002"]["summary"] == "Meeting 2 v2"


def test_cancelled_ids_are_deleted_unless_changed_too(selected: SelectedCalendar) -> None:
    write(selected, [event(n) for n in range(4)])
    result = write(selected, [event(1, version=2)], gone=["evt0000", "evt0001", "evt0000", "nope"])
    assert result == PageWrite(upserted=1, deleted=1)
    assert set(rows(selected)) == {"evt0001", "evt0002", "evt0003"}
    assert write(selected, [], gone=["evt0002"]) == PageWrite(deleted=1)


def test_longest_event_grows_with_written_events_only(selected: SelectedCalendar) -> None:
    write(selected, [event(1, minutes=30), event(2, minutes=120)])
    assert selected.longest_event == 120 * MINUTE
    # A shorter written event does not lower the bound.
    write(selected, [event(2, version=2, minutes=60)])
    assert selected.longest_event == 120 * MINUTE
    write(selected, [event(3, minutes=300), event(1, minutes=30)])
    selected.refresh_from_db()
    assert selected.longest_event == 300 * MINUTE


def test_pages_inside_one_transaction(selected: SelectedCalendar) -> None:
    """The PostgreSQL path's page table is emptied by every page, not only at commit: an
    event left there (one without an etag is always written) would be counted again."""
    first = [event(0), event(1), event(2, etag="")]
    with transaction.atomic():
        assert write(selected, first) == PageWrite(upserted=3)
        assert write(selected, [event(3), event(4)]) == PageWrite(upserted=2)
        assert write(selected, [event(4)]) == PageWrite(unchanged=1)
    assert write(selected, first) == PageWrite(upserted=1, unchanged=2)
    assert len(rows(selected)) == 5


def test_a_failing_page_writes_nothing(selected: SelectedCalendar) -> None:
    """Database errors arrive as Django's (the PostgreSQL path bypasses Django's cursor),
    the whole page is rolled back, and the next page starts clean."""
    write(selected, [event(1), event(5)])
    broken = event(3)
    broken.fields["end_time"] = broken.fields["start_time"] - HOUR
    with pytest.raises(IntegrityError):
        write(selected, [event(1, version=2), event(2), broken], gone=["evt0005"])
    assert set(rows(selected)) == {"evt0001", "evt0005"}
    assert rows(selected)["evt0001"]["summary"] == "Meeting 1 v1"
    assert write(selected, [event(4)]) == PageWrite(upserted=1)
    assert set(rows(selected)) == {"evt0001", "evt0004", "evt0005"}


def test_a_full_page(selected: SelectedCalendar) -> None:
    page = [event(n) for n in range(2500)]
    assert write(selected, page) == PageWrite(upserted=2500)
    assert write(selected, page[:1000] + [event(n, version=2) for n in range(1000, 2500)]) == (
        PageWrite(upserted=1500, unchanged=1000)
    )


def test_lengths_are_checked_as_the_orm_path_checks_them(selected: SelectedCalendar) -> None:
    """The page table's columns are text; the insert into the event table checks lengths."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not enforce varchar lengths")
    write(selected, [event(1)])
    with pytest.raises(DataError):
        write(selected, [event(2), event(3, id="x" * 1101)])
    assert set(rows(selected)) == {"evt0001"}
    assert write(selected, [event(2)]) == PageWrite(upserted=1)
