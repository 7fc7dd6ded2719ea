"""Reads for the staff dashboard: who is in each flag, per-calendar sync health, and the
mismatch and latency series the charts draw. Plain functions, keyword-only arguments."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone
from django.utils.translation import gettext as _

from calcache.availability.stats import SOURCES
from calcache.models import (
    AvailabilityStat,
    CacheComparison,
    CalendarEvent,
    CalendarSyncToken,
    SelectedCalendar,
)
from flags.models import Flag

Point = tuple[datetime, float]
MAX_POINTS = 96  # the charts' x axis is split into at most this many buckets
MAX_NAMES = 20  # users named per flag; the rest are counted


@dataclass(frozen=True)
class FlagMembers:
    """Who a rollout flag names explicitly (the percentage is in ``RolloutStatus``)."""

    name: str
    usernames: list[str]
    more_users: int
    teams: list[tuple[str, int]]  # (slug, members)
    groups: list[str]


@dataclass(frozen=True)
class CalendarHealth:
    """One selected calendar's sync state, for the sync health table."""

    credential_id: int
    user: str
    account: str
    calendar_id: str
    enabled: bool
    invalid_credential: bool
    invalid_reason: str
    last_success: datetime | None
    last_success_age: timedelta | None
    last_error: str
    last_error_at: datetime | None
    events: int

    @property
    def failing(self) -> bool:
        """An error newer than the last success (or no success at all)."""
        return self.last_error_at is not None and (
            self.last_success is None or self.last_error_at >= self.last_success
        )

    @property
    def state(self) -> str:
        if self.invalid_credential:
            return "invalid credential"
        if not self.enabled:
            return "disabled"
        if self.failing:
            return "failing"
        if self.last_success is None:
            return "never synced"
        return "ok"


@dataclass(frozen=True)
class SyncHealth:
    calendars: list[CalendarHealth]  # the worst first, at most ``limit``
    total: int
    counts: dict[str, int]  # state -> calendars


@dataclass(frozen=True)
class Series:
    """Time series over ``[start, end]`` in buckets of ``bucket``."""

    start: datetime
    end: datetime
    bucket: timedelta
    lines: dict[str, list[Point]]


def flag_members_list(*, names: list[str]) -> list[FlagMembers]:
    """The users, teams (with their size) and groups each named flag lists."""
    result = []
    for flag in Flag.objects.filter(name__in=names).order_by("name"):
        users = flag.users.order_by("username").values_list("username", flat=True)
        result.append(
            FlagMembers(
                name=flag.name,
                usernames=list(users[:MAX_NAMES]),
                more_users=max(0, flag.users.count() - MAX_NAMES),
                teams=[
                    (team.slug, team.member_count)
                    for team in flag.teams.annotate(member_count=Count("members")).order_by("slug")
                ],
                groups=list(flag.groups.order_by("name").values_list("name", flat=True)),
            )
        )
    return result


_STATE_ORDER = {"invalid credential": 0, "failing": 1, "never synced": 2, "ok": 3, "disabled": 4}


def calendar_health_list(*, now: datetime | None = None, limit: int = 50) -> SyncHealth:
    """Every selected calendar's last success, last error and credential state, the
    worst first (invalid, failing, never synced, then the oldest success); stored event
    counts for the ``limit`` calendars returned."""
    now = now or timezone.now()
    tokens = {
        (t.credential_id, t.calendar_id): t
        for t in CalendarSyncToken.objects.only(
            "credential_id", "calendar_id", "last_sync_at", "last_error", "last_error_at"
        )
    }
    rows = []
    for selected in SelectedCalendar.objects.select_related("credential__user").order_by("pk"):
        token = tokens.get((selected.credential_id, selected.calendar_id))
        credential = selected.credential
        last_success = token.last_sync_at if token else None
        rows.append(
            CalendarHealth(
                credential_id=selected.credential_id,
                user=credential.user.get_username(),
                account=credential.account_email,
                calendar_id=selected.calendar_id,
                enabled=selected.enabled,
                invalid_credential=credential.invalid,
                invalid_reason=credential.invalid_reason,
                last_success=last_success,
                last_success_age=now - last_success if last_success else None,
                last_error=token.last_error if token else "",
                last_error_at=token.last_error_at if token else None,
                events=0,
            )
        )
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row.state] += 1
    epoch = datetime.min.replace(tzinfo=now.tzinfo)
    rows.sort(key=lambda r: (_STATE_ORDER[r.state], r.last_success or epoch, r.calendar_id))
    shown = rows[:limit]
    event_counts = _event_counts(shown)
    shown = [
        replace(row, events=event_counts.get((row.credential_id, row.calendar_id), 0))
        for row in shown
    ]
    return SyncHealth(calendars=shown, total=len(rows), counts=dict(counts))


def _event_counts(rows: list[CalendarHealth]) -> dict[tuple[int, str], int]:
    if not rows:
        return {}
    wanted = Q()
    for row in rows:
        wanted |= Q(credential_id=row.credential_id, calendar_id=row.calendar_id)
    counted = (
        CalendarEvent.objects.filter(wanted)
        .values_list("credential_id", "calendar_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(credential_id, calendar_id): n for credential_id, calendar_id, n in counted}


def _buckets(
    *, since: datetime, now: datetime, first: datetime | None
) -> tuple[datetime, timedelta]:
    """The chart's start (the first data, at most ``since``) and a bucket of whole minutes
    giving at most MAX_POINTS buckets."""
    start = max(since, first) if first else since
    start = start.replace(second=0, microsecond=0)
    minutes = max(1, math.ceil((now - start).total_seconds() / 60 / MAX_POINTS))
    return start, timedelta(minutes=minutes)


def _bucket_of(moment: datetime, start: datetime, bucket: timedelta) -> datetime:
    return start + (moment - start) // bucket * bucket


def latency_series_list(*, since: datetime, now: datetime | None = None) -> dict[str, Series]:
    """From ``AvailabilityStat``, per source and time bucket: the mean latency in ms
    (``mean``), the slowest answer (``max``), requests (``requests``) and errors
    (``errors``).

    The range starts at the first row after ``since`` so a young site gets a readable
    chart; buckets without requests for a source are left out of that source's line."""
    now = now or timezone.now()
    stats = AvailabilityStat.objects.filter(minute__gte=since, minute__lte=now).order_by("minute")
    rows = list(stats.values_list("minute", "source", "requests", "errors", "total_ms", "max_ms"))
    start, bucket = _buckets(since=since, now=now, first=rows[0][0] if rows else None)
    sums: dict[str, dict[datetime, list[float]]] = {s: {} for s in SOURCES}
    for minute, source, requests, errors, total_ms, max_ms in rows:
        if source not in SOURCES:  # the replica fallback counter is not an answer
            continue
        entry = sums.setdefault(source, {}).setdefault(
            _bucket_of(minute, start, bucket), [0, 0, 0.0, 0.0]
        )
        entry[0] += requests
        entry[1] += errors
        entry[2] += total_ms
        entry[3] = max(entry[3], max_ms)
    charts: dict[str, dict[str, list[Point]]] = {
        "mean": {},
        "max": {},
        "requests": {},
        "errors": {},
    }
    for source, by_bucket in sums.items():
        points = sorted(by_bucket.items())
        charts["mean"][source] = [(t, e[2] / e[0]) for t, e in points if e[0]]
        charts["max"][source] = [(t, e[3]) for t, e in points if e[0]]
        charts["requests"][source] = [(t, e[0]) for t, e in points]
        charts["errors"][source] = [(t, e[1]) for t, e in points]
    return {
        name: Series(start=start, end=now, bucket=bucket, lines=lines)
        for name, lines in charts.items()
    }


def mismatch_series_get(*, since: datetime, now: datetime | None = None) -> Series:
    """The share of shadow comparisons (``CacheComparison``) that disagreed, in percent,
    per time bucket (a ``mismatch %`` line)."""
    now = now or timezone.now()
    per_minute = list(
        CacheComparison.objects.filter(created_at__gte=since, created_at__lte=now)
        .annotate(minute=TruncMinute("created_at"))
        .values("minute")
        .annotate(total=Count("id"), mismatches=Count("id", filter=Q(equal=False)))
        .order_by("minute")
        .values_list("minute", "total", "mismatches")
    )
    start, bucket = _buckets(since=since, now=now, first=per_minute[0][0] if per_minute else None)
    totals: dict[datetime, list[int]] = {}
    for minute, total, mismatches in per_minute:
        entry = totals.setdefault(_bucket_of(minute, start, bucket), [0, 0])
        entry[0] += total
        entry[1] += mismatches
    points = sorted(totals.items())
    return Series(
        start=start,
        end=now,
        bucket=bucket,
        lines={_("mismatch %"): [(t, 100.0 * m / n) for t, (n, m) in points]},
    )
