"""Sync write path: calcache's page upsert vs the seed's one-upsert-per-row transaction.

    .venv/bin/python bench/write_path.py [--events 20000] [--page 2500] [--rounds 3]
                                         [--database-url postgres://...] [--sqlite]
                                         [--no-seed]

Creates (or reuses) the database, migrates it, and measures, interleaved in the
same run (the order of the paths alternates between rounds) so machine noise cancels:
events/s of ``calcache.sync.writes.apply_page`` for new rows, updates (every etag
changed) and unchanged events (a full sync that finds nothing new); on PostgreSQL the
same ``apply_page`` with its ORM upsert (what SQLite runs, and what PostgreSQL ran
before its COPY path); and, for new rows and updates, the seed's
``prisma.$transaction(events.map(upsert))`` written here with the ORM's
``update_or_create`` inside one transaction (``--no-seed`` skips it: it takes most of
the run). Prints the absolute figures and the ratios; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/calcache_bench"


def ensure_postgres_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup(args: argparse.Namespace) -> None:
    if args.sqlite:
        path = ROOT / "bench" / "results" / "write_path.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    else:
        ensure_postgres_database(args.database_url)
        os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def resources(count: int, *, offset: int, version: int, start: datetime) -> list[dict[str, Any]]:
    items = []
    for n in range(offset, offset + count):
        begin = start + timedelta(minutes=30 * n)
        items.append(
            {
                "id": f"evt{n:08d}_20260301T090000Z",
                "etag": f'"{version}{n}"',
                "status": "confirmed",
                "summary": f"Meeting {n} v{version}",
                "start": {"dateTime": begin.isoformat(), "timeZone": "Europe/London"},
                "end": {"dateTime": (begin + timedelta(minutes=45)).isoformat()},
                "created": "2026-01-01T00:00:00.000Z",
                "updated": f"2026-02-01T00:00:{version % 60:02d}.000Z",
                "sequence": version,
                "iCalUID": f"evt{n:08d}@google.com",
                "recurringEventId": f"evt{n:08d}",
                "attendees": [
                    {"email": "a@example.com", "self": True, "responseStatus": "accepted"}
                ],
            }
        )
    return items


def writer_and_pages(events: int, versions: dict[str, int]) -> tuple[Any, dict[str, list[Any]]]:
    """The benchmark's writing account, and per kind (``versions``: kind -> event version)
    the same ``events`` events mapped as the sync maps Google's items."""
    from django.contrib.auth import get_user_model

    from calcache.models import Credential
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
        for kind, version in versions.items()
    }
    return credential, mapped


def bench_calendar(credential: Any, calendar_id: str) -> Any:
    """A selected calendar of the writing account (its credential attached, no query)."""
    from calcache.models import SelectedCalendar

    selected, _ = SelectedCalendar.objects.get_or_create(
        credential=credential, calendar_id=calendar_id
    )
    selected.credential = credential
    return selected


def seed_baseline(selected: Any, mapped: list[Any]) -> None:
    """The seed: one upsert statement per event, all in one transaction."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--no-seed", action="store_true", help="skip the seed baseline")
    args = parser.parse_args()
    setup(args)

    from django.db import connection

    from calcache.models import CalendarEvent

    credential, mapped = writer_and_pages(args.events, {"new": 1, "update": 2, "unchanged": 2})
    paths = ["calcache"]
    if connection.vendor == "postgresql":
        paths.append("orm")
    if not args.no_seed:
        paths.append("seed")
    figures: dict[str, list[float]] = {}

    for round_number in range(args.rounds):
        order = paths if round_number % 2 == 0 else paths[::-1]
        for path in order:
            calendar_id = f"{path}-{round_number}@example.com"
            selected = bench_calendar(credential, calendar_id)
            CalendarEvent.objects.filter(credential=credential, calendar_id=calendar_id).delete()
            for kind, events in mapped.items():
                if path == "seed" and kind == "unchanged":
                    continue  # update_or_create writes every row anyway
                with orm_upsert() if path == "orm" else nullcontext():
                    began = time.perf_counter()
                    if path == "seed":
                        seed_baseline(selected, events)
                    else:
                        calcache_path(selected, events, args.page)
                    elapsed = time.perf_counter() - began
                figures.setdefault(f"{kind}:{path}", []).append(args.events / elapsed)
    CalendarEvent.objects.filter(credential=credential).delete()

    print(
        f"Sync write path on {connection.vendor}, {args.events} events, pages of {args.page}, "
        f"{args.rounds} interleaved rounds (median events/s)"
    )
    columns = {"calcache": "calcache", "orm": "ORM upsert", "seed": "seed baseline"}
    header = "".join(f"{columns[path]:>15}" for path in paths)
    ratios = "".join(f"{'vs ' + path:>10}" for path in paths[1:])
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
            f"{ours / medians[path]:9.1f}x" if path in medians else f"{'-':>10}"
            for path in paths[1:]
        )
        print(f"{kind:10}{cells}")


if __name__ == "__main__":
    main()
