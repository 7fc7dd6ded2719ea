"""Google event resources -> the column values of ``CalendarEvent``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calcache.models import EventStatus, ResponseStatus, Transparency

logger = logging.getLogger("calcache.sync")

RESPONSE_STATUSES = {choice.value for choice in ResponseStatus}
STATUSES = {choice.value for choice in EventStatus}


class UnusableEvent(ValueError):
    """An event resource without the times a busy computation needs."""


@dataclass(frozen=True)
class MappedEvent:
    google_event_id: str
    fields: dict[str, Any]

    @property
    def duration(self) -> timedelta:
        return self.fields["end_time"] - self.fields["start_time"]


def calendar_zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("Unknown calendar time zone %r; using UTC", name)
        return ZoneInfo("UTC")


def _instant(value: dict[str, Any] | None, tz: ZoneInfo, *, field: str) -> tuple[datetime, bool]:
    if not value:
        raise UnusableEvent(f"no {field}")
    if value.get("date"):
        day = date.fromisoformat(value["date"])
        # All-day events span midnight to midnight in the calendar's time zone.
        return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC), True
    raw = value.get("dateTime")
    if not raw:
        raise UnusableEvent(f"no {field}.dateTime or {field}.date")
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(
            tzinfo=calendar_zone(value.get("timeZone")) if value.get("timeZone") else tz
        )
    return moment.astimezone(UTC), False


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def self_response_status(resource: dict[str, Any]) -> str:
    """The calendar owner's answer to an invitation ('' when not an attendee)."""
    for attendee in resource.get("attendees") or []:
        if attendee.get("self"):
            status = attendee.get("responseStatus") or ""
            return status if status in RESPONSE_STATUSES else ""
    return ""


def map_event(
    resource: dict[str, Any], *, calendar_tz: ZoneInfo, store_summary: bool
) -> MappedEvent:
    """Column values for a confirmed or tentative event (cancelled ones are deletions)."""
    start, all_day = _instant(resource.get("start"), calendar_tz, field="start")
    end, _ = _instant(resource.get("end"), calendar_tz, field="end")
    if end < start:
        raise UnusableEvent("end before start")
    status = resource.get("status") or EventStatus.CONFIRMED
    transparency = resource.get("transparency") or Transparency.OPAQUE
    return MappedEvent(
        google_event_id=resource["id"],
        fields={
            "etag": resource.get("etag") or "",
            "status": status if status in STATUSES else EventStatus.CONFIRMED,
            "summary": (resource.get("summary") or "") if store_summary else "",
            "start_time": start,
            "end_time": end,
            "timezone": (resource.get("start") or {}).get("timeZone") or str(calendar_tz),
            "is_all_day": all_day,
            "transparency": transparency
            if transparency in (Transparency.OPAQUE, Transparency.TRANSPARENT)
            else Transparency.OPAQUE,
            "self_response_status": self_response_status(resource),
            "recurring_event_id": resource.get("recurringEventId") or "",
            "google_created_at": _timestamp(resource.get("created")),
            "google_updated_at": _timestamp(resource.get("updated")),
            "sequence": max(0, int(resource.get("sequence") or 0)),
            "ical_uid": resource.get("iCalUID") or "",
        },
    )


def is_cancelled(resource: dict[str, Any]) -> bool:
    return resource.get("status") == EventStatus.CANCELLED
