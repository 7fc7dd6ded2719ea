"""The availability paths the product takes, measured beside what they replace.

- ``Sample``, ``pick_samples``: random (user, window) reads inside the synced range;
  ``build_json_cache``: the legacy JSON month blobs those samples need, built from the
  same events, each sample keeping the keys of its blobs (``Sample.blobs``).
- ``JsonRowReader``: the baseline, the fastest honest read of what SQL replaces: one
  prepared ``SELECT value FROM calcache_calendarcache WHERE credential_id = %s AND key =
  %s`` per credential on a plain connection of its own (psycopg, or sqlite3), the JSON
  decoded and its busy blocks clipped to the window and merged, which is what a host
  must do to answer. The key is computed beforehand, as a host that knows the user's
  calendars would.
- ``product_path``: the rollout as the product runs it at stage 4 with shadow
  comparisons: ``calendar-cache-sql`` and ``calendar-cache-sql-write`` on for everyone,
  the kill switch off, ``CALCACHE_SHADOW_SAMPLE_RATE`` as configured (0.05 by default)
  and the in-process ``ThreadPoolRunner`` running the sampled comparisons;
  ``ShadowWatch`` counts what was handed to it and what it recorded.
- ``measure_fresh``: ``busy_intervals`` beside the JSON row read on a table just loaded
  (no VACUUM or ANALYZE since, autovacuum held off), then after ``VACUUM ANALYZE``, with
  the plans the prepared statement and the literal SQL get (PostgreSQL);
- ``measure_users``: ``get_availability_for_users`` for growing groups, beside one
  user's ``get_availability``;
- ``measure_mixed``: ``get_availability`` for users with one calendar SQL does not cover
  and a JSON blob answering it (source ``"mixed"``).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bench.common import percentiles, shuffled, timed

WINDOWS = {"1 day": 1, "1 week": 7, "1 month": 30}
THREAD_POOL = "calcache.background.runners.ThreadPoolRunner"
EVENT_TABLE = "calcache_calendarevent"
BUSY_INDEX = "calcache_event_busy_range"
BLOB_SQL = "SELECT value FROM calcache_calendarcache WHERE credential_id = %s AND key = %s"


@dataclass
class Sample:
    window: str
    user: Any
    start: datetime
    end: datetime
    sql: list[str] = field(default_factory=list)  # what busy_intervals sent (PostgreSQL)
    blobs: list[tuple[int, str]] = field(default_factory=list)  # (credential id, JSON key)


def window_start(rng: random.Random, now: datetime) -> datetime:
    """A window's start inside the synced range, on a quarter hour."""
    base = now.replace(minute=0, second=0, microsecond=0)
    return base + timedelta(days=rng.randrange(-30, 120), minutes=15 * rng.randrange(96))


def pick_samples(
    rng: random.Random, all_users: list[Any], now: datetime, per_window: int
) -> list[Sample]:
    """Random users and windows inside the synced range (starting on a quarter hour)."""
    users = rng.sample(all_users, min(len(all_users), max(10, per_window // 2)))
    samples = []
    for _ in range(per_window):
        for window, days in WINDOWS.items():
            start = window_start(rng, now)
            samples.append(Sample(window, rng.choice(users), start, start + timedelta(days=days)))
    rng.shuffle(samples)
    return samples


def build_json_cache(samples: Sequence[Sample], now: datetime) -> int:
    """The legacy blobs the samples need: one freeBusy-shaped value per widened key, from
    the same events (busy per calendar, merged, clipped to the key's months). Sets each
    sample's ``blobs``; blobs already stored are kept. Returns how many were made."""
    from django.db.models import Q

    from calcache.availability.json_cache import JSON_CACHE_TTL, cache_key
    from calcache.availability.live import iso, month_bounds
    from calcache.models import CalendarCache, CalendarEvent, SelectedCalendar
    from calcache.selectors import merge_intervals

    calendars: dict[Any, dict[int, list[str]]] = {}  # user id -> credential id -> ids
    for user_id, credential_id, calendar_id in (
        SelectedCalendar.objects.filter(
            credential__user__in={s.user.pk for s in samples}, enabled=True
        )
        .order_by("calendar_id")
        .values_list("credential__user_id", "credential_id", "calendar_id")
    ):
        calendars.setdefault(user_id, {}).setdefault(credential_id, []).append(calendar_id)
    wanted: dict[tuple[int, str], tuple[list[str], datetime, datetime]] = {}
    for sample in samples:
        time_min, time_max = month_bounds(sample.start, sample.end)
        sample.blobs = []
        for credential_id, ids in sorted(calendars.get(sample.user.pk, {}).items()):
            key = cache_key(ids, time_min, time_max)
            sample.blobs.append((credential_id, key))
            wanted[(credential_id, key)] = (ids, time_min, time_max)
    stored = set(
        CalendarCache.objects.filter(
            credential_id__in={cid for cid, _ in wanted}, key__in={key for _, key in wanted}
        ).values_list("credential_id", "key")
    )
    rows = []
    for (credential_id, key), (ids, time_min, time_max) in wanted.items():
        if (credential_id, key) in stored:
            continue
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
            "timeMin": iso(time_min),
            "timeMax": iso(time_max),
            "calendars": {
                cal: {
                    "busy": [
                        {"start": iso(s), "end": iso(e)}
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


# --- the baseline: one JSON row read by its key -------------------------------------------


class JsonRowReader:
    """The legacy cache read at its fastest: the month blob's row by its key on a plain
    connection (prepared: psycopg's ``prepare=True``, sqlite3's statement cache), the JSON
    decoded, the blocks overlapping the window parsed (Google's fixed-width UTC times
    compare as strings), clipped and merged across calendars."""

    def __init__(self, url: str) -> None:
        from django.db import connection

        self.postgresql = connection.vendor == "postgresql"
        if self.postgresql:
            import psycopg

            self.pg = psycopg.connect(url, autocommit=True)
        else:
            import sqlite3

            self.lite = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)

    def value(self, credential_id: int, key: str) -> Any:
        if self.postgresql:
            row = self.pg.execute(BLOB_SQL, (credential_id, key), prepare=True).fetchone()
            return None if row is None else row[0]  # jsonb, decoded by psycopg (json.loads)
        import json

        found = self.lite.execute(BLOB_SQL.replace("%s", "?"), (credential_id, key)).fetchone()
        return None if found is None else json.loads(found[0])

    def read(self, sample: Sample) -> list[tuple[datetime, datetime]] | None:
        from calcache.availability.live import iso
        from calcache.intervals import merge_intervals

        low, high = iso(sample.start), iso(sample.end)
        busy = []
        for credential_id, key in sample.blobs:
            value = self.value(credential_id, key)
            if value is None:
                return None
            for entry in value["calendars"].values():
                for block in entry.get("busy", ()):
                    begins, ends = block["start"], block["end"]
                    if begins < high and ends > low:
                        busy.append((datetime.fromisoformat(begins), datetime.fromisoformat(ends)))
        return merge_intervals(busy, start=sample.start, end=sample.end)

    def close(self) -> None:
        (self.pg if self.postgresql else self.lite).close()


# --- the product path ---------------------------------------------------------------------


@contextmanager
def product_path() -> Iterator[dict[str, Any]]:
    """Both rollout flags on for everyone, the kill switch off, comparisons run by the
    in-process ``ThreadPoolRunner``; all restored after. Yields what was set."""
    from django.test.utils import override_settings
    from waffle.models import Switch

    from calcache.conf import conf
    from flags.models import Flag
    from flags.names import KILL_SWITCH, READ_FLAG, WRITE_FLAG

    saved: dict[str, bool | None] = {}
    for name in (READ_FLAG, WRITE_FLAG):
        flag = Flag.objects.get(name=name)
        saved[name] = flag.everyone
        flag.everyone = True
        flag.save()
    switch = Switch.objects.get(name=KILL_SWITCH)
    was_active = switch.active
    if was_active:
        switch.active = False
        switch.save()
    try:
        with override_settings(CALCACHE_BACKGROUND_RUNNER=THREAD_POOL):
            yield {
                "read_flag": "everyone",
                "write_flag": "everyone",
                "kill_switch": "off",
                "shadow_sample_rate": conf.shadow_sample_rate,
                "runner": conf.background_runner.rsplit(".", 1)[-1],
            }
    finally:
        switch = Switch.objects.get(name=KILL_SWITCH)
        tripped = switch.active
        switch.active = was_active
        switch.save()
        for name, everyone in saved.items():
            flag = Flag.objects.get(name=name)
            flag.everyone = everyone
            flag.save()
        if tripped:
            from bench.common import log

            log("NOTE: the kill switch was turned on during the run (automatic rollback)")


class ShadowWatch:
    """Counts the comparisons ``get_availability`` hands to the thread-pool runner (its
    ``submit_comparison`` wrapped on the instance) and, at ``close``, waits for them and
    counts the ``CacheComparison`` rows they wrote."""

    def __init__(self) -> None:
        from calcache.background.runners import ThreadPoolRunner, get_runner
        from calcache.models import CacheComparison

        runner = get_runner()
        assert isinstance(runner, ThreadPoolRunner), runner
        self.runner = runner
        self.handed = 0
        self.dropped_before = runner.comparisons_dropped
        self.first_pk = CacheComparison.objects.order_by("-pk").values_list("pk", flat=True).first()
        submit = runner.submit_comparison

        def counting(sample: Any) -> None:
            self.handed += 1
            submit(sample)

        setattr(runner, "submit_comparison", counting)  # noqa: B010 - on this instance only

    def busy(self) -> bool:
        """A comparison is waiting or running in the background."""
        with self.runner.lock:
            return bool(self.runner.futures)

    def close(self) -> dict[str, Any]:
        from calcache.models import CacheComparison

        self.runner.wait_idle(60)
        vars(self.runner).pop("submit_comparison", None)
        rows = CacheComparison.objects.filter(pk__gt=self.first_pk or 0)
        pairs = Counter(f"{a} vs {b}" for a, b in rows.values_list("source_a", "source_b"))
        return {
            "handed_over": self.handed,
            "recorded": rows.count(),
            "mismatched": rows.filter(equal=False).count(),
            "dropped": self.runner.comparisons_dropped - self.dropped_before,
            "pairs": dict(pairs),
        }


# --- plans (PostgreSQL) -------------------------------------------------------------------


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def plan_shape(plan: dict[str, Any]) -> str:
    """Node types in tree order, each scan with its index (or table), children in
    brackets: ``Sort[Nested Loop Left Join[..., Index Only Scan calcache_event_busy_range]]``."""
    name = plan["Node Type"]
    where = plan.get("Index Name") or plan.get("Relation Name")
    text = f"{name} {where}" if where else name
    children = [plan_shape(child) for child in plan.get("Plans", ())]
    return f"{text}[{', '.join(children)}]" if children else text


def event_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """How the plan reads the event table: each scan's node type, index, loops, heap
    fetches and rows its filter removed (summed over loops, as EXPLAIN reports them)."""
    scans = []
    for node in _nodes(plan):
        if node.get("Relation Name") != EVENT_TABLE:
            continue
        indexes = [node["Index Name"]] if node.get("Index Name") else []
        indexes += [n["Index Name"] for n in _nodes(node) if n is not node and n.get("Index Name")]
        scans.append(
            {
                "node": node["Node Type"],
                "indexes": indexes,
                "loops": node.get("Actual Loops", 0),
                "rows": node.get("Actual Rows", 0) * node.get("Actual Loops", 0),
                "heap_fetches": node.get("Heap Fetches", 0),
                "rows_removed_by_filter": node.get("Rows Removed by Filter", 0)
                * node.get("Actual Loops", 0),
            }
        )
    return scans


def _summary(explained: Any) -> dict[str, Any]:
    top = explained[0]
    scans = event_scans(top["Plan"])
    return {
        "shape": plan_shape(top["Plan"]),
        "event_scans": scans,
        "busy_index_only": bool(scans)
        and all(s["node"] == "Index Only Scan" and s["indexes"] == [BUSY_INDEX] for s in scans),
        "execution_ms": top.get("Execution Time"),
        "planning_ms": top.get("Planning Time"),
    }


def busy_params(sample: Sample) -> dict[str, Any]:
    """The parameters ``busy_intervals`` gives its statement (``pg_read_sql``)."""
    from calcache.availability.sql import pg_read_params

    ids = [sample.user.pk]
    return pg_read_params(ids, ids, True, sample.start.astimezone(UTC), sample.end.astimezone(UTC))


def explain_execute(
    cursor: Any, name: str, types: Sequence[str], sql: str, params: dict[str, Any]
) -> Any:
    """``EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE`` of the prepared statement ``name``,
    psycopg's preparation of ``sql`` (parameter ``types`` from ``pg_prepared_statements``),
    with ``params``; the plan JSON."""
    # psycopg numbers named placeholders by first appearance ($1, $2, ...)
    order = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
    args = ", ".join(f"%s::{kind}" for kind in types)
    cursor.execute(
        f'EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE "{name}"({args})',
        [params[key] for key in order],
    )
    row = cursor.fetchone()
    assert row is not None
    return row[0]


def explain_busy(sample: Sample) -> dict[str, Any]:
    """The plans of ``busy_intervals``' statement for this sample: the prepared statement
    busy_intervals runs on Django's connection (``EXPLAIN EXECUTE`` of it: the generic or
    custom plan the plan cache picks), and the same SQL with literals (a custom plan)."""
    import psycopg
    from django.db import connection

    from calcache.availability.sql import pg_read_sql
    from calcache.selectors import busy_intervals

    for _ in range(6):  # prepared after DB_PREPARE_THRESHOLD runs; the plan cache decided
        busy_intervals(user=sample.user, start=sample.start, end=sample.end)
    params = busy_params(sample)
    result: dict[str, Any] = {"window": sample.window, "user": sample.user.pk}
    cursor = psycopg.ClientCursor(connection.connection)
    with cursor:
        cursor.execute(
            "SELECT name, parameter_types::text[], generic_plans, custom_plans "
            "FROM pg_prepared_statements WHERE statement LIKE %s "
            "ORDER BY generic_plans + custom_plans DESC LIMIT 1",
            ["%LEFT JOIN LATERAL%" + EVENT_TABLE + "%"],
        )
        found = cursor.fetchone()
        if found is not None:
            name, types, generic, custom = found
            result["prepared"] = {
                **_summary(explain_execute(cursor, name, types, pg_read_sql(), params)),
                "generic_plans": generic,
                "custom_plans": custom,
            }
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {pg_read_sql()}", params)
        row = cursor.fetchone()
        assert row is not None
        result["literal"] = _summary(row[0])
    return result


def table_state() -> dict[str, Any]:
    """The event table as the planner sees it: pages, all-visible pages (pg_class, as of
    the last VACUUM, ANALYZE or index build), the rows changed since the last ANALYZE."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relpages, c.reltuples::bigint, c.relallvisible, s.n_mod_since_analyze,"
            " s.n_ins_since_vacuum, (s.last_vacuum IS NOT NULL OR s.last_autovacuum IS NOT"
            " NULL), (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL),"
            " c.reloptions::text FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid"
            " WHERE c.relname = %s",
            [EVENT_TABLE],
        )
        row = cur.fetchone()
    assert row is not None
    pages, tuples, visible, modified, inserted, vacuumed, analyzed, options = row
    return {
        "pages": pages,
        "reltuples": tuples,
        "all_visible_pages": visible,
        "all_visible_share": visible / pages if pages else 0.0,
        "rows_changed_since_analyze": modified,
        "rows_inserted_since_vacuum": inserted,
        "ever_vacuumed": vacuumed,
        "ever_analyzed": analyzed,
        "reloptions": options,
    }


@contextmanager
def autovacuum_held_off() -> Iterator[None]:
    """No autovacuum or autoanalyze of the event table meanwhile (PostgreSQL), so a
    freshly loaded table stays as loaded until we VACUUM it ourselves."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"ALTER TABLE {EVENT_TABLE} SET (autovacuum_enabled = false)")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute(f"ALTER TABLE {EVENT_TABLE} RESET (autovacuum_enabled)")


def reset_autovacuum() -> None:
    """After an interrupted run."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(f"ALTER TABLE {EVENT_TABLE} RESET (autovacuum_enabled)")


# --- sections' measurements ---------------------------------------------------------------


def interleaved(
    samples: Sequence[Sample], paths: Callable[[Sample], list[tuple[str, Callable[[], Any]]]]
) -> list[dict[str, tuple[Any, float]]]:
    """Every path of each sample, in a seeded random order sample by sample
    (``shuffled``) so noise hits each path alike; per sample, path -> (answer, ms)."""
    results = []
    for number, sample in enumerate(samples):
        results.append({name: timed(fn) for name, fn in shuffled(paths(sample), number)})
    return results


def ms_of(
    results: Sequence[dict[str, tuple[Any, float]]],
    name: str,
    samples: Sequence[Sample] = (),
    window: str = "",
) -> list[float]:
    """The times of one path (of one window's samples, given the samples)."""
    if window:
        return [r[name][1] for r, s in zip(results, samples, strict=True) if s.window == window]
    return [r[name][1] for r in results]


def measure_fresh_phase(
    samples: Sequence[Sample], reader: JsonRowReader, explain: Sequence[Sample]
) -> dict[str, Any]:
    """``busy_intervals`` and the JSON row read, interleaved, on the table as it is now,
    after an untimed warm-up; the plans of a few samples."""
    from calcache.selectors import busy_intervals

    state = table_state()

    def paths(sample: Sample) -> list[tuple[str, Callable[[], Any]]]:
        return [
            ("sql", partial(busy_intervals, user=sample.user, start=sample.start, end=sample.end)),
            ("blob", partial(reader.read, sample)),
        ]

    interleaved(samples[:30], paths)  # warm-up
    results = interleaved(samples, paths)
    sql, blob = percentiles(ms_of(results, "sql")), percentiles(ms_of(results, "blob"))
    return {
        "table": state,
        "sql": sql,
        "blob": blob,
        "sql_blob_p50_ratio": sql["p50"] / blob["p50"],
        "mismatches": sum(1 for r in results if r["sql"][0] != r["blob"][0]),
        "plans": [explain_busy(sample) for sample in explain],
    }


def vacuum_analyze() -> float:
    import time

    from django.db import connection

    began = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(f"VACUUM ANALYZE {EVENT_TABLE}")
    return time.perf_counter() - began


def measure_users(
    *,
    rng: random.Random,
    users: list[Any],
    now: datetime,
    sizes: Sequence[int],
    rounds: int,
    groups: int,
) -> dict[str, Any]:
    """``get_availability_for_users`` for groups of each size (one week, the same window
    for the group, as a team's page asks) beside one user's ``get_availability``, the
    calls of a round in a seeded random order, each once the background comparisons of
    the one before are done; ``groups`` distinct (window, users) a round cycles through."""
    from calcache.services import get_availability, get_availability_for_users

    sizes = sorted({min(n, len(users)) for n in sizes})
    combos = []
    for _ in range(groups):
        start = window_start(rng, now)
        combos.append((start, start + timedelta(days=7), rng.sample(users, max(sizes))))
    made = build_json_cache(
        [Sample("1 week", user, start, end) for start, end, members in combos for user in members],
        now,
    )
    watch = ShadowWatch()
    sources: Counter[str] = Counter()
    mismatches = 0

    def calls(r: int) -> list[tuple[str, Callable[[], Any]]]:
        start, end, members = combos[r % len(combos)]
        one = partial(get_availability, user=members[0], start=start, end=end)
        return [("one", one)] + [
            (str(n), partial(get_availability_for_users, users=members[:n], start=start, end=end))
            for n in sizes
        ]

    times: dict[str, list[float]] = {}
    for r in range(-len(combos), rounds):  # the first pass over the groups is a warm-up
        got = {}
        for name, fn in shuffled(calls(r), r):
            # Comparisons a big call handed over run on the runner's thread, holding the
            # GIL: without this the call after it would pay for them.
            watch.runner.wait_idle(60)
            got[name], ms = timed(fn)
            if r >= 0:
                times.setdefault(name, []).append(ms)
        if r >= 0:
            first = combos[r % len(combos)][2][0].pk
            mismatches += sum(1 for n in sizes if got[str(n)][first].busy != got["one"].busy)
            sources.update(a.source for n in sizes for a in got[str(n)].values())
    one = percentiles(times["one"])
    result: dict[str, Any] = {
        "one": one,
        "sizes": {},
        "rounds": rounds,
        "groups": groups,
        "json_blobs": made,
        "sources": dict(sources),
        "mismatches": mismatches,
    }
    for n in sizes:
        p = percentiles(times[str(n)])
        result["sizes"][str(n)] = {
            **p,
            "per_user_p50": p["p50"] / n,
            "vs_one_p50": p["p50"] / one["p50"],
        }
    result["shadow"] = watch.close()
    return result


def measure_mixed(
    *,
    rng: random.Random,
    users: list[Any],
    exclude: set[Any],
    now: datetime,
    samples: int,
    reader: JsonRowReader,
) -> dict[str, Any]:
    """Users (not among ``exclude``) with one non-primary calendar SQL does not cover
    (its sync window made empty) and a JSON blob answering it: ``get_availability``
    (source "mixed"), ``busy_intervals`` and the JSON row read, interleaved; the windows
    are put back after."""
    from django.db.models import F

    from calcache.models import CalendarSyncToken, SelectedCalendar
    from calcache.selectors import busy_intervals
    from calcache.services import get_availability

    chosen = rng.sample(
        [u for u in users if u.pk not in exclude],
        min(50, len([u for u in users if u.pk not in exclude])),
    )
    tokens: dict[int, datetime | None] = {}
    for user in chosen:
        calendar = (
            SelectedCalendar.objects.filter(credential__user=user, enabled=True, is_primary=False)
            .order_by("pk")
            .first()
        )
        assert calendar is not None, f"user {user.pk} has no secondary calendar"
        token = CalendarSyncToken.objects.get(
            credential_id=calendar.credential_id, calendar_id=calendar.calendar_id
        )
        tokens[token.pk] = token.window_end
    CalendarSyncToken.objects.filter(pk__in=tokens).update(window_end=F("window_start"))
    try:
        picked = []
        for _ in range(samples):
            start = window_start(rng, now)
            picked.append(Sample("1 week", rng.choice(chosen), start, start + timedelta(days=7)))
        made = build_json_cache(picked, now)
        watch = ShadowWatch()

        def paths(sample: Sample) -> list[tuple[str, Callable[[], Any]]]:
            window = {"user": sample.user, "start": sample.start, "end": sample.end}
            return [
                ("product", partial(get_availability, **window)),
                ("sql", partial(busy_intervals, **window)),
                ("blob", partial(reader.read, sample)),
            ]

        interleaved(picked[:20], paths)  # warm-up
        results = interleaved(picked, paths)
        shadow = watch.close()
    finally:
        for pk, window_end in tokens.items():
            CalendarSyncToken.objects.filter(pk=pk).update(window_end=window_end)
    answers = [{name: answer for name, (answer, _) in r.items()} for r in results]
    calendar_sources: Counter[str] = Counter()
    for got in answers:
        calendar_sources.update(got["product"].calendar_sources.values())
    result: dict[str, Any] = {
        name: percentiles(ms_of(results, name)) for name in ("product", "sql", "blob")
    }
    result.update(
        {
            "samples": len(picked),
            "users": len(chosen),
            "json_blobs": made,
            "sources": dict(Counter(got["product"].source for got in answers)),
            "calendar_sources": dict(calendar_sources),
            "mismatches": sum(
                1
                for got in answers
                if got["product"].busy != got["sql"] or got["blob"] != got["sql"]
            ),
            "product_sql_p50_ratio": result["product"]["p50"] / result["sql"]["p50"],
            "product_blob_p50_ratio": result["product"]["p50"] / result["blob"]["p50"],
            "shadow": shadow,
        }
    )
    return result
