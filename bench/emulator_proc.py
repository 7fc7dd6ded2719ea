"""The Google Calendar API emulator (calcache/emulator/) in a process of its own, seeded.

    .venv/bin/python bench/emulator_proc.py --accounts 10 --calendars 5 --events 50000

Creates the accounts (each with a primary and ``--calendars - 1`` secondary calendars),
inserts about ``--events`` events through ``EmulatorState.insert_event`` (timed events in
the calendar's zone, all-day and multi-day ones, weekly series with ``singleEvents``
instances, attendees with the account's own answer, some free and tentative ones),
serves them over HTTP on a free loopback port, prints one JSON line
(``{"url", "accounts": {email: [calendar ids]}, "events", "seed_seconds"}``) and serves
until its standard input closes: the benchmark holds that pipe, so the emulator never
outlives it. A process of its own so that it does not share the syncing process's GIL.

``EmulatorProcess`` is the benchmark's side of it.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
ZONES = ("Europe/London", "America/New_York", "Asia/Tokyo", "UTC", "Europe/Berlin")
SUMMARIES = ("1:1", "Design review", "Customer call", "Interview", "Planning", "Stand-up")
DURATIONS_MIN = (30,) * 35 + (45,) * 10 + (60,) * 30 + (90,) * 12 + (15,) * 5 + (120,) * 5


def _event(
    rng: random.Random, email: str, tz_name: str, first: datetime, days: int
) -> tuple[dict[str, Any], int]:
    """An event body and how many listing entries it makes (a weekly series: several)."""
    tz = ZoneInfo(tz_name)
    day = (first + timedelta(days=rng.randrange(days))).astimezone(tz).date()
    kind = rng.random()
    if kind < 0.04:
        length = 1 if kind < 0.035 else rng.randint(2, 5)
        return {
            "summary": "Out of office",
            "start": {"date": day.isoformat()},
            "end": {"date": (day + timedelta(days=length)).isoformat()},
        }, 1
    start = datetime(day.year, day.month, day.day, 8, tzinfo=tz) + timedelta(
        minutes=15 * rng.randrange(44)
    )
    end = start + timedelta(minutes=rng.choice(DURATIONS_MIN))
    body: dict[str, Any] = {
        "summary": rng.choice(SUMMARIES),
        "start": {"dateTime": start.isoformat(), "timeZone": tz_name},
        "end": {"dateTime": end.isoformat(), "timeZone": tz_name},
    }
    if rng.random() < 0.4:
        others = [f"guest{rng.randrange(1000)}@example.com" for _ in range(rng.randint(1, 5))]
        answer = rng.choices(("accepted", "needsAction", "tentative", "declined"), (70, 20, 8, 2))
        body["attendees"] = [{"email": email, "responseStatus": answer[0]}] + [
            {"email": other, "responseStatus": "accepted"} for other in others
        ]
        body["description"] = "Agenda: " + " ".join(rng.choices(SUMMARIES, k=8))
    roll = rng.random()
    if roll < 0.03:
        body["transparency"] = "transparent"
    elif roll < 0.05:
        body["status"] = "tentative"
    count = 1
    if rng.random() < 0.02:
        count = rng.randint(4, 12)
        body["recurrence"] = [f"RRULE:FREQ=WEEKLY;COUNT={count}"]
    return body, count


def seed(state: Any, args: argparse.Namespace) -> dict[str, list[str]]:
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    first = now - timedelta(days=args.past_days)
    days = args.past_days + args.future_days - 90  # room for weekly series of up to 12 weeks
    accounts: dict[str, list[str]] = {}
    for a in range(args.accounts):
        email = f"{args.prefix}{a}@example.com"
        tz_name = ZONES[a % len(ZONES)]
        state.add_account(email, time_zone=tz_name)
        ids = [email]
        for c in range(1, args.calendars):
            ids.append(
                state.add_calendar(
                    owner=email,
                    calendar_id=f"{args.prefix}{a}-cal{c}@group.calendar.google.com",
                    summary=f"Calendar {c}",
                    time_zone=ZONES[(a + c) % len(ZONES)],
                ).id
            )
        accounts[email] = ids
    calendars = [(email, cid) for email, ids in accounts.items() for cid in ids]
    weights = [rng.lognormvariate(0.0, 0.5) for _ in calendars]
    total = sum(weights)
    for (email, cid), weight in zip(calendars, weights, strict=True):
        wanted = max(1, round(args.events * weight / total))
        tz_name = state.calendars[cid].time_zone
        made = 0
        while made < wanted:
            body, count = _event(rng, email, tz_name, first, days)
            state.insert_event(cid, body)
            made += count
    return accounts


def serve(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The seeded emulator, for bench/run.py")
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--calendars", type=int, default=5, help="per account")
    parser.add_argument("--events", type=int, default=50_000, help="about, in all")
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--past-days", type=int, default=25)
    parser.add_argument("--future-days", type=int, default=175)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
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
