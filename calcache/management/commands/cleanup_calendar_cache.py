"""Delete events that ended long ago, expired legacy JSON entries and orphan sync tokens."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calcache.conf import conf
from calcache.sync.cleanup import cleanup_calendar_cache


class Command(BaseCommand):
    help = (
        "Delete events that ended more than --days ago (default CALCACHE_RETENTION_DAYS) in "
        "small batches, expired legacy JSON cache entries and sync tokens of calendars no "
        "longer selected."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None)
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument("--batch-size", type=int, default=10_000)

    def handle(
        self, *args: Any, days: int | None, dry_run: bool, batch_size: int, **options: Any
    ) -> None:
        days = conf.retention_days if days is None else days
        if days < 0:
            raise CommandError("--days cannot be negative.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if days < conf.sync_past_days:
            self.stderr.write(
                self.style.WARNING(
                    f"--days {days} is inside the synced window (CALCACHE_SYNC_PAST_DAYS="
                    f"{conf.sync_past_days}); those calendars' coverage will start later."
                )
            )
        report = cleanup_calendar_cache(days=days, batch_size=batch_size, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        message = (
            f"{verb} {report.events} event(s) that ended before "
            f"{report.cutoff:%Y-%m-%d %H:%M} UTC, {report.json_entries} expired JSON cache "
            f"entry(ies) and {report.sync_tokens} orphan sync token(s)"
        )
        if not dry_run:
            message += f" in {report.seconds:.2f} s ({report.events_per_second:,.0f} events/s)"
        self.stdout.write(message + ".")
