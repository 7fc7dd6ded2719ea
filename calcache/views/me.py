"""``me/``: the signed-in user's week of busy time, days as columns, from
``get_availability`` (so it shows whichever source the rollout picks for them)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from calcache.exceptions import GoogleError
from calcache.intervals import Interval
from calcache.services import get_availability

logger = logging.getLogger("calcache.views")

DAY = timedelta(days=1)
SOURCE_LABELS = {
    "sql": "the SQL tables (calcache's mirror of Google Calendar)",
    "json": "the legacy JSON cache",
    "live": "Google Calendar, live (freeBusy)",
    "mixed": "several sources, calendar by calendar (SQL where synced, else JSON or Google)",
}


@dataclass(frozen=True)
class Block:
    """The part of one busy interval that falls on one day, placed as a share of it."""

    start: datetime  # the whole interval, aware, in the page's time zone
    end: datetime
    top: float  # percent of the day column
    height: float
    label: str


@dataclass(frozen=True)
class Day:
    date: date
    is_today: bool
    blocks: list[Block]


FIRST_WEEK = date(1970, 1, 5)  # the first Monday of the windows get_availability answers
LAST_WEEK = date(2099, 12, 21)  # the last Monday whose week ends before 2100


def week_monday(raw: str | None, *, today: date) -> date:
    """The Monday of the week ``raw`` (``YYYY-MM-DD``) falls in; this week's when it is
    missing, malformed or too far out to page from."""
    try:
        day = date.fromisoformat((raw or "").strip())
        monday = day - timedelta(days=day.weekday())
        date.fromordinal(monday.toordinal() - 7)  # the "previous week" link exists too
        monday + timedelta(days=14)
    except (ValueError, OverflowError):
        return today - timedelta(days=today.weekday())
    if not FIRST_WEEK <= monday <= LAST_WEEK:  # get_availability refuses such windows
        return today - timedelta(days=today.weekday())
    return monday


def _clock(moment: datetime, day_start: datetime) -> str:
    return "24:00" if moment - day_start >= DAY else f"{moment:%H:%M}"


def week_days(busy: list[Interval], *, monday: date, tz: tzinfo, today: date) -> list[Day]:
    """Split ``busy`` into the seven days of the week starting ``monday`` (in ``tz``)."""
    days = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        day_start = datetime.combine(day, time.min, tz)
        day_end = datetime.combine(day + DAY, time.min, tz)
        length = (day_end - day_start).total_seconds()  # 23 or 25 hours on DST days
        blocks = []
        for start, end in busy:
            start, end = start.astimezone(tz), end.astimezone(tz)
            piece_start, piece_end = max(start, day_start), min(end, day_end)
            if piece_start >= piece_end:
                continue
            top = (piece_start - day_start).total_seconds() / length * 100
            height = (piece_end - piece_start).total_seconds() / length * 100
            blocks.append(
                Block(
                    start=start,
                    end=end,
                    top=round(top, 3),
                    height=round(height, 3),
                    label=f"{_clock(piece_start, day_start)}–{_clock(piece_end, day_start)}",
                )
            )
        days.append(Day(date=day, is_today=day == today, blocks=blocks))
    return days


@require_GET
@login_required
def week(request: HttpRequest) -> HttpResponse:
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    monday = week_monday(request.GET.get("week"), today=today)
    start = datetime.combine(monday, time.min, tz)
    end = datetime.combine(monday + timedelta(days=7), time.min, tz)
    context: dict[str, object] = {
        "monday": monday,
        "sunday": monday + timedelta(days=6),
        "previous_week": monday - timedelta(days=7),
        "next_week": monday + timedelta(days=7),
        "this_week": today - timedelta(days=today.weekday()),
        "time_zone": timezone.get_current_timezone_name(),
        "hours": range(0, 24, 2),
    }
    try:
        availability = get_availability(user=request.user, start=start, end=end)
    except GoogleError as exc:
        logger.warning("me/ for user %s: Google unavailable: %s", request.user.pk, exc)
        context["unavailable"] = True
        return render(request, "calcache/me.html", context, status=503)
    context.update(
        busy=availability.busy,
        source=availability.source,
        source_label=SOURCE_LABELS.get(availability.source, availability.source),
        days=week_days(availability.busy, monday=monday, tz=tz, today=today),
    )
    return render(request, "calcache/me.html", context)
