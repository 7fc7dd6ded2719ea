"""The benchmark's data, made in one place: users, credentials, calendars and events.

One generator serves every section. ``series`` draws what one calendar holds (one-off
events, all-day and multi-day ones, recurring series) and ``attributes`` each event's
status, transparency and the owner's answer. ``Filler`` writes those events into the
mirror as the rows a sync would have left (each series as its instances, with Google's
``<base>_<start>`` ids); ``google_event`` renders the same events as Google Calendar
resources, for the Google Calendar API emulator (bench/emulator_proc.py, a series as one
recurring event) and the write-path pages (bench/write_path.py, a listing's instances).
``calendar_ids`` names an account's calendars (here and in the emulator),
``create_users`` makes every section's bench users and ``create_credentials`` their
Google credentials where no OAuth connection does (the syncs connect through the
emulator's OAuth).

The table grows in steps (``Filler.grow``): the scaling section measures reads after each
one. On PostgreSQL a step's events are generated and COPYed by several processes at once
(one per CPU, each with its own connection and its own seeded random stream), and when a
step adds a large share of the table the event table's unique constraint and busy index
are dropped first and rebuilt from the model afterwards (Django's schema editor):
building an index once is several times cheaper than maintaining it row by row. On SQLite
the rows go in with executemany from this process.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

DAY = 86400
PAST_DAYS, FUTURE_DAYS = 90, 180  # events start in [now - 90d, now + 180d)
TAIL_AGE_DAYS = (130, 400)  # the old tail cleanup deletes: ended 130-400 days ago
DURATIONS_MIN = (30,) * 35 + (45,) * 10 + (60,) * 30 + (90,) * 12 + (15,) * 5 + (120,) * 5
TASK_EVENTS = 50_000  # events per COPY task (one process, one transaction)
COPY_LINES = 5_000  # lines per copy.write()
SECONDARY = "@group.calendar.google.com"  # the domain of an account's other calendars

# (event id, recurring event id, start, end, all day), times in epoch seconds
Event = tuple[str, str, int, int, bool]
# (status, transparency, own response)
Attributes = tuple[str, str, str]
# (credential id, user id, calendar id, google id, etag, status, summary, start, end,
#  time zone, all day, transparency, own response, recurring id, sequence, iCal UID)
Row = tuple[int, int, str, str, str, str, str, int, int, str, bool, str, str, str, int, str]
# (user id, credential id, calendar id, rows to write)
CalendarCount = tuple[int, int, str, int]


@dataclass
class Fill:
    users: list[Any] = field(default_factory=list)  # auth users, in id order
    credentials: dict[int, Any] = field(default_factory=dict)  # user id -> Credential
    calendars: dict[int, list[str]] = field(default_factory=dict)  # credential id -> ids
    longest: dict[tuple[int, str], int] = field(default_factory=dict)  # seconds
    rows: int = 0
    tail_rows: int = 0
    seconds: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)


# --- accounts and calendars -----------------------------------------------------------


def calendar_ids(email: str, count: int) -> list[str]:
    """An account's calendars: its primary one (the address) and ``count - 1`` others."""
    local = email.split("@", 1)[0]
    return [email] + [f"{local}-cal{k}{SECONDARY}" for k in range(1, count)]


def is_primary(calendar_id: str) -> bool:
    return not calendar_id.endswith(SECONDARY)


def create_users(accounts: Sequence[tuple[str, str]]) -> list[Any]:
    """Users of these (username, email) pairs, in one statement; returned in id order."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    User.objects.bulk_create(
        [User(username=name, email=email) for name, email in accounts], batch_size=2000
    )
    return list(User.objects.filter(username__in=[name for name, _ in accounts]).order_by("pk"))


def create_credentials(users: Sequence[Any]) -> list[Any]:
    """A Google credential per user (the user's email; a placeholder token), in user order."""
    from calcache.models import Credential

    Credential.objects.bulk_create(
        [
            Credential(user=user, account_email=user.email, encrypted_token="gAAAAA-bench")
            for user in users
        ],
        batch_size=2000,
    )
    return list(Credential.objects.filter(user__in=users).order_by("user_id"))


# --- events ---------------------------------------------------------------------------


class Series(NamedTuple):
    """One generated event; with ``step``, a series of ``occurrences`` instances ``step``
    days apart (Google's ``<id>_<start>`` instances of the recurring event ``id``)."""

    id: str
    start: int  # epoch seconds (an all-day event: its UTC midnight)
    length: int  # seconds
    all_day: bool
    step: int = 0
    occurrences: int = 1


def new_id(rng: random.Random) -> str:
    """16 characters of Google's event-id alphabet (base32hex; hex digits are a subset)."""
    return f"{rng.getrandbits(64):016x}"


def compact(sec: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(sec))


def series(rng: random.Random, n: int, first: int, days: int) -> Iterator[Series]:
    """What one calendar holds: events making ``n`` instances that start in
    ``[first, first + days)``: mostly 30-90 min, 4% all-day, 0.5% of 2-5 days, and
    recurring series of 4-20 instances a day, a week or two weeks apart."""
    made = 0
    while made < n:
        if n - made >= 4 and rng.random() < 0.03:
            step = rng.choice((1, 7, 7, 14))
            count = min(n - made, rng.randint(4, 20), (days - 1) // step + 1)
            start = (
                first + rng.randrange(days - step * (count - 1)) * DAY + rng.randrange(24, 76) * 900
            )
            length = rng.choice(DURATIONS_MIN) * 60
            yield Series(new_id(rng), start, length, False, step, count)
            made += count
            continue
        day = first + rng.randrange(days) * DAY
        kind = rng.random()
        if kind < 0.005:
            gid = new_id(rng)
            yield Series(gid, day, rng.randint(2, 5) * DAY, True)
        elif kind < 0.045:
            yield Series(new_id(rng), day, DAY, True)
        else:
            start = day + rng.randrange(24, 76) * 900
            gid = new_id(rng)
            yield Series(gid, start, rng.choice(DURATIONS_MIN) * 60, False)
        made += 1


def instances(event: Series) -> Iterator[Event]:
    """The event as a listing with ``singleEvents`` shows it: a series, instance by instance."""
    if not event.step:
        yield event.id, "", event.start, event.start + event.length, event.all_day
        return
    for k in range(event.occurrences):
        at = event.start + k * event.step * DAY
        yield f"{event.id}_{compact(at)}", event.id, at, at + event.length, False


def one_calendar(rng: random.Random, n: int, first: int, days: int) -> Iterator[Event]:
    """``series``, instance by instance: ``n`` of them."""
    for event in series(rng, n, first, days):
        yield from instances(event)


def attributes(rng: random.Random, *, cancelled: bool = True) -> Attributes:
    """(status, transparency, own response): ~3% cancelled, 3% free, 2% declined.
    ``cancelled=False``: as a listing shows events (Google leaves cancelled ones out),
    those draws are confirmed."""
    r = rng.random()
    status = "tentative" if 0.03 <= r < 0.05 else "confirmed"
    if r < 0.03 and cancelled:
        status = "cancelled"
    transparency = "transparent" if rng.random() < 0.03 else "opaque"
    r = rng.random()
    response = "declined" if r < 0.02 else "accepted" if r < 0.5 else ""
    return status, transparency, response


def event_counts(rng: random.Random, total: int, calendars: Sequence[str]) -> list[int]:
    """``total`` events shared out over these calendars: log-normal weights (some are
    much busier), primary calendars twice as busy; the counts add up to ``total``."""
    weights = [
        rng.lognormvariate(0.0, 0.5) * (2.0 if is_primary(cal) else 1.0) for cal in calendars
    ]
    share = sum(weights)
    counts = [int(total * w / share) for w in weights]
    for i in rng.sample(range(len(counts)), total - sum(counts)):
        counts[i] += 1
    return counts


def _when(sec: int, all_day: bool, zone: ZoneInfo) -> dict[str, str]:
    if all_day:
        return {"date": datetime.fromtimestamp(sec, UTC).date().isoformat()}
    return {"dateTime": datetime.fromtimestamp(sec, zone).isoformat(), "timeZone": zone.key}


def google_event(
    event: Series | Event, attrs: Attributes, *, owner: str, time_zone: str
) -> dict[str, Any]:
    """A generated event as a Google Calendar event resource: a ``Series`` as the body
    ``events.insert`` takes (a series: one event with its RRULE), an ``Event`` (one
    instance) as a listing's entry, its ``recurringEventId`` included. The owner is an
    attendee (with 1-5 guests) of the events they answered."""
    zone = ZoneInfo(time_zone)
    if isinstance(event, Series):
        gid, recurring = event.id, ""
        start, end, all_day = event.start, event.start + event.length, event.all_day
    else:
        gid, recurring, start, end, all_day = event
    status, transparency, response = attrs
    body: dict[str, Any] = {
        "id": gid,
        "status": status,
        "summary": "Meeting",
        "start": _when(start, all_day, zone),
        "end": _when(end, all_day, zone),
        "iCalUID": f"{recurring or gid}@google.com",
    }
    if isinstance(event, Series) and event.step:
        body["recurrence"] = [f"RRULE:FREQ=DAILY;INTERVAL={event.step};COUNT={event.occurrences}"]
    if recurring:
        body["recurringEventId"] = recurring
    if transparency != "opaque":
        body["transparency"] = transparency
    if response:
        guests = 1 + int((recurring or gid)[:2], 16) % 5
        body["attendees"] = [{"email": owner, "self": True, "responseStatus": response}] + [
            {"email": f"guest{k}@example.com", "responseStatus": "accepted"} for k in range(guests)
        ]
    return body


# --- rows of the mirror -----------------------------------------------------------------


def event_columns() -> list[str]:
    """The event table's columns but ``id``, in the model's order: the order of a ``Row``'s
    values in ``copy_line`` and ``sqlite_params`` (a new column fails the fill loudly)."""
    from calcache.models import CalendarEvent

    return [f.column for f in CalendarEvent._meta.concrete_fields if not f.primary_key]


def _row(rng: random.Random, user_id: int, cid: int, cal: str, event: Event) -> Row:
    gid, recurring, start, end, all_day = event
    status, transparency, response = attributes(rng)
    return (
        cid,
        user_id,
        cal,
        gid,
        f'"{rng.getrandbits(48)}"',
        status,
        "Meeting",
        start,
        end,
        "UTC",
        all_day,
        transparency,
        response,
        recurring,
        0,
        f"{recurring or gid}@google.com",
    )


def generate(
    rng: random.Random, calendars: list[CalendarCount], *, tail: bool, first: int, days: int
) -> Iterator[Row]:
    """The rows of ``calendars``: events in ``[first, first + days)``, or (``tail``) one-hour
    events in the old tail, starting on ``first`` plus up to ``days`` days."""
    for user_id, cid, cal, n in calendars:
        if tail:
            for _ in range(n):
                at = first + rng.randrange(days) * DAY + rng.randrange(24, 76) * 900
                yield _row(rng, user_id, cid, cal, (new_id(rng), "", at, at + 3600, False))
        else:
            for event in one_calendar(rng, n, first, days):
                yield _row(rng, user_id, cid, cal, event)


class TimeText:
    """Epoch seconds -> timestamp text, cached (events start and end on quarter hours)."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.texts: dict[int, str] = {}

    def __call__(self, sec: int) -> str:
        text = self.texts.get(sec)
        if text is None:
            text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec)) + self.suffix
            self.texts[sec] = text
        return text


def copy_line(row: Row, stamp: TimeText, now: str) -> str:
    """One line of COPY text (the columns of ``event_columns``; no value needs escaping)."""
    return (
        f"{row[0]}\t{row[1]}\t{row[2]}\t{row[3]}\t{row[4]}\t{row[5]}\t{row[6]}\t"
        f"{stamp(row[7])}\t{stamp(row[8])}\t{row[9]}\t{'t' if row[10] else 'f'}\t"
        f"{row[11]}\t{row[12]}\t{row[13]}\t{now}\t{now}\t{now}\t{now}\t{row[14]}\t{row[15]}\n"
    )


def sqlite_params(row: Row, stamp: TimeText, now: str) -> tuple[Any, ...]:
    return (*row[:7], stamp(row[7]), stamp(row[8]), *row[9:14], now, now, now, now, *row[14:])


def _longest(longest: dict[tuple[int, str], int], row: Row) -> None:
    key = (row[0], row[2])
    length = row[8] - row[7]
    if length > longest.get(key, 0):
        longest[key] = length


@dataclass(frozen=True)
class CopyTask:
    url: str
    seed: str
    calendars: list[CalendarCount]
    tail: bool
    first: int
    days: int
    now: int


def copy_task(task: CopyTask) -> tuple[int, dict[tuple[int, str], int]]:
    """Generate a task's rows and COPY them on a connection of its own (a child process);
    returns (rows, longest event per (credential id, calendar id))."""
    import psycopg

    rng = random.Random(task.seed)
    stamp = TimeText("+00")
    now = stamp(task.now)
    longest: dict[tuple[int, str], int] = {}
    count = 0
    lines: list[str] = []
    with (
        psycopg.connect(task.url) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY calcache_calendarevent ({', '.join(event_columns())}) FROM STDIN") as copy,
    ):
        for row in generate(rng, task.calendars, tail=task.tail, first=task.first, days=task.days):
            _longest(longest, row)
            lines.append(copy_line(row, stamp, now))
            if len(lines) >= COPY_LINES:
                copy.write("".join(lines))
                count += len(lines)
                lines.clear()
        if lines:
            copy.write("".join(lines))
            count += len(lines)
    return count, longest


def _tasks(
    counts: list[CalendarCount], *, url: str, seed: str, tail: bool, first: int, days: int, now: int
) -> list[CopyTask]:
    tasks: list[CopyTask] = []
    batch: list[CalendarCount] = []
    size = 0
    for entry in counts:
        if entry[3] <= 0:
            continue
        batch.append(entry)
        size += entry[3]
        if size >= TASK_EVENTS:
            tasks.append(CopyTask(url, f"{seed}:{len(tasks)}", batch, tail, first, days, now))
            batch, size = [], 0
    if batch:
        tasks.append(CopyTask(url, f"{seed}:{len(tasks)}", batch, tail, first, days, now))
    return tasks


class Filler:
    """Grows the benchmark data in steps; ``grow(events, users)`` takes cumulative targets."""

    def __init__(
        self,
        *,
        seed: int,
        rng: random.Random,
        now: datetime,
        url: str,
        tail: int,
        total_events: int,
        workers: int,
    ) -> None:
        from django.db import connection

        self.seed = seed
        self.rng = rng
        self.now = now
        self.now_sec = int(now.timestamp())
        self.url = url
        self.tail = tail
        self.total_events = total_events
        self.workers = max(1, workers)
        self.vendor = connection.vendor
        self.fill = Fill()
        self.first = (self.now_sec // DAY - PAST_DAYS) * DAY
        self.tail_first = (self.now_sec // DAY - TAIL_AGE_DAYS[1]) * DAY
        self.tail_days = TAIL_AGE_DAYS[1] - TAIL_AGE_DAYS[0] - 6
        if self.vendor == "postgresql":
            self.restore_indexes()  # after an interrupted run

    # --- one step -------------------------------------------------------------------
    def grow(self, events: int, users: int, *, vacuum: bool = True) -> dict[str, Any]:
        """Add users (with credentials and 3-7 calendars each) and events until the table
        holds ``events`` events of ``users`` users, plus the tail's share; then VACUUM
        ANALYZE (ANALYZE on SQLite) unless ``vacuum`` is False (a freshly loaded table)."""
        from django.db import connection

        began = time.perf_counter()
        result = self.fill
        step = len(result.steps)
        added_events = events - result.rows
        added_tail = round(self.tail * events / self.total_events) - result.tail_rows
        new_calendars = self._add_users(users - len(result.users))
        counts = event_counts(self.rng, added_events, [cal for _, _, cal in new_calendars])
        tail_counts = [0] * len(new_calendars)
        for _ in range(added_tail):
            tail_counts[self.rng.randrange(len(new_calendars))] += 1
        tail = [(u, c, cal, n) for (u, c, cal), n in zip(new_calendars, tail_counts, strict=True)]
        main = [(u, c, cal, n) for (u, c, cal), n in zip(new_calendars, counts, strict=True)]

        rows_after = result.rows + result.tail_rows + added_events + added_tail
        drop = self.vendor == "postgresql" and (added_events + added_tail) * 3 > rows_after
        timings: dict[str, float] = {}
        mark = time.perf_counter()
        if drop:
            self.drop_indexes()
        try:
            # The tail first: low primary keys, as history has.
            result.tail_rows += self._write(tail, tail=True, seed=f"{self.seed}:{step}:tail")
            result.rows += self._write(main, tail=False, seed=f"{self.seed}:{step}:events")
            timings["copy_seconds"] = time.perf_counter() - mark
        finally:
            if drop:
                mark = time.perf_counter()
                self.restore_indexes()
                timings["index_seconds"] = time.perf_counter() - mark
        self._add_selections(new_calendars, step)
        mark = time.perf_counter()
        if vacuum:
            with connection.cursor() as cur:
                cur.execute("VACUUM ANALYZE" if self.vendor == "postgresql" else "ANALYZE")
        timings["vacuum_seconds"] = time.perf_counter() - mark
        seconds = time.perf_counter() - began
        result.seconds += seconds
        info = {
            "events": result.rows,
            "tail_rows": result.tail_rows,
            "users": len(result.users),
            "added_rows": added_events + added_tail,
            "indexes_rebuilt": drop,
            "seconds": seconds,
            **timings,
        }
        result.steps.append(info)
        return info

    def _add_users(self, n: int) -> list[tuple[int, int, str]]:
        result = self.fill
        offset = len(result.users)
        users = create_users(
            [(f"bench-{k}", f"bench-{k}@example.com") for k in range(offset, offset + n)]
        )
        new: list[tuple[int, int, str]] = []
        for credential in create_credentials(users):
            result.credentials[credential.user_id] = credential
            count = self.rng.choice((3, 4, 5, 5, 5, 6, 7))
            result.calendars[credential.pk] = calendar_ids(credential.account_email, count)
            new.extend(
                (credential.user_id, credential.pk, cal) for cal in result.calendars[credential.pk]
            )
        result.users.extend(users)
        return new

    def _add_selections(self, calendars: list[tuple[int, int, str]], step: int) -> None:
        """Selected calendars with their exact longest event, and covering sync tokens."""
        from calcache.models import CalendarSyncToken, SelectedCalendar

        longest = self.fill.longest
        SelectedCalendar.objects.bulk_create(
            [
                SelectedCalendar(
                    credential_id=cid,
                    calendar_id=cal,
                    is_primary=is_primary(cal),
                    longest_event=timedelta(seconds=longest.get((cid, cal), 0)),
                )
                for _, cid, cal in calendars
            ],
            batch_size=2000,
        )
        synced = self.now - timedelta(minutes=5)
        CalendarSyncToken.objects.bulk_create(
            [
                CalendarSyncToken(
                    credential_id=cid,
                    calendar_id=cal,
                    sync_token="bench",
                    last_sync_at=synced,
                    last_full_sync_at=synced,
                    window_start=datetime.fromtimestamp(self.first, UTC),
                    window_end=datetime.fromtimestamp(
                        self.first + (PAST_DAYS + FUTURE_DAYS + 7) * DAY, UTC
                    ),
                )
                for _, cid, cal in calendars
            ],
            batch_size=2000,
        )

    # --- writing rows ---------------------------------------------------------------
    def _write(self, counts: list[CalendarCount], *, tail: bool, seed: str) -> int:
        first, days = (
            (self.tail_first, self.tail_days) if tail else (self.first, PAST_DAYS + FUTURE_DAYS)
        )
        if self.vendor != "postgresql":
            return self._write_sqlite(counts, tail=tail, seed=seed, first=first, days=days)
        tasks = _tasks(
            counts, url=self.url, seed=seed, tail=tail, first=first, days=days, now=self.now_sec
        )
        if not tasks:
            return 0
        from django.db import connections

        connections.close_all()  # a forked child must not share the parent's connection
        written = 0
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(min(self.workers, len(tasks))) as pool:
            for count, longest in pool.imap_unordered(copy_task, tasks):
                written += count
                for key, length in longest.items():
                    if length > self.fill.longest.get(key, 0):
                        self.fill.longest[key] = length
        return written

    def _write_sqlite(
        self, counts: list[CalendarCount], *, tail: bool, seed: str, first: int, days: int
    ) -> int:
        from django.db import connection, transaction

        stamp = TimeText("")
        now = stamp(self.now_sec)
        columns = event_columns()
        placeholders = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO calcache_calendarevent ({', '.join(columns)}) VALUES ({placeholders})"
        written = 0
        buffer: list[tuple[Any, ...]] = []

        def flush() -> None:
            nonlocal written
            with transaction.atomic(), connection.cursor() as cur:
                cur.executemany(sql, buffer)
            written += len(buffer)
            buffer.clear()

        for row in generate(random.Random(seed), counts, tail=tail, first=first, days=days):
            _longest(self.fill.longest, row)
            buffer.append(sqlite_params(row, stamp, now))
            if len(buffer) >= 20_000:
                flush()
        if buffer:
            flush()
        return written

    # --- indexes (PostgreSQL) -------------------------------------------------------
    @staticmethod
    def _droppable() -> tuple[list[Any], list[Any]]:
        from django.db.models import UniqueConstraint

        from calcache.models import CalendarEvent

        meta = CalendarEvent._meta
        return [c for c in meta.constraints if isinstance(c, UniqueConstraint)], list(meta.indexes)

    @staticmethod
    def _present() -> set[str]:
        from django.db import connection

        with connection.cursor() as cur:
            return set(connection.introspection.get_constraints(cur, "calcache_calendarevent"))

    def drop_indexes(self) -> None:
        from django.db import connection

        from calcache.models import CalendarEvent

        constraints, indexes = self._droppable()
        with connection.schema_editor() as editor:
            for constraint in constraints:
                editor.remove_constraint(CalendarEvent, constraint)
            for index in indexes:
                editor.remove_index(CalendarEvent, index)

    def restore_indexes(self) -> None:
        """Build whichever of the model's unique constraints and indexes are missing."""
        from django.db import connection

        from calcache.models import CalendarEvent

        constraints, indexes = self._droppable()
        present = self._present()
        missing_constraints = [c for c in constraints if c.name not in present]
        missing_indexes = [i for i in indexes if i.name not in present]
        if not missing_constraints and not missing_indexes:
            return
        with connection.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '1GB'")
        try:
            for constraint in missing_constraints:
                with connection.schema_editor() as editor:
                    editor.add_constraint(CalendarEvent, constraint)
            for index in missing_indexes:
                with connection.schema_editor() as editor:
                    editor.add_index(CalendarEvent, index)
        finally:
            with connection.cursor() as cur:
                cur.execute("RESET maintenance_work_mem")


def default_workers() -> int:
    return os.cpu_count() or 1
