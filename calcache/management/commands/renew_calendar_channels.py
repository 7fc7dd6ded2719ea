"""Replace push channels before they expire, and open missing ones. Run hourly from cron."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calcache.conf import conf
from calcache.push.channels import renew_channels


class Command(BaseCommand):
    help = (
        "Open a new push channel for every channel expiring within --margin-hours (default "
        "CALCACHE_CHANNEL_RENEW_MARGIN_HOURS) before it expires, then stop the old one; open "
        "channels for selected calendars without one. Exit status 1 when any failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--margin-hours", type=int, default=None)

    def handle(self, *args: Any, margin_hours: int | None, **options: Any) -> None:
        if not conf.webhooks_enabled:
            raise CommandError("CALCACHE_WEBHOOK_URL is not set: push channels are off.")
        hours = conf.channel_renew_margin_hours if margin_hours is None else margin_hours
        if hours < 0:
            raise CommandError("--margin-hours cannot be negative.")
        report = renew_channels(margin=timedelta(hours=hours))
        self.stdout.write(
            f"Renewed {report.renewed} channel(s) (old ones stopped: {report.stopped}), "
            f"opened {report.opened} missing channel(s), {len(report.failed)} failure(s)."
        )
        for failure in report.failed:
            self.stdout.write(self.style.ERROR(f"  FAILED {failure}"))
        if report.failed:
            raise CommandError(
                f"{len(report.failed)} channel(s) could not be opened.", returncode=1
            )
