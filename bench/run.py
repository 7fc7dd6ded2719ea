"""calcache benchmark: the SQL cache side by side with the legacy JSON cache it replaces,
the product's availability path from the function to HTTP, the sync end to end, and how
they scale.

    .venv/bin/python bench/run.py [--events 5000000] [--quick] [--sqlite]
                                  [--only availability,reads,fresh,users,mixed,http,
                                          writes,e2e,scaling,celery,partitioning,
                                          replica,cleanup]
                                  [--database-url postgres://...] [--samples 300]

(``make bench BENCH_ARGS="--quick"``.) Creates what it needs: the PostgreSQL database of
DATABASE_URL (default postgres://postgres@127.0.0.1:5432/calcache_bench; its name must
contain "bench" because its calcache tables are emptied), or with ``--sqlite`` a file under
bench/results/. Migrates it, fills it (bench/fill.py: parallel COPY on PostgreSQL, with
the event table's unique constraint and busy index rebuilt after each big step;
executemany on SQLite; the same generator makes the writes' events and the emulator's)
and measures, interleaved in one run, these sections (``--only``
picks some; each is one function, its figures one key of the results). Throughout, the
product runs as at stage 4 with shadow comparisons (bench/availability.py
``product_path``): ``calendar-cache-sql`` and ``calendar-cache-sql-write`` on for
everyone, the kill switch off, ``CALCACHE_SHADOW_SAMPLE_RATE`` as configured (0.05) and
the sampled comparisons run by the in-process ``ThreadPoolRunner``.

* ``reads``: availability reads for 1 day / 1 week / 1 month windows over random users,
  per sample in a seeded random order: ``calcache.services.get_availability`` (the product path;
  its calls also split by whether they handed a comparison over and whether one was
  running in the background), ``calcache.selectors.busy_intervals`` (prepared), the
  baseline JSON row read (bench/availability.py ``JsonRowReader``: the legacy month blob's
  row by its key, prepared, on a plain connection, JSON decoded, clipped and merged),
  ``calcache.availability.json_cache.cached_busy`` (our ORM JSON path) on blobs built from
  the same events, and busy_intervals' SQL replayed unprepared on a raw psycopg cursor,
  with server time from EXPLAIN (ANALYZE) (PostgreSQL); the SQL/JSON ratio is against the
  JSON row read; every answer is compared with busy_intervals' and mismatches printed;
* ``fresh`` (PostgreSQL; during the fill): the last fill step is left without VACUUM or
  ANALYZE (autovacuum held off): ``busy_intervals`` beside the JSON row read for users of
  that step, then ``VACUUM ANALYZE`` and the same samples again, each time with the plans
  (``EXPLAIN (ANALYZE, FORMAT JSON)`` of the prepared statement, by ``EXPLAIN EXECUTE``,
  and of the literal SQL: node types, indexes, heap fetches, rows filtered out);
* ``users``: ``get_availability_for_users`` for 1, 5, 25 and 100 users a call beside one
  user's ``get_availability``;
* ``mixed``: users with one calendar SQL does not cover (its sync window emptied) and a
  JSON blob answering it: ``get_availability`` (source "mixed"), ``busy_intervals`` and
  the JSON row read;
* ``http`` (bench/http_bench.py): ``GET /calendar-cache/availability/`` under gunicorn
  (sync workers, bench/http_site.py) against a trivial login-required JSON view of the
  same site, 1 / 8 / 32 concurrent loopback clients signed in with session cookies,
  requests/s of each and the ratio;
* ``writes``: the sync write path (bench/write_path.py): ``apply_page`` vs the per-row
  upsert baseline (one ``update_or_create`` per event, all in one transaction), new rows
  and updates;
* ``e2e``: full syncs end to end (bench/sync_bench.py): the Google Calendar API emulator in
  its own process, google-api-python-client, ``calcache.sync.sync_calendars`` and the
  database, events/s, split into HTTP + parse, mapping and DB + engine by timing the same
  listing (``GoogleCalendarClient.iter_event_pages``) and its mapping alone in the same
  rounds;
* ``scaling``: ``scaling-reads``, the p50 of ``busy_intervals`` and ``get_availability``
  after each step as the same table grows (100k, 1M, 5M events by default), and
  ``scaling-sync``, ``manage.py sync_calendars --workers 1/2/4 --full`` over 120 calendars
  of the emulator, as calendars/min and events/s, and ``celery``, the same calendars as
  one ``calcache.sync_calendar`` message each through a real broker (``--broker-url``,
  default Redis) to ``celery -A project worker --concurrency 1/2/4``
  (bench/celery_bench.py);
* ``partitioning`` (PostgreSQL; bench/partitioning.py): a copy of the filled event table
  as 8 hash partitions on ``credential_id`` (the same constraints, busy index and
  statistics, but for the primary key, which must contain the partition key), beside the
  one table: the availability read (``pg_read_sql``, prepared, on a plain connection,
  one-week windows, with server time and whether the LATERAL is pruned to one partition
  at run time), the sync's page upsert of updated and of new events (each page rolled
  back), and the sizes; the copy is dropped after;
* ``replica`` (a PostgreSQL run; bench/replica_bench.py in a process of its own): a
  throwaway primary of its own (``--replica-events``, 1,000,000 by default) with a
  streaming replica and a transaction-pooling PgBouncer; ``get_availability`` with
  ``CALCACHE_READ_DATABASE`` naming the primary, the replica, the primary unprepared and
  PgBouncer (unprepared), in a seeded random order, every answer compared with the primary's;
* ``cleanup``: ``cleanup_calendar_cache`` rows/s on an old tail, and the p99 of
  ``busy_intervals`` from a second process during cleanup vs idle.

``availability`` names fresh, reads, users, mixed and http. Prints a table, with goals
met or missed (never asserted), and writes bench/results/<date>.json for a complete
default run (``--quick``: quick-<date>.json; a partial or resized run:
partial-<date>.json.tmp; both gitignored). Asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.availability import (  # noqa: E402
    WINDOWS,
    JsonRowReader,
    Sample,
    ShadowWatch,
    autovacuum_held_off,
    build_json_cache,
    busy_params,
    interleaved,
    measure_fresh_phase,
    measure_mixed,
    measure_users,
    ms_of,
    pick_samples,
    product_path,
    reset_autovacuum,
    vacuum_analyze,
)
from bench.celery_bench import DEFAULT_BROKER, measure_celery_workers  # noqa: E402
from bench.common import (  # noqa: E402
    DEFAULT_URL,
    RESULTS,
    log,
    percentiles,
    setup_database,
    shuffled,
    timed,
)
from bench.fill import Fill, Filler, default_workers  # noqa: E402
from bench.http_bench import measure_http  # noqa: E402
from bench.partitioning import measure_partitioning  # noqa: E402
from bench.replica_bench import print_result as print_replica_result  # noqa: E402
from bench.sync_bench import measure_e2e, measure_sync_workers  # noqa: E402
from bench.write_path import measure_writes  # noqa: E402

CLEANUP_DAYS = 120
USERS_PER_CALL = (1, 5, 25, 100)
# Run order ("fresh" and "scaling-reads" run during the fill). An alias names several.
SECTIONS = (
    "fresh",
    "reads",
    "users",
    "mixed",
    "http",
    "writes",
    "e2e",
    "scaling-reads",
    "scaling-sync",
    "celery",
    "partitioning",
    "replica",
    "cleanup",
)
ALIASES = {
    "scaling": ("scaling-reads", "scaling-sync", "celery"),
    "availability": ("fresh", "reads", "users", "mixed", "http"),
}
# Sections that need the filled table (the others bring their own data).
NEEDS_FILL = {
    "fresh",
    "reads",
    "users",
    "mixed",
    "http",
    "scaling-reads",
    "partitioning",
    "cleanup",
}


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


def capture_sql(samples: list[Sample]) -> None:
    """The exact statements busy_intervals sends for each sample (untimed pass)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from calcache.selectors import busy_intervals

    if connection.vendor == "postgresql":
        # busy_intervals sends one statement on a server-side psycopg cursor, which
        # Django does not log: render that statement with the sample's parameters.
        import psycopg

        from calcache.availability.sql import pg_read_sql

        connection.ensure_connection()
        renderer = psycopg.ClientCursor(connection.connection)
        for sample in samples:
            sample.sql = [renderer.mogrify(pg_read_sql(), busy_params(sample))]
            busy_intervals(user=sample.user, start=sample.start, end=sample.end)  # warm-up
        return
    for sample in samples:
        with CaptureQueriesContext(connection) as ctx:
            busy_intervals(user=sample.user, start=sample.start, end=sample.end)
        sample.sql = [q["sql"] for q in ctx.captured_queries]


READ_PATHS = ("product", "sql", "raw", "blob", "json")


def measure_reads(
    samples: list[Sample],
    raw: Any,
    explain_per_window: int,
    blob: JsonRowReader,
    watch: ShadowWatch | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Per sample, in a seeded random order (``shuffled``): ``get_availability`` (the product
    path), ``busy_intervals``, the JSON row read (the baseline), ``cached_busy`` (our ORM
    JSON path) and, on PostgreSQL, busy_intervals' SQL unprepared; every answer compared
    with busy_intervals'. ``watch``: get_availability's calls are told apart by whether
    they handed a comparison over, and whether one was running in the background."""
    from calcache.availability.json_cache import cached_busy
    from calcache.selectors import busy_intervals, merge_intervals
    from calcache.services import get_availability

    times: dict[tuple[str, str], list[float]] = {}
    mismatches: list[str] = []
    counts = {"orm_vs_json": 0, "raw_vs_orm": 0, "json_missing": 0, "product": 0, "blob": 0}
    intervals: list[int] = []
    sources: Counter[str] = Counter()
    tagged: list[tuple[float, bool, bool]] = []  # (ms, handed one over, one in the background)

    def run_raw(sample: Sample) -> list[tuple[datetime, datetime]]:
        assert raw is not None
        with raw.cursor() as cur:
            rows: list[tuple[datetime, datetime]] = []
            for sql in sample.sql:
                cur.execute(sql)
                fetched = cur.fetchall()
                if "calcache_calendarevent" in sql:
                    # a calendar's busy starts and ends end its row (NULL when it has none)
                    rows = [
                        pair
                        for row in fetched
                        if row[-2]
                        for pair in zip(row[-2], row[-1], strict=True)
                    ]
        return merge_intervals(rows, start=sample.start, end=sample.end)

    for number, sample in enumerate(samples):
        asked = {"user": sample.user, "start": sample.start, "end": sample.end}
        paths: list[tuple[str, Callable[[], Any]]] = [
            ("product", partial(get_availability, **asked)),
            ("sql", partial(busy_intervals, **asked)),
            ("blob", partial(blob.read, sample)),
            ("json", partial(cached_busy, **asked)),
        ]
        if raw is not None:
            paths.append(("raw", partial(run_raw, sample)))
        answers: dict[str, Any] = {}
        for name, fn in shuffled(paths, number):
            if name == "product" and watch is not None:
                handed, background = watch.handed, watch.busy()
                answers[name], ms = timed(fn)
                tagged.append((ms, watch.handed > handed, background or watch.busy()))
            else:
                answers[name], ms = timed(fn)
            times.setdefault((sample.window, name), []).append(ms)
        intervals.append(len(answers["sql"]))
        sources[answers["product"].source] += 1
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
        for name, label in (("product", "get_availability"), ("blob", "JSON row read")):
            got = answers[name].busy if name == "product" else answers[name]
            if got != answers["sql"]:
                counts[name] += 1
                mismatches.append(f"{sample.window}: {label} != busy_intervals for {where}")
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

    def entry_of(values: dict[str, list[float]]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            name: percentiles(values[name]) for name in READ_PATHS if values.get(name)
        }
        # SQL/JSON: against the raw JSON row read, the fastest read of what SQL replaces
        entry["sql_json_p50_ratio"] = entry["sql"]["p50"] / entry["blob"]["p50"]
        entry["sql_orm_json_p50_ratio"] = entry["sql"]["p50"] / entry["json"]["p50"]
        entry["product_sql_p50_ratio"] = entry["product"]["p50"] / entry["sql"]["p50"]
        entry["product_json_p50_ratio"] = entry["product"]["p50"] / entry["blob"]["p50"]
        return entry

    result: dict[str, Any] = {"windows": {}, "mismatch_counts": counts}
    for window in WINDOWS:
        entry = entry_of({name: v for (w, name), v in times.items() if w == window})
        if window in explain:
            entry["server"] = percentiles(explain[window])
        result["windows"][window] = entry
    result["all"] = entry_of(
        {name: [ms for (w, n), v in times.items() if n == name for ms in v] for name in READ_PATHS}
    )
    if tagged:
        result["product_calls"] = {
            "sampled": percentiles([ms for ms, handed, _ in tagged if handed]),
            "not_sampled": percentiles([ms for ms, handed, _ in tagged if not handed]),
            "comparison_running": percentiles([ms for ms, _, bg in tagged if bg]),
            "no_comparison_running": percentiles([ms for ms, _, bg in tagged if not bg]),
        }
    result["sources"] = dict(sources)
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
    """``busy_intervals`` and ``get_availability`` (shadow sampling off: no JSON blobs
    here), interleaved, over random (user, window) samples of the users so far, after an
    untimed warm-up pass over 30 of them."""
    from django.test.utils import override_settings

    from calcache.selectors import busy_intervals
    from calcache.services import get_availability

    samples = pick_samples(rng, users, now, per_window)

    def paths(sample: Sample) -> list[tuple[str, Callable[[], Any]]]:
        window = {"user": sample.user, "start": sample.start, "end": sample.end}
        return [
            ("sql", partial(busy_intervals, **window)),
            ("product", partial(get_availability, **window)),
        ]

    with override_settings(CALCACHE_SHADOW_SAMPLE_RATE=0.0):
        interleaved(samples[:30], paths)
        results = interleaved(samples, paths)
    return {
        "windows": {
            window: percentiles(ms_of(results, "sql", samples, window)) for window in WINDOWS
        },
        "all": percentiles(ms_of(results, "sql")),
        "product": percentiles(ms_of(results, "product")),
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
    """Fill the table; with ``scaling-reads``, in steps, measuring reads after each; with
    ``fresh`` (PostgreSQL), the last step is measured before its VACUUM ANALYZE too."""
    from django.db import connection

    args = run.args
    scaling = "scaling-reads" in args.only
    fresh = "fresh" in args.only and connection.vendor == "postgresql"
    if "fresh" in args.only and not fresh:
        run.result["fresh"] = {"skipped": "n/a (SQLite: no VACUUM, visibility map or EXPLAIN)"}
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
        last = fresh and size == sizes[-1]
        joined = len(filler.fill.users)
        with autovacuum_held_off() if last else nullcontext():
            info = filler.grow(size, users, vacuum=not last)
            log(
                f"  {info['added_rows']:,} rows in {info['seconds']:.1f} s (copy "
                f"{info['copy_seconds']:.1f} s, indexes {info.get('index_seconds', 0):.1f} s, "
                f"vacuum {info['vacuum_seconds']:.1f} s)"
            )
            if last:
                run.result["fresh"] = measure_fresh(run, filler.fill.users[joined:])
                info["vacuum_seconds"] = run.result["fresh"]["vacuum_seconds"]
        if scaling:
            reads = measure_read_p50(sample_rng, filler.fill.users, run.now, args.scaling_samples)
            log(
                f"  busy_intervals p50 {reads['all']['p50']:.3f} ms, get_availability p50 "
                f"{reads['product']['p50']:.3f} ms at {size:,} events"
            )
            steps.append({**info, "reads": reads})
    run.filled = filler.fill
    if scaling:
        first, last_step = steps[0]["reads"], steps[-1]["reads"]
        run.result.setdefault("scaling", {})["reads"] = {
            "samples_per_window": args.scaling_samples,
            "steps": steps,
            "p50_largest_vs_smallest": last_step["all"]["p50"] / first["all"]["p50"],
            "product_p50_largest_vs_smallest": last_step["product"]["p50"]
            / first["product"]["p50"],
        }


def measure_fresh(run: Run, users: list[Any]) -> dict[str, Any]:
    """The users who joined in the last step (their rows all on pages no VACUUM has seen):
    ``busy_intervals`` beside the JSON row read and the plans, before and after
    ``VACUUM ANALYZE`` of the event table, the same samples both times."""
    args = run.args
    samples = pick_samples(random.Random(f"{args.seed}:fresh"), users, run.now, args.fresh_samples)
    blobs = build_json_cache(samples, run.now)
    explain = [
        sample
        for window in WINDOWS
        for sample in [s for s in samples if s.window == window][: args.fresh_explain]
    ]
    log(f"fresh table: {len(samples)} samples of {len(users):,} new users, before VACUUM")
    reader = JsonRowReader(run.url)
    try:
        before = measure_fresh_phase(samples, reader, explain)
        log(f"  busy_intervals p50 {before['sql']['p50']:.3f} ms; VACUUM ANALYZE")
        seconds = vacuum_analyze()
        log(f"  VACUUM ANALYZE {seconds:.1f} s; after")
        after = measure_fresh_phase(samples, reader, explain)
    finally:
        reader.close()

    def accesses(phase: dict[str, Any]) -> set[str]:
        return {
            f"{scan['node']} {'+'.join(scan['indexes'])}"
            for plan in phase["plans"]
            for kind in ("prepared", "literal")
            if kind in plan
            for scan in plan[kind]["event_scans"]
        }

    return {
        "samples": len(samples),
        "users": len(users),
        "json_blobs": blobs,
        "vacuum_seconds": seconds,
        "before": before,
        "after": after,
        "event_access_before": sorted(accesses(before)),
        "event_access_after": sorted(accesses(after)),
        "same_plan": accesses(before) == accesses(after),
        "busy_index_only": all(
            plan[kind]["busy_index_only"]
            for phase in (before, after)
            for plan in phase["plans"]
            for kind in ("prepared", "literal")
            if kind in plan
        ),
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
    reader = JsonRowReader(run.url)
    try:
        capture_sql(run.samples)
        measure_reads(run.samples[: min(len(run.samples), 30)], raw, 0, reader)  # warm-up
        log(f"measuring {len(run.samples):,} availability samples")
        watch = ShadowWatch()
        reads, mismatches = measure_reads(
            run.samples, raw, 10 if run.args.quick else 30, reader, watch
        )
        reads["shadow"] = watch.close()
    finally:
        reader.close()
        if raw is not None:
            raw.close()
    reads["json_blobs"] = blobs
    reads["json_seconds"] = json_seconds
    run.result["reads"] = reads
    run.result["mismatches"] = mismatches


def section_users(run: Run) -> None:
    assert run.filled is not None
    log(f"get_availability_for_users: {run.args.users_rounds} rounds")
    run.result["users"] = measure_users(
        rng=random.Random(f"{run.args.seed}:users"),
        users=run.filled.users,
        now=run.now,
        sizes=USERS_PER_CALL,
        rounds=run.args.users_rounds,
        groups=min(run.args.users_rounds, 10),
    )


def section_mixed(run: Run) -> None:
    assert run.filled is not None
    log(f"partially covered users: {run.args.mixed_samples} samples")
    reader = JsonRowReader(run.url)
    try:
        run.result["mixed"] = measure_mixed(
            rng=random.Random(f"{run.args.seed}:mixed"),
            users=run.filled.users,
            exclude={sample.user.pk for sample in run.samples},
            now=run.now,
            samples=run.args.mixed_samples,
            reader=reader,
        )
    finally:
        reader.close()


def section_http(run: Run) -> None:
    args = run.args
    build_json_cache(run.samples, run.now)  # the shadow comparisons' other side
    log(f"HTTP: gunicorn, {args.http_clients} clients, {args.http_rounds} rounds")
    run.result["http"] = measure_http(
        samples=run.samples,
        clients=args.http_clients,
        seconds=args.http_seconds,
        rounds=args.http_rounds,
        workers=args.http_workers,
    )


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


def section_partitioning(run: Run) -> None:
    from django.db import connection

    assert run.filled is not None
    if connection.vendor != "postgresql":
        run.result["partitioning"] = {"skipped": "n/a (SQLite: no declarative partitioning)"}
        return
    run.result["partitioning"] = measure_partitioning(
        url=run.url,
        users=run.filled.users,
        credentials=run.filled.credentials,
        calendars=run.filled.calendars,
        now=run.now,
        samples=run.args.samples,
        write_rounds=run.args.partition_rounds,
        seed=run.args.seed,
    )


def section_cleanup(run: Run) -> None:
    assert run.filled is not None
    log("measuring cleanup")
    run.result["cleanup"] = measure_cleanup(run.samples, run.filled.tail_rows, run.now)


def section_replica(run: Run) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        run.result["replica"] = {"skipped": "n/a (SQLite run)"}
        return
    log(f"replica and PgBouncer reads: a throwaway primary of {run.args.replica_events:,} events")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "replica_bench.py"),
            "--events",
            str(run.args.replica_events),
            "--samples",
            str(run.args.samples),
            "--seed",
            str(run.args.seed),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        run.result["replica"] = {"skipped": f"failed (exit {done.returncode})"}
        return
    run.result["replica"] = json.loads(done.stdout)


# A new section is one function here, a name in SECTIONS, a goals function in GOALS and a
# printer in PRINTERS.
RUNNERS: dict[str, Callable[[Run], None]] = {
    "reads": section_reads,
    "users": section_users,
    "mixed": section_mixed,
    "http": section_http,
    "writes": section_writes,
    "e2e": section_e2e,
    "scaling-sync": section_scaling_sync,
    "celery": section_celery,
    "partitioning": section_partitioning,
    "replica": section_replica,
    "cleanup": section_cleanup,
}


# --- goals --------------------------------------------------------------------------------

# (what, the figure, met: True / False, None where it cannot be measured here)
Goal = tuple[str, str, bool | None]


def goals_reads(result: dict[str, Any]) -> list[Goal]:
    reads = result["reads"]["all"]
    sql, product, row = reads["sql"], reads["product"], reads["blob"]
    ratio = reads["sql_json_p50_ratio"]
    vs_sql, vs_row = reads["product_sql_p50_ratio"], reads["product_json_p50_ratio"]
    return [
        ("availability read p50 <= 0.5 ms", f"{sql['p50']:.3f} ms", sql["p50"] <= 0.5),
        ("availability read p99 <= 1.5 ms", f"{sql['p99']:.3f} ms", sql["p99"] <= 1.5),
        (
            "SQL/JSON p50 ratio <= 1.0",
            f"{ratio:.2f} (busy_intervals / raw JSON row read)",
            ratio <= 1.0,
        ),
        (
            "get_availability p50 <= 1.25x busy_intervals",
            f"{vs_sql:.2f}x ({product['p50']:.3f} vs {sql['p50']:.3f} ms)",
            vs_sql <= 1.25,
        ),
        (
            "get_availability p50 <= 0.5x JSON row read",
            f"{vs_row:.2f}x ({product['p50']:.3f} vs {row['p50']:.3f} ms)",
            vs_row <= 0.5,
        ),
        (
            "get_availability p99 <= 2 ms (shadow on)",
            f"{product['p99']:.3f} ms",
            product["p99"] <= 2.0,
        ),
    ]


def goals_fresh(result: dict[str, Any]) -> list[Goal]:
    fresh = result["fresh"]
    names = (
        "busy_intervals <= 0.4x JSON row, before VACUUM",
        "busy_intervals <= 0.4x JSON row, after VACUUM",
        "no plan flip across VACUUM (busy index)",
    )
    if "skipped" in fresh:
        return [(name, "n/a (SQLite)", None) for name in names]
    before, after = fresh["before"]["sql_blob_p50_ratio"], fresh["after"]["sql_blob_p50_ratio"]
    plan_ok = fresh["same_plan"] and fresh["busy_index_only"]
    access = "; ".join(fresh["event_access_before"])
    if not fresh["same_plan"]:
        access = f"before {access}; after {'; '.join(fresh['event_access_after'])}"
    return [
        (names[0], f"{before:.2f}x", before <= 0.4),
        (names[1], f"{after:.2f}x", after <= 0.4),
        (names[2], access, plan_ok),
    ]


def goals_users(result: dict[str, Any]) -> list[Goal]:
    users = result["users"]
    name = "25 users in one call p50 <= 3x one user"
    entry = users["sizes"].get("25")
    if entry is None:
        return [(name, f"n/a (only {max(map(int, users['sizes']))} users)", None)]
    figure = f"{entry['vs_one_p50']:.2f}x ({entry['p50']:.3f} vs {users['one']['p50']:.3f} ms)"
    return [(name, figure, entry["vs_one_p50"] <= 3)]


def goals_http(result: dict[str, Any]) -> list[Goal]:
    clients = result["http"]["clients"]
    ratios = [entry["ratio"] for entry in clients.values()]
    figure = f"{' / '.join(f'{r:.2f}x' for r in ratios)} at {' / '.join(clients)} clients"
    return [("HTTP availability >= 0.8x trivial view", figure, min(ratios) >= 0.8)]


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
    product = reads["product_p50_largest_vs_smallest"]
    product_figure = (
        f"{product:.2f}x ({steps[0]['reads']['product']['p50']:.3f} ms, "
        f"{steps[-1]['reads']['product']['p50']:.3f} ms)"
    )
    return [
        ("read p50 flat as rows grow (<= 1.25x)", figure, ratio <= 1.25),
        ("get_availability p50 flat as rows grow", product_figure, product <= 1.25),
    ]


def goals_cleanup(result: dict[str, Any]) -> list[Goal]:
    cleanup = result["cleanup"]
    rate, slowdown = cleanup["rows_per_s"], cleanup["read_p99_ratio"]
    return [
        ("cleanup >= 100,000 rows/s", f"{rate:,.0f} rows/s", rate >= 100_000),
        ("read p99 during cleanup <= 2x idle", f"{slowdown:.2f}x", slowdown <= 2),
    ]


def goals_replica(result: dict[str, Any]) -> list[Goal]:
    replica = result["replica"]
    if "skipped" in replica:
        return []
    return [
        (
            "replica and PgBouncer answers equal the primary's",
            f"{replica['mismatches']} differing of {replica['samples']} x 4",
            replica["mismatches"] == 0,
        )
    ]


GOALS: dict[str, Callable[[dict[str, Any]], list[Goal]]] = {
    "reads": goals_reads,
    "fresh": goals_fresh,
    "users": goals_users,
    "http": goals_http,
    "writes": goals_writes,
    "e2e": goals_e2e,
    "scaling": goals_scaling,
    "replica": goals_replica,
    "cleanup": goals_cleanup,
}


def goals(result: dict[str, Any]) -> list[Goal]:
    return [goal for key, fn in GOALS.items() if key in result for goal in fn(result)]


# --- report -------------------------------------------------------------------------------


READ_LABELS = {
    "product": "get_availability (product)",
    "sql": "busy_intervals",
    "raw": "same SQL, unprepared",
    "server": "server (EXPLAIN ANALYZE)",
    "blob": "JSON row read (raw, baseline)",
    "json": "cached_busy (ours, ORM JSON)",
}
LABEL = 34


def _row(first: str | None, label: str, p: dict[str, Any]) -> str:
    """A path's percentiles, after a first column (a window; None: no first column)."""
    line = f"{label:{LABEL}} {p['p50']:8.3f} {p['p95']:8.3f} {p['p99']:8.3f} {p['n']:5}"
    return line if first is None else f"{first:8} {line}"


def _shadow_line(shadow: dict[str, Any]) -> str:
    pairs = ", ".join(f"{pair} {n}" for pair, n in sorted(shadow["pairs"].items()))
    return (
        f"shadow comparisons: {shadow['handed_over']} handed over, {shadow['recorded']} "
        f"recorded ({pairs or 'none'}), {shadow['mismatched']} mismatched, "
        f"{shadow['dropped']} dropped"
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items())) or "none"


def print_reads(result: dict[str, Any]) -> None:
    reads, mismatches = result["reads"], result["mismatches"]
    product = result["meta"].get("product") or {}
    print(
        f"Availability reads, ms ({reads['samples']:,} samples; per sample, in a random order, "
        "get_availability, busy_intervals, the JSON row read, cached_busy and the SQL "
        f"unprepared; median answer {reads['busy_intervals_per_answer_median']:.0f} intervals)"
    )
    if product:
        print(
            f"product path: {', '.join(f'{k} {v}' for k, v in product.items())}; JSON row read:"
            " the month blob's row by its key, prepared, on a plain connection, JSON decoded,"
            " clipped and merged"
        )
    header = f"{'window':8} {'path':{LABEL}} {'p50':>8} {'p95':>8} {'p99':>8} {'n':>5}"
    print(header)
    print("-" * len(header))
    for window, entry in reads["windows"].items():
        for name, label in READ_LABELS.items():
            if name in entry:
                print(_row(window, label, entry[name]))
        ratio = entry["sql_json_p50_ratio"]
        print(f"{window:8} {'SQL/JSON p50 ratio (vs row read)':{LABEL}} {ratio:8.2f}")
    a = reads["all"]
    calls = reads.get("product_calls", {})
    print(_row("all", READ_LABELS["product"], a["product"]))
    for key, label in (
        ("sampled", "  sampled (handed over)"),
        ("comparison_running", "  while a comparison ran"),
        ("no_comparison_running", "  no comparison running"),
    ):
        if key in calls and calls[key]["n"]:
            print(_row("all", label, calls[key]))
    for name in ("sql", "blob", "json"):
        print(_row("all", READ_LABELS[name], a[name]))
    for key, label in (
        ("sql_json_p50_ratio", "SQL/JSON p50 ratio (vs row read)"),
        ("sql_orm_json_p50_ratio", "busy_intervals / cached_busy p50"),
        ("product_sql_p50_ratio", "get_availability / busy_intervals"),
        ("product_json_p50_ratio", "get_availability / JSON row read"),
    ):
        print(f"{'all':8} {label:{LABEL}} {a[key]:8.2f}")
    print(f"sources: {_counts(reads['sources'])}; {_shadow_line(reads['shadow'])}")
    c = reads["mismatch_counts"]
    print(
        f"answers compared with busy_intervals: cached_busy {c['orm_vs_json']} (JSON missing "
        f"{c['json_missing']}), JSON row read {c['blob']}, get_availability {c['product']}, "
        f"unprepared SQL {c['raw_vs_orm']} mismatches"
    )
    for line in mismatches[:20]:
        print(f"  MISMATCH {line}")
    if len(mismatches) > 20:
        print(f"  ... and {len(mismatches) - 20} more (all in the JSON file)")


def _plans(phase: dict[str, Any]) -> list[str]:
    lines = []
    for kind in ("prepared", "literal"):
        plans = [plan[kind] for plan in phase["plans"] if kind in plan]
        if not plans:
            continue
        access = Counter(
            "; ".join(f"{s['node']} {'+'.join(s['indexes'])}" for s in plan["event_scans"])
            for plan in plans
        )
        fetches = statistics.median(sum(s["heap_fetches"] for s in p["event_scans"]) for p in plans)
        removed = statistics.median(
            sum(s["rows_removed_by_filter"] for s in p["event_scans"]) for p in plans
        )
        server = statistics.median(p["execution_ms"] for p in plans)
        extra = ""
        if kind == "prepared":
            extra = (
                f"; plan cache: {plans[-1]['generic_plans']} generic, "
                f"{plans[-1]['custom_plans']} custom plans so far"
            )
        what = "prepared statement (EXPLAIN EXECUTE)" if kind == "prepared" else "literal SQL"
        lines.append(
            f"  {what}, {len(plans)} samples: event table by {_counts(dict(access))}; "
            f"median heap fetches {fetches:,.0f}, rows removed by filter {removed:,.0f}, "
            f"server {server:.3f} ms{extra}"
        )
        for shape, n in Counter(p["shape"] for p in plans).most_common():
            lines.append(f"    {n}x {shape}")
    return lines


def print_fresh(result: dict[str, Any]) -> None:
    fresh = result["fresh"]
    if "skipped" in fresh:
        print(f"Fresh table, before and after VACUUM: {fresh['skipped']}")
        return
    print(
        f"Fresh table: busy_intervals and the JSON row read, interleaved, before and after "
        f"VACUUM ANALYZE, ms ({fresh['samples']} samples of the {fresh['users']:,} users of "
        "the last fill step, whose rows no VACUUM had seen; the same samples both times; "
        "autovacuum held off until then)"
    )
    for key, title in (
        ("before", "before VACUUM"),
        ("after", f"after VACUUM ANALYZE ({fresh['vacuum_seconds']:.1f} s)"),
    ):
        phase = fresh[key]
        t = phase["table"]
        print(
            f"{title}: all-visible pages {t['all_visible_share'] * 100:.0f}% of "
            f"{t['pages']:,}, rows changed since the last ANALYZE "
            f"{t['rows_changed_since_analyze']:,}"
        )
        print(_row("", "busy_intervals", phase["sql"]))
        print(_row("", "JSON row read (raw)", phase["blob"]))
        print(
            f"{'':8} {'busy_intervals / JSON row p50':{LABEL}} {phase['sql_blob_p50_ratio']:8.2f}"
            f"   (answers differing: {phase['mismatches']})"
        )
        for line in _plans(phase):
            print(line)
    verdict = "same event-table access before and after" if fresh["same_plan"] else "PLAN FLIP"
    print(
        f"{verdict}: before {'; '.join(fresh['event_access_before'])} / after "
        f"{'; '.join(fresh['event_access_after'])}"
    )


def print_users(result: dict[str, Any]) -> None:
    users = result["users"]
    print(
        f"get_availability_for_users, ms per call (one week, one window for the group; "
        f"{users['rounds']} rounds over {users['groups']} groups, the calls of a round in a "
        "random order, each once the comparisons of the one before were done)"
    )
    header = (
        f"{'users per call':{LABEL}} {'p50':>8} {'p95':>8} {'p99':>8} {'n':>5} "
        f"{'p50/user':>9} {'vs one':>7}"
    )
    print(header)
    print("-" * len(header))
    print(_row(None, "get_availability, 1 user", users["one"]))
    for n, entry in users["sizes"].items():
        label = f"get_availability_for_users, {n}"
        print(
            f"{_row(None, label, entry)} {entry['per_user_p50']:9.3f} {entry['vs_one_p50']:6.2f}x"
        )
    print(
        f"sources: {_counts(users['sources'])}; answers differing from get_availability's: "
        f"{users['mismatches']}; {_shadow_line(users['shadow'])}"
    )


def print_mixed(result: dict[str, Any]) -> None:
    mixed = result["mixed"]
    print(
        f"Partially covered users: one calendar's sync window emptied, a JSON blob answers it, "
        f"ms ({mixed['samples']} one-week samples of {mixed['users']} users, interleaved)"
    )
    for name, label in (
        ("product", "get_availability (mixed)"),
        ("sql", "busy_intervals"),
        ("blob", "JSON row read (raw)"),
    ):
        print(_row(None, label, mixed[name]))
    for key, label in (
        ("product_sql_p50_ratio", "get_availability / busy_intervals"),
        ("product_blob_p50_ratio", "get_availability / JSON row read"),
    ):
        print(f"{label:{LABEL}} {mixed[key]:8.2f}")
    print(
        f"sources: {_counts(mixed['sources'])}; calendars answered by "
        f"{_counts(mixed['calendar_sources'])}; answers differing from busy_intervals: "
        f"{mixed['mismatches']}; {_shadow_line(mixed['shadow'])}"
    )


def print_http(result: dict[str, Any]) -> None:
    h = result["http"]
    print(
        f"HTTP: GET /calendar-cache/availability/?start=&end= vs a trivial login-required JSON "
        f"view, gunicorn {h['workers']} {h['worker_class']} workers on loopback ({h['rounds']} "
        f"rounds of {h['seconds_per_phase']:g} s phases per view, alternating; client threads "
        f"signed in with session cookies of {h['users']} users)"
    )
    header = (
        f"{'clients':>7} {'view':14} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'requests':>9} {'errors':>7} {'conn/req':>9}"
    )
    print(header)
    print("-" * len(header))
    for n, entry in h["clients"].items():
        for view in ("availability", "trivial"):
            v = entry[view]
            lat = v["latency_ms"]
            print(
                f"{n:>7} {view:14} {v['requests_per_s']:8,.0f} {lat['p50']:8.2f} "
                f"{lat['p95']:8.2f} {lat['p99']:8.2f} {v['requests']:9,} {v['errors']:7} "
                f"{v['connections_per_request']:9.2f}"
            )
        print(f"{n:>7} {'ratio':14} {entry['ratio']:8.2f}")
    print(f"availability answers by source: {_counts(h['sources'])}")


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
            f"far, {reads['samples_per_window']} samples a window; get_availability interleaved, "
            "shadow sampling off)"
        )
        header = (
            f"{'rows':>10} {'events':>10} {'users':>7} {'1 day':>7} {'1 week':>7} "
            f"{'1 month':>7} {'all p50':>8} {'all p99':>8} {'get_av p50':>10} {'get_av p99':>10} "
            f"{'step s':>7}"
        )
        print(header)
        print("-" * len(header))
        for step in reads["steps"]:
            w = step["reads"]["windows"]
            a = step["reads"]["all"]
            g = step["reads"]["product"]
            print(
                f"{step['events'] + step['tail_rows']:10,} {step['events']:10,} "
                f"{step['users']:7,} {w['1 day']['p50']:7.3f} {w['1 week']['p50']:7.3f} "
                f"{w['1 month']['p50']:7.3f} {a['p50']:8.3f} {a['p99']:8.3f} {g['p50']:10.3f} "
                f"{g['p99']:10.3f} {step['seconds']:7.1f}"
            )
        print(
            "p50 at the largest size / at the smallest: busy_intervals "
            f"{reads['p50_largest_vs_smallest']:.2f}x, get_availability "
            f"{reads['product_p50_largest_vs_smallest']:.2f}x"
        )
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


def _mb(size: int, rows: int) -> str:
    return f"{size / 2**20:,.0f} MB ({size / rows if rows else 0:,.0f} B/row)"


def print_partitioning(result: dict[str, Any]) -> None:
    part = result["partitioning"]
    if "skipped" in part:
        print(f"Partitioning: {part['skipped']}")
        return
    build, reads, writes, sizes = part["build"], part["reads"], part["writes"], part["sizes"]
    rows = part["rows"]
    print(
        f"Partitioning: the event table as {part['partitions']} partitions by "
        f"{part['partition_key']} vs one table ({rows:,} rows each; copy "
        f"{build['fill_seconds']:.1f} s, constraints and indexes {build['index_seconds']:.1f} s, "
        f"VACUUM ANALYZE {part['vacuum_seconds']['one']:.1f} s / "
        f"{part['vacuum_seconds']['part']:.1f} s; interleaved, the same samples)"
    )
    header = f"{'':44} {'one table':>16} {'partitioned':>16} {'ratio':>7}"
    print(header)
    print("-" * len(header))

    def line(label: str, one: float, other: float, fmt: str = ".3f") -> None:
        ratio = other / one if one else float("nan")
        print(f"{label:44} {one:16{fmt}} {other:16{fmt}} {ratio:6.2f}x")

    one, other = reads["one"], reads["part"]
    for key in ("p50", "p95", "p99"):
        label = f"read {key}, ms ({reads['samples']} one-week reads, prepared)"
        line(label, one["client"][key], other["client"][key])
    line(
        f"  server p50, ms (EXPLAIN ANALYZE, {one['server']['n']} samples)",
        one["server"]["p50"],
        other["server"]["p50"],
    )
    for kind, label in (("update", "updated events"), ("new", "new events")):
        entry = writes[kind]
        per_page = entry["one"]["rows_per_page"]
        line(
            f"page of {label}, rows/s ({per_page:,.0f} rows a page)",
            entry["one"]["rows_per_s"],
            entry["part"]["rows_per_s"],
            ",.0f",
        )
        line(
            f"  page p50, ms ({entry['one']['n']} pages)", entry["one"]["p50"], entry["part"]["p50"]
        )
    s_one, s_part = sizes["one"], sizes["part"]
    for key, label in (
        ("table_bytes", "table (heap + TOAST)"),
        ("indexes_bytes", "indexes"),
        ("total_bytes", "total"),
    ):
        ratio = s_part[key] / s_one[key] if s_one[key] else float("nan")
        print(f"{label:44} {_mb(s_one[key], rows):>16} {_mb(s_part[key], rows):>16} {ratio:6.2f}x")
    part_indexes = {name.removesuffix("_part"): size for name, size in s_part["indexes"].items()}
    for name, size in s_one["indexes"].items():
        other_size = part_indexes.get(name, 0)
        ratio = other_size / size if size else float("nan")
        print(f"{'  ' + name:44} {_mb(size, rows):>16} {_mb(other_size, rows):>16} {ratio:6.2f}x")
    for name, label in (("one", "one table"), ("part", "partitioned")):
        entry = reads[name]
        shapes = "; ".join(f"{n}x {shape}" for shape, n in entry["shapes"].items())
        print(
            f"plan, {label} (plan cache: {entry['generic_plans']} generic, "
            f"{entry['custom_plans']} custom): {shapes}"
        )
    prunes = [p for p in other["pruning"] if p.get("appends")]
    if prunes:
        per_loop = max(p["partition_scans_per_loop"] for p in prunes)
        removed = max(p["subplans_removed"] for p in prunes)
        never = min(p["partitions_never_executed"] for p in prunes)
        print(
            f"run-time pruning in the LATERAL: at most {per_loop:.2f} partition scans per "
            f"calendar read; at least {never} of {part['partitions']} partitions never "
            f"executed per statement; Subplans Removed (at start-up) {removed}"
        )
    print(
        f"answers differing: {reads['mismatches']}; page counts differing: "
        f"{writes['mismatches']}; every page rolled back, both tables equal after: "
        f"{'yes' if part['rows_equal_after_writes'] else 'NO'}"
    )
    print(f"not the same: {'; '.join(part['differences'])}")


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


def print_replica(result: dict[str, Any]) -> None:
    print_replica_result(result["replica"])
    print()


PRINTERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "reads": print_reads,
    "fresh": print_fresh,
    "users": print_users,
    "mixed": print_mixed,
    "http": print_http,
    "writes": print_writes,
    "e2e": print_e2e,
    "scaling": print_scaling,
    "partitioning": print_partitioning,
    "replica": print_replica,
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
        print(f"  {'n/a   ' if met is None else 'met   ' if met else 'MISSED'} {name:48} {figure}")
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
    "fresh_samples": (100, 10),
    "fresh_explain": (2, 1),
    "users_rounds": (40, 5),
    "mixed_samples": (200, 20),
    "http_clients": ([1, 8, 32], [1, 8, 32]),
    "http_seconds": (1.5, 0.4),
    "http_rounds": (3, 1),
    "http_workers": (2, 2),
    "partition_rounds": (100, 10),
    "replica_events": (1_000_000, 20_000),
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
    add("--fresh-samples", type=int, default=None, help="fresh-table samples per window (100)")
    add("--fresh-explain", type=int, default=None, help="plans per window and phase (2)")
    add("--users-rounds", type=int, default=None, help="get_availability_for_users rounds (40)")
    add("--mixed-samples", type=int, default=None, help="partially covered samples (200)")
    add("--http-clients", type=_ints, default=None, help="concurrent HTTP clients (1,8,32)")
    add("--http-seconds", type=float, default=None, help="seconds per HTTP phase (1.5)")
    add("--http-rounds", type=int, default=None, help="HTTP phases per view and clients (3)")
    add("--http-workers", type=int, default=None, help="gunicorn sync workers (2)")
    add("--partition-rounds", type=int, default=None, help="page-write rounds (100)")
    add("--replica-events", type=int, default=None, help="the replica section's own (1M)")
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
    reset_autovacuum()
    empty_tables()
    # The product as stage 4 runs it, shadow comparisons on, for every section.
    with product_path() as product:
        if args.only & NEEDS_FILL:
            run_fill(run)
            assert run.filled is not None
            log(
                f"filled {run.filled.rows + run.filled.tail_rows:,} rows in "
                f"{run.filled.seconds:.1f} s"
            )
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
            "product": product,
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
