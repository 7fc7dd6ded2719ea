"""The Google Calendar API emulator (calcache/emulator/) in a process of its own, seeded.

    .venv/bin/python bench/emulator_proc.py --accounts 10 --calendars 5 --events 50000

Creates the accounts (each with a primary and ``--calendars - 1`` secondary calendars,
in a few time zones) and inserts ``--events`` events through
``EmulatorState.insert_event``: bench/fill.py's, as ``events.insert`` bodies (a series as
one recurring event, which a ``singleEvents`` listing shows instance by instance; none
cancelled, as a listing would not show them). It serves them over HTTP on a free
loopback port, prints one JSON line (``{"url", "accounts": {email: [calendar ids]},
"events", "seed_seconds"}``) and serves until its standard input closes: the benchmark
holds that pipe, so the emulator never outlives it. A process of its own so that it does
not share the syncing process's GIL.

``EmulatorProcess`` is the benchmark's side of it.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fill import (  # noqa: E402
    DAY,
    attributes,
    calendar_ids,
    event_counts,
    google_event,
    series,
)

ZONES = ("Europe/London", "America/New_York", "Asia/Tokyo", "UTC", "Europe/Berlin")


def seed(state: Any, args: argparse.Namespace) -> dict[str, list[str]]:
    """The accounts and bench/fill.py's events, through ``EmulatorState.insert_event``."""
    rng = random.Random(args.seed)
    first = (int(time.time()) // DAY - args.past_days) * DAY
    accounts: dict[str, list[str]] = {}
    for a in range(args.accounts):
        email = f"{args.prefix}{a}@example.com"
        state.add_account(email, time_zone=ZONES[a % len(ZONES)])
        accounts[email] = calendar_ids(email, args.calendars)
        for c, calendar_id in enumerate(accounts[email][1:], start=1):
            state.add_calendar(
                owner=email,
                calendar_id=calendar_id,
                summary=f"Calendar {c}",
                time_zone=ZONES[(a + c) % len(ZONES)],
            )
    calendars = [(email, cid) for email, ids in accounts.items() for cid in ids]
    counts = event_counts(rng, args.events, [cid for _, cid in calendars])
    for (email, cid), n in zip(calendars, counts, strict=True):
        zone = state.calendars[cid].time_zone
        for event in series(rng, n, first, args.past_days + args.future_days):
            body = google_event(
                event, attributes(rng, cancelled=False), owner=email, time_zone=zone
            )
            state.insert_event(cid, body)
    return accounts


def serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The seeded emulator, for bench/run.py")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--calendars", type=int, default=5, help="per account")
    parser.add_argument("--events", type=int, default=50_000, help="in all (instances)")
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--past-days", type=int, default=25)
    parser.add_argument("--future-days", type=int, default=175)
    args = parser.parse_args(argv)
    from calcache.emulator.server import EmulatorServer

    server = EmulatorServer()
    began = time.perf_counter()
    accounts = seed(server.state, args)
    seconds = time.perf_counter() - began
    server.start()
    print(
        json.dumps(
            {
                "url": server.url,
                "accounts": accounts,
                "events": sum(len(e) for e in server.state.events.values()),
                "seed_seconds": seconds,
            }
        ),
        flush=True,
    )
    try:
        sys.stdin.read()  # until the benchmark closes the pipe (or exits)
    finally:
        server.stop()


class EmulatorProcess:
    """``with EmulatorProcess(accounts=..., ...) as emulator:`` starts ``serve`` in a child
    process and waits until it is seeded; leaving the block stops it."""

    def __init__(self, **options: Any) -> None:
        self.argv = [sys.executable, str(Path(__file__).resolve())]
        for name, value in options.items():
            self.argv += [f"--{name.replace('_', '-')}", str(value)]
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.accounts: dict[str, list[str]] = {}
        self.stored_events = 0
        self.seed_seconds = 0.0

    def __enter__(self) -> EmulatorProcess:
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"the emulator process exited ({self.process.returncode})")
        info = json.loads(line)
        self.url = info["url"]
        self.accounts = info["accounts"]
        self.stored_events = info["events"]
        self.seed_seconds = info["seed_seconds"]
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU time of the emulator process so far (Linux /proc; else 0)."""
        import os

        assert self.process is not None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    serve()
