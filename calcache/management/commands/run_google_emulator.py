"""Serve the bundled Google Calendar API emulator on loopback until interrupted."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Run calcache's offline Google Calendar API v3 emulator (Ctrl-C stops it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--seed", choices=("demo", "empty"), default="empty")

    def handle(self, *args: Any, host: str, port: int, seed: str, **options: Any) -> None:
        try:
            from calcache.emulator.seed import DEMO_ACCOUNTS, seed_demo
            from calcache.emulator.server import EmulatorServer
        except ImportError as exc:
            raise CommandError(str(exc)) from exc
        try:
            server = EmulatorServer(host=host, port=port)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        if seed == "demo":
            summary = seed_demo(server.state)
            self.stdout.write(
                f"Seeded {summary['events']} events for {', '.join(summary['accounts'])}."
            )
        self.stdout.write(self.style.SUCCESS(f"Google Calendar emulator on {server.url}"))
        self.stdout.write(f"  CALCACHE_GOOGLE_API_URL={server.api_url}")
        self.stdout.write(f"  CALCACHE_GOOGLE_TOKEN_URI={server.token_uri}")
        self.stdout.write(f"  CALCACHE_GOOGLE_AUTH_URI={server.auth_uri}")
        if seed == "demo":
            token = server.state.issue_tokens(
                DEMO_ACCOUNTS[0][0],
                client_id=next(iter(server.state.clients)),
                scope="https://www.googleapis.com/auth/calendar",
            )
            self.stdout.write(
                f"  try: curl -H 'Authorization: Bearer {token['access_token']}' "
                f"'{server.api_url}calendars/primary/events?maxResults=3'"
            )
        self.stdout.write("  control API: POST /_emulator/... (see calcache/emulator/client.py)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")
        finally:
            server.server.server_close()
