"""Availability reads on a streaming replica and through PgBouncer, beside the primary.

    .venv/bin/python bench/replica_bench.py [--events 1000000] [--samples 200] [--json]

Makes its own servers (tests/postgres_server.py, tests/pgbouncer_server.py): a throwaway
PostgreSQL primary on a free port, filled by bench/fill.py with ``--events`` events, a
``pg_basebackup -R`` streaming replica of it, and a transaction-pooling PgBouncer in
front of the primary; all removed at the end. Then, one week windows of random users,
per sample in a seeded random order, ``calcache.services.get_availability`` (stage 4: the read
flag on for everyone, no shadow sampling) with ``CALCACHE_READ_DATABASE`` naming:

* ``primary``: the primary, the statement prepared (psycopg's default threshold);
* ``replica``: the replica, prepared; on one machine expect about 1x the primary: the
  point of a replica is capacity and the lag guard, not speed;
* ``unprepared``: the primary with ``prepare_threshold`` None;
* ``pgbouncer``: the primary through PgBouncer, ``prepare_threshold`` None (PgBouncer
  1.18 cannot route prepared statements), so the cost of the hop is pgbouncer vs
  unprepared and the cost of pooling this way is pgbouncer vs primary.

Every answer is compared with the primary's. Prints a table; ``--json`` prints the
figures as JSON on stdout instead (the ``replica`` section of bench/run.py). Asserts
nothing about timings.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import log, percentiles, setup_database, shuffled  # noqa: E402

PATHS = ("primary", "replica", "unprepared", "pgbouncer")
DATABASE = "calcache_bench_replica"


def measure(events: int, samples: int, seed: int) -> dict[str, Any]:
    from tests.pgbouncer_server import PgBouncer, missing_pgbouncer
    from tests.postgres_server import PostgresServer, missing_binaries

    missing = missing_binaries() or missing_pgbouncer()
    if missing:
        return {"skipped": missing}
    with ExitStack() as stack:
        primary = PostgresServer.create(settings={"shared_buffers": "'256MB'"})
        stack.callback(primary.remove)
        url = primary.create_database(DATABASE)
        setup_database(database_url=url)
        log(f"replica bench: filling a throwaway primary with {events:,} events")
        filled = fill(url, events, seed)
        log("replica bench: pg_basebackup of the primary, starting the replica and PgBouncer")
        replica = PostgresServer.replica_of(primary)
        stack.callback(replica.remove)
        bouncer = PgBouncer.start(target_port=primary.port)
        stack.callback(bouncer.stop)
        add_aliases(replica, bouncer)
        result = read_side_by_side(filled, samples, seed)
        result["events"] = events
        result["fill_seconds"] = filled["seconds"]
        result["sizes"] = {
            "database_bytes": int(primary.psql(f"SELECT pg_database_size('{DATABASE}')")),
        }
        return result


def fill(url: str, events: int, seed: int) -> dict[str, Any]:
    from django.utils import timezone

    from bench.fill import Filler, default_workers

    began = time.perf_counter()
    filler = Filler(
        seed=seed,
        rng=random.Random(seed),
        now=timezone.now(),
        url=url,
        tail=0,
        total_events=events,
        workers=default_workers(),
    )
    filler.grow(events, max(20, events // 500))
    return {"users": filler.fill.users, "now": filler.now, "seconds": time.perf_counter() - began}


def add_aliases(replica: Any, bouncer: Any) -> None:
    from django.db import connections

    default = connections.settings["default"]
    unprepared = {**default.get("OPTIONS", {}), "prepare_threshold": None}
    connections.settings["primary"] = dict(default)
    connections.settings["replica"] = {**default, "HOST": "127.0.0.1", "PORT": str(replica.port)}
    connections.settings["unprepared"] = {**default, "OPTIONS": unprepared}
    connections.settings["pgbouncer"] = {
        **default,
        "HOST": "127.0.0.1",
        "PORT": str(bouncer.port),
        "OPTIONS": unprepared,
    }


def read_side_by_side(filled: dict[str, Any], samples: int, seed: int) -> dict[str, Any]:
    from django.test.utils import override_settings

    from bench.availability import pick_samples, product_path
    from calcache.availability.replica import router
    from calcache.services import get_availability
    from tests.waiting import wait_for

    rng = random.Random(f"{seed}:replica")
    picked = pick_samples(rng, filled["users"], filled["now"], samples)
    picked = [s for s in picked if s.window == "1 week"]
    times: dict[str, list[float]] = {path: [] for path in PATHS}
    reasons: dict[str, set[str]] = {path: set() for path in PATHS}
    mismatches = 0
    with product_path(), override_settings(CALCACHE_SHADOW_SAMPLE_RATE=0):
        # The replica has replayed the fill (and the flags just set) before measuring.
        wait_for(lambda: _replayed("replica"), timeout=300)
        for number, sample in enumerate([*picked[:20], *picked]):
            warm = number < 20
            answers = {}
            for path in shuffled(PATHS, number):
                with override_settings(CALCACHE_READ_DATABASE=path):
                    began = time.perf_counter()
                    answer = get_availability(user=sample.user, start=sample.start, end=sample.end)
                    elapsed = (time.perf_counter() - began) * 1000
                    reasons[path].add(router.verdict(path).reason)
                answers[path] = answer.busy
                if not warm:
                    times[path].append(elapsed)
            mismatches += sum(answers[path] != answers["primary"] for path in PATHS)
    figures = {path: percentiles(values) for path, values in times.items()}
    p50 = {path: figures[path]["p50"] for path in PATHS}
    return {
        "reads": figures,
        "ratios": {
            "replica / primary": p50["replica"] / p50["primary"],
            "pgbouncer / unprepared": p50["pgbouncer"] / p50["unprepared"],
            "pgbouncer / primary": p50["pgbouncer"] / p50["primary"],
            "unprepared / primary": p50["unprepared"] / p50["primary"],
        },
        "router": {path: sorted(found) for path, found in reasons.items()},
        "mismatches": mismatches,
        "samples": len(picked),
    }


def _replayed(alias: str) -> bool:
    from django.db import connections

    from calcache.availability.replica import LAG_SQL

    with connections[alias].cursor() as cursor:
        cursor.execute(LAG_SQL)
        row = cursor.fetchone()
    return row is not None and float(row[0]) == 0.0


def print_result(result: dict[str, Any]) -> None:
    if "skipped" in result:
        print(f"replica and PgBouncer reads: skipped ({result['skipped']})")
        return
    print(
        f"Availability reads on a streaming replica and through PgBouncer (throwaway primary, "
        f"{result['events']:,} events, {result['samples']} one-week samples, get_availability "
        "with CALCACHE_READ_DATABASE naming each path, random order), ms"
    )
    print(f"{'path':<42}{'p50':>9}{'p95':>9}{'p99':>9}{'n':>6}")
    labels = {
        "primary": "primary (prepared)",
        "replica": "streaming replica (prepared)",
        "unprepared": "primary, prepare_threshold None",
        "pgbouncer": "PgBouncer (transaction), unprepared",
    }
    for path in PATHS:
        p = result["reads"][path]
        print(f"{labels[path]:<42}{p['p50']:>9.3f}{p['p95']:>9.3f}{p['p99']:>9.3f}{p['n']:>6}")
    for name, value in result["ratios"].items():
        print(f"{name:<42}{value:>9.2f}")
    router = ", ".join(f"{path}: {'/'.join(found)}" for path, found in result["router"].items())
    print(f"router verdicts: {router}; answers differing from the primary's: ", end="")
    print(result["mismatches"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200, help="per window before filtering")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    result = measure(args.events, args.samples, args.seed)
    if args.json:
        json.dump(result, sys.stdout, default=str)
    else:
        print_result(result)


if __name__ == "__main__":
    main()
