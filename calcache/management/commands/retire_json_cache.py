"""Stage 4's last step: delete the legacy JSON cache once it is safe."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calcache.exceptions import RolloutError
from calcache.rollout.stages import retire_json_cache


class Command(BaseCommand):
    help = (
        "Delete every legacy JSON cache row, once calendar-cache-sql has been on for everyone "
        "for CALCACHE_RETIRE_AFTER_DAYS with the mismatch rate under the threshold."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            deleted = retire_json_cache(batch_size=batch_size)
        except RolloutError as exc:
            raise CommandError(f"Not retiring the JSON cache: {exc}", returncode=1) from exc
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} legacy JSON cache row(s)."))
        self.stdout.write(
            "Now set CALCACHE_JSON_CACHE_ENABLED=False and deploy: no JSON reads or writes "
            "happen after that, and the calcache_calendarcache table can be dropped later."
        )
