"""Prepare the demo site: an optional admin/admin superuser, then print where to go."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

DEMO_ADMIN = "admin"


class Command(BaseCommand):
    help = "Prepare the demo database (make demo runs it after migrate)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--create-admin",
            action="store_true",
            help="Create the superuser admin/admin if no user of that name exists.",
        )

    def handle(self, *args: Any, create_admin: bool, **options: Any) -> None:
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
        self.stdout.write("Admin: http://127.0.0.1:8000/admin/  (flags, teams, calendars, events)")
