"""Prepare the demo site: an optional admin/admin superuser and, with ``--emulator``, the
demo users connected to the running Google emulator, synced, at rollout stage 3. It
refuses to run unless DEBUG is on: a real site never gets admin/admin or the demo users."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from calcache.availability.stats import stats
from calcache.conf import conf
from calcache.models import CalendarCache, SelectedCalendar
from calcache.rollout.stages import set_flag
from calcache.services import connect_google_account, get_availability
from calcache.sync.engine import sync_calendars
from flags.models import Flag, Team
from flags.names import READ_FLAG, WRITE_FLAG

if TYPE_CHECKING:
    from calcache.emulator.client import EmulatorClient

DEMO_ADMIN = "admin"
DEMO_PASSWORD = "demo"
DEMO_TEAM = "demo"
SITE = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = "Prepare the demo database (make demo runs it after migrate). Safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--create-admin",
            action="store_true",
            help="Create the superuser admin/admin if no user of that name exists.",
        )
        parser.add_argument(
            "--emulator",
            metavar="URL",
            help=(
                "Base URL of a running `run_google_emulator --seed demo` (e.g. "
                "http://127.0.0.1:8765): create the demo users, connect them to it, sync "
                "them and put the flags at stage 3 for the demo team."
            ),
        )

    def handle(self, *args: Any, create_admin: bool, emulator: str | None, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "calcache_demo prepares the demo site (demo users with the password "
                f"{DEMO_PASSWORD!r}{', the superuser admin/admin' if create_admin else ''}) "
                "and runs only with DEBUG on, so it never does that to a real site. Run "
                "`make demo`, or set DEBUG=1 for a development database of your own."
            )
        User = get_user_model()
        if create_admin:
            if User._default_manager.filter(username=DEMO_ADMIN).exists():
                self.stdout.write(f"Superuser {DEMO_ADMIN!r} already exists; left as it is.")
            else:
                User._default_manager.create_superuser(DEMO_ADMIN, "admin@example.com", "admin")
                self.stdout.write(self.style.SUCCESS("Created superuser admin / admin."))
        else:
            self.stdout.write(
                "No demo superuser created (run `make demo` at a terminal or with DEMO=1)."
            )
        if emulator:
            try:
                from calcache.emulator import EmulatorClient
            except ImportError as exc:
                raise CommandError(str(exc)) from exc
            self.connect_demo_users(EmulatorClient(emulator))
        self.stdout.write(f"Admin: {SITE}/admin/  (flags, teams, calendars, events)")

    def connect_demo_users(self, client: EmulatorClient) -> None:
        from calcache.emulator.client import EmulatorError
        from calcache.emulator.seed import DEMO_ACCOUNTS

        if not conf.google_api_url.startswith(client.api_url):
            raise CommandError(
                f"CALCACHE_GOOGLE_API_URL is {conf.google_api_url!r}, not the emulator's "
                f"{client.api_url!r}: set CALCACHE_GOOGLE_API_URL, CALCACHE_GOOGLE_TOKEN_URI "
                "and CALCACHE_GOOGLE_AUTH_URI to the emulator's (make demo does)."
            )
        User = get_user_model()
        team, _ = Team.objects.get_or_create(slug=DEMO_TEAM, defaults={"name": "Demo"})
        users = []
        for email, _tz in DEMO_ACCOUNTS:
            username = email.split("@")[0]
            try:
                token = client.authorized_token(email)
            except (EmulatorError, OSError) as exc:
                raise CommandError(
                    f"The emulator at {client.base_url} has no account {email} ({exc}); start "
                    "it with `manage.py run_google_emulator --seed demo`."
                ) from exc
            with transaction.atomic():
                user = User._default_manager.filter(username=username).first()
                if user is None:
                    user = User._default_manager.create_user(username, email, DEMO_PASSWORD)
                    self.stdout.write(f"Created user {username} / {DEMO_PASSWORD}.")
                connect_google_account(user=user, token=token, calendar_ids=None)
            # A new emulator process seeds new events: answers cached from the last run
            # would disagree with it.
            CalendarCache.objects.filter(credential__user=user).delete()
            team.members.add(user)
            users.append(user)

        self._flag_for_team(WRITE_FLAG)
        calendars = SelectedCalendar.objects.filter(
            credential__user__in=users, enabled=True
        ).select_related("credential", "credential__user")
        results = sync_calendars(calendars)
        for result in results:
            line = f"Synced {result.calendar_id}: {result.outcome}, {result.upserted} events"
            self.stdout.write(line + (f" ({result.error})" if result.error else ""))
        if any(not result.outcome.synced for result in results):
            raise CommandError("The first sync failed for some calendars (see above).")

        # A little history for the dashboard: answers live and from the JSON cache before
        # the read flag, then from SQL.
        self._ask_availability(users)
        self._flag_for_team(READ_FLAG)
        self._ask_availability(users)
        stats.flush()
        self.stdout.write(self.style.SUCCESS(f"Demo team {DEMO_TEAM!r}: stage 3 (dual read)."))

    def _flag_for_team(self, name: str) -> None:
        if not Flag.objects.get(name=name).teams.filter(slug=DEMO_TEAM).exists():
            set_flag(name=name, team=DEMO_TEAM)

    @staticmethod
    def _ask_availability(users: list[Any]) -> None:
        now = timezone.now()
        monday = (now - timedelta(days=now.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        for user in users:
            for week in range(-1, 3):
                for _ in range(2):  # the second live answer comes from the JSON cache
                    start = monday + timedelta(weeks=week)
                    get_availability(user=user, start=start, end=start + timedelta(days=7))
