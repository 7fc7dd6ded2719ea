"""Sync sections of bench/run.py: a full sync end to end, and ``sync_calendars --workers``.

Both run the real path: the Google Calendar API emulator in a process of its own
(bench/emulator_proc.py, so it does not share this process's GIL), accounts connected
through ``calcache.services.connect_google_account`` (tokens from the emulator's OAuth),
``calendar-cache-sql-write`` on for everyone, and ``calcache.sync`` syncing through
google-api-python-client (``calcache.google.GoogleCalendarClient``) into the database.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from bench.common import log
from bench.emulator_proc import EmulatorProcess
from bench.fill import create_users


@contextmanager
def emulated_google(
    *, accounts: int, calendars: int, events: int, prefix: str, seed: int
) -> Iterator[EmulatorProcess]:
    """The seeded emulator process, calcache's Google settings pointed at it, the write
    flag on for everyone, and one bench user per account, connected; all undone after."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from calcache.conf import conf
    from calcache.emulator.client import EmulatorClient
    from calcache.models import CalendarEvent, Credential
    from calcache.services import connect_google_account
    from flags.models import Flag
    from flags.names import WRITE_FLAG

    # Events well inside the synced window (CALCACHE_SYNC_PAST_DAYS / FUTURE_DAYS).
    past, future = conf.sync_past_days, conf.sync_future_days
    log(f"  starting the emulator process: {accounts} accounts x {calendars} calendars")
    with EmulatorProcess(
        accounts=accounts,
        calendars=calendars,
        events=events,
        prefix=prefix,
        seed=seed,
        past_days=max(1, past - 5),
        future_days=max(100, future - 5),
    ) as emulator:
        log(f"  emulator seeded in {emulator.seed_seconds:.1f} s at {emulator.url}")
        names = {
            "CALCACHE_GOOGLE_API_URL": f"{emulator.url}/calendar/v3/",
            "CALCACHE_GOOGLE_TOKEN_URI": f"{emulator.url}/token",
            "CALCACHE_GOOGLE_AUTH_URI": f"{emulator.url}/o/oauth2/auth",
        }
        saved: dict[str, Any] = {name: getattr(settings, name, None) for name in names}
        for name, value in names.items():
            setattr(settings, name, value)
        flag = Flag.objects.get(name=WRITE_FLAG)
        everyone = flag.everyone
        flag.everyone = True
        flag.save()
        users: list[Any] = []
        try:
            users = create_users(
                [(f"bench-{prefix}-{n}", email) for n, email in enumerate(emulator.accounts)]
            )
            client = EmulatorClient(emulator.url)
            for user in users:
                token = client.authorized_token(user.email)
                # As a site does: connect (calendarList discovers the primary calendar),
                # then select the account's other calendars too.
                connect_google_account(user=user, token=token)
                connect_google_account(
                    user=user, token=token, calendar_ids=emulator.accounts[user.email]
                )
            yield emulator
        finally:
            credentials = Credential.objects.filter(user__in=users)
            CalendarEvent.objects.filter(credential__in=credentials).delete()
            credentials.delete()
            get_user_model().objects.filter(pk__in=[u.pk for u in users]).delete()
            flag.everyone = everyone
            flag.save()
            for name, value in saved.items():
                setattr(settings, name, value)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs so far (Linux /proc/stat; elsewhere zeros)."""
    try:
        with open("/proc/stat") as stat:
            values = [float(v) for v in stat.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values) - idle, sum(values)


def _selected(prefix: str) -> list[Any]:
    from calcache.models import SelectedCalendar

    return list(
        SelectedCalendar.objects.filter(
            credential__user__username__startswith=f"bench-{prefix}-", enabled=True
        )
        .select_related("credential", "credential__user")
        .order_by("pk")
    )


def _forget(selected: list[Any]) -> None:
    """Empty the mirror of these calendars: the next sync writes every row anew."""
    from calcache.models import CalendarEvent, CalendarSyncToken

    credentials = {s.credential_id for s in selected}
    CalendarEvent.objects.filter(credential_id__in=credentials).delete()
    CalendarSyncToken.objects.filter(credential_id__in=credentials).delete()


def _sync(selected: list[Any], *, workers: int = 1) -> tuple[float, int, int]:
    """(seconds, events written or confirmed, failures) of one full sync of ``selected``."""
    from calcache.sync.engine import SyncOutcome, sync_calendars

    began = time.perf_counter()
    results = sync_calendars(selected, full=True, workers=workers)
    seconds = time.perf_counter() - began
    events = sum(r.upserted + r.unchanged for r in results)
    failed = [r for r in results if r.outcome != SyncOutcome.FULL]
    for r in failed[:3]:
        log(f"  sync of {r.calendar_id}: {r.outcome} {r.error}")
    return seconds, events, len(failed)


def _list_only(selected: list[Any]) -> tuple[float, list[Any]]:
    """The full sync's listing alone: a client per calendar (as the sync makes), every
    page of ``events.list`` over the same window, fetched and parsed; nothing mapped."""
    from django.utils import timezone

    from calcache.conf import conf
    from calcache.google.client import GoogleCalendarClient

    now = timezone.now()
    start = now - timedelta(days=conf.sync_past_days)
    end = now + timedelta(days=conf.sync_future_days)
    pages: list[Any] = []
    began = time.perf_counter()
    for s in selected:
        client = GoogleCalendarClient(s.credential.token)
        pages.extend(client.iter_event_pages(s.calendar_id, time_min=start, time_max=end))
    return time.perf_counter() - began, pages


def _map_only(pages: list[Any]) -> tuple[float, int]:
    """The sync's mapping of those pages alone (as ``_CalendarSync._map_page`` does)."""
    from calcache.conf import conf
    from calcache.sync.mapping import UnusableEvent, calendar_zone, is_cancelled, map_event

    mapped = 0
    began = time.perf_counter()
    for page in pages:
        tz = calendar_zone(page.time_zone)
        for item in page.items:
            if is_cancelled(item):
                continue
            try:
                map_event(item, calendar_tz=tz, store_summary=conf.store_summary)
            except (UnusableEvent, ValueError, KeyError):
                continue
            mapped += 1
    return time.perf_counter() - began, mapped


def measure_e2e(
    *, accounts: int, calendars: int, events: int, rounds: int, seed: int
) -> dict[str, Any]:
    """Full syncs of every calendar, into an emptied mirror (new rows) and again (rows
    unchanged), interleaved with the same listing fetched alone and its mapping alone:
    HTTP + parse share = listing alone / sync, mapping share likewise, DB + engine the
    remainder."""
    figures: dict[str, list[float]] = {}
    failures = 0
    with emulated_google(
        accounts=accounts, calendars=calendars, events=events, prefix="e2e", seed=seed
    ) as emulator:
        selected = _selected("e2e")
        synced_events = 0
        for number in range(rounds):
            steps = ["new", "listing", "unchanged"]
            if number % 2:
                steps = ["listing", "new", "unchanged"]
            for step in steps:
                if step == "listing":
                    cpu, own = emulator.cpu_seconds(), time.process_time()
                    seconds, pages = _list_only(selected)
                    figures.setdefault("listing_emulator_cpu", []).append(
                        emulator.cpu_seconds() - cpu
                    )
                    figures.setdefault("listing_client_cpu", []).append(time.process_time() - own)
                    figures.setdefault("listing", []).append(seconds)
                    map_seconds, mapped = _map_only(pages)
                    figures.setdefault("mapping", []).append(map_seconds)
                    figures.setdefault("listed_events", []).append(sum(len(p.items) for p in pages))
                    figures.setdefault("pages", []).append(len(pages))
                    del pages
                    continue
                if step == "new":
                    _forget(selected)
                cpu, own = emulator.cpu_seconds(), time.process_time()
                seconds, synced_events, failed = _sync(selected)
                figures.setdefault(f"{step}_emulator_cpu", []).append(emulator.cpu_seconds() - cpu)
                figures.setdefault(f"{step}_client_cpu", []).append(time.process_time() - own)
                figures.setdefault(step, []).append(seconds)
                failures += failed
            log(
                f"  e2e round {number}: sync new {figures['new'][-1]:.2f} s, unchanged "
                f"{figures['unchanged'][-1]:.2f} s, listing alone {figures['listing'][-1]:.2f} s,"
                f" mapping alone {figures['mapping'][-1]:.2f} s ({synced_events:,} events)"
            )
        stored = emulator.stored_events
    med = {name: statistics.median(values) for name, values in figures.items()}
    listed = int(med["listed_events"])
    result: dict[str, Any] = {
        "method": (
            "interleaved subtraction: the same listing through GoogleCalendarClient."
            "iter_event_pages alone, and the same pages through map_event alone, timed "
            "in the same rounds as the full syncs; DB + engine = sync - listing - mapping"
        ),
        "accounts": accounts,
        "calendars": len(selected),
        "emulator_events_stored": stored,
        "events": synced_events,
        "listed_events": listed,
        "pages": int(med["pages"]),
        "rounds": rounds,
        "failures": failures,
        "runs": figures,
    }
    for kind in ("new", "unchanged"):
        sync = med[kind]
        result[kind] = {
            "seconds": sync,
            "events_per_s": synced_events / sync,
            "http_parse_share": med["listing"] / sync,
            "mapping_share": med["mapping"] / sync,
            "db_engine_share": max(0.0, 1 - (med["listing"] + med["mapping"]) / sync),
            "emulator_cpu_seconds": med[f"{kind}_emulator_cpu"],
            "client_cpu_seconds": med[f"{kind}_client_cpu"],
            # What this process would reach if Google answered instantly: the emulator's
            # CPU time is time this process waits (one request at a time).
            "events_per_s_without_emulator": synced_events
            / max(1e-9, sync - med[f"{kind}_emulator_cpu"]),
        }
    result["listing"] = {
        "seconds": med["listing"],
        "events_per_s": listed / med["listing"],
        "emulator_cpu_seconds": med["listing_emulator_cpu"],
        "client_cpu_seconds": med["listing_client_cpu"],
    }
    result["mapping"] = {"seconds": med["mapping"], "events_per_s": listed / med["mapping"]}
    return result


def measure_sync_workers(
    *, accounts: int, calendars: int, events: int, workers: list[int], rounds: int, seed: int
) -> dict[str, Any]:
    """``manage.py sync_calendars --team <bench team> --workers N --full --quiet`` (its
    in-process thread pool) over the same calendars, the mirror emptied before each run,
    worker counts in alternating order over the rounds."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from calcache.models import CalendarEvent
    from flags.models import Team

    figures: dict[int, list[float]] = {}
    counted: dict[int, list[int]] = {}
    emulator_cpu: dict[int, float] = {}
    client_cpu: dict[int, float] = {}
    machine: dict[int, list[float]] = {}
    failed_runs = 0
    with emulated_google(
        accounts=accounts, calendars=calendars, events=events, prefix="workers", seed=seed + 1
    ) as emulator:
        selected = _selected("workers")
        credentials = {s.credential_id for s in selected}
        team, _ = Team.objects.get_or_create(
            slug="bench-sync-workers", defaults={"name": "bench workers"}
        )
        try:
            team.members.set({s.credential.user for s in selected})
            for number in range(rounds):
                order = workers if number % 2 == 0 else list(reversed(workers))
                for n in order:
                    _forget(selected)
                    cpu, own = emulator.cpu_seconds(), time.process_time()
                    busy, total = machine_cpu()
                    began = time.perf_counter()
                    try:
                        call_command(
                            "sync_calendars",
                            "--team",
                            team.slug,
                            "--workers",
                            str(n),
                            "--full",
                            "--quiet",
                        )
                    except CommandError as exc:
                        failed_runs += 1
                        log(f"  sync_calendars --workers {n}: {exc}")
                    seconds = time.perf_counter() - began
                    emulator_cpu[n] = emulator_cpu.get(n, 0.0) + emulator.cpu_seconds() - cpu
                    client_cpu[n] = client_cpu.get(n, 0.0) + time.process_time() - own
                    busy_after, total_after = machine_cpu()
                    machine[n] = machine.get(n, []) + [
                        (busy_after - busy) / max(1.0, total_after - total)
                    ]
                    rows = CalendarEvent.objects.filter(credential_id__in=credentials).count()
                    figures.setdefault(n, []).append(seconds)
                    counted.setdefault(n, []).append(rows)
                    log(
                        f"  sync_calendars --workers {n}: {seconds:.2f} s, "
                        f"{len(selected) / seconds * 60:,.0f} calendars/min, "
                        f"{rows / seconds:,.0f} events/s"
                    )
        finally:
            team.delete()
    base = statistics.median(figures[workers[0]])
    per: dict[str, Any] = {}
    for n in workers:
        seconds = statistics.median(figures[n])
        rows = max(counted[n])
        per[str(n)] = {
            "seconds": seconds,
            "calendars_per_min": len(selected) / seconds * 60,
            "events_per_s": rows / seconds,
            "speedup": base / seconds,
            "events": rows,
            # CPU busy share of one core over the runs: the emulator process, and this one
            # (the sync threads; the database server's own processes are not counted).
            "emulator_cpu_share": emulator_cpu[n] / sum(figures[n]),
            "sync_process_cpu_share": client_cpu[n] / sum(figures[n]),
            # Busy share of all the machine's CPUs (every process, other users' too).
            "machine_cpu_busy": statistics.mean(machine[n]),
            "runs": figures[n],
        }
    return {
        "command": "sync_calendars --team bench-sync-workers --workers N --full --quiet",
        "calendars": len(selected),
        "accounts": accounts,
        "rounds": rounds,
        "failed_runs": failed_runs,
        "workers": per,
    }
