"""RFC 3339 parsing and formatting the way Google writes it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Zulu"}

# RFC 3339 section 5.6: full-date "T" full-time, with a "Z" or +hh:mm offset (a local
# date-time has none: event times that name a timeZone). Python's fromisoformat takes
# much more (week dates, basic format, no seconds, +hhmm), which Google answers with 400.
_DATE_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?P<fraction>\.\d{1,9})?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})?"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# Instants and days the emulator accepts: far from the ends of Python's datetime, so
# that the arithmetic around them (time zones, all-day spans, recurrence windows,
# instance lookups) cannot overflow. Outside: 400 badRequest, where Google also
# answers 400 rather than a 500.
EARLIEST = datetime(100, 1, 1, tzinfo=UTC)
LATEST = datetime(9900, 1, 1, tzinfo=UTC)


class BadTime(ValueError):
    """A date or time the API would reject with 400."""


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadTime(f"Invalid time zone: {name}") from exc


def _shown(value: object) -> str:
    return repr(value if not isinstance(value, str) or len(value) <= 64 else value[:64] + "...")


def _in_range(moment: datetime, *, field: str, value: object) -> datetime:
    try:
        utc = moment.astimezone(UTC)
    except OverflowError as exc:  # the offset pushes it before year 1 or past 9999
        raise BadTime(f"Bad Request: {field} {_shown(value)} is out of range") from exc
    if not EARLIEST <= utc < LATEST:
        raise BadTime(
            f"Bad Request: {field} {_shown(value)} is out of range "
            f"({EARLIEST.year:04d}-01-01 to {LATEST.year - 1}-12-31 UTC)"
        )
    return moment


def _parse(value: object, *, field: str, offset: bool) -> datetime:
    match = _DATE_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None or bool(match["offset"]) != offset:
        if match is not None and offset:
            raise BadTime(f"Bad Request: {field} {_shown(value)} has no time zone offset")
        raise BadTime(f"Bad Request: invalid {field} {_shown(value)}")
    fraction = (match["fraction"] or "")[:7]  # datetime keeps microseconds
    zone_text = (match["offset"] or "").upper().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}{fraction}{zone_text}")
    except ValueError as exc:  # month 13, hour 24, offset +24:00, ...
        raise BadTime(f"Bad Request: invalid {field} {_shown(value)}") from exc
    return parsed


def parse_datetime(value: str, *, field: str) -> datetime:
    """An RFC 3339 timestamp with an offset (``Z`` or ``+hh:mm``), within the range."""
    parsed = _parse(value, field=field, offset=True)
    return _in_range(parsed, field=field, value=value)


def parse_local_datetime(value: str, tz: tzinfo, *, field: str) -> datetime:
    """An RFC 3339 date-time without an offset, read in ``tz`` (an event's timeZone)."""
    parsed = _parse(value, field=field, offset=False).replace(tzinfo=tz)
    return _in_range(parsed, field=field, value=value)


def parse_date(value: str, *, field: str) -> date:
    """An RFC 3339 full-date, ``YYYY-MM-DD``, within the range."""
    if not isinstance(value, str) or _DATE.fullmatch(value) is None:
        raise BadTime(f"Bad Request: invalid {field} {_shown(value)}")
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise BadTime(f"Bad Request: invalid {field} {_shown(value)}") from exc
    if not EARLIEST.date() <= day < LATEST.date():
        raise BadTime(f"Bad Request: {field} {_shown(value)} is out of range")
    return day


def format_datetime(value: datetime, tz: tzinfo | None = None) -> str:
    """``2026-03-02T09:00:00-05:00`` (seconds precision, offset of ``tz``)."""
    local = value.astimezone(tz or UTC).replace(microsecond=0)
    text = local.isoformat()
    if text.endswith("+00:00") and (
        tz is None or tz is UTC or getattr(tz, "key", "") in _UTC_NAMES
    ):
        return text[:-6] + "Z"
    return text


def format_timestamp(value: datetime) -> str:
    """``2026-03-02T14:00:00.000Z``, as in ``updated`` and ``created``."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def midnight(day: date, tz: tzinfo) -> datetime:
    """The instant a calendar day starts in ``tz`` (all-day events)."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def days(n: int) -> timedelta:
    return timedelta(days=n)
