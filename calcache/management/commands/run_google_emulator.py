"""Serve the bundled Google Calendar API emulator on loopback until interrupted."""

from __future__ import annotations

import errno
import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

DEFAULT_PORT = 8765
HIGHEST_PORT = 65535


def port_number(value: str) -> int:
    """``--port``: a TCP port, 0 for any free one (the URL printed says which)."""
    try:
        port = int(value.strip())
    except ValueError:
        port = -1
    if not 0 <= port <= HIGHEST_PORT:
        raise CommandError(
            f"--port {value!r} is not a port number: give a whole number from 1 to "
            f"{HIGHEST_PORT} (0: any free port), e.g. --port {DEFAULT_PORT}."
        )
    return port


def probe_listen(host: str, port: int) -> None:
    """Bind ``host:port`` as the emulator's server will (OSError when it cannot)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


class Command(BaseCommand):
    help = "Run calcache's offline Google Calendar API v3 emulator (Ctrl-C stops it)."
    # The emulator reads none of the site's configuration, and is often what that
    # configuration is being made to point at.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default=str(DEFAULT_PORT), help="0: any free port")
        parser.add_argument("--seed", choices=("demo", "empty"), default="empty")

    def handle(self, *args: Any, host: str, port: str, seed: str, **options: Any) -> None:
        try:
            from calcache.emulator.seed import DEMO_ACCOUNTS, seed_demo
            from calcache.emulator.server import EmulatorServer
        except ImportError as exc:
            raise CommandError(str(exc)) from exc
        number = port_number(str(port))
        if not host.strip():
            raise CommandError("--host is empty: give an address to listen on, e.g. 127.0.0.1.")
        try:
            # werkzeug prints a failed bind's reason and exits: bind once ourselves first.
            probe_listen(host, number)
            server = EmulatorServer(host=host, port=number)
        except OSError as exc:
            raise CommandError(self.cannot_listen(host, number, exc)) from exc
        except SystemExit as exc:  # taken between our probe and werkzeug's bind
            raise CommandError(f"Cannot listen on {host}:{number} (see above).") from exc
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

    @staticmethod
    def cannot_listen(host: str, port: int, exc: OSError) -> str:
        message = f"Cannot listen on {host}:{port} ({exc.strerror or exc})"
        if exc.errno == errno.EADDRINUSE:
            return f"{message}: another emulator or `make demo`? Stop it or choose another --port."
        if exc.errno == errno.EACCES:
            return f"{message}: ports below 1024 need privileges; choose another --port."
        if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
            return f"{message}: {host!r} is not an address of this machine; use 127.0.0.1."
        return f"{message}."
