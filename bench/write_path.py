"""Sync write path: calcache's page upsert vs the seed's one-upsert-per-row transaction.

    .venv/bin/python bench/write_path.py [--events 20000] [--page 2500] [--rounds 3]
                                         [--database-url postgres://...] [--sqlite]

Creates (or reuses) the database, migrates it, and measures, interleaved in the
same run so machine noise cancels: events/s for new rows and for updates (every
etag changed) of ``calcache.sync.writes.apply_page`` and of the seed's
``prisma.$transaction(events.map(upsert))`` written here with the ORM's
``update_or_create`` inside one transaction. Prints the absolute figures and the
ratio; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    setup(args)

    from django.contrib.auth import get_user_model
    from django.db import connection

    from calcache.models import CalendarEvent, Credential, SelectedCalendar
    from calcache.sync.mapping import calendar_zone, map_event

    user, _ = get_user_model().objects.get_or_create(username="bench-writer")
    credential, _ = Credential.objects.get_or_create(
        user=user, account_email="bench@example.com", defaults={"encrypted_token": "x"}
    )
    tz = calendar_zone("Europe/London")
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    figures: dict[str, list[float]] = {}

    def measure(label: str, run: Any) -> None:
        began = time.perf_counter()
        run()
        figures.setdefault(label, []).append(args.events / (time.perf_counter() - began))

    for round_number in range(args.rounds):
        for path in ("calcache", "seed"):
            calendar_id = f"{path}-{round_number}@example.com"
            selected, _ = SelectedCalendar.objects.get_or_create(
                credential=credential, calendar_id=calendar_id
            )
            selected.credential = credential
            CalendarEvent.objects.filter(credential=credential, calendar_id=calendar_id).delete()
            for kind, version in (("new", 1), ("update", 2)):
                items = resources(args.events, offset=0, version=version, start=start)
                mapped = [map_event(i, calendar_tz=tz, store_summary=True) for i in items]
                if path == "calcache":
                    measure(
                        f"{kind}:calcache",
                        lambda m=mapped, s=selected: calcache_path(s, m, args.page),
                    )
                else:
                    measure(f"{kind}:seed", lambda m=mapped, s=selected: seed_baseline(s, m))
    CalendarEvent.objects.filter(credential=credential).delete()

    print(
        f"Sync write path on {connection.vendor}, {args.events} events, pages of {args.page}, "
        f"{args.rounds} interleaved rounds (median events/s)"
    )
    print(f"{'':8} {'calcache':>12} {'seed baseline':>14} {'ratio':>7}")
    for kind in ("new", "update"):
        ours = statistics.median(figures[f"{kind}:calcache"])
        seed = statistics.median(figures[f"{kind}:seed"])
        print(f"{kind:8} {ours:12,.0f} {seed:14,.0f} {ours / seed:6.1f}x")


if __name__ == "__main__":
    main()
