"""Where the staged migration stands, and moving it: `status`, `set-write`, `set-read`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calcache.exceptions import RolloutError
from calcache.rollout.stages import RolloutStatus, rollout_status, set_flag
from flags.names import READ_FLAG, WRITE_FLAG


class Command(BaseCommand):
    help = "Show the rollout stage (status) or change the write/read flag (set-write, set-read)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help="stage, who is in each flag, coverage, mismatches")
        for action, flag in (("set-write", WRITE_FLAG), ("set-read", READ_FLAG)):
            change = sub.add_parser(action, help=f"change {flag}")
            group = change.add_mutually_exclusive_group(required=True)
            group.add_argument("--team", help="add this team (slug)")
            group.add_argument("--percent", help="0-100, up to 3 decimals")
            group.add_argument("--everyone", action="store_true")
            group.add_argument("--off", action="store_true", help="off for everyone")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "status":
            self.write_status(rollout_status())
            return
        name = WRITE_FLAG if action == "set-write" else READ_FLAG
        try:
            event = set_flag(
                name=name,
                team=options["team"],
                percent=options["percent"],
                everyone=options["everyone"],
                off=options["off"],
            )
        except RolloutError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{name}: {event.reason}."))
        status = rollout_status()
        if name == READ_FLAG and status.read.enabled_users > status.write.enabled_users:
            self.stderr.write(
                self.style.WARNING(
                    f"{status.read.enabled_users} users read SQL but only "
                    f"{status.write.enabled_users} write it: readers without writes are "
                    "answered from JSON/live until their calendars are synced."
                )
            )
        self.stdout.write(f"Stage {status.stage}: {status.stage_name}.")

    def write_status(self, status: RolloutStatus) -> None:
        out = self.stdout.write
        out(f"Stage {status.stage} of 4: {status.stage_name}")
        if status.kill_switch:
            out(
                self.style.ERROR(
                    "Kill switch calendar-cache-sql-killswitch is ON: nobody reads SQL."
                )
            )
        for summary in (status.write, status.read):
            out(
                f"  {summary.name:<26} {summary.describe()} "
                f"({summary.enabled_users} of {summary.total_users} users)"
            )
        out(
            f"  coverage                   {status.covered_calendars}/{status.calendars} "
            f"calendars fully synced ({status.coverage:.1%})"
        )
        out(
            f"  mismatch rate              {status.mismatch_percent:.2f}% "
            f"({status.mismatches} of the last {status.comparisons} comparisons)"
        )
        if status.latency_ratio is None:
            out("  SQL/JSON latency           not measured yet (last 24 h)")
        else:
            out(
                f"  SQL/JSON latency           {status.latency_ratio:.2f} "
                f"(SQL {status.sql_mean_ms:.2f} ms, JSON {status.json_mean_ms:.2f} ms, mean, 24 h)"
            )
        out("Before the next stage:")
        for step in status.next_steps:
            out(f"  - {step}")
