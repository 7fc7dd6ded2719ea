"""RFC 3339 parsing and formatting the way Google writes it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Zulu"}


class BadTime(ValueError):
    """A date or time the API would reject with 400."""


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadTime(f"Invalid time zone: {name}") from exc


def parse_datetime(value: str, *, field: str) -> datetime:
    """An RFC 3339 timestamp with an offset (``Z`` or ``+hh:mm``)."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise BadTime(f"Bad Request: invalid {field} {value!r}") from exc
    if parsed.tzinfo is None:
        raise BadTime(f"Bad Request: {field} {value!r} has no time zone offset")
    return parsed


def parse_date(value: str, *, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise BadTime(f"Bad Request: invalid {field} {value!r}") from exc


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
