"""Sync write path: calcache's page upsert vs the per-row upsert baseline.

    .venv/bin/python bench/write_path.py [--events 20000] [--page 2500] [--rounds 3]
                                         [--database-url postgres://...] [--sqlite]
                                         [--no-per-row] [--seed 42]

Creates (or reuses) the database, migrates it, and measures, interleaved in the
same run (the order of the paths alternates between rounds) so machine noise cancels:
events/s of ``calcache.sync.writes.apply_page`` for new rows, updates (every etag
changed) and unchanged events (a full sync that finds nothing new); on PostgreSQL the
same ``apply_page`` with its ORM upsert (what SQLite runs, and what PostgreSQL ran
before its COPY path); and, for new rows and updates, the per-row upsert baseline: one
``update_or_create`` per event (a ``SELECT ... FOR UPDATE``, then an ``UPDATE`` or an
``INSERT``), all in one transaction (``--no-per-row`` skips it: it takes most of the
run). The events are bench/fill.py's, one calendar's as Google lists them, mapped as the
sync maps Google's items. Prints the absolute figures and the ratios; asserts nothing
about timings. ``measure_writes`` is the ``writes`` section of bench/run.py.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_URL, log, setup_database  # noqa: E402
from bench.fill import (  # noqa: E402
    DAY,
    FUTURE_DAYS,
    PAST_DAYS,
    attributes,
    create_credentials,
    create_users,
    google_event,
    one_calendar,
)

WRITER = ("bench-writer", "bench-writer@example.com")  # the writing account
ZONE = "Europe/London"  # its calendars' time zone
LABELS = {"calcache": "calcache", "orm": "ORM upsert", "per-row": "per-row upsert"}


def listing(events: int, versions: dict[str, int], *, seed: int) -> dict[str, list[Any]]:
    """Per kind (``versions``: kind -> event version), the same ``events`` events of one
    calendar as an ``events.list`` page shows them; a version's etags, summaries and
    sequence numbers are its own."""
    rng = random.Random(f"{seed}:writes")
    first = (int(time.time()) // DAY - PAST_DAYS) * DAY
    generated = [
        (event, attributes(rng, cancelled=False))
        for event in one_calendar(rng, events, first, PAST_DAYS + FUTURE_DAYS)
    ]
    pages: dict[str, list[Any]] = {}
    for kind, version in versions.items():
        pages[kind] = [
            {
                **google_event(event, attrs, owner=WRITER[1], time_zone=ZONE),
                "etag": f'"{version}-{n}"',
                "summary": f"Meeting v{version}",
                "sequence": version,
                "created": "2026-01-01T00:00:00.000Z",
                "updated": f"2026-02-01T00:00:{version % 60:02d}.000Z",
            }
            for n, (event, attrs) in enumerate(generated)
        ]
    return pages


def writer_and_pages(
    events: int, versions: dict[str, int], *, seed: int
) -> tuple[Any, dict[str, list[Any]]]:
    """The writing account (a previous run's removed), and ``listing``'s pages mapped as
    the sync maps Google's items."""
    from django.contrib.auth import get_user_model

    from calcache.sync.mapping import calendar_zone, map_event

    get_user_model().objects.filter(username=WRITER[0]).delete()
    [credential] = create_credentials(create_users([WRITER]))
    tz = calendar_zone(ZONE)
    mapped = {
        kind: [map_event(item, calendar_tz=tz, store_summary=True) for item in items]
        for kind, items in listing(events, versions, seed=seed).items()
    }
    return credential, mapped


def bench_calendar(credential: Any, calendar_id: str) -> Any:
    """A selected calendar of the writing account (its credential attached, no query)."""
    from calcache.models import SelectedCalendar

    selected, _ = SelectedCalendar.objects.get_or_create(
        credential=credential, calendar_id=calendar_id, defaults={"time_zone": ZONE}
    )
    selected.credential = credential
    return selected


def per_row_upsert(selected: Any, mapped: list[Any]) -> None:
    """The per-row baseline: one ``update_or_create`` per event, all in one transaction."""
    from django.db import transaction

    from calcache.models import CalendarEvent

    with transaction.atomic():
        for event in mapped:
            CalendarEvent.objects.update_or_create(
                credential_id=selected.credential_id,
                calendar_id=selected.calendar_id,
                google_event_id=event.google_event_id,
                defaults={"user_id": selected.credential.user_id, **event.fields},
            )


def calcache_path(selected: Any, mapped: list[Any], page: int) -> None:
    from calcache.sync.writes import apply_page

    for offset in range(0, len(mapped), page):
        apply_page(selected=selected, changed=mapped[offset : offset + page], cancelled_ids=[])


@contextmanager
def orm_upsert() -> Iterator[None]:
    """``apply_page`` with its ORM upsert on any database (SQLite's path)."""
    from calcache.sync import writes

    fast = writes._upsert_postgresql
    writes._upsert_postgresql = writes._upsert_orm
    try:
        yield
    finally:
        writes._upsert_postgresql = fast


def measure(
    credential: Any, mapped: dict[str, list[Any]], *, paths: Sequence[str], rounds: int, page: int
) -> dict[str, list[float]]:
    """Events/s per ``"<kind>:<path>"``, one figure a round: each round writes every kind
    in turn through each path (into a calendar of its own), the paths' order alternating."""
    from calcache.models import CalendarEvent, SelectedCalendar

    figures: dict[str, list[float]] = {}
    for number in range(rounds):
        for path in paths if number % 2 == 0 else paths[::-1]:
            selected = bench_calendar(credential, f"write-{path}-{number}@example.com")
            for kind, events in mapped.items():
                if path == "per-row" and kind == "unchanged":
                    continue  # update_or_create writes every row anyway
                with orm_upsert() if path == "orm" else nullcontext():
                    began = time.perf_counter()
                    if path == "per-row":
                        per_row_upsert(selected, events)
                    else:
                        calcache_path(selected, events, page)
                    elapsed = time.perf_counter() - began
                figures.setdefault(f"{kind}:{path}", []).append(len(events) / elapsed)
        log(
            f"  write round {number}: "
            + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in sorted(figures.items()))
        )
    CalendarEvent.objects.filter(credential=credential).delete()
    SelectedCalendar.objects.filter(credential=credential).delete()
    return figures


def measure_writes(*, events: int, rounds: int, page: int, seed: int) -> dict[str, Any]:
    """bench/run.py's ``writes`` section: ``apply_page`` vs per-row upserts, new rows and
    updates."""
    credential, mapped = writer_and_pages(events, {"new": 1, "update": 2}, seed=seed)
    figures = measure(credential, mapped, paths=["calcache", "per-row"], rounds=rounds, page=page)
    result: dict[str, Any] = {"events": events, "rounds": rounds, "page": page}
    for kind in mapped:
        ours = statistics.median(figures[f"{kind}:calcache"])
        per_row = statistics.median(figures[f"{kind}:per-row"])
        result[kind] = {
            "calcache_events_per_s": ours,
            "per_row_events_per_s": per_row,
            "ratio": ours / per_row,
            "runs": {path: figures[f"{kind}:{path}"] for path in ("calcache", "per-row")},
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--no-per-row", action="store_true", help="skip the per-row baseline")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    setup_database(
        database_url=args.database_url, sqlite="write_path.sqlite3" if args.sqlite else None
    )

    from django.db import connection

    versions = {"new": 1, "update": 2, "unchanged": 2}
    credential, mapped = writer_and_pages(args.events, versions, seed=args.seed)
    paths = ["calcache"]
    if connection.vendor == "postgresql":
        paths.append("orm")
    if not args.no_per_row:
        paths.append("per-row")
    figures = measure(credential, mapped, paths=paths, rounds=args.rounds, page=args.page)

    print(
        f"Sync write path on {connection.vendor}, {args.events} events, pages of {args.page}, "
        f"{args.rounds} interleaved rounds (median events/s)"
    )
    header = "".join(f"{LABELS[path]:>15}" for path in paths)
    ratios = "".join(f"{'vs ' + path:>12}" for path in paths[1:])
    print(f"{'':10}{header}{ratios}")
    for kind in mapped:
        medians = {
            path: statistics.median(figures[f"{kind}:{path}"])
            for path in paths
            if f"{kind}:{path}" in figures
        }
        cells = "".join(
            f"{medians[path]:15,.0f}" if path in medians else f"{'-':>15}" for path in paths
        )
        ours = medians["calcache"]
        cells += "".join(
            f"{ours / medians[path]:11.1f}x" if path in medians else f"{'-':>12}"
            for path in paths[1:]
        )
        print(f"{kind:10}{cells}")


if __name__ == "__main__":
    main()
