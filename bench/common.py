"""What the benchmark scripts share: the log line, percentiles, timing one call and the
database set-up."""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
T = TypeVar("T")
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/calcache_bench"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0], "n": 1}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49], "p95": q[94], "p99": q[98], "n": len(values)}


def shuffled(items: Sequence[T], key: object) -> list[T]:
    """``items`` in a random order fixed by ``key`` (a sample's number, say). Paths measured
    side by side run in such an order, not a rotation: in a rotation each path always
    follows the same neighbour, and a heavy neighbour (the ORM JSON read's garbage, an
    unprepared statement's planning, a 100-user call's background comparisons) slows
    whatever comes after it."""
    order = list(items)
    random.Random(f"order:{key}").shuffle(order)
    return order


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and how long it took, in milliseconds."""
    began = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - began) * 1000


def ensure_postgres_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_database(*, database_url: str, sqlite: str | None = None) -> str:
    """Point Django at the bench database, create and migrate it; returns its URL.

    ``sqlite``: a fresh file of that name in bench/results/; otherwise the PostgreSQL
    database of ``database_url``, created if missing. Its name must contain "bench": the
    benchmarks empty calcache's tables.
    """
    if sqlite:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / sqlite
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        url = database_url
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
