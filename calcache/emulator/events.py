"""Event resources: their instants, recurring expansion and instance ids.

Resources are Google-shaped dicts. Timed events carry ``dateTime`` (with an
offset, or a ``timeZone``), all-day events carry ``date`` and span midnight to
midnight in the calendar's time zone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from dateutil.rrule import rruleset, rrulestr

from calcache.emulator.timeutil import (
    BadTime,
    format_datetime,
    midnight,
    parse_date,
    parse_datetime,
    parse_local_datetime,
    zone,
)

Resource = dict[str, Any]


@dataclass(frozen=True)
class When:
    """One end of an event: an instant, or a calendar day for all-day events."""

    instant: datetime | None = None
    day: date | None = None
    time_zone: str | None = None

    @property
    def all_day(self) -> bool:
        return self.day is not None

    def utc(self, calendar_tz: tzinfo) -> datetime:
        if self.day is not None:
            return midnight(self.day, calendar_tz)
        assert self.instant is not None
        return self.instant.astimezone(UTC)


def parse_when(value: Any, *, field: str) -> When:
    if not isinstance(value, dict):
        raise BadTime(f"Missing {field}.")
    if value.get("date"):
        return When(day=parse_date(value["date"], field=f"{field}.date"))
    raw = value.get("dateTime")
    if not raw:
        raise BadTime(f"Missing {field}.dateTime or {field}.date.")
    time_zone = value.get("timeZone")
    try:
        instant = parse_datetime(raw, field=f"{field}.dateTime")
    except BadTime as exc:
        if not time_zone:
            raise
        try:
            instant = parse_local_datetime(raw, zone(time_zone), field=f"{field}.dateTime")
        except BadTime:
            raise exc from None
    if time_zone:
        zone(time_zone)  # validate
    return When(instant=instant, time_zone=time_zone)


def when_to_json(when: When, render_tz: tzinfo) -> dict[str, str]:
    if when.day is not None:
        return {"date": when.day.isoformat()}
    assert when.instant is not None
    out = {"dateTime": format_datetime(when.instant, render_tz)}
    if when.time_zone:
        out["timeZone"] = when.time_zone
    return out


def span(resource: Resource, calendar_tz: tzinfo) -> tuple[datetime, datetime]:
    """The event's [start, end) as UTC instants."""
    start = parse_when(resource.get("start"), field="start")
    end = parse_when(resource.get("end"), field="end")
    return start.utc(calendar_tz), end.utc(calendar_tz)


def is_all_day(resource: Resource) -> bool:
    return bool((resource.get("start") or {}).get("date"))


def instance_suffix(original_start: When) -> str:
    if original_start.day is not None:
        return original_start.day.strftime("%Y%m%d")
    assert original_start.instant is not None
    return original_start.instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def is_busy_for(resource: Resource, owner_email: str) -> bool:
    """Blocks the owner's time: not cancelled, not transparent, not declined by the owner."""
    if resource.get("status") == "cancelled" or resource.get("transparency") == "transparent":
        return False
    for attendee in resource.get("attendees") or []:
        if (attendee.get("email") or "").lower() == owner_email.lower():
            return attendee.get("responseStatus") != "declined"
    return True


# --- recurrence ---------------------------------------------------------------


def _parse_date_list(line: str, default_tz: tzinfo | None, all_day: bool) -> list[datetime]:
    """Values of an EXDATE/RDATE line (``;TZID=``, ``;VALUE=DATE``, ``Z`` or floating)."""
    head, _, values = line.partition(":")
    params = dict(p.split("=", 1) for p in head.split(";")[1:] if "=" in p)
    tz = zone(params["TZID"]) if "TZID" in params else default_tz
    result: list[datetime] = []
    for value in values.split(","):
        value = value.strip()
        if not value:
            continue
        if len(value) == 8:  # a date
            parsed = datetime.strptime(value, "%Y%m%d")
            result.append(parsed if all_day else parsed.replace(tzinfo=tz))
            continue
        if value.endswith("Z"):
            parsed = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        else:
            parsed = datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=tz)
        if all_day:
            parsed = parsed.replace(tzinfo=None, hour=0, minute=0, second=0)
        result.append(parsed)
    return result


@dataclass(frozen=True)
class Occurrence:
    original_start: When
    start: When
    end: When


class Recurrence:
    """The occurrences of a recurring parent event."""

    def __init__(self, parent: Resource, calendar_tz: tzinfo) -> None:
        self.calendar_tz = calendar_tz
        self.start = parse_when(parent.get("start"), field="start")
        self.end = parse_when(parent.get("end"), field="end")
        self.all_day = self.start.all_day
        if self.all_day:
            assert self.start.day is not None and self.end.day is not None
            self.length_days = (self.end.day - self.start.day).days
            dtstart = datetime.combine(self.start.day, datetime.min.time())
            local_tz: tzinfo | None = None
        else:
            assert self.start.instant is not None
            self.length = self.end.utc(calendar_tz) - self.start.utc(calendar_tz)
            local_tz = zone(self.start.time_zone) if self.start.time_zone else calendar_tz
            dtstart = self.start.instant.astimezone(local_tz)
        self.set = rruleset()
        for line in parent.get("recurrence") or []:
            name = line.split(":", 1)[0].split(";", 1)[0].upper()
            try:
                if name in ("RRULE", "EXRULE"):
                    rule = rrulestr(self._fix_until(line.split(":", 1)[1]), dtstart=dtstart)
                    (self.set.rrule if name == "RRULE" else self.set.exrule)(rule)  # type: ignore[arg-type]
                elif name == "RDATE":
                    for value in _parse_date_list(line, local_tz, self.all_day):
                        self.set.rdate(value)
                elif name == "EXDATE":
                    for value in _parse_date_list(line, local_tz, self.all_day):
                        self.set.exdate(value)
                else:
                    raise BadTime(f"Invalid recurrence rule: {line}")
            except (ValueError, TypeError) as exc:
                raise BadTime(f"Invalid recurrence rule: {line}") from exc
        if not (parent.get("recurrence") or []):
            raise BadTime("Recurring event without a recurrence rule.")
        # The first instance is dtstart itself when it matches the rule; an RDATE-only
        # or rule-less series still starts at dtstart.
        self.set.rdate(dtstart)
        self.dtstart = dtstart

    def _fix_until(self, rule: str) -> str:
        # UNTIL must match dtstart's kind for dateutil: a date for all-day series,
        # a UTC instant for timed ones.
        parts = []
        for part in rule.split(";"):
            key, sep, value = part.partition("=")
            if key.upper() == "UNTIL":
                if self.all_day:
                    value = value[:8]
                elif len(value) == 8:
                    value = value + "T235959Z"
                elif not value.endswith("Z"):
                    value = value + "Z"
            parts.append(f"{key}={value}" if sep else part)
        return ";".join(parts)

    def occurrences(self, window_start: datetime, window_end: datetime) -> list[Occurrence]:
        """Occurrences overlapping [window_start, window_end) (UTC instants)."""
        result: list[Occurrence] = []
        if self.all_day:
            lo = window_start.astimezone(self.calendar_tz).replace(tzinfo=None)
            hi = window_end.astimezone(self.calendar_tz).replace(tzinfo=None)
            lo = datetime.combine(lo.date(), datetime.min.time()) - timedelta(
                days=self.length_days + 1
            )
            for occ in self.set.between(lo, hi, inc=True):
                day = occ.date()
                start = When(day=day)
                end = When(day=day + timedelta(days=self.length_days))
                if (
                    end.utc(self.calendar_tz) > window_start
                    and start.utc(self.calendar_tz) < window_end
                ):
                    result.append(Occurrence(original_start=start, start=start, end=end))
            return result
        tz = self.dtstart.tzinfo
        lo = (window_start - self.length - timedelta(seconds=1)).astimezone(tz)
        hi = window_end.astimezone(tz)
        for occ in self.set.between(lo, hi, inc=True):
            start_utc = occ.astimezone(UTC)
            end_utc = start_utc + self.length
            if end_utc > window_start and start_utc < window_end:
                start = When(instant=occ, time_zone=self.start.time_zone)
                end = When(instant=end_utc.astimezone(tz), time_zone=self.end.time_zone)
                result.append(Occurrence(original_start=start, start=start, end=end))
        return result


def make_instance(parent: Resource, occurrence: Occurrence, render_tz: tzinfo) -> Resource:
    """The singleEvents=true view of one occurrence of ``parent``."""
    instance = copy.deepcopy(parent)
    instance.pop("recurrence", None)
    instance["id"] = f"{parent['id']}_{instance_suffix(occurrence.original_start)}"
    instance["recurringEventId"] = parent["id"]
    instance["originalStartTime"] = when_to_json(occurrence.original_start, render_tz)
    instance["start"] = when_to_json(occurrence.start, render_tz)
    instance["end"] = when_to_json(occurrence.end, render_tz)
    return instance
