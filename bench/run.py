"""calcache benchmark: the SQL cache side by side with the legacy JSON cache it replaces.

    .venv/bin/python bench/run.py [--events 1000000] [--quick] [--sqlite]
                                  [--database-url postgres://...] [--samples 300]

(``make bench BENCH_ARGS="--quick"``.) Creates what it needs: the PostgreSQL database of
DATABASE_URL (default postgres://postgres@127.0.0.1:5432/calcache_bench; its name must
contain "bench" because its calcache tables are emptied), or with ``--sqlite`` a file under
bench/results/. Migrates it, fills it (COPY on PostgreSQL, executemany on SQLite) and
measures, interleaved in one run:

* availability reads for 1 day / 1 week / 1 month windows over random users:
  ``calcache.selectors.busy_intervals`` (the ORM path), the very SQL it sent replayed on a
  raw psycopg cursor, server time from EXPLAIN (ANALYZE) (PostgreSQL), and
  ``calcache.legacy.cached_busy`` on JSON blobs built from the same events; every sample's
  answers are compared and mismatches counted and printed;
* the sync write path: ``apply_page`` vs the seed's one-upsert-per-row transaction
  (bench/write_path.py's functions), new rows and updates;
* cleanup: ``cleanup_calendar_cache`` rows/s on an old tail, and the p99 of
  ``busy_intervals`` from a second process during cleanup vs idle.

Prints a table and writes bench/results/<date>.json (``--quick``: quick-<date>.json,
gitignored). Asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import EVENT_COLUMNS  # noqa: E402
from bench.write_path import (  # noqa: E402
    DEFAULT_URL,
    calcache_path,
    ensure_postgres_database,
    resources,
    seed_baseline,
)

RESULTS = ROOT / "bench" / "results"
DAY = 86400
WINDOWS = {"1 day": 1, "1 week": 7, "1 month": 30}
PAST_DAYS, FUTURE_DAYS = 90, 180  # events start in [now - 90d, now + 180d)
TAIL_AGE_DAYS = (130, 400)  # the old tail cleanup deletes: ended 130-400 days ago
CLEANUP_DAYS = 120
DURATIONS_MIN = (30,) * 35 + (45,) * 10 + (60,) * 30 + (90,) * 12 + (15,) * 5 + (120,) * 5


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0], "n": 1}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49], "p95": q[94], "p99": q[98], "n": len(values)}


# --- set-up -------------------------------------------------------------------------------


def setup(args: argparse.Namespace) -> str:
    """Point Django at the bench database, create and migrate it; returns its URL."""
    if args.sqlite:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / "bench.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        url = args.database_url
        name = urlsplit(url).path.lstrip("/")
        if "bench" not in name:
            raise SystemExit(f"refusing to empty {name!r}: the database name must contain 'bench'")
        ensure_postgres_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


def empty_tables() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    tables = [
        "calcache_calendarevent",
        "calcache_calendarcache",
        "calcache_calendarsynctoken",
        "calcache_selectedcalendar",
        "calcache_credential",
        "calcache_cachecomparison",
    ]
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                cur.execute(f"DELETE FROM {table}")
    get_user_model().objects.filter(username__startswith="bench-").delete()


# --- data ---------------------------------------------------------------------------------


@dataclass
class Fill:
    users: list[Any] = field(default_factory=list)  # auth users, in id order
    credentials: dict[int, Any] = field(default_factory=dict)  # user id -> Credential
    calendars: dict[int, list[str]] = field(default_factory=dict)  # credential id -> ids
    longest: dict[tuple[int, str], int] = field(default_factory=dict)  # seconds
    rows: int = 0
    tail_rows: int = 0
    seconds: float = 0.0


def new_id(rng: random.Random) -> str:
    return base64.b32hexencode(rng.randbytes(10)).decode("ascii").rstrip("=").lower()


def compact(sec: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(sec))


def one_calendar(
    rng: random.Random, n: int, first: int, days: int
) -> Iterator[tuple[str, str, int, int, bool]]:
    """(event id, recurring event id, start, end, all day) of ``n`` events starting in
    ``[first, first + days)``: mostly 30-90 min, 4% all-day, 0.5% of 2-5 days, and
    recurring series whose instances carry Google's ``<base>_<start>`` ids."""
    made = 0
    while made < n:
        if n - made >= 4 and rng.random() < 0.03:
            step = rng.choice((1, 7, 7, 14))
            count = min(n - made, rng.randint(4, 20), (days - 1) // step + 1)
            start = (
                first + rng.randrange(days - step * (count - 1)) * DAY + rng.randrange(24, 76) * 900
            )
            length = rng.choice(DURATIONS_MIN) * 60
            base = new_id(rng)
            for k in range(count):
                at = start + k * step * DAY
                yield f"{base}_{compact(at)}", base, at, at + length, False
            made += count
            continue
        day = first + rng.randrange(days) * DAY
        kind = rng.random()
        if kind < 0.005:
            yield new_id(rng), "", day, day + rng.randint(2, 5) * DAY, True
        elif kind < 0.045:
            yield new_id(rng), "", day, day + DAY, True
        else:
            start = day + rng.randrange(24, 76) * 900
            yield new_id(rng), "", start, start + rng.choice(DURATIONS_MIN) * 60, False
        made += 1


def attributes(rng: random.Random) -> tuple[str, str, str]:
    """(status, transparency, own response): ~3% cancelled, 3% free, 2% declined."""
    r = rng.random()
    status = "cancelled" if r < 0.03 else "tentative" if r < 0.05 else "confirmed"
    transparency = "transparent" if rng.random() < 0.03 else "opaque"
    r = rng.random()
    response = "declined" if r < 0.02 else "accepted" if r < 0.5 else ""
    return status, transparency, response


class EventWriter:
    """Writes event rows: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, vendor: str, now: int) -> None:
        self.vendor = vendor
        self.now = now
        self.buffer: list[tuple[Any, ...]] = []
        self.count = 0

    def add(self, row: tuple[Any, ...]) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= 20_000:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        from django.db import connection, transaction

        if self.vendor == "postgresql":
            lines = []
            for row in self.buffer:
                lines.append(
                    "\t".join(
                        _copy_text(value)
                        for value in row[:7]
                        + (_pg_time(row[7]), _pg_time(row[8]))
                        + row[9:14]
                        + (_pg_time(self.now),) * 4
                        + row[14:]
                    )
                    + "\n"
                )
            with connection.cursor() as cur:
                raw = cur.cursor
                with raw.copy(
                    f"COPY calcache_calendarevent ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
                ) as copy:
                    copy.write("".join(lines))
        else:
            now = _sqlite_time(self.now)
            params = [
                row[:7] + (_sqlite_time(row[7]), _sqlite_time(row[8])) + row[9:14] + (now,) * 4
                for row in self.buffer
            ]
            params = [p + row[14:] for p, row in zip(params, self.buffer, strict=True)]
            placeholders = ", ".join(["%s"] * len(EVENT_COLUMNS))
            with transaction.atomic(), connection.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO calcache_calendarevent ({', '.join(EVENT_COLUMNS)}) "
                    f"VALUES ({placeholders})",
                    params,
                )
        self.count += len(self.buffer)
        self.buffer.clear()


def _copy_text(value: Any) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def _pg_time(sec: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(sec))


def _sqlite_time(sec: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))


def fill(args: argparse.Namespace, rng: random.Random, now: datetime) -> Fill:
    """Users, credentials, the old tail (low primary keys, as history is), the events,
    then selected calendars with their exact longest event, and covering sync tokens."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from calcache.models import CalendarSyncToken, Credential, SelectedCalendar

    began = time.perf_counter()
    result = Fill()
    User = get_user_model()
    User.objects.bulk_create(
        [User(username=f"bench-{n}", email=f"bench-{n}@example.com") for n in range(args.users)],
        batch_size=2000,
    )
    result.users = list(User.objects.filter(username__startswith="bench-").order_by("id"))
    Credential.objects.bulk_create(
        [
            Credential(user=user, account_email=user.email, encrypted_token="gAAAAA-bench")
            for user in result.users
        ],
        batch_size=2000,
    )
    for credential in Credential.objects.filter(user__in=result.users):
        result.credentials[credential.user_id] = credential
        count = rng.choice((3, 4, 5, 5, 5, 6, 7))
        result.calendars[credential.pk] = [credential.account_email] + [
            f"cal{k}.{credential.user_id}@group.calendar.google.com" for k in range(1, count)
        ]
    now_sec = int(now.timestamp())
    first = (now_sec // DAY - PAST_DAYS) * DAY
    writer = EventWriter(connection.vendor, now_sec)
    calendars = [
        (credential.user_id, cid, cal)
        for credential in result.credentials.values()
        for cid, cal in [(credential.pk, c) for c in result.calendars[credential.pk]]
    ]

    def emit(user_id: int, cid: int, cal: str, event: tuple[str, str, int, int, bool]) -> None:
        gid, recurring, start, end, all_day = event
        status, transparency, response = attributes(rng)
        key = (cid, cal)
        result.longest[key] = max(result.longest.get(key, 0), end - start)
        writer.add(
            (
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
        )

    log(f"filling: {args.cleanup_tail:,} old tail rows, then {args.events:,} events")
    tail_first = (now_sec // DAY - TAIL_AGE_DAYS[1]) * DAY
    tail_days = TAIL_AGE_DAYS[1] - TAIL_AGE_DAYS[0] - 6
    for _ in range(args.cleanup_tail):
        user_id, cid, cal = rng.choice(calendars)
        day = tail_first + rng.randrange(tail_days) * DAY + rng.randrange(24, 76) * 900
        emit(user_id, cid, cal, (new_id(rng), "", day, day + 3600, False))
    writer.flush()
    result.tail_rows = writer.count
    # Busier users (log-normal weights), primary calendars twice as busy.
    weights = [
        rng.lognormvariate(0.0, 0.5) * (2.0 if cal.startswith("bench-") else 1.0)
        for _, _, cal in calendars
    ]
    total = sum(weights)
    counts = [int(args.events * w / total) for w in weights]
    for i in rng.sample(range(len(counts)), args.events - sum(counts)):
        counts[i] += 1
    for (user_id, cid, cal), n in zip(calendars, counts, strict=True):
        for event in one_calendar(rng, n, first, PAST_DAYS + FUTURE_DAYS):
            emit(user_id, cid, cal, event)
    writer.flush()
    result.rows = writer.count - result.tail_rows
    SelectedCalendar.objects.bulk_create(
        [
            SelectedCalendar(
                credential_id=cid,
                calendar_id=cal,
                is_primary=cal.startswith("bench-"),
                longest_event=timedelta(seconds=result.longest.get((cid, cal), 0)),
            )
            for _, cid, cal in calendars
        ],
        batch_size=2000,
    )
    synced = now - timedelta(minutes=5)
    CalendarSyncToken.objects.bulk_create(
        [
            CalendarSyncToken(
                credential_id=cid,
                calendar_id=cal,
                sync_token="bench",
                last_sync_at=synced,
                last_full_sync_at=synced,
                window_start=datetime.fromtimestamp(first, UTC),
                window_end=datetime.fromtimestamp(first + (PAST_DAYS + FUTURE_DAYS + 7) * DAY, UTC),
            )
            for _, cid, cal in calendars
        ],
        batch_size=2000,
    )
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    result.seconds = time.perf_counter() - began
    return result


# --- availability reads -------------------------------------------------------------------


@dataclass
class Sample:
    window: str
    user: Any
    start: datetime
    end: datetime
    sql: list[str] = field(default_factory=list)  # what busy_intervals sent (PostgreSQL)


def pick_samples(rng: random.Random, fill_: Fill, now: datetime, per_window: int) -> list[Sample]:
    """Random users and windows inside the synced range (starting on a quarter hour)."""
    users = rng.sample(fill_.users, min(len(fill_.users), max(10, per_window // 2)))
    base = now.replace(minute=0, second=0, microsecond=0)
    samples = []
    for _ in range(per_window):
        for window, days in WINDOWS.items():
            start = base + timedelta(days=rng.randrange(-30, 120), minutes=15 * rng.randrange(96))
            samples.append(Sample(window, rng.choice(users), start, start + timedelta(days=days)))
    rng.shuffle(samples)
    return samples


def build_json_cache(samples: list[Sample], now: datetime) -> int:
    """The legacy blobs the samples need: one freeBusy-shaped value per widened key, from
    the same events (busy per calendar, merged, clipped to the key's months)."""
    from django.db.models import Q

    from calcache.legacy import JSON_CACHE_TTL, _iso, cache_key, month_bounds
    from calcache.models import CalendarCache, CalendarEvent, SelectedCalendar
    from calcache.selectors import merge_intervals

    wanted: dict[tuple[int, str], tuple[list[str], datetime, datetime]] = {}
    for sample in samples:
        for credential_id in {
            c.credential_id
            for c in SelectedCalendar.objects.filter(credential__user=sample.user, enabled=True)
        }:
            ids = sorted(
                SelectedCalendar.objects.filter(
                    credential_id=credential_id, enabled=True
                ).values_list("calendar_id", flat=True)
            )
            time_min, time_max = month_bounds(sample.start, sample.end)
            wanted[(credential_id, cache_key(ids, time_min, time_max))] = (ids, time_min, time_max)
    rows = []
    for (credential_id, key), (ids, time_min, time_max) in wanted.items():
        per_calendar: dict[str, list[tuple[datetime, datetime]]] = {cal: [] for cal in ids}
        events = (
            CalendarEvent.objects.filter(Q(credential_id=credential_id, calendar_id__in=ids))
            .busy()
            .overlapping(time_min, time_max)
            .values_list("calendar_id", "start_time", "end_time")
        )
        for cal, start, end in events:
            per_calendar[cal].append((start, end))
        value = {
            "kind": "calendar#freeBusy",
            "timeMin": _iso(time_min),
            "timeMax": _iso(time_max),
            "calendars": {
                cal: {
                    "busy": [
                        {"start": _iso(s), "end": _iso(e)}
                        for s, e in merge_intervals(busy, start=time_min, end=time_max)
                    ]
                }
                for cal, busy in per_calendar.items()
            },
        }
        rows.append(
            CalendarCache(
                credential_id=credential_id, key=key, value=value, expires_at=now + JSON_CACHE_TTL
            )
        )
    CalendarCache.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def capture_sql(samples: list[Sample]) -> None:
    """The exact statements busy_intervals sends for each sample (untimed pass)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from calcache.selectors import busy_intervals

    if connection.vendor == "postgresql":
        # busy_intervals sends one statement on a server-side psycopg cursor, which
        # Django does not log: render that statement with the sample's parameters.
        import psycopg

        from calcache.selectors import _PG_BUSY_SQL

        connection.ensure_connection()
        renderer = psycopg.ClientCursor(connection.connection)
        for sample in samples:
            params = {
                "user_id": sample.user.pk,
                "start": sample.start.astimezone(UTC),
                "end": sample.end.astimezone(UTC),
            }
            sample.sql = [renderer.mogrify(_PG_BUSY_SQL, params)]
            busy_intervals(user=sample.user, start=sample.start, end=sample.end)  # warm-up
        return
    for sample in samples:
        with CaptureQueriesContext(connection) as ctx:
            busy_intervals(user=sample.user, start=sample.start, end=sample.end)
        sample.sql = [q["sql"] for q in ctx.captured_queries]


def measure_reads(
    samples: list[Sample], raw: Any, explain_per_window: int
) -> tuple[dict[str, Any], list[str]]:
    from calcache.legacy import cached_busy
    from calcache.selectors import busy_intervals, merge_intervals

    times: dict[tuple[str, str], list[float]] = {}
    mismatches: list[str] = []
    counts = {"orm_vs_json": 0, "raw_vs_orm": 0, "json_missing": 0}
    intervals: list[int] = []

    def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
        began = time.perf_counter()
        value = fn()
        return value, (time.perf_counter() - began) * 1000

    def run_raw(sample: Sample) -> list[tuple[datetime, datetime]]:
        assert raw is not None
        with raw.cursor() as cur:
            rows: list[tuple[datetime, datetime]] = []
            for sql in sample.sql:
                cur.execute(sql)
                fetched = cur.fetchall()
                if "calcache_calendarevent" in sql:
                    rows = fetched
        return merge_intervals(rows, start=sample.start, end=sample.end)

    for number, sample in enumerate(samples):
        paths: list[tuple[str, Callable[[], Any]]] = [
            ("sql", partial(busy_intervals, user=sample.user, start=sample.start, end=sample.end)),
            ("json", partial(cached_busy, user=sample.user, start=sample.start, end=sample.end)),
        ]
        if raw is not None:
            paths.append(("raw", partial(run_raw, sample)))
        if number % 2:
            paths.reverse()  # alternate which path goes first, so noise hits both alike
        answers: dict[str, Any] = {}
        for name, fn in paths:
            answers[name], ms = timed(fn)
            times.setdefault((sample.window, name), []).append(ms)
        intervals.append(len(answers["sql"]))
        where = (
            f"user {sample.user.pk} [{sample.start:%Y-%m-%d %H:%M}, {sample.end:%Y-%m-%d %H:%M})"
        )
        if answers["json"] is None:
            counts["json_missing"] += 1
            mismatches.append(f"{sample.window}: no JSON blob for {where}")
        elif answers["json"] != answers["sql"]:
            counts["orm_vs_json"] += 1
            only_sql = sorted(set(answers["sql"]) - set(answers["json"]))[:3]
            only_json = sorted(set(answers["json"]) - set(answers["sql"]))[:3]
            mismatches.append(
                f"{sample.window}: SQL != JSON for {where}: only SQL {only_sql}, "
                f"only JSON {only_json}"
            )
        if "raw" in answers and answers["raw"] != answers["sql"]:
            counts["raw_vs_orm"] += 1
            mismatches.append(f"{sample.window}: raw SQL != ORM for {where}")

    explain: dict[str, list[float]] = {}
    if raw is not None:
        for window in WINDOWS:
            chosen = [s for s in samples if s.window == window][:explain_per_window]
            for sample in chosen:
                sql = next(q for q in sample.sql if "calcache_calendarevent" in q)
                with raw.cursor() as cur:
                    cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
                    row = cur.fetchone()
                plan = row[0][0]
                explain.setdefault(window, []).append(float(plan["Execution Time"]))
    result: dict[str, Any] = {"windows": {}, "mismatch_counts": counts}
    for window in WINDOWS:
        entry: dict[str, Any] = {}
        for name in ("sql", "raw", "json"):
            if (window, name) in times:
                entry[name] = percentiles(times[(window, name)])
        if window in explain:
            entry["server"] = percentiles(explain[window])
        entry["sql_json_p50_ratio"] = entry["sql"]["p50"] / entry["json"]["p50"]
        result["windows"][window] = entry
    all_sql = [ms for (w, n), v in times.items() if n == "sql" for ms in v]
    all_json = [ms for (w, n), v in times.items() if n == "json" for ms in v]
    result["all"] = {"sql": percentiles(all_sql), "json": percentiles(all_json)}
    result["all"]["sql_json_p50_ratio"] = result["all"]["sql"]["p50"] / result["all"]["json"]["p50"]
    result["samples"] = len(samples)
    result["busy_intervals_per_answer_median"] = statistics.median(intervals) if intervals else 0
    return result, mismatches


# --- write path ---------------------------------------------------------------------------


def measure_writes(events: int, rounds: int, page: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from calcache.models import CalendarEvent, Credential, SelectedCalendar
    from calcache.sync.mapping import calendar_zone, map_event

    user, _ = get_user_model().objects.get_or_create(username="bench-writer")
    credential, _ = Credential.objects.get_or_create(
        user=user, account_email="bench-writer@example.com", defaults={"encrypted_token": "x"}
    )
    tz = calendar_zone("Europe/London")
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    mapped = {
        kind: [
            map_event(item, calendar_tz=tz, store_summary=True)
            for item in resources(events, offset=0, version=version, start=start)
        ]
        for kind, version in (("new", 1), ("update", 2))
    }
    figures: dict[str, list[float]] = {}
    for round_number in range(rounds):
        order = ("calcache", "seed") if round_number % 2 == 0 else ("seed", "calcache")
        for path in order:
            calendar_id = f"write-{path}-{round_number}@example.com"
            selected, _ = SelectedCalendar.objects.get_or_create(
                credential=credential, calendar_id=calendar_id
            )
            selected.credential = credential
            for kind in ("new", "update"):
                began = time.perf_counter()
                if path == "calcache":
                    calcache_path(selected, mapped[kind], page)
                else:
                    seed_baseline(selected, mapped[kind])
                figures.setdefault(f"{kind}:{path}", []).append(
                    events / (time.perf_counter() - began)
                )
        log(
            f"  write round {round_number}: "
            + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in sorted(figures.items()))
        )
    CalendarEvent.objects.filter(credential=credential).delete()
    SelectedCalendar.objects.filter(credential=credential).delete()
    result: dict[str, Any] = {"events": events, "rounds": rounds, "page": page}
    for kind in ("new", "update"):
        ours = statistics.median(figures[f"{kind}:calcache"])
        seed = statistics.median(figures[f"{kind}:seed"])
        result[kind] = {
            "calcache_events_per_s": ours,
            "seed_events_per_s": seed,
            "ratio": ours / seed,
            "runs": {"calcache": figures[f"{kind}:calcache"], "seed": figures[f"{kind}:seed"]},
        }
    return result


# --- cleanup ------------------------------------------------------------------------------


def _read_loop(samples: list[Sample], stop: Any, ready: Any, out: Any) -> None:
    """busy_intervals for (user, week) windows in a loop until ``stop``; puts
    ``([(began, ms), ...], errors)`` on ``out``. Runs in a child process with its own
    connection, as a web worker would (a thread would also measure the GIL)."""
    from django.db import connection

    from calcache.selectors import busy_intervals

    times: list[tuple[float, float]] = []
    errors = 0
    n = 0
    try:
        while not stop.is_set():
            sample = samples[n % len(samples)]
            n += 1
            began = time.perf_counter()
            try:
                busy_intervals(user=sample.user, start=sample.start, end=sample.end)
            except Exception:  # noqa: BLE001 - counted and reported
                errors += 1
                continue
            times.append((began, (time.perf_counter() - began) * 1000))
            ready.set()
            time.sleep(0.001)
    finally:
        connection.close()
        out.put((times, errors))


class Reader:
    """A reader process (fork: Django is set up already); perf_counter is system-wide."""

    def __init__(self, samples: list[Sample]) -> None:
        from django.db import connections

        connections.close_all()  # the child must not share the parent's connection
        ctx = multiprocessing.get_context("fork")
        self.stop, self.ready, self.out = ctx.Event(), ctx.Event(), ctx.Queue()
        self.process = ctx.Process(
            target=_read_loop, args=(samples, self.stop, self.ready, self.out), daemon=True
        )
        self.times: list[tuple[float, float]] = []
        self.errors = 0

    def start(self) -> None:
        self.process.start()
        self.ready.wait(30)

    def finish(self) -> None:
        self.stop.set()
        self.times, self.errors = self.out.get(timeout=60)
        self.process.join(30)


def measure_cleanup(samples: list[Sample], tail_rows: int, now: datetime) -> dict[str, Any]:
    from calcache.cleanup import cleanup_calendar_cache
    from calcache.models import CalendarEvent

    week = [s for s in samples if s.window == "1 week"]
    # Idle: the same reader, alone, for a fixed time.
    idle = Reader(week)
    idle.start()
    time.sleep(3.0)
    idle.finish()
    before = CalendarEvent.objects.count()
    busy = Reader(week)
    busy.start()
    cleanup_began = time.perf_counter()
    report = cleanup_calendar_cache(days=CLEANUP_DAYS, now=now)
    cleanup_ended = time.perf_counter()
    busy.finish()
    after = CalendarEvent.objects.count()
    idle_p = percentiles([ms for _, ms in idle.times])
    # Only the reads that overlapped the cleanup.
    busy_p = percentiles(
        [
            ms
            for began, ms in busy.times
            if cleanup_began <= began + ms / 1000 and began <= cleanup_ended
        ]
    )
    return {
        "tail_rows": tail_rows,
        "table_rows_before": before,
        "deleted": report.events,
        "table_rows_after": after,
        "seconds": report.seconds,
        "rows_per_s": report.events_per_second,
        "read_idle": idle_p,
        "read_during": busy_p,
        "read_p99_ratio": busy_p["p99"] / idle_p["p99"],
        "read_errors": idle.errors + busy.errors,
    }


# --- report -------------------------------------------------------------------------------


def goals(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    reads, writes, cleanup = result["reads"]["all"], result["writes"], result["cleanup"]
    worst_write = min(
        writes["new"]["calcache_events_per_s"], writes["update"]["calcache_events_per_s"]
    )
    worst_ratio = min(writes["new"]["ratio"], writes["update"]["ratio"])
    sql, ratio = reads["sql"], reads["sql_json_p50_ratio"]
    rate, slowdown = cleanup["rows_per_s"], cleanup["read_p99_ratio"]
    both = "(worse of new/update)"
    return [
        ("availability read p50 <= 0.5 ms", f"{sql['p50']:.3f} ms", sql["p50"] <= 0.5),
        ("availability read p99 <= 1.5 ms", f"{sql['p99']:.3f} ms", sql["p99"] <= 1.5),
        ("SQL/JSON p50 ratio <= 1.0", f"{ratio:.2f}", ratio <= 1.0),
        ("write path >= 30,000 events/s", f"{worst_write:,.0f}/s {both}", worst_write >= 30_000),
        ("write path >= 5x the seed", f"{worst_ratio:.1f}x {both}", worst_ratio >= 5),
        ("cleanup >= 100,000 rows/s", f"{rate:,.0f} rows/s", rate >= 100_000),
        ("read p99 during cleanup <= 2x idle", f"{slowdown:.2f}x", slowdown <= 2),
    ]


def print_report(result: dict[str, Any], mismatches: list[str]) -> None:
    meta = result["meta"]
    reads = result["reads"]
    print()
    print(
        f"calcache bench - {meta['backend']}, {meta['events']:,} events + {meta['tail_rows']:,} "
        f"old tail, {meta['users']:,} users, {meta['calendars']:,} calendars, "
        f"{meta['json_blobs']:,} JSON blobs; {meta['cpus']} CPUs, load {meta['load_before']}"
    )
    print()
    print(
        f"Availability reads, ms ({reads['samples']:,} samples, SQL/raw/JSON interleaved; "
        f"median answer {reads['busy_intervals_per_answer_median']:.0f} intervals)"
    )
    header = f"{'window':8} {'path':28} {'p50':>8} {'p95':>8} {'p99':>8} {'n':>5}"
    print(header)
    print("-" * len(header))
    names = {
        "sql": "busy_intervals",
        "raw": "same SQL, unprepared",
        "server": "server (EXPLAIN ANALYZE)",
        "json": "cached_busy (JSON)",
    }
    for window, entry in reads["windows"].items():
        for name in ("sql", "raw", "server", "json"):
            if name in entry:
                p = entry[name]
                print(
                    f"{window:8} {names[name]:28} {p['p50']:8.3f} {p['p95']:8.3f} "
                    f"{p['p99']:8.3f} {p['n']:5}"
                )
        print(f"{window:8} {'SQL/JSON p50 ratio':28} {entry['sql_json_p50_ratio']:8.2f}")
    a = reads["all"]
    for name in ("sql", "json"):
        p = a[name]
        print(
            f"{'all':8} {names[name]:28} {p['p50']:8.3f} {p['p95']:8.3f} {p['p99']:8.3f} {p['n']:5}"
        )
    print(f"{'all':8} {'SQL/JSON p50 ratio':28} {a['sql_json_p50_ratio']:8.2f}")
    c = reads["mismatch_counts"]
    print(
        f"answers compared: SQL vs JSON mismatches {c['orm_vs_json']}, JSON missing "
        f"{c['json_missing']}, raw vs ORM mismatches {c['raw_vs_orm']}"
    )
    for line in mismatches[:20]:
        print(f"  MISMATCH {line}")
    if len(mismatches) > 20:
        print(f"  ... and {len(mismatches) - 20} more (all in the JSON file)")
    w = result["writes"]
    print()
    print(
        f"Sync write path, events/s ({w['events']:,} events, pages of {w['page']}, median of "
        f"{w['rounds']} interleaved rounds)"
    )
    print(f"{'':8} {'apply_page':>12} {'seed per-row':>13} {'ratio':>7}")
    for kind in ("new", "update"):
        k = w[kind]
        print(
            f"{kind:8} {k['calcache_events_per_s']:12,.0f} {k['seed_events_per_s']:13,.0f} "
            f"{k['ratio']:6.1f}x"
        )
    cl = result["cleanup"]
    print()
    print(
        f"Cleanup (days={CLEANUP_DAYS}): deleted {cl['deleted']:,} of {cl['table_rows_before']:,} "
        f"rows in {cl['seconds']:.2f} s = {cl['rows_per_s']:,.0f} rows/s"
    )
    print(
        f"  busy_intervals (week) from a 2nd process, ms: idle p50 {cl['read_idle']['p50']:.3f} "
        f"p99 {cl['read_idle']['p99']:.3f} (n={cl['read_idle']['n']}); during cleanup p50 "
        f"{cl['read_during']['p50']:.3f} p99 {cl['read_during']['p99']:.3f} "
        f"(n={cl['read_during']['n']}); p99 ratio {cl['read_p99_ratio']:.2f}x; "
        f"errors {cl['read_errors']}"
    )
    print()
    print("Goals")
    for name, figure, met in result["goals"]:
        print(f"  {'met   ' if met else 'MISSED'} {name:38} {figure}")
    print()
    print(
        f"fill {meta['fill_seconds']:.1f} s, JSON blobs {meta['json_seconds']:.1f} s, "
        f"total {meta['runtime_seconds']:.1f} s"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=None, help="events (default 1,000,000)")
    parser.add_argument("--users", type=int, default=None, help="default: events / 500")
    parser.add_argument("--samples", type=int, default=None, help="samples per window (300)")
    parser.add_argument("--write-events", type=int, default=None, help="default 10,000")
    parser.add_argument("--write-rounds", type=int, default=None, help="default 3")
    parser.add_argument("--cleanup-tail", type=int, default=None, help="default 200,000")
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file in bench/results/")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "events": 20_000 if quick else 1_000_000,
        "samples": 40 if quick else 300,
        "write_events": 1_000 if quick else 10_000,
        "write_rounds": 1 if quick else 3,
        "cleanup_tail": 5_000 if quick else 200_000,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.users is None:
        args.users = max(20, args.events // 500)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)
    rng = random.Random(args.seed)
    url = setup(args)
    from django.db import connection

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    log(f"database {connection.vendor} {connection.settings_dict['NAME']}; emptying")
    empty_tables()
    filled = fill(args, rng, now)
    log(f"filled {filled.rows + filled.tail_rows:,} rows in {filled.seconds:.1f} s")
    samples = pick_samples(rng, filled, now, args.samples)
    began = time.perf_counter()
    blobs = build_json_cache(samples, now)
    json_seconds = time.perf_counter() - began
    log(f"{blobs:,} JSON blobs in {json_seconds:.1f} s; capturing SQL, warming up")
    raw = None
    if connection.vendor == "postgresql":
        import psycopg

        # Client-side binding and no prepared statements: what Django's backend does.
        raw = psycopg.connect(
            url, autocommit=True, prepare_threshold=None, cursor_factory=psycopg.ClientCursor
        )
    capture_sql(samples)
    measure_reads(samples[: min(len(samples), 30)], raw, 0)  # warm-up, untimed
    log(f"measuring {len(samples):,} availability samples")
    reads, mismatches = measure_reads(samples, raw, 10 if args.quick else 30)
    log("measuring the write path")
    writes = measure_writes(args.write_events, args.write_rounds, 2500)
    if raw is not None:
        raw.close()
    log("measuring cleanup")
    cleanup = measure_cleanup(samples, filled.tail_rows, now)
    version = ""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SHOW server_version")
            version = f"PostgreSQL {cur.fetchone()[0]}"
        else:
            cur.execute("SELECT sqlite_version()")
            version = f"SQLite {cur.fetchone()[0]}"
    result: dict[str, Any] = {
        "meta": {
            "date": date.today().isoformat(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "backend": version,
            "events": filled.rows,
            "tail_rows": filled.tail_rows,
            "users": len(filled.users),
            "calendars": sum(len(c) for c in filled.calendars.values()),
            "json_blobs": blobs,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": round(os.getloadavg()[0], 2),
            "fill_seconds": filled.seconds,
            "json_seconds": json_seconds,
            "quick": args.quick,
            "seed": args.seed,
        },
        "reads": reads,
        "mismatches": mismatches,
        "writes": writes,
        "cleanup": cleanup,
    }
    result["goals"] = goals(result)
    result["meta"]["runtime_seconds"] = time.perf_counter() - started
    print_report(result, mismatches)
    name = ("quick-" if args.quick else "") + date.today().isoformat()
    name += "-sqlite" if args.sqlite else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
