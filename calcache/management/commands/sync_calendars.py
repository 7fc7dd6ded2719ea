"""Bring selected calendars' SQL copies up to date."""

from __future__ import annotations

import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import DatabaseError, InterfaceError
from django.db.models import QuerySet
from tqdm import tqdm

from calcache.conf import conf
from calcache.extras import MissingExtra, missing_module
from calcache.models import Credential, SelectedCalendar
from calcache.sync.engine import (
    SyncOutcome,
    SyncResult,
    first_line,
    record_sync_errors,
    sync_calendars,
)
from flags.models import Team
from flags.names import WRITE_FLAG

MAX_WORKERS = 32
FILTERS = ("user", "team", "credential", "calendar")
DB_WAIT_SECONDS = 30.0


def _user_by_id_or_email(value: str) -> Any:
    User = get_user_model()
    manager = User._default_manager
    try:
        if value.isdigit():
            return manager.get(pk=int(value))
        if "@" in value:
            user = manager.filter(email__iexact=value).first()
            if user is None:  # the address of a connected Google account works too
                owners = manager.filter(calendar_credentials__account_email__iexact=value)
                user = owners.distinct().get()
            return user
        return manager.get(**{User.USERNAME_FIELD: value})
    except User.DoesNotExist:
        raise CommandError(
            f"Unknown user {value!r} (give a user id, a user's or a connected account's "
            "email, or a username)."
        ) from None
    except User.MultipleObjectsReturned:
        raise CommandError(f"Several users match {value!r}; give the user id.") from None


def refresh_marked(selected: SelectedCalendar) -> SyncResult:
    """``--dirty``: what the webhook's background refresh does (``refresh_notified``: the
    JSON blobs and the SQL sync; the mark is cleared, or kept when it must retry)."""
    from calcache.background.jobs import JobOutcome, refresh_notified

    job = refresh_notified(selected.pk)
    if job.sync is not None and job.retry_in is None:
        return job.sync
    result = job.sync or SyncResult(
        selected_calendar_id=selected.pk, calendar_id=selected.calendar_id
    )
    if job.outcome == JobOutcome.ALREADY_SYNCED:
        result.outcome = SyncOutcome.ALREADY_REFRESHED
    elif job.outcome == JobOutcome.GONE:
        result.outcome = SyncOutcome.DISABLED
    elif job.retry_in is not None and result.outcome != SyncOutcome.FAILED:
        result.outcome, result.error = SyncOutcome.DEFERRED, job.describe()
    elif not result.error:
        result.error = job.describe()
    return result


class Command(BaseCommand):
    help = (
        "Sync selected calendars into the SQL tables: incremental where a sync token exists, "
        "full otherwise. Exit status 1 when any calendar failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", help="a user id, email or username")
        parser.add_argument("--team", help="the slug of a flags.Team: its members' calendars")
        parser.add_argument("--credential", type=int, help="a calcache Credential id")
        parser.add_argument("--calendar", help="a Google calendar id")
        parser.add_argument("--full", action="store_true", help="full syncs, ignoring tokens")
        parser.add_argument(
            "--dirty",
            action="store_true",
            help="only calendars a push notification marked as changed",
        )
        parser.add_argument("--workers", type=int, default=1, help="calendars synced at once")
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="put one background task per calendar on the queue (needs Celery)",
        )
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="no progress bar or table, only errors (the same as -v 0)",
        )
        parser.add_argument(
            "--db-wait",
            type=float,
            default=DB_WAIT_SECONDS,
            metavar="SECONDS",
            help="when the database failed during the run, wait this long at the end for it "
            "to answer again, to record the failed calendars' errors "
            f"(default {DB_WAIT_SECONDS:g}; 0: do not wait)",
        )

    def select(self, options: dict[str, Any]) -> QuerySet[SelectedCalendar]:
        """The enabled calendars the filters name; CommandError when filters were given
        and no enabled calendar matches them (a typo must not pass as "all synced")."""
        calendars = SelectedCalendar.objects.select_related("credential", "credential__user")
        if options["user"]:
            calendars = calendars.filter(credential__user=_user_by_id_or_email(options["user"]))
        if options["team"]:
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(f"Unknown team {options['team']!r} (give its slug).")
            calendars = calendars.filter(credential__user__in=team.members.all())
        if options["credential"] is not None:
            if not Credential.objects.filter(pk=options["credential"]).exists():
                raise CommandError(f"Unknown credential {options['credential']}.")
            calendars = calendars.filter(credential_id=options["credential"])
        if options["calendar"]:
            calendars = calendars.filter(calendar_id=options["calendar"])
        matching, calendars = calendars, calendars.filter(enabled=True)
        filters = " ".join(
            f"--{name} {options[name]!r}" for name in FILTERS if options[name] not in (None, "")
        )
        if filters and not calendars.exists():
            disabled = matching.count()
            if disabled:
                raise CommandError(
                    f"{filters}: {disabled} selected calendar(s) match, none of them "
                    "enabled; nothing was synced. Tick them on the calendars page "
                    "(calendar-cache/calendars/) or enable them in the admin."
                )
            raise CommandError(
                f"No selected calendar matches {filters}; nothing was synced. The admin's "
                "Selected calendars page lists them; run without filters to sync them all."
            )
        if options["dirty"]:
            calendars = calendars.filter(dirty_since__isnull=False)
        return calendars.order_by("pk")

    def handle(self, *args: Any, **options: Any) -> None:
        workers = options["workers"]
        if not 1 <= workers <= MAX_WORKERS:
            raise CommandError(f"--workers must be between 1 and {MAX_WORKERS}.")
        if options["dirty"] and options["full"]:
            raise CommandError(
                "--dirty refreshes what push notifications marked (incremental syncs and "
                "the JSON blobs); run --full without --dirty."
            )
        if options["enqueue"]:
            if not conf.celery_enabled:
                raise CommandError(
                    "--enqueue needs a Celery broker (CELERY_BROKER_URL), which this "
                    "installation does not configure; run without --enqueue to sync in "
                    "this process."
                )
            if missing := missing_module("celery"):
                raise CommandError(str(MissingExtra("celery", missing)))
            if workers != 1:
                raise CommandError(
                    "--workers applies to syncs in this process; with --enqueue the Celery "
                    "workers' --concurrency decides."
                )
        quiet = options["quiet"] or options["verbosity"] == 0
        try:
            calendars = list(self.select(options))
        except (DatabaseError, InterfaceError) as exc:
            if not quiet:
                self.stdout.write("Sync summary: no calendar synced, the database is unavailable.")
            raise CommandError(
                f"The database is unavailable ({first_line(exc)}); no calendar was synced.",
                returncode=1,
            ) from None
        if not calendars:
            if not quiet:
                self.stdout.write("No enabled calendar matches.")
            return
        if options["enqueue"]:
            self.enqueue(calendars, full=options["full"], quiet=quiet)
            return
        progress = tqdm(
            total=len(calendars),
            desc="Syncing calendars",
            unit="cal",
            file=sys.stderr,
            disable=quiet or not sys.stderr.isatty(),
        )
        began = time.monotonic()
        try:
            results = sync_calendars(
                calendars,
                full=options["full"],
                workers=workers,
                on_result=lambda result: self.advance(progress),
                sync_one=refresh_marked if options["dirty"] else None,
            )
        finally:
            progress.close()
        unrecorded = record_sync_errors(
            calendars=calendars,
            results=results,
            wait=max(0.0, options["db_wait"]),
            on_wait=self.announce_wait(options["db_wait"]),
        )
        elapsed = time.monotonic() - began
        if quiet:
            self.write_failures(results, unrecorded=unrecorded, out=self.stderr)
        else:
            self.write_summary(results, elapsed, unrecorded=unrecorded)
            if options["verbosity"] >= 2:
                self.write_tracebacks(results)
        failed = [r for r in results if r.outcome == SyncOutcome.FAILED]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} calendar(s) failed.", returncode=1)

    def enqueue(self, calendars: list[SelectedCalendar], *, full: bool, quiet: bool) -> None:
        """One ``calcache.sync_calendar`` task per calendar, over one broker connection."""
        from amqp.exceptions import AMQPError
        from kombu import Connection
        from kombu.exceptions import KombuError, OperationalError

        from calcache.tasks import sync_calendar

        app = sync_calendar.app
        queued = 0
        try:
            with app.producer_or_acquire() as producer:
                for selected in calendars:
                    sync_calendar.apply_async(
                        args=(selected.pk,), kwargs={"full": full}, producer=producer
                    )
                    queued += 1
        except (OperationalError, OSError, KombuError, AMQPError) as exc:
            broker = Connection(app.conf.broker_url).as_uri()  # password masked
            raise CommandError(
                f"Could not reach the Celery broker at {broker} "
                f"({type(exc).__name__}: {exc}); "
                f"{queued} of {len(calendars)} task(s) were queued before it failed."
            ) from None
        if quiet:
            return
        queue = app.conf.task_default_queue
        self.stdout.write(
            f"Enqueued {queued} sync task(s) on queue {queue!r}; "
            f"workers run them (celery -A project worker -Q {queue})."
        )

    @staticmethod
    def advance(progress: tqdm[Any]) -> None:
        progress.update(1)

    def announce_wait(self, seconds: float) -> Callable[[int], None]:
        def announce(count: int) -> None:
            self.stderr.write(
                f"The database failed during the sync; waiting up to {seconds:g} s for it "
                f"to record {count} calendar error(s)."
            )
            self.stderr.flush()

        return announce

    def write_summary(
        self, results: list[SyncResult], elapsed: float, *, unrecorded: list[SyncResult]
    ) -> None:
        outcomes = Counter(result.outcome for result in results)
        rows = [
            ("calendars", len(results)),
            ("synced (full)", outcomes[SyncOutcome.FULL]),
            ("synced (incremental)", outcomes[SyncOutcome.INCREMENTAL]),
            ("events upserted", sum(r.upserted for r in results)),
            ("events unchanged", sum(r.unchanged for r in results)),
            ("events deleted", sum(r.deleted for r in results)),
            ("windows rolled forward", sum(r.rolled_forward for r in results)),
            ("skipped: locked", outcomes[SyncOutcome.LOCKED]),
            ("skipped: write flag off", outcomes[SyncOutcome.FLAG_OFF]),
            ("skipped: credential invalid", outcomes[SyncOutcome.CREDENTIAL_INVALID]),
            ("skipped: refreshed already", outcomes[SyncOutcome.ALREADY_REFRESHED]),
            ("deferred (still marked)", outcomes[SyncOutcome.DEFERRED]),
            ("failed", outcomes[SyncOutcome.FAILED]),
        ]
        width = max(len(label) for label, _ in rows)
        self.stdout.write(f"Sync summary ({elapsed:.1f} s)")
        for label, value in rows:
            self.stdout.write(f"  {label:<{width}}  {value:>8}")
        for result in results:
            if result.outcome == SyncOutcome.FULL and result.full_reason not in ("", "first sync"):
                self.stdout.write(f"  full sync of {result.calendar_id}: {result.full_reason}")
        self.write_skips(outcomes, total=len(results))
        self.write_failures(results, unrecorded=unrecorded, out=self.stdout)

    def write_skips(self, outcomes: Counter[SyncOutcome], *, total: int) -> None:
        """Say plainly when calendars were skipped, above all when nothing was written."""
        skipped = sum(n for outcome, n in outcomes.items() if outcome.value.startswith("skipped"))
        flag_off = outcomes[SyncOutcome.FLAG_OFF]
        if total and skipped == total:
            reasons = ", ".join(
                f"{n} {outcome.value.removeprefix('skipped: ')}"
                for outcome, n in sorted(outcomes.items())
            )
            self.stdout.write(
                self.style.WARNING(
                    f"Nothing was written to the SQL tables: all {total} calendar(s) were "
                    f"skipped ({reasons})."
                )
            )
        if flag_off:
            self.stdout.write(
                self.style.WARNING(
                    f"{flag_off} calendar(s) skipped because {WRITE_FLAG} is off for their "
                    "users: the sync writes SQL only for users in that flag. Turn it on "
                    f"with `manage.py calendar_cache_rollout set-write --team SLUG` (or "
                    "--percent N, --everyone), or in the admin (Flags)."
                )
            )

    def write_failures(
        self, results: list[SyncResult], *, unrecorded: list[SyncResult], out: OutputWrapper
    ) -> None:
        """One line per failed calendar (the summary's, or stderr's at ``-v 0``)."""
        for result in results:
            if result.outcome == SyncOutcome.FAILED:
                out.write(self.style.ERROR(f"  FAILED {result.calendar_id}: {result.error}"))
        if unrecorded:
            out.write(
                self.style.ERROR(
                    f"  {len(unrecorded)} error(s) not recorded on the dashboard: "
                    "the database is still unavailable"
                )
            )

    def write_tracebacks(self, results: list[SyncResult]) -> None:
        """``-v 2``: the traceback of each failure, after the summary's one-liners."""
        for result in results:
            if result.outcome == SyncOutcome.FAILED and result.exception is not None:
                self.stdout.write(f"Traceback of {result.calendar_id}:")
                self.stdout.write("".join(traceback.format_exception(result.exception)))
