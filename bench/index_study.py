"""Index study for ``calcache_calendarevent`` on PostgreSQL.

On a throw-away database holding a realistic mirror of at least a million events this
measures what the indexes of ``CalendarEvent`` buy and what they cost:

* the availability query (all calendars of one user, a one-week window in the future)
  in the exact SQL the ORM builds from ``filter(<calendars>).busy().overlapping()``,
  both as an OR of (credential_id, calendar_id) pairs and as
  ``credential_id = .. AND calendar_id IN (..)``, with and without the lower bound
  ``start_time >= window_start - longest``, and (form ``app``) exactly as
  ``calcache.selectors.busy_intervals`` sends it when that module exists, under these
  index sets:

  - ``seed``: the seed's indexes, without the extended statistics of migration 0002,
  - ``seed+stats``: the same with the statistics,
  - ``seed+ours``: the seed's indexes next to ours (what the planner prefers),
  - ``ours``: what the migrations create (unique + partial ``calcache_event_busy_range``
    + statistics),
  - ``ours+user+end``: ours plus single-column indexes on user_id and end_time,
  - ``ours-stats``: ours without the statistics,
  - ``busy-end-key``: ours, but the partial index has end_time as a fourth key column
    instead of INCLUDE.

  Each combination runs ``EXPLAIN (ANALYZE, BUFFERS)`` over the same random sample of
  users and weeks (warm cache: every query runs once before it is measured) and reports
  the median server execution time, planning time, buffers and the plan shape;
* maintenance queries that extra indexes would serve, each run inside a transaction that
  is rolled back: the two DELETEs of Django's cascade when a user is deleted
  (``credential_id IN (..)``, then ``user_id IN (..)``) and a daily retention cleanup
  (``end_time < ..``), under ``ours`` and ``ours+user+end``;
* the upsert rate in events/s of the statement ``bulk_create(update_conflicts=True)``
  produces (rendered by Django's own compiler, 1,000 rows per statement, one transaction
  per batch) for new events and for updates of existing ones, per index set. Each index
  set gets its own copy of the loaded table (same columns, constraints, foreign keys and
  rows) and the batches alternate between the copies (batch 1 on every copy, then batch
  2, ..., rotating which copy goes first), so load from elsewhere on the machine hits all
  index sets alike. The cost of an index set is the median, over rounds, of its
  throughput relative to ``ours`` in the same round.

The schema is the real one: the script creates the database, runs ``migrate`` and only
then adds or drops indexes. Autovacuum is switched off for the events table during the
study; the script runs VACUUM itself between measurements so every configuration starts
from the same state.

Run it from the repository root (the database named in the URL is dropped and recreated,
and dropped again at the end unless ``--keep`` is given; its name must contain "study"):

    .venv/bin/python bench/index_study.py --rows 1000000 \\
        --database-url postgres://postgres@127.0.0.1:5432/calcache_index_study

It prints a table and writes the same numbers, plans included, to /tmp/index_study.json
(``--json`` to change). With 2,000,000 rows a run takes about 8 minutes (2 CPUs).
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.common import EVENT_COLUMNS  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/calcache_index_study"
TABLE = "calcache_calendarevent"
BUSY_RANGE = "calcache_event_busy_range"  # created by migration 0001
STATISTICS_MIGRATION = "calcache.migrations.0002_postgres_event_statistics"

# The seed's indexes on the events table (its unique constraint is the same as ours).
SEED_INDEXES: dict[str, str] = {
    "seed_event_range": "(credential_id, calendar_id, start_time, end_time)",
    "seed_event_status": "(status)",
    "seed_event_updated_at": "(updated_at)",
    "seed_event_google_event_id": "(google_event_id)",
    "seed_event_credential_updated_at": "(credential_id, updated_at)",
}
# busy_range with end_time as a fourth key column instead of INCLUDE: a bitmap index scan
# can then test end_time inside the index (it cannot test INCLUDE columns).
BUSY_END_KEY = "study_event_busy_range_end_key"
USER_ID_INDEX = "study_event_user_id"
END_TIME_INDEX = "study_event_end_time"
EXTRA_INDEXES: dict[str, str] = {USER_ID_INDEX: "(user_id)", END_TIME_INDEX: "(end_time)"}

SEED = frozenset(SEED_INDEXES)
OURS = frozenset({BUSY_RANGE})
SEED_SINGLES = frozenset(
    {"seed_event_status", "seed_event_updated_at", "seed_event_google_event_id"}
)

# Data shape.
WINDOW_DAYS = 360  # events start in now-180d .. now+180d
DAY = 86400
CALENDAR_CHOICES = (3, 4, 5, 5, 5, 6, 7)  # calendars per user, about 5
# A draw starts a recurring series (4-30 instances) with this probability, else a one-off
# event: about 40% of the events are instances of a series.
SERIES_SHARE = 0.04
DEFERRED_SHARE = 0.3  # rows written at the end in random order (incremental syncs)
# Minutes of a timed event, by weight: mostly 30-90.
DURATION_WEIGHTS = {30: 35, 45: 10, 60: 30, 90: 12, 15: 5, 120: 5, 180: 3}
DURATIONS_MIN = tuple(m for m, weight in DURATION_WEIGHTS.items() for _ in range(weight))
SUMMARIES = (
    "Standup",
    "1:1",
    "Planning",
    "Lunch",
    "Customer call",
    "Focus time",
    "Interview",
    "Design review",
    "Offsite",
    "Dentist",
    "Team sync",
    "Retro",
)
TIMEZONES = ("Europe/Berlin", "America/New_York", "America/Los_Angeles", "Europe/London", "UTC")


@dataclass(frozen=True)
class IndexConfig:
    key: str
    title: str
    indexes: frozenset[str]
    statistics: bool


QUERY_CONFIGS = (
    IndexConfig("seed", "seed indexes, no extended statistics", SEED, False),
    IndexConfig("seed+stats", "seed indexes + extended statistics", SEED, True),
    IndexConfig("seed+ours", "seed indexes + busy_range + statistics", SEED | OURS, True),
    IndexConfig("ours", "unique + busy_range + statistics (the migrations)", OURS, True),
    IndexConfig(
        "ours+user+end",
        "ours + (user_id) + (end_time)",
        OURS | {USER_ID_INDEX, END_TIME_INDEX},
        True,
    ),
    IndexConfig("ours-stats", "unique + busy_range, no extended statistics", OURS, False),
    IndexConfig(
        "busy-end-key",
        "unique + busy_range with end_time as key, not INCLUDE + statistics",
        frozenset({BUSY_END_KEY}),
        True,
    ),
)
# (form, lower bound) of the availability query
QUERY_VARIANTS = (("or", False), ("or", True), ("in", False), ("in", True))
# The configurations the brief names a-d; everything else is labelled e.
LABELS = {
    ("seed", "or", False): "a",
    ("seed+stats", "or", False): "b",
    ("ours", "or", False): "c",
    ("ours", "or", True): "d",
}
UPSERT_CONFIGS = (
    IndexConfig("ours", "unique + busy_range (the migrations)", OURS, True),
    IndexConfig("ours+user_id", "ours + (user_id)", OURS | {USER_ID_INDEX}, True),
    IndexConfig("ours+end_time", "ours + (end_time)", OURS | {END_TIME_INDEX}, True),
    IndexConfig(
        "ours+seed singles",
        "ours + (status), (updated_at), (google_event_id)",
        OURS | SEED_SINGLES,
        True,
    ),
    # Statistics objects cost nothing on writes; keeping them avoids re-ANALYZE churn.
    IndexConfig("seed", "unique + the seed's five indexes", SEED, True),
)


@dataclass
class SimUser:
    id: int
    calendars: list[str]
    timezone: str


@dataclass
class Study:
    """Everything measured, in the shape written to the JSON file."""

    meta: dict[str, Any] = field(default_factory=dict)
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    queries: list[dict[str, Any]] = field(default_factory=list)
    maintenance: list[dict[str, Any]] = field(default_factory=list)
    upserts: list[dict[str, Any]] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: Sequence[float]) -> float:
    if len(values) < 2:
        return median(values)
    return statistics.quantiles(values, n=10, method="inclusive")[8]


# --- database set-up ----------------------------------------------------------------------


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "study" not in name:
        raise SystemExit(f"refusing to drop and recreate {name!r}: the name must contain 'study'")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    sys.path.insert(0, str(REPO))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def connect(url: str) -> psycopg.Connection[Any]:
    # Client-side binding and no prepared statements: what Django's backend does.
    conn = psycopg.connect(
        url, autocommit=True, prepare_threshold=None, cursor_factory=psycopg.ClientCursor
    )
    conn.execute("SET maintenance_work_mem = '1GB'")
    return conn


# --- data ---------------------------------------------------------------------------------


def new_id(rng: random.Random) -> str:
    """A 26-character base32hex id, like Google's event ids."""
    return base64.b32hexencode(rng.randbytes(16)).decode("ascii").rstrip("=").lower()


class Timestamps:
    """Formats epoch seconds for COPY (and for instance ids) with a cache: few distinct values."""

    def __init__(self) -> None:
        self._text: dict[int, str] = {}
        self._compact: dict[int, str] = {}

    def text(self, sec: int) -> str:
        value = self._text.get(sec)
        if value is None:
            value = self._text[sec] = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(sec))
        return value

    def compact(self, sec: int) -> str:
        value = self._compact.get(sec)
        if value is None:
            value = self._compact[sec] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(sec))
        return value


def single_event(rng: random.Random, window_start: int) -> tuple[int, int, bool]:
    """(start, end, all day) of a one-off event: mostly 30-90 min, some all-day, few multi-day."""
    day = window_start + rng.randrange(WINDOW_DAYS) * DAY
    kind = rng.random()
    if kind < 0.005:
        return day, day + rng.randint(2, 5) * DAY, True
    if kind < 0.045:
        return day, day + DAY, True
    start = day + rng.randrange(6 * 4, 19 * 4) * 900
    return start, start + rng.choice(DURATIONS_MIN) * 60, False


def calendar_events(
    rng: random.Random, n: int, window_start: int, stamps: Timestamps
) -> Iterator[tuple[str, str, int, int, bool]]:
    """(google_event_id, recurring_event_id, start, end, all day) of n events of a calendar."""
    made = 0
    while made < n:
        remaining = n - made
        if remaining >= 4 and rng.random() < SERIES_SHARE:
            interval = rng.choice((1, 7, 7, 7, 14))
            count = min(remaining, rng.randint(4, 30), (WINDOW_DAYS - 1) // interval + 1)
            first_day = rng.randrange(WINDOW_DAYS - interval * (count - 1))
            start = window_start + first_day * DAY + rng.randrange(6 * 4, 19 * 4) * 900
            duration = rng.choice(DURATIONS_MIN) * 60
            base = new_id(rng)
            for k in range(count):
                instance = start + k * interval * DAY
                yield (
                    f"{base}_{stamps.compact(instance)}",
                    base,
                    instance,
                    instance + duration,
                    False,
                )
            made += count
        else:
            start, end, all_day = single_event(rng, window_start)
            yield new_id(rng), "", start, end, all_day
            made += 1


def event_attributes(rng: random.Random) -> tuple[str, str, str]:
    """(status, transparency, self_response_status): ~5% cancelled, 3% free, 2% declined."""
    r = rng.random()
    status = "cancelled" if r < 0.05 else "tentative" if r < 0.07 else "confirmed"
    transparency = "transparent" if rng.random() < 0.03 else "opaque"
    r = rng.random()
    if r < 0.02:
        response = "declined"
    elif r < 0.10:
        response = "needsAction"
    elif r < 0.14:
        response = "tentative"
    elif r < 0.60:
        response = "accepted"
    else:
        response = ""
    return status, transparency, response


def make_users(rng: random.Random, count: int) -> list[SimUser]:
    users = []
    for uid in range(1, count + 1):
        calendars = [f"u{uid}@example.com"] + [
            f"u{uid}.cal{k}@example.com" for k in range(1, rng.choice(CALENDAR_CHOICES))
        ]
        users.append(SimUser(uid, calendars, rng.choice(TIMEZONES)))
    return users


def event_copy_chunks(
    rng: random.Random, users: list[SimUser], rows: int, now: datetime
) -> Iterator[str]:
    """COPY text of exactly ``rows`` events.

    Busier users (log-normal) and busier primary calendars. 70% of the rows are written user
    by user, as full syncs would; the rest at the end in random order, as incremental syncs.
    """
    window_start = (int(now.timestamp()) // DAY - WINDOW_DAYS // 2) * DAY
    now_sec = int(now.timestamp())
    stamps = Timestamps()
    shares: list[tuple[SimUser, str, float]] = []
    weights = [rng.lognormvariate(0.0, 0.5) for _ in users]
    total = sum(weights)
    for user, weight in zip(users, weights, strict=True):
        cal_weights = [2.0] + [1.0] * (len(user.calendars) - 1)
        for cal, cal_weight in zip(user.calendars, cal_weights, strict=True):
            shares.append((user, cal, rows * weight / total * cal_weight / sum(cal_weights)))
    counts = [int(share) for _, _, share in shares]
    for i in rng.sample(range(len(counts)), rows - sum(counts)):
        counts[i] += 1

    deferred: list[str] = []
    buf: list[str] = []
    order = list(range(len(shares)))
    # Calendars of a user stay together; users in random order.
    user_order = {user.id: rng.random() for user in users}
    order.sort(key=lambda i: user_order[shares[i][0].id])
    for i in order:
        user, cal, _ = shares[i]
        synced = stamps.text(now_sec - rng.randrange(30 * DAY))
        for gid, recurring, start, end, all_day in calendar_events(
            rng, counts[i], window_start, stamps
        ):
            status, transparency, response = event_attributes(rng)
            line = "\t".join(
                (
                    str(user.id),
                    str(user.id),
                    cal,
                    gid,
                    f'"{rng.getrandbits(60)}"',
                    status,
                    rng.choice(SUMMARIES),
                    stamps.text(start),
                    stamps.text(end),
                    user.timezone,
                    "t" if all_day else "f",
                    transparency,
                    response,
                    recurring,
                    synced,
                    synced,
                    synced,
                    synced,
                    "0",
                    f"{recurring or gid}@google.com",
                )
            )
            if rng.random() < DEFERRED_SHARE:
                deferred.append(line + "\n")
            else:
                buf.append(line + "\n")
        if len(buf) > 5000:
            yield "".join(buf)
            buf.clear()
    yield "".join(buf)
    rng.shuffle(deferred)
    for start_at in range(0, len(deferred), 5000):
        yield "".join(deferred[start_at : start_at + 5000])


def load_data(
    conn: psycopg.Connection[Any],
    rng: random.Random,
    users: list[SimUser],
    rows: int,
    now: datetime,
) -> dict[str, Any]:
    now_text = now.strftime("%Y-%m-%d %H:%M:%S+00")
    with conn.cursor() as cur:
        with cur.copy(
            "COPY auth_user (id, password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) FROM STDIN"
        ) as copy:
            copy.write(
                "".join(
                    f"{u.id}\t!\tf\tu{u.id}\tUser\t{u.id}\tu{u.id}@example.com\tf\tt\t{now_text}\n"
                    for u in users
                )
            )
        with cur.copy(
            "COPY calcache_credential (id, user_id, provider, account_email, encrypted_token, "
            "invalid, invalid_reason, created_at, updated_at) FROM STDIN"
        ) as copy:
            copy.write(
                "".join(
                    f"{u.id}\t{u.id}\tgoogle\tu{u.id}@example.com\tgAAAAA{rng.randbytes(90).hex()}"
                    f"\tf\t\t{now_text}\t{now_text}\n"
                    for u in users
                )
            )
        with cur.copy(
            "COPY calcache_selectedcalendar (credential_id, calendar_id, time_zone, is_primary, "
            "enabled, longest_event, created_at, updated_at) FROM STDIN"
        ) as copy:
            copy.write(
                "".join(
                    f"{u.id}\t{cal}\t{u.timezone}\t{'t' if k == 0 else 'f'}\tt\t0\t"
                    f"{now_text}\t{now_text}\n"
                    for u in users
                    for k, cal in enumerate(u.calendars)
                )
            )
        started = time.perf_counter()
        with cur.copy(f"COPY {TABLE} ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for chunk in event_copy_chunks(rng, users, rows, now):
                copy.write(chunk)
        copy_seconds = time.perf_counter() - started
        for table in ("auth_user", "calcache_credential"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        cur.execute(
            "UPDATE calcache_selectedcalendar s SET longest_event = m.longest FROM ("
            f"SELECT credential_id, calendar_id, max(end_time - start_time) AS longest FROM {TABLE}"
            " GROUP BY 1, 2) m WHERE s.credential_id = m.credential_id"
            " AND s.calendar_id = m.calendar_id"
        )
        cur.execute(f"ALTER TABLE {TABLE} SET (autovacuum_enabled = false)")
        started = time.perf_counter()
        cur.execute("VACUUM (ANALYZE)")
        vacuum_seconds = time.perf_counter() - started
        cur.execute(
            f"SELECT count(*), count(DISTINCT (credential_id, calendar_id)),"
            f" count(*) FILTER (WHERE status = 'cancelled'),"
            f" count(*) FILTER (WHERE transparency = 'transparent'),"
            f" count(*) FILTER (WHERE self_response_status = 'declined'),"
            f" count(*) FILTER (WHERE NOT status = 'cancelled' AND NOT transparency = 'transparent'"
            f" AND NOT self_response_status = 'declined'),"
            f" count(*) FILTER (WHERE recurring_event_id <> ''),"
            f" count(*) FILTER (WHERE is_all_day),"
            f" max(end_time - start_time), min(start_time), max(start_time),"
            f" pg_relation_size('{TABLE}')"
            f" FROM {TABLE}"
        )
        row = cur.fetchone()
        assert row is not None
    (count, calendars, cancelled, transparent, declined, busy, recurring, all_day) = row[:8]
    longest, first, last, heap = row[8:]
    return {
        "rows": count,
        "users": len(users),
        "credentials": len(users),
        "calendars": calendars,
        "share_cancelled": round(cancelled / count, 4),
        "share_transparent": round(transparent / count, 4),
        "share_declined": round(declined / count, 4),
        "share_busy": round(busy / count, 4),
        "share_recurring_instances": round(recurring / count, 4),
        "share_all_day": round(all_day / count, 4),
        "longest_event": longest,
        "first_start": first,
        "last_start": last,
        "heap_bytes": heap,
        "copy_seconds": round(copy_seconds, 1),
        "vacuum_analyze_seconds": round(vacuum_seconds, 1),
    }


# --- index configurations -----------------------------------------------------------------


class Indexes:
    """Brings the events table to an index configuration; records build time and size."""

    def __init__(self, conn: psycopg.Connection[Any], study: Study) -> None:
        self.conn = conn
        self.study = study
        row = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s", [BUSY_RANGE]
        ).fetchone()
        if row is None:
            raise SystemExit(f"{BUSY_RANGE} missing after migrate")
        self.definitions = {BUSY_RANGE: row[0]}
        columns = "(credential_id, calendar_id, start_time) INCLUDE (end_time)"
        if columns not in row[0]:
            raise SystemExit(f"unexpected definition of {BUSY_RANGE}: {row[0]}")
        self.definitions[BUSY_END_KEY] = (
            row[0]
            .replace(BUSY_RANGE, BUSY_END_KEY)
            .replace(columns, "(credential_id, calendar_id, start_time, end_time)")
        )
        for name, columns in {**SEED_INDEXES, **EXTRA_INDEXES}.items():
            self.definitions[name] = f"CREATE INDEX {name} ON {TABLE} {columns}"
        migration = importlib.import_module(STATISTICS_MIGRATION)
        self.create_statistics: str = migration.CREATE
        self.drop_statistics: str = migration.DROP
        match = re.search(r"EXISTS (\w+)", self.create_statistics)
        assert match is not None
        self.statistics_name = match.group(1)
        for name, size in self.sizes().items():
            self.study.indexes[name] = {
                "definition": self.definition(name),
                "bytes": size,
                "build_seconds": None,
            }

    def definition_on(self, name: str, table: str) -> str:
        """The CREATE INDEX of ``name`` for a copy of the events table."""
        definition, count = re.subn(
            rf"^CREATE INDEX (\w+) ON (?:public\.)?{TABLE} ",
            rf"CREATE INDEX {table}_\1 ON {table} ",
            self.definitions[name],
        )
        assert count == 1, self.definitions[name]
        return definition

    def definition(self, name: str) -> str:
        row = self.conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s", [name]
        ).fetchone()
        return row[0] if row else self.definitions[name]

    def sizes(self) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_index x "
            "JOIN pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = %s::regclass",
            [TABLE],
        ).fetchall()
        return dict(rows)

    def optional(self) -> set[str]:
        """Indexes of the table that no constraint owns (so not pkey and not the unique one)."""
        rows = self.conn.execute(
            "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)",
            [TABLE],
        ).fetchall()
        return {r[0] for r in rows}

    def has_statistics(self) -> bool:
        row = self.conn.execute(
            "SELECT count(*) FROM pg_statistic_ext WHERE stxname = %s", [self.statistics_name]
        ).fetchone()
        return bool(row and row[0])

    def apply(self, config: IndexConfig) -> None:
        present = self.optional()
        for name in sorted(present - config.indexes):
            self.conn.execute(f"DROP INDEX {name}")
        for name in sorted(config.indexes - present):
            started = time.perf_counter()
            self.conn.execute(self.definitions[name])
            seconds = time.perf_counter() - started
            entry = self.study.indexes.setdefault(name, {"definition": self.definition(name)})
            if entry.get("build_seconds") is None:
                entry["build_seconds"] = round(seconds, 2)
                entry["bytes"] = self.sizes()[name]
            log(f"  built {name} in {seconds:.1f}s")
        if config.statistics and not self.has_statistics():
            self.conn.execute(self.create_statistics)
            self.conn.execute(f"ANALYZE {TABLE}")
        elif not config.statistics and self.has_statistics():
            self.conn.execute(self.drop_statistics)


# --- availability query -------------------------------------------------------------------


@dataclass
class Sample:
    credential_id: int
    user_id: int
    calendars: list[str]
    start: datetime
    end: datetime


def pick_samples(
    conn: psycopg.Connection[Any], rng: random.Random, count: int, now: datetime
) -> list[Sample]:
    rows = conn.execute(
        "SELECT c.id, c.user_id, array_agg(s.calendar_id ORDER BY s.id) "
        "FROM calcache_credential c JOIN calcache_selectedcalendar s ON s.credential_id = c.id "
        "GROUP BY c.id ORDER BY c.id"
    ).fetchall()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    samples = []
    for cred, user, calendars in rng.sample(rows, min(count, len(rows))):
        start = midnight + timedelta(days=rng.randint(1, 150))
        samples.append(Sample(cred, user, list(calendars), start, start + timedelta(days=7)))
    return samples


def availability_sql(sample: Sample, form: str, longest: timedelta | None) -> str:
    """The SQL text Django sends for the availability query (client-side binding)."""
    from django.db import connection
    from django.db.models import Q

    from calcache.models import CalendarEvent

    if form == "or":
        pairs = [Q(credential_id=sample.credential_id, calendar_id=c) for c in sample.calendars]
        qs = CalendarEvent.objects.filter(reduce(or_, pairs))
    else:
        qs = CalendarEvent.objects.filter(
            credential_id=sample.credential_id, calendar_id__in=sample.calendars
        )
    rows = (
        qs.busy()
        .overlapping(sample.start, sample.end, longest=longest)
        .order_by("start_time")
        .values_list("start_time", "end_time")
    )
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        return str(cursor.mogrify(sql, params))


def selector_sql(sample: Sample) -> str | None:
    """The events query ``calcache.selectors.busy_intervals`` sends, if that module exists.

    It is the OR form with the lower bound (the longest event of the user's calendars),
    without ORDER BY.
    """
    try:
        from calcache.selectors import busy_intervals
    except ImportError:
        return None
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    try:
        with CaptureQueriesContext(connection) as queries:
            busy_intervals(user=sample.user_id, start=sample.start, end=sample.end)
    except Exception as error:  # an API still in the works: report, measure the rest
        log(f"calcache.selectors.busy_intervals failed, variant 'app' skipped: {error!r}")
        return None
    events = [q["sql"] for q in queries.captured_queries if f'FROM "{TABLE}"' in q["sql"]]
    return events[-1] if events else None


def plan_shape(node: dict[str, Any]) -> str:
    """Node types from the top down, e.g. ``Sort > Index Only Scan using x``."""
    name = node["Node Type"]
    if "Index Name" in node:
        name += f" using {node['Index Name']}"
    elif "Relation Name" in node and node["Node Type"] != "ModifyTable":
        name += f" on {node['Relation Name']}"
    children = node.get("Plans", [])
    if not children:
        return name
    if node["Node Type"] in ("BitmapOr", "BitmapAnd"):
        # One child per calendar; their number is not part of the shape.
        return f"{name}({' | '.join(sorted({plan_shape(child) for child in children}))})"
    return f"{name} > " + " + ".join(plan_shape(child) for child in children)


def table_node(node: dict[str, Any]) -> dict[str, Any] | None:
    """The node that reads the events table (heap or index-only), for row estimates."""
    if node.get("Relation Name") == TABLE and node["Node Type"] != "ModifyTable":
        return node
    for child in node.get("Plans", []):
        found = table_node(child)
        if found is not None:
            return found
    return None


def explain(conn: psycopg.Connection[Any], sql: str) -> dict[str, Any]:
    row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}").fetchone()
    assert row is not None
    return dict(row[0][0])


def explain_text(conn: psycopg.Connection[Any], sql: str) -> str:
    return "\n".join(r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall())


def summarize_runs(plans: list[dict[str, Any]], wall_ms: list[float]) -> dict[str, Any]:
    shapes = Counter(plan_shape(p["Plan"]) for p in plans)
    nodes = [table_node(p["Plan"]) for p in plans]
    estimated = [n["Plan Rows"] for n in nodes if n]
    actual = [n["Actual Rows"] * n["Actual Loops"] for n in nodes if n]
    heap_fetches = [n.get("Heap Fetches", 0) for n in nodes if n]
    filtered = [n.get("Rows Removed by Filter", 0) for n in nodes if n]
    return {
        "runs": len(plans),
        "exec_ms_median": round(median([p["Execution Time"] for p in plans]), 3),
        "exec_ms_p90": round(p90([p["Execution Time"] for p in plans]), 3),
        "plan_ms_median": round(median([p["Planning Time"] for p in plans]), 3),
        "wall_ms_median": round(median(wall_ms), 3) if wall_ms else None,
        "shared_hit_median": median([p["Plan"]["Shared Hit Blocks"] for p in plans]),
        "shared_read_median": median([p["Plan"]["Shared Read Blocks"] for p in plans]),
        "result_rows_median": median([p["Plan"]["Actual Rows"] for p in plans]),
        "table_node_est_rows_median": median(estimated),
        "table_node_rows_median": median(actual),
        "heap_fetches_median": median(heap_fetches),
        "rows_removed_by_filter_median": median(filtered),
        "plan_shapes": dict(shapes.most_common()),
        "plan_shape": shapes.most_common(1)[0][0],
    }


def measure_queries(
    conn: psycopg.Connection[Any],
    indexes: Indexes,
    study: Study,
    samples: list[Sample],
    longest: timedelta,
) -> None:
    texts = {
        (form, bound): [availability_sql(s, form, longest if bound else None) for s in samples]
        for form, bound in QUERY_VARIANTS
    }
    app = [selector_sql(s) for s in samples]
    if all(app):
        texts["app", True] = [sql for sql in app if sql]
    for config in QUERY_CONFIGS:
        log(f"query config {config.key}")
        indexes.apply(config)
        for (form, bound), sqls in texts.items():
            for sql in sqls:  # warm-up
                conn.execute(sql).fetchall()
            plans = [explain(conn, sql) for sql in sqls]
            wall = []
            for sql in sqls:
                started = time.perf_counter()
                conn.execute(sql).fetchall()
                wall.append((time.perf_counter() - started) * 1000)
            entry = {
                "label": LABELS.get((config.key, form, bound), "e"),
                "config": config.key,
                "config_title": config.title,
                "indexes": sorted(config.indexes),
                "statistics": config.statistics,
                "form": form,
                "lower_bound": bound,
                **summarize_runs(plans, wall),
                "example": {
                    "credential_id": samples[0].credential_id,
                    "calendars": len(samples[0].calendars),
                    "window": [samples[0].start.isoformat(), samples[0].end.isoformat()],
                    "sql": sqls[0],
                    "explain": explain_text(conn, sqls[0]),
                },
            }
            study.queries.append(entry)
            log(
                f"  {entry['label']} {form}{'+lb' if bound and form != 'app' else ''}: "
                f"{entry['exec_ms_median']} ms, {entry['plan_shape']}"
            )
        if config.key in ("ours", "ours+user+end"):
            measure_maintenance(conn, config, study, samples)


def measure_maintenance(
    conn: psycopg.Connection[Any], config: IndexConfig, study: Study, samples: list[Sample]
) -> None:
    """Queries an extra index would serve, EXPLAIN ANALYZEd in rolled-back transactions.

    Deleting an auth.User makes Django's collector run ``DELETE .. WHERE credential_id IN``
    and then ``DELETE .. WHERE user_id IN`` (which finds nothing left, but has to look).
    """
    row = conn.execute(f"SELECT min(end_time) FROM {TABLE}").fetchone()
    assert row is not None
    # Steady state of a daily retention job: only about one day of rows is past the cutoff.
    cutoff = (row[0] + timedelta(days=1)).isoformat()
    by_credential = 'DELETE FROM "{t}" WHERE "{t}"."credential_id" IN ({id})'
    by_user = 'DELETE FROM "{t}" WHERE "{t}"."user_id" IN ({id})'
    # title: [(statement run first, untimed, or None; statement measured)]
    queries: dict[str, list[tuple[str | None, str]]] = {
        "user delete 1: credential_id IN": [
            (None, by_credential.format(t=TABLE, id=s.credential_id)) for s in samples[:20]
        ],
        "user delete 2: user_id IN (after 1)": [
            (
                by_credential.format(t=TABLE, id=s.credential_id),
                by_user.format(t=TABLE, id=s.user_id),
            )
            for s in samples[:20]
        ],
        "retention cleanup: end_time < oldest+1d": [
            (None, f'DELETE FROM "{TABLE}" WHERE "{TABLE}"."end_time" < \'{cutoff}\'')
        ]
        * 10,
    }
    for title, steps in queries.items():
        plans = []
        for i, (before, sql) in enumerate([steps[0], *steps]):  # the first run warms up
            with conn.transaction(force_rollback=True):
                if before:
                    conn.execute(before)
                plan = explain(conn, sql)
            if i:
                plans.append(plan)
        before, sql = steps[0]
        with conn.transaction(force_rollback=True):
            if before:
                conn.execute(before)
            text = explain_text(conn, sql)
        entry = {
            "query": title,
            "config": config.key,
            "indexes": sorted(config.indexes),
            **summarize_runs(plans, []),
            "example": {"before": before, "sql": sql, "explain": text},
        }
        study.maintenance.append(entry)
        log(f"  {title}: {entry['exec_ms_median']} ms, {entry['plan_shape']}")
    conn.execute(f"VACUUM {TABLE}")


# --- upserts ------------------------------------------------------------------------------


def render_upserts(rows: list[dict[str, Any]], batch_size: int) -> list[str]:
    """SQL text of ``bulk_create(update_conflicts=True)`` for the rows, one per batch."""
    from django.db import connection
    from django.db.models import AutoField
    from django.db.models.constants import OnConflict
    from django.db.models.sql import InsertQuery

    from calcache.models import CalendarEvent

    meta = CalendarEvent._meta
    fields = [f for f in meta.concrete_fields if not isinstance(f, AutoField)]
    unique = [meta.get_field(n) for n in ("credential", "calendar_id", "google_event_id")]
    keep = {"credential", "calendar_id", "google_event_id", "created_at"}
    update = [f for f in fields if f.name not in keep]
    statements = []
    for start_at in range(0, len(rows), batch_size):
        objs = [CalendarEvent(**row) for row in rows[start_at : start_at + batch_size]]
        query = InsertQuery(
            CalendarEvent,
            on_conflict=OnConflict.UPDATE,
            update_fields=update,
            unique_fields=unique,
        )
        query.insert_values(fields, list[Any](objs), raw=False)
        compiler = query.get_compiler(connection=connection)
        compiler.returning_fields = meta.db_returning_fields
        [(sql, params)] = compiler.as_sql()
        with connection.cursor() as cursor:
            statements.append(str(cursor.mogrify(sql, params)))
    return statements


def new_event_rows(
    rng: random.Random, users: list[SimUser], count: int, batch_size: int, now: datetime
) -> list[dict[str, Any]]:
    """New events, each batch for one user's calendars (a sync brings one account's changes)."""
    window_start = (int(now.timestamp()) // DAY - WINDOW_DAYS // 2) * DAY
    rows: list[dict[str, Any]] = []
    while len(rows) < count:
        user = rng.choice(users)
        for _ in range(min(batch_size, count - len(rows))):
            start, end, all_day = single_event(rng, window_start)
            status, transparency, response = event_attributes(rng)
            gid = new_id(rng)
            rows.append(
                {
                    "credential_id": user.id,
                    "user_id": user.id,
                    "calendar_id": rng.choice(user.calendars),
                    "google_event_id": gid,
                    "etag": f'"{rng.getrandbits(60)}"',
                    "status": status,
                    "summary": rng.choice(SUMMARIES),
                    "start_time": datetime.fromtimestamp(start, UTC),
                    "end_time": datetime.fromtimestamp(end, UTC),
                    "timezone": user.timezone,
                    "is_all_day": all_day,
                    "transparency": transparency,
                    "self_response_status": response,
                    "ical_uid": f"{gid}@google.com",
                    "google_created_at": now,
                    "google_updated_at": now,
                }
            )
    return rows


def existing_event_rows(
    conn: psycopg.Connection[Any], rng: random.Random, users: list[SimUser], count: int
) -> list[dict[str, Any]]:
    """``count`` stored events of random users, in (credential, calendar, id) order."""
    columns = [c for c in EVENT_COLUMNS if c not in ("created_at", "updated_at")]
    rows: list[dict[str, Any]] = []
    for user in rng.sample(users, len(users)):
        cur = conn.execute(
            f"SELECT {', '.join(columns)} FROM {TABLE} WHERE credential_id = %s "
            "ORDER BY calendar_id, google_event_id",
            [user.id],
        )
        rows.extend(dict(zip(columns, r, strict=True)) for r in cur.fetchall())
        if len(rows) >= count:
            break
    return rows[:count]


def changed(rng: random.Random, rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """What a sync writes back: new etag and sequence, 20% moved, 1% cancelled."""
    result = []
    for row in rows:
        new = dict(row, etag=f'"{rng.getrandbits(60)}"', google_updated_at=now)
        new["sequence"] = row["sequence"] + 1
        if not row["is_all_day"] and rng.random() < 0.2:
            shift = timedelta(minutes=rng.choice((-120, -60, -30, -15, 15, 30, 60, 120)))
            new["start_time"] = row["start_time"] + shift
            new["end_time"] = row["end_time"] + shift
        if rng.random() < 0.01:
            new["status"] = "cancelled"
        result.append(new)
    return result


def upsert_tables(conn: psycopg.Connection[Any], indexes: Indexes) -> dict[str, str]:
    """A copy of the events table for each upsert configuration, so batches can alternate.

    Each copy has the columns, defaults, identity, CHECK and foreign-key constraints, primary
    key, unique constraint and rows of the real table, then its configuration's indexes.
    """
    constraints = [
        r[0]
        for r in conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC",
            [TABLE],
        ).fetchall()
    ]
    tables = {}
    for number, config in enumerate(UPSERT_CONFIGS):
        copy = f"study_upsert_{number}"
        started = time.perf_counter()
        conn.execute(f"DROP TABLE IF EXISTS {copy}")
        conn.execute(
            f"CREATE TABLE {copy} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING IDENTITY "
            "INCLUDING CONSTRAINTS) WITH (autovacuum_enabled = false)"
        )
        conn.execute(f"INSERT INTO {copy} SELECT * FROM {TABLE}")
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{copy}', 'id'), (SELECT max(id) FROM {copy}))"
        )
        conn.execute(f"ALTER TABLE {copy} ADD PRIMARY KEY (id)")
        for definition in constraints:
            conn.execute(f"ALTER TABLE {copy} ADD {definition}")
        for name in sorted(config.indexes):
            conn.execute(indexes.definition_on(name, copy))
        conn.execute(f"VACUUM (ANALYZE) {copy}")
        tables[config.key] = copy
        log(f"  {copy} ({config.key}) ready in {time.perf_counter() - started:.0f}s")
    return tables


def lsn_bytes(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def run_interleaved(
    conn: psycopg.Connection[Any], tables: dict[str, str], statements: list[str]
) -> dict[str, dict[str, Any]]:
    """Run every statement on every copy, batch by batch, rotating which copy goes first.

    Returns, per configuration, events/s and the other figures of this pass.
    """
    keys = list(tables)
    seconds: dict[str, list[float]] = {key: [] for key in keys}
    wal = dict.fromkeys(keys, 0)
    rows = dict.fromkeys(keys, 0)
    before = {key: table_write_stats(conn, table) for key, table in tables.items()}
    with conn.cursor() as cur:
        for number, statement in enumerate(statements):
            shift = number % len(keys)
            for key in keys[shift:] + keys[:shift]:
                sql = statement.replace(f'"{TABLE}"', f'"{tables[key]}"')
                lsn = cur.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
                assert lsn is not None
                started = time.perf_counter()
                with conn.transaction():
                    cur.execute(sql)
                    rows[key] += len(cur.fetchall())
                seconds[key].append(time.perf_counter() - started)
                after = cur.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
                assert after is not None
                wal[key] += lsn_bytes(after[0]) - lsn_bytes(lsn[0])
    load = round(os.getloadavg()[0], 2)
    result = {}
    for key, table in tables.items():
        stats = table_write_stats(conn, table)
        updated = stats[1] - before[key][1]
        hot = stats[2] - before[key][2]
        result[key] = {
            "events": rows[key],
            "seconds": round(sum(seconds[key]), 3),
            "events_per_s": round(rows[key] / sum(seconds[key]), 1),
            "batch_seconds": [round(s, 5) for s in seconds[key]],
            "batch_ms_median": round(median(seconds[key]) * 1000, 2),
            "wal_bytes_per_event": round(wal[key] / rows[key], 1),
            "updated": updated,
            "hot_share": round(hot / updated, 3) if updated else None,
            # Other work on the machine shows up here; the interleaving is meant to absorb it.
            "load_average_1m": load,
        }
    return result


def table_write_stats(conn: psycopg.Connection[Any], table: str) -> tuple[int, int, int]:
    conn.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(0.05)
    row = conn.execute(
        "SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = %s",
        [table],
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def measure_upserts(
    conn: psycopg.Connection[Any],
    indexes: Indexes,
    study: Study,
    rng: random.Random,
    users: list[SimUser],
    args: argparse.Namespace,
    now: datetime,
) -> None:
    log("rendering upsert statements")
    inserts = render_upserts(
        new_event_rows(rng, users, args.upsert_rows, args.batch_size, now), args.batch_size
    )
    existing = existing_event_rows(conn, rng, users, args.upsert_rows)
    # Two alternating versions of the same rows, so every pass really changes them.
    updates = [render_upserts(changed(rng, existing, now), args.batch_size) for _ in range(2)]
    row = conn.execute(f"SELECT max(id) FROM {TABLE}").fetchone()
    assert row is not None
    watermark = row[0]
    log("copying the events table once per upsert configuration")
    tables = upsert_tables(conn, indexes)

    def reset() -> None:
        for table in tables.values():
            conn.execute(f"DELETE FROM {table} WHERE id > %s", [watermark])
            conn.execute(f"VACUUM {table}")
        conn.execute("CHECKPOINT")

    log("upsert warm-up (untimed)")
    reset()
    run_interleaved(conn, tables, inserts)
    reset()
    run_interleaved(conn, tables, updates[0])
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        key: {"insert": [], "update": []} for key in tables
    }
    for round_no in range(args.repeats):
        reset()
        for key, result in run_interleaved(conn, tables, inserts).items():
            runs[key]["insert"].append(result)
        reset()
        for key, result in run_interleaved(conn, tables, updates[(round_no + 1) % 2]).items():
            runs[key]["update"].append(result)
        log(
            f"  round {round_no}: "
            + ", ".join(
                f"{key} {r['insert'][-1]['events_per_s']:.0f}/{r['update'][-1]['events_per_s']:.0f}"
                for key, r in runs.items()
            )
            + " events/s (insert/update)"
        )
    for table in tables.values():
        conn.execute(f"DROP TABLE {table}")
    base = runs[UPSERT_CONFIGS[0].key]
    for config in UPSERT_CONFIGS:
        entry: dict[str, Any] = {
            "config": config.key,
            "config_title": config.title,
            "indexes": sorted(config.indexes),
        }
        for kind in ("insert", "update"):
            mine = runs[config.key][kind]
            ratios = [
                m["events_per_s"] / b["events_per_s"] for m, b in zip(mine, base[kind], strict=True)
            ]
            # The same statement on the copy of "ours" right before or after: paired batches.
            paired = [
                b / m
                for mr, br in zip(mine, base[kind], strict=True)
                for m, b in zip(mr["batch_seconds"], br["batch_seconds"], strict=True)
            ]
            entry[kind] = {
                "events_per_s_median": round(median([m["events_per_s"] for m in mine]), 1),
                "events_per_s_runs": [m["events_per_s"] for m in mine],
                "throughput_vs_ours_pct": round((median(ratios) - 1) * 100, 1),
                "paired_batches_vs_ours_pct": round((median(paired) - 1) * 100, 1),
                "batch_ms_median": round(median([m["batch_ms_median"] for m in mine]), 2),
                "wal_bytes_per_event": round(median([m["wal_bytes_per_event"] for m in mine]), 1),
                "hot_share": median([m["hot_share"] or 0.0 for m in mine]),
                "runs": mine,
            }
        study.upserts.append(entry)


# --- report -------------------------------------------------------------------------------


def print_report(study: Study) -> None:
    meta = study.meta
    print()
    print(
        f"calcache index study - {meta['rows']:,} events, {meta['users']:,} users, "
        f"{meta['calendars']:,} calendars, {meta['postgres']}"
    )
    print(
        f"busy {meta['share_busy']:.1%}, cancelled {meta['share_cancelled']:.1%}, transparent "
        f"{meta['share_transparent']:.1%}, declined {meta['share_declined']:.1%}, recurring "
        f"instances {meta['share_recurring_instances']:.1%}, all-day {meta['share_all_day']:.1%}; "
        f"longest event {meta['longest_event']}; heap {meta['heap_bytes'] / 2**20:.0f} MiB"
    )
    print(
        f"shared_buffers {meta['shared_buffers']}, {meta['samples']} samples (user, week) per row"
    )
    print()
    print("Indexes (size when built on the loaded table)")
    for name, info in sorted(study.indexes.items()):
        build = info.get("build_seconds")
        build_text = f"{build:6.1f}s" if build is not None else " (migr)"
        print(f"  {name:34} {info['bytes'] / 2**20:7.1f} MiB {build_text}  {info['definition']}")
    print()
    print("Availability query: one user's calendars, one week; EXPLAIN (ANALYZE, BUFFERS), warm")
    header = (
        f"{'':2} {'config':14} {'form':6} {'exec ms':>8} {'p90':>7} {'plan ms':>7} {'wall ms':>7} "
        f"{'hit':>5} {'read':>4} {'est':>6} {'rows':>5} {'heapf':>5}  plan"
    )
    print(header)
    print("-" * len(header))
    for q in study.queries:
        form = q["form"] + ("+lb" if q["lower_bound"] and q["form"] != "app" else "")
        stable = "" if len(q["plan_shapes"]) == 1 else f" [{len(q['plan_shapes'])} shapes]"
        print(
            f"{q['label']:2} {q['config']:14} {form:6} {q['exec_ms_median']:8.3f} "
            f"{q['exec_ms_p90']:7.3f} {q['plan_ms_median']:7.3f} {q['wall_ms_median']:7.3f} "
            f"{q['shared_hit_median']:5.0f} {q['shared_read_median']:4.0f} "
            f"{q['table_node_est_rows_median']:6.0f} {q['table_node_rows_median']:5.0f} "
            f"{q['heap_fetches_median']:5.0f}  {q['plan_shape']}{stable}"
        )
    print(
        "  est/rows: planner estimate vs actual rows of the node reading the table; heapf: heap"
        " fetches of an index-only scan; form +lb: with start_time >= window_start - longest;"
        " app: as calcache.selectors.busy_intervals sends it"
    )
    print()
    print("Maintenance queries (EXPLAIN ANALYZE in a rolled-back transaction)")
    for m in study.maintenance:
        print(
            f"  {m['query']:40} {m['config']:14} {m['exec_ms_median']:9.3f} ms  "
            f"rows {m['table_node_rows_median']:6.0f}  {m['plan_shape']}"
        )
    print()
    print(
        "Upserts: bulk_create(update_conflicts=True) SQL, "
        f"{meta['batch_size']} rows a transaction, {meta['upsert_rows']:,} events a pass, "
        f"median of {meta['repeats']} rounds; batches alternate between per-config table copies"
    )
    header = (
        f"{'config':18} {'insert ev/s':>11} {'vs ours':>8} {'paired':>7} {'WAL B/ev':>8} "
        f"{'update ev/s':>11} {'vs ours':>8} {'paired':>7} {'WAL B/ev':>8} {'HOT':>5}  indexes"
    )
    print(header)
    print("-" * len(header))
    for u in study.upserts:
        ins, upd = u["insert"], u["update"]
        hot = f"{upd['hot_share']:.0%}" if upd["hot_share"] is not None else "-"
        print(
            f"{u['config']:18} {ins['events_per_s_median']:11.0f} "
            f"{ins['throughput_vs_ours_pct']:+7.1f}% {ins['paired_batches_vs_ours_pct']:+6.1f}% "
            f"{ins['wal_bytes_per_event']:8.0f} "
            f"{upd['events_per_s_median']:11.0f} {upd['throughput_vs_ours_pct']:+7.1f}% "
            f"{upd['paired_batches_vs_ours_pct']:+6.1f}% "
            f"{upd['wal_bytes_per_event']:8.0f} {hot:>5}  {', '.join(u['indexes'])}"
        )
    print(
        "  vs ours: median over rounds of the throughput relative to 'ours' in the same round;"
        " paired: median over batches of the same batch's time on 'ours' / on this config"
    )
    loads = [
        run["load_average_1m"]
        for u in study.upserts
        for kind in ("insert", "update")
        for run in u[kind]["runs"]
    ]
    print(
        f"  1-minute load average after the runs: {min(loads):.1f}-{max(loads):.1f} "
        f"(median {median(loads):.1f}) on {os.cpu_count()} CPUs"
    )
    print()
    for q in study.queries:
        if q["label"] in ("a", "b", "c", "d") or (
            q["config"] == "ours" and q["form"] in ("in", "app")
        ):
            form = q["form"] + (" + lower bound" if q["lower_bound"] else "")
            example = q["example"]
            print(f"--- {q['label']}: {q['config']} ({q['config_title']}), {form}")
            print(f"credential {example['credential_id']}, window {example['window'][0]}")
            print(example["sql"])
            print(example["explain"])
            print()
    print(f"total runtime {meta['runtime_seconds'] / 60:.1f} min")


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | timedelta):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value)}")


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="events to load")
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help="study database; dropped and recreated, its name must contain 'study'",
    )
    parser.add_argument("--runs", type=int, default=50, help="(user, week) samples per query")
    parser.add_argument("--upsert-rows", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=5, help="rounds of the upsert measurement")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, default=Path("/tmp/index_study.json"))
    parser.add_argument("--keep", action="store_true", help="keep the study database")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    rng = random.Random(args.seed)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    study = Study()
    log(f"creating {args.database_url} and migrating")
    recreate_database(args.database_url)
    try:
        setup_django(args.database_url)
        with connect(args.database_url) as conn:
            users = make_users(rng, args.users)
            log(f"loading {args.rows:,} events")
            study.meta.update(load_data(conn, rng, users, args.rows, now))
            settings = dict(
                conn.execute(
                    "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                    "('shared_buffers', 'work_mem', 'random_page_cost', 'effective_cache_size', "
                    "'jit', 'synchronous_commit', 'max_parallel_workers_per_gather')"
                ).fetchall()
            )
            version = conn.execute("SHOW server_version").fetchone()
            study.meta.update(
                {
                    "command": " ".join([sys.executable, *sys.argv]),
                    "now": now,
                    "postgres": f"PostgreSQL {version[0] if version else '?'}",
                    "settings": settings,
                    "shared_buffers": settings.get("shared_buffers"),
                    "samples": args.runs,
                    "upsert_rows": args.upsert_rows,
                    "batch_size": args.batch_size,
                    "repeats": args.repeats,
                    "seed": args.seed,
                }
            )
            log(
                f"loaded {study.meta['rows']:,} rows in {study.meta['copy_seconds']}s, "
                f"VACUUM ANALYZE {study.meta['vacuum_analyze_seconds']}s"
            )
            indexes = Indexes(conn, study)
            samples = pick_samples(conn, rng, args.runs, now)
            measure_queries(conn, indexes, study, samples, study.meta["longest_event"])
            measure_upserts(conn, indexes, study, rng, users, args, now)
        study.meta["runtime_seconds"] = round(time.perf_counter() - started, 1)
        args.json.write_text(json.dumps(study.__dict__, indent=2, default=json_default))
        print_report(study)
        print(f"JSON: {args.json}")
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not args.keep:
            drop_database(args.database_url)
            log(f"dropped {args.database_url}")


if __name__ == "__main__":
    main()
