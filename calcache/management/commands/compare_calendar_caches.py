"""Compare SQL with the JSON cache (and live freeBusy) on real windows."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calcache.management.commands.sync_calendars import _user_by_id_or_email
from calcache.rollout.shadow import compare_caches
from flags.models import Team


class Command(BaseCommand):
    help = (
        "Compare each user's SQL busy time with the JSON cache (and with live freeBusy with "
        "--live) over the next N days, one window per day. Exit status 1 when the mismatch "
        "rate is above --threshold percent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="a user id, email or username")
        parser.add_argument("--team", help="the slug of a flags.Team")
        parser.add_argument("--days", type=int, default=14)
        parser.add_argument("--threshold", type=float, default=1.0, help="percent")
        parser.add_argument("--live", action="store_true", help="also ask Google (freeBusy)")

    def handle(self, *args: Any, **options: Any) -> None:
        days, threshold = options["days"], options["threshold"]
        if not 1 <= days <= 92:
            raise CommandError("--days must be between 1 and 92.")
        if not 0 <= threshold <= 100:
            raise CommandError("--threshold is a percentage between 0 and 100.")
        users = (
            get_user_model()
            ._default_manager.filter(calendar_credentials__selected_calendars__enabled=True)
            .distinct()
        )
        if options["user"]:
            users = users.filter(pk=_user_by_id_or_email(options["user"]).pk)
        if options["team"]:
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(f"Unknown team {options['team']!r} (give its slug).")
            users = users.filter(pk__in=team.members.values("pk"))
        report = compare_caches(users=users.order_by("pk"), days=days, live=options["live"])
        out = self.stdout.write
        out(f"users      {report.users}")
        out(
            f"windows    {report.windows}  ({report.uncovered} not covered by SQL, "
            f"{report.no_json} without a JSON blob)"
        )
        out(f"compared   {report.compared}")
        if options["live"]:
            out(f"live reads failed {report.live_failed} of {report.users} users")
        out(f"mismatches {report.mismatches}  ({report.mismatch_percent:.2f}%)")
        for source in ("sql", "json", "live"):
            p50, p95 = report.percentile(source, 50), report.percentile(source, 95)
            if p50 is not None and p95 is not None:
                out(f"latency {source:<5} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms")
        sql50, json50 = report.percentile("sql", 50), report.percentile("json", 50)
        if sql50 is not None and json50:
            out(f"SQL/JSON latency ratio (p50) {sql50 / json50:.2f}")
        for example in report.examples:
            out(f"  {example}")
        if report.mismatch_percent > threshold:
            raise CommandError(
                f"Mismatch rate {report.mismatch_percent:.2f}% is above {threshold}%.",
                returncode=1,
            )
        if report.live_failed:
            raise CommandError(
                f"Google could not be read for {report.live_failed} of {report.users} users: "
                "they were compared without the live source.",
                returncode=1,
            )
