"""``me/``: the signed-in user's week of busy time, days as columns, from
``get_availability`` (so it shows whichever source the rollout picks for them)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from calcache.conf import conf
from calcache.exceptions import GoogleError
from calcache.intervals import Interval
from calcache.models import SelectedCalendar
from calcache.services import get_availability
from calcache.views.outages import outage_page

logger = logging.getLogger("calcache.views")

DAY = timedelta(days=1)
SOURCE_LABELS = {
    "sql": gettext_lazy("the SQL tables (calcache's mirror of Google Calendar)"),
    "json": gettext_lazy("the legacy JSON cache"),
    "live": gettext_lazy("Google Calendar, live (freeBusy)"),
    "mixed": gettext_lazy(
        "several sources, calendar by calendar (SQL where synced, else JSON or Google)"
    ),
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
    missing or empty. ``ValueError`` when it is not a date or outside the weeks the page
    can show (``FIRST_WEEK`` to ``LAST_WEEK``)."""
    if raw is None or not raw.strip():
        return today - timedelta(days=today.weekday())
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(
            _("%(raw)s is not a date (YYYY-MM-DD).") % {"raw": repr(raw[:32])}
        ) from None
    monday = day - timedelta(days=day.weekday())  # 0001-01-01 is a Monday: no underflow
    if not FIRST_WEEK <= monday <= LAST_WEEK:  # get_availability refuses such windows
        raise ValueError(
            _("%(day)s is outside the weeks this page shows (%(first)s to %(last)s).")
            % {
                "day": day.isoformat(),
                "first": FIRST_WEEK.isoformat(),
                "last": (LAST_WEEK + timedelta(days=6)).isoformat(),
            }
        )
    return monday


def _bad_week(request: HttpRequest, message: str) -> HttpResponse:
    return render(
        request,
        "calcache/bad_request.html",
        {
            "title": _("That week cannot be shown"),
            "message": _("The week in the address is not one this page can show: %(reason)s")
            % {"reason": message},
            "back_url": reverse("calcache:me"),
            "back_label": _("Go to this week"),
        },
        status=400,
    )


def calendars_state(*, user: Any) -> str:
    """Whether the week page has calendars to show: ``"none"`` before any calendar is
    connected, ``"disabled"`` when every selected calendar is switched off, else ``"ok"``."""
    states = set(
        SelectedCalendar.objects.filter(credential__user=user).values_list("enabled", flat=True)
    )
    if not states:
        return "none"
    return "ok" if True in states else "disabled"


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


@outage_page
@require_GET
@login_required
def week(request: HttpRequest) -> HttpResponse:
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    try:
        monday = week_monday(request.GET.get("week"), today=today)
    except ValueError as exc:
        return _bad_week(request, str(exc))
    start = datetime.combine(monday, time.min, tz)
    end = datetime.combine(monday + timedelta(days=7), time.min, tz)
    context: dict[str, object] = {
        "monday": monday,
        "sunday": monday + timedelta(days=6),
        # None past the weeks the page shows, so no link leads to the 400 page
        "previous_week": monday - timedelta(days=7) if monday > FIRST_WEEK else None,
        "next_week": monday + timedelta(days=7) if monday < LAST_WEEK else None,
        "this_week": today - timedelta(days=today.weekday()),
        "time_zone": timezone.get_current_timezone_name(),
        "hours": range(0, 24, 2),
        "calendars_state": calendars_state(user=request.user),
        "connect_url": reverse(
            "calcache:connect-google" if conf.google_client_id else "calcache:calendars"
        ),
    }
    if context["calendars_state"] != "ok":
        return render(request, "calcache/me.html", context)
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
