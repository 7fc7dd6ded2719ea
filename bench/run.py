"""calcache benchmark: the SQL cache side by side with the legacy JSON cache it replaces,
the sync end to end, and how both scale.

    .venv/bin/python bench/run.py [--events 5000000] [--quick] [--sqlite]
                                  [--only reads,writes,e2e,scaling,celery,cleanup]
                                  [--database-url postgres://...] [--samples 300]

(``make bench BENCH_ARGS="--quick"``.) Creates what it needs: the PostgreSQL database of
DATABASE_URL (default postgres://postgres@127.0.0.1:5432/calcache_bench; its name must
contain "bench" because its calcache tables are emptied), or with ``--sqlite`` a file under
bench/results/. Migrates it, fills it (bench/fill.py: parallel COPY on PostgreSQL, with
the event table's unique constraint and busy index rebuilt after each big step;
executemany on SQLite; the same generator makes the writes' events and the emulator's)
and measures, interleaved in one run, these sections (``--only``
picks some; each is one function, its figures one key of the results):

* ``reads``: availability reads for 1 day / 1 week / 1 month windows over random users:
  ``calcache.selectors.busy_intervals`` (the ORM path), the very SQL it sent replayed on a
  raw psycopg cursor, server time from EXPLAIN (ANALYZE) (PostgreSQL), and
  ``calcache.availability.json_cache.cached_busy`` on JSON blobs built from the same
  events; every sample's answers are compared and mismatches counted and printed;
* ``writes``: the sync write path (bench/write_path.py): ``apply_page`` vs the per-row
  upsert baseline (one ``update_or_create`` per event, all in one transaction), new rows
  and updates;
* ``e2e``: full syncs end to end (bench/sync_bench.py): the Google Calendar API emulator in
  its own process, google-api-python-client, ``calcache.sync.sync_calendars`` and the
  database, events/s, split into HTTP + parse, mapping and DB + engine by timing the same
  listing (``GoogleCalendarClient.iter_event_pages``) and its mapping alone in the same
  rounds;
* ``scaling``: ``scaling-reads``, the p50 of ``busy_intervals`` after each step as the same
  table grows (100k, 1M, 5M events by default), and ``scaling-sync``,
  ``manage.py sync_calendars --workers 1/2/4 --full`` over 120 calendars of the emulator,
  as calendars/min and events/s, and ``celery``, the same calendars as one
  ``calcache.sync_calendar`` message each through a real broker (``--broker-url``, default
  Redis) to ``celery -A project worker --concurrency 1/2/4`` (bench/celery_bench.py);
* ``cleanup``: ``cleanup_calendar_cache`` rows/s on an old tail, and the p99 of
  ``busy_intervals`` from a second process during cleanup vs idle.

Prints a table and writes bench/results/<date>.json for a complete default run
(``--quick``: quick-<date>.json; a partial or resized run: partial-<date>.json.tmp; both
gitignored). Asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.celery_bench import DEFAULT_BROKER, measure_celery_workers  # noqa: E402
from bench.common import DEFAULT_URL, RESULTS, log, setup_database  # noqa: E402
from bench.fill import Fill, Filler, default_workers  # noqa: E402
from bench.sync_bench import measure_e2e, measure_sync_workers  # noqa: E402
from bench.write_path import measure_writes  # noqa: E402

WINDOWS = {"1 day": 1, "1 week": 7, "1 month": 30}
CLEANUP_DAYS = 120
# Run order. "scaling" on the command line means both of its parts.
SECTIONS = ("reads", "writes", "e2e", "scaling-reads", "scaling-sync", "celery", "cleanup")
ALIASES = {"scaling": ("scaling-reads", "scaling-sync", "celery")}
# Sections that need the filled table (the others bring their own data).
NEEDS_FILL = {"reads", "scaling-reads", "cleanup"}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0], "n": 1}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49], "p95": q[94], "p99": q[98], "n": len(values)}


# --- set-up -------------------------------------------------------------------------------


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


# --- availability reads -------------------------------------------------------------------


@dataclass
class Sample:
    window: str
    user: Any
    start: datetime
    end: datetime
    sql: list[str] = field(default_factory=list)  # what busy_intervals sent (PostgreSQL)


def pick_samples(
    rng: random.Random, all_users: list[Any], now: datetime, per_window: int
) -> list[Sample]:
    """Random users and windows inside the synced range (starting on a quarter hour)."""
    users = rng.sample(all_users, min(len(all_users), max(10, per_window // 2)))
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

    from calcache.availability.json_cache import JSON_CACHE_TTL, cache_key
    from calcache.availability.live import iso as _iso
    from calcache.availability.live import month_bounds
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

        from calcache.availability.sql import _PG_READ_SQL

        connection.ensure_connection()
        renderer = psycopg.ClientCursor(connection.connection)
        for sample in samples:
            params = {
                "user_ids": [sample.user.pk],
                "readers": [sample.user.pk],
                "every": True,
                "start": sample.start.astimezone(UTC),
                "end": sample.end.astimezone(UTC),
            }
            sample.sql = [renderer.mogrify(_PG_READ_SQL, params)]
            busy_intervals(user=sample.user, start=sample.start, end=sample.end)  # warm-up
        return
    for sample in samples:
        with CaptureQueriesContext(connection) as ctx:
            busy_intervals(user=sample.user, start=sample.start, end=sample.end)
        sample.sql = [q["sql"] for q in ctx.captured_queries]


def measure_reads(
    samples: list[Sample], raw: Any, explain_per_window: int
) -> tuple[dict[str, Any], list[str]]:
    from calcache.availability.json_cache import cached_busy
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
                    # the events' (start, end) end each row; a calendar without any has NULLs
                    rows = [(row[-2], row[-1]) for row in fetched if row[-2] is not None]
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
    from calcache.models import CalendarEvent
    from calcache.sync.cleanup import cleanup_calendar_cache

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


# --- scaling: reads as the table grows ----------------------------------------------------


def measure_read_p50(
    rng: random.Random, users: list[Any], now: datetime, per_window: int
) -> dict[str, Any]:
    """``busy_intervals`` over random (user, window) samples of the users so far, after an
    untimed warm-up pass over 30 of them."""
    from calcache.selectors import busy_intervals

    samples = pick_samples(rng, users, now, per_window)
    for sample in samples[:30]:
        busy_intervals(user=sample.user, start=sample.start, end=sample.end)
    times: dict[str, list[float]] = {}
    for sample in samples:
        began = time.perf_counter()
        busy_intervals(user=sample.user, start=sample.start, end=sample.end)
        times.setdefault(sample.window, []).append((time.perf_counter() - began) * 1000)
    return {
        "windows": {window: percentiles(times[window]) for window in WINDOWS},
        "all": percentiles([ms for values in times.values() for ms in values]),
    }


# --- sections -----------------------------------------------------------------------------


@dataclass
class Run:
    """What the sections share: options, the clock, the filled data and the results."""

    args: argparse.Namespace
    url: str
    now: datetime
    rng: random.Random
    filled: Fill | None = None
    samples: list[Any] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


def run_fill(run: Run) -> None:
    """Fill the table; with ``scaling-reads``, in steps, measuring reads after each."""
    args = run.args
    scaling = "scaling-reads" in args.only
    sizes = [s for s in args.scaling_sizes if s < args.events] + [args.events]
    if not scaling:
        sizes = [args.events]
    filler = Filler(
        seed=args.seed,
        rng=run.rng,
        now=run.now,
        url=run.url,
        tail=args.cleanup_tail,
        total_events=args.events,
        workers=args.fill_workers,
    )
    steps = []
    sample_rng = random.Random(f"{args.seed}:scaling")
    users = 0
    for size in sizes:
        # Users join with the rows (the same events per user at every size).
        users = max(users + 1, min(args.users, 20), round(args.users * size / args.events))
        users = args.users if size == args.events else users
        log(f"filling to {size:,} events of {users:,} users (+ the tail's share)")
        info = filler.grow(size, users)
        log(
            f"  {info['added_rows']:,} rows in {info['seconds']:.1f} s (copy "
            f"{info['copy_seconds']:.1f} s, indexes {info.get('index_seconds', 0):.1f} s, "
            f"vacuum {info['vacuum_seconds']:.1f} s)"
        )
        if scaling:
            reads = measure_read_p50(sample_rng, filler.fill.users, run.now, args.scaling_samples)
            log(f"  busy_intervals p50 {reads['all']['p50']:.3f} ms at {size:,} events")
            steps.append({**info, "reads": reads})
    run.filled = filler.fill
    if scaling:
        first, last = steps[0]["reads"]["all"]["p50"], steps[-1]["reads"]["all"]["p50"]
        run.result.setdefault("scaling", {})["reads"] = {
            "samples_per_window": args.scaling_samples,
            "steps": steps,
            "p50_largest_vs_smallest": last / first,
        }


def section_reads(run: Run) -> None:
    from django.db import connection

    assert run.filled is not None
    began = time.perf_counter()
    blobs = build_json_cache(run.samples, run.now)
    json_seconds = time.perf_counter() - began
    log(f"{blobs:,} JSON blobs in {json_seconds:.1f} s; capturing SQL, warming up")
    raw = None
    if connection.vendor == "postgresql":
        import psycopg

        # Client-side binding and no prepared statements: what Django's backend does.
        raw = psycopg.connect(
            run.url, autocommit=True, prepare_threshold=None, cursor_factory=psycopg.ClientCursor
        )
    try:
        capture_sql(run.samples)
        measure_reads(run.samples[: min(len(run.samples), 30)], raw, 0)  # warm-up, untimed
        log(f"measuring {len(run.samples):,} availability samples")
        reads, mismatches = measure_reads(run.samples, raw, 10 if run.args.quick else 30)
    finally:
        if raw is not None:
            raw.close()
    reads["json_blobs"] = blobs
    reads["json_seconds"] = json_seconds
    run.result["reads"] = reads
    run.result["mismatches"] = mismatches


def section_writes(run: Run) -> None:
    log("measuring the write path")
    run.result["writes"] = measure_writes(
        events=run.args.write_events, rounds=run.args.write_rounds, page=2500, seed=run.args.seed
    )


def section_e2e(run: Run) -> None:
    args = run.args
    log(f"full sync end to end: {args.e2e_accounts * args.e2e_calendars} calendars")
    run.result["e2e"] = measure_e2e(
        accounts=args.e2e_accounts,
        calendars=args.e2e_calendars,
        events=args.e2e_events,
        rounds=args.e2e_rounds,
        seed=args.seed,
    )


def _worker_calendars(args: argparse.Namespace) -> dict[str, int]:
    """The emulator calendars both worker sections sync (the same sizes, so comparable)."""
    return {
        "accounts": args.workers_accounts,
        "calendars": args.workers_calendars,
        "events": args.workers_events,
        "rounds": args.workers_rounds,
        "seed": args.seed,
    }


def section_scaling_sync(run: Run) -> None:
    log(f"sync_calendars --workers {run.args.sync_workers}")
    run.result.setdefault("scaling", {})["sync_workers"] = measure_sync_workers(
        workers=run.args.sync_workers, **_worker_calendars(run.args)
    )


def section_celery(run: Run) -> None:
    log(f"celery workers {run.args.celery_workers} on {run.args.broker_url}")
    run.result.setdefault("scaling", {})["celery_workers"] = measure_celery_workers(
        workers=run.args.celery_workers,
        broker_url=run.args.broker_url,
        **_worker_calendars(run.args),
    )


def section_cleanup(run: Run) -> None:
    assert run.filled is not None
    log("measuring cleanup")
    run.result["cleanup"] = measure_cleanup(run.samples, run.filled.tail_rows, run.now)


# A new section is one function here, a name in SECTIONS, a goals function in GOALS and a
# printer in PRINTERS.
RUNNERS: dict[str, Callable[[Run], None]] = {
    "reads": section_reads,
    "writes": section_writes,
    "e2e": section_e2e,
    "scaling-sync": section_scaling_sync,
    "celery": section_celery,
    "cleanup": section_cleanup,
}


# --- goals --------------------------------------------------------------------------------

Goal = tuple[str, str, bool]


def goals_reads(result: dict[str, Any]) -> list[Goal]:
    reads = result["reads"]["all"]
    sql, ratio = reads["sql"], reads["sql_json_p50_ratio"]
    return [
        ("availability read p50 <= 0.5 ms", f"{sql['p50']:.3f} ms", sql["p50"] <= 0.5),
        ("availability read p99 <= 1.5 ms", f"{sql['p99']:.3f} ms", sql["p99"] <= 1.5),
        ("SQL/JSON p50 ratio <= 1.0", f"{ratio:.2f}", ratio <= 1.0),
    ]


def goals_writes(result: dict[str, Any]) -> list[Goal]:
    writes = result["writes"]
    worst_write = min(
        writes["new"]["calcache_events_per_s"], writes["update"]["calcache_events_per_s"]
    )
    worst_ratio = min(writes["new"]["ratio"], writes["update"]["ratio"])
    both = "(worse of new/update)"
    return [
        ("write path >= 30,000 events/s", f"{worst_write:,.0f}/s {both}", worst_write >= 30_000),
        ("write path >= 5x per-row upserts", f"{worst_ratio:.1f}x {both}", worst_ratio >= 5),
    ]


def goals_e2e(result: dict[str, Any]) -> list[Goal]:
    rate = result["e2e"]["new"]["events_per_s"]
    return [("full sync end to end >= 5,000 events/s", f"{rate:,.0f}/s (new rows)", rate >= 5000)]


def goals_scaling(result: dict[str, Any]) -> list[Goal]:
    reads = result["scaling"].get("reads")
    if not reads or len(reads["steps"]) < 2:
        return []
    steps = reads["steps"]
    ratio = reads["p50_largest_vs_smallest"]
    figure = (
        f"{ratio:.2f}x ({steps[0]['reads']['all']['p50']:.3f} ms at {steps[0]['events']:,}, "
        f"{steps[-1]['reads']['all']['p50']:.3f} ms at {steps[-1]['events']:,})"
    )
    return [("read p50 flat as rows grow (<= 1.25x)", figure, ratio <= 1.25)]


def goals_cleanup(result: dict[str, Any]) -> list[Goal]:
    cleanup = result["cleanup"]
    rate, slowdown = cleanup["rows_per_s"], cleanup["read_p99_ratio"]
    return [
        ("cleanup >= 100,000 rows/s", f"{rate:,.0f} rows/s", rate >= 100_000),
        ("read p99 during cleanup <= 2x idle", f"{slowdown:.2f}x", slowdown <= 2),
    ]


GOALS: dict[str, Callable[[dict[str, Any]], list[Goal]]] = {
    "reads": goals_reads,
    "writes": goals_writes,
    "e2e": goals_e2e,
    "scaling": goals_scaling,
    "cleanup": goals_cleanup,
}


def goals(result: dict[str, Any]) -> list[Goal]:
    return [goal for key, fn in GOALS.items() if key in result for goal in fn(result)]


# --- report -------------------------------------------------------------------------------


def print_reads(result: dict[str, Any]) -> None:
    reads, mismatches = result["reads"], result["mismatches"]
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


def print_writes(result: dict[str, Any]) -> None:
    w = result["writes"]
    print(
        f"Sync write path, events/s ({w['events']:,} events, pages of {w['page']}, median of "
        f"{w['rounds']} interleaved rounds)"
    )
    print(f"{'':8} {'apply_page':>12} {'per-row':>13} {'ratio':>7}")
    for kind in ("new", "update"):
        k = w[kind]
        print(
            f"{kind:8} {k['calcache_events_per_s']:12,.0f} {k['per_row_events_per_s']:13,.0f} "
            f"{k['ratio']:6.1f}x"
        )


def print_e2e(result: dict[str, Any]) -> None:
    e = result["e2e"]
    print(
        "Full sync end to end: emulator process -> google-api-python-client -> "
        "sync_calendars(full=True) -> database"
    )
    print(
        f"({e['calendars']} calendars of {e['accounts']} accounts, {e['events']:,} events in "
        f"{e['pages']} pages, median of {e['rounds']} interleaved rounds, "
        f"{e['failures']} failed syncs)"
    )
    print(f"{'':38} {'seconds':>8} {'events/s':>9} {'share':>6}")
    listing, mapping = e["listing"], e["mapping"]
    for kind, label in (("new", "full sync, new rows"), ("unchanged", "full sync, rows unchanged")):
        k = e[kind]
        print(f"{label:38} {k['seconds']:8.2f} {k['events_per_s']:9,.0f} {100:5.0f}%")
        print(
            f"{'  HTTP + JSON parse (listing alone)':38} {listing['seconds']:8.2f} "
            f"{listing['events_per_s']:9,.0f} {k['http_parse_share'] * 100:5.0f}%"
        )
        print(
            f"{'    of which emulator CPU (Google)':38} "
            f"{listing['emulator_cpu_seconds']:8.2f} {'':9} "
            f"{listing['emulator_cpu_seconds'] / k['seconds'] * 100:5.0f}%"
        )
        print(
            f"{'  mapping (map_event alone)':38} {mapping['seconds']:8.2f} "
            f"{mapping['events_per_s']:9,.0f} {k['mapping_share'] * 100:5.0f}%"
        )
        print(
            f"{'  DB + engine (the remainder)':38} "
            f"{k['seconds'] - listing['seconds'] - mapping['seconds']:8.2f} {'':9} "
            f"{k['db_engine_share'] * 100:5.0f}%"
        )
    print(
        "without the emulator's CPU time (a Google answering instantly): "
        f"{e['new']['events_per_s_without_emulator']:,.0f} events/s new rows, "
        f"{e['unchanged']['events_per_s_without_emulator']:,.0f} unchanged"
    )
    print(f"split by {e['method']}")


def print_scaling(result: dict[str, Any]) -> None:
    s = result["scaling"]
    reads = s.get("reads")
    if reads:
        print(
            "Scaling: busy_intervals as the same table grows, ms (random users of the users so "
            f"far, {reads['samples_per_window']} samples a window)"
        )
        header = (
            f"{'rows':>10} {'events':>10} {'users':>7} {'1 day':>7} {'1 week':>7} "
            f"{'1 month':>7} {'all p50':>8} {'all p99':>8} {'step s':>7}"
        )
        print(header)
        print("-" * len(header))
        for step in reads["steps"]:
            w = step["reads"]["windows"]
            a = step["reads"]["all"]
            print(
                f"{step['events'] + step['tail_rows']:10,} {step['events']:10,} "
                f"{step['users']:7,} {w['1 day']['p50']:7.3f} {w['1 week']['p50']:7.3f} "
                f"{w['1 month']['p50']:7.3f} {a['p50']:8.3f} {a['p99']:8.3f} "
                f"{step['seconds']:7.1f}"
            )
        print(f"p50 at the largest size / at the smallest: {reads['p50_largest_vs_smallest']:.2f}x")
    sync = s.get("sync_workers")
    if sync:
        if reads:
            print()
        print(
            f"Scaling: {sync['command']} ({sync['calendars']} calendars of {sync['accounts']} "
            f"accounts, median of {sync['rounds']} rounds, {sync['failed_runs']} failed runs)"
        )
        print(
            f"{'workers':>7} {'seconds':>8} {'calendars/min':>14} {'events/s':>9} "
            f"{'events':>8} {'speedup':>8} {'emulator CPU':>13} {'sync CPU':>9} "
            f"{'machine busy':>13}"
        )
        for n, w in sync["workers"].items():
            print(
                f"{n:>7} {w['seconds']:8.2f} {w['calendars_per_min']:14,.0f} "
                f"{w['events_per_s']:9,.0f} {w['events']:8,} {w['speedup']:7.2f}x "
                f"{w['emulator_cpu_share'] * 100:12.0f}% {w['sync_process_cpu_share'] * 100:8.0f}% "
                f"{w['machine_cpu_busy'] * 100:12.0f}%"
            )
        print(
            "(emulator / sync CPU: busy share of one core of that process; machine busy: of all "
            f"{os.cpu_count()} CPUs, every process's)"
        )
    celery = s.get("celery_workers")
    if celery:
        print()
        if "skipped" in celery:
            print(f"Scaling: Celery workers skipped ({celery['skipped']})")
            return
        print(
            f"Scaling: {celery['command']} ({celery['calendars']} calendars of "
            f"{celery['accounts']} accounts, broker {celery['broker']}, median of "
            f"{celery['rounds']} rounds)"
        )
        print(f"{'processes':>9} {'seconds':>8} {'calendars/min':>14} {'speedup':>8}")
        for n, w in celery["workers"].items():
            print(
                f"{n:>9} {w['seconds']:8.2f} {w['calendars_per_min']:14,.0f} {w['speedup']:7.2f}x"
            )


def print_cleanup(result: dict[str, Any]) -> None:
    cl = result["cleanup"]
    print(
        f"Cleanup (days={CLEANUP_DAYS}): deleted {cl['deleted']:,} of {cl['table_rows_before']:,} "
        f"rows in {cl['seconds']:.2f} s = {cl['rows_per_s']:,.0f} rows/s deleted "
        f"({cl['table_rows_before'] / cl['seconds']:,.0f} rows/s of the table walked)"
    )
    print(
        f"  busy_intervals (week) from a 2nd process, ms: idle p50 {cl['read_idle']['p50']:.3f} "
        f"p99 {cl['read_idle']['p99']:.3f} (n={cl['read_idle']['n']}); during cleanup p50 "
        f"{cl['read_during']['p50']:.3f} p99 {cl['read_during']['p99']:.3f} "
        f"(n={cl['read_during']['n']}); p99 ratio {cl['read_p99_ratio']:.2f}x; "
        f"errors {cl['read_errors']}"
    )


PRINTERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "reads": print_reads,
    "writes": print_writes,
    "e2e": print_e2e,
    "scaling": print_scaling,
    "cleanup": print_cleanup,
}


def print_report(result: dict[str, Any]) -> None:
    meta = result["meta"]
    print()
    data = (
        f"{meta['events']:,} events + {meta['tail_rows']:,} old tail, {meta['users']:,} users, "
        f"{meta['calendars']:,} calendars"
        if meta["events"]
        else "no filled table"
    )
    print(
        f"calcache bench - {meta['backend']}, {data}; sections {', '.join(meta['sections'])}; "
        f"{meta['cpus']} CPUs, load {meta['load_before']}"
    )
    for key, printer in PRINTERS.items():
        if key in result:
            print()
            printer(result)
    print()
    print("Goals")
    for name, figure, met in result["goals"]:
        print(f"  {'met   ' if met else 'MISSED'} {name:40} {figure}")
    if not result["goals"]:
        print("  (none for these sections)")
    print()
    fill = f"fill {meta['fill_seconds']:.1f} s, " if meta["events"] else ""
    print(f"{fill}total {meta['runtime_seconds']:.1f} s")


# --- command line -------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def _sections(text: str) -> set[str]:
    wanted: set[str] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part in ALIASES:
            wanted.update(ALIASES[part])
        elif part in SECTIONS:
            wanted.add(part)
        else:
            names = ", ".join([*SECTIONS, *ALIASES])
            raise argparse.ArgumentTypeError(f"unknown section {part!r} (one of {names})")
    return wanted


# The sizes a default run uses, and --quick's (None: derived from other options).
DEFAULTS: dict[str, tuple[Any, Any]] = {
    "events": (5_000_000, 20_000),
    "samples": (300, 40),
    "write_events": (10_000, 1_000),
    "write_rounds": (3, 1),
    "cleanup_tail": (200_000, 5_000),
    "scaling_sizes": ([100_000, 1_000_000], [5_000, 10_000]),
    "scaling_samples": (100, 20),
    "e2e_accounts": (10, 2),
    "e2e_calendars": (5, 2),
    "e2e_events": (50_000, 2_000),
    "e2e_rounds": (3, 1),
    "workers_accounts": (24, 4),
    "workers_calendars": (5, 3),
    "workers_events": (48_000, 1_200),
    "workers_rounds": (2, 1),
    "sync_workers": ([1, 2, 4], [1, 2, 4]),
    "celery_workers": ([1, 2, 4], [1, 2]),
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--only", type=_sections, default=None, help="e.g. reads,e2e (default: every section)")
    add("--events", type=int, default=None, help="events in the table (default 5,000,000)")
    add("--users", type=int, default=None, help="default: events / 500")
    add("--samples", type=int, default=None, help="read samples per window (300)")
    add("--write-events", type=int, default=None, help="default 10,000")
    add("--write-rounds", type=int, default=None, help="default 3")
    add("--cleanup-tail", type=int, default=None, help="default 200,000")
    add("--scaling-sizes", type=_ints, default=None, help="sizes below --events (100000,1000000)")
    add("--scaling-samples", type=int, default=None, help="per window and size (100)")
    add("--e2e-accounts", type=int, default=None, help="default 10")
    add("--e2e-calendars", type=int, default=None, help="per account (5)")
    add("--e2e-events", type=int, default=None, help="in the emulator (50,000)")
    add("--e2e-rounds", type=int, default=None, help="default 3")
    add("--workers-accounts", type=int, default=None, help="default 24")
    add("--workers-calendars", type=int, default=None, help="per account (5)")
    add("--workers-events", type=int, default=None, help="in the emulator (48,000)")
    add("--workers-rounds", type=int, default=None, help="default 2")
    add("--sync-workers", type=_ints, default=None, help="worker counts (1,2,4)")
    add("--celery-workers", type=_ints, default=None, help="worker processes (1,2,4)")
    add("--broker-url", default=os.environ.get("BENCH_BROKER_URL") or DEFAULT_BROKER)
    add("--fill-workers", type=int, default=None, help="COPY processes (CPUs)")
    add("--quick", action="store_true", help="small sizes, under a minute")
    add("--sqlite", action="store_true", help="a SQLite file in bench/results/")
    add("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    add("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    # A complete default run: every section at the default sizes (its JSON is evidence).
    args.default_run = (
        not args.quick
        and args.only is None
        and args.seed == 42
        and args.users is None
        and all(getattr(args, name) is None for name in DEFAULTS)
    )
    for name, (full, quick) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.only is None:
        args.only = set(SECTIONS)
    if args.users is None:
        args.users = max(20, args.events // 500)
    if args.fill_workers is None:
        args.fill_workers = default_workers()
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)
    url = setup_database(
        database_url=args.database_url, sqlite="bench.sqlite3" if args.sqlite else None
    )
    from django.db import connection

    run = Run(
        args=args,
        url=url,
        now=datetime.now(UTC).replace(second=0, microsecond=0),
        rng=random.Random(args.seed),
    )
    sections = [name for name in SECTIONS if name in args.only]
    log(f"database {connection.vendor} {connection.settings_dict['NAME']}; emptying")
    empty_tables()
    if args.only & NEEDS_FILL:
        run_fill(run)
        assert run.filled is not None
        log(f"filled {run.filled.rows + run.filled.tail_rows:,} rows in {run.filled.seconds:.1f} s")
        run.samples = pick_samples(run.rng, run.filled.users, run.now, args.samples)
    for name in sections:
        if name in RUNNERS:
            RUNNERS[name](run)
    version = ""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SHOW server_version")
            version = f"PostgreSQL {cur.fetchone()[0]}"
        else:
            cur.execute("SELECT sqlite_version()")
            version = f"SQLite {cur.fetchone()[0]}"
    filled = run.filled or Fill()
    result: dict[str, Any] = {
        "meta": {
            "date": date.today().isoformat(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "backend": version,
            "sections": sections,
            "events": filled.rows,
            "tail_rows": filled.tail_rows,
            "users": len(filled.users),
            "calendars": sum(len(c) for c in filled.calendars.values()),
            "fill_steps": filled.steps,
            "fill_workers": args.fill_workers,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": round(os.getloadavg()[0], 2),
            "fill_seconds": filled.seconds,
            "quick": args.quick,
            "default_run": args.default_run,
            "seed": args.seed,
        },
        **run.result,
    }
    result["goals"] = goals(result)
    result["meta"]["runtime_seconds"] = time.perf_counter() - started
    print_report(result)
    suffix = "-sqlite" if args.sqlite else ""
    if args.quick:
        name = f"quick-{date.today().isoformat()}{suffix}.json"
    elif args.default_run:
        name = f"{date.today().isoformat()}{suffix}.json"
    else:
        name = f"partial-{date.today().isoformat()}{suffix}.json.tmp"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / name
    if args.default_run:
        # Committed evidence is never overwritten: a second run on one day gets "-2".
        number = 2
        while out.exists():
            out = RESULTS / name.replace(".json", f"-{number}.json")
            number += 1
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"results: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
