"""Plain data the Google module returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from calcache.intervals import merge_intervals


def _parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class CalendarInfo:
    id: str
    summary: str
    time_zone: str
    primary: bool = False
    access_role: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalendarInfo:
        return cls(
            id=data["id"],
            summary=data.get("summaryOverride") or data.get("summary") or data["id"],
            time_zone=data.get("timeZone") or "UTC",
            primary=bool(data.get("primary")),
            access_role=data.get("accessRole", ""),
        )


@dataclass(frozen=True)
class EventPage:
    """One page of ``events.list``: Google's event resources as dicts.

    ``time_zone`` is the calendar's (all-day events start at its midnight);
    ``next_sync_token`` is set on the last page only.
    """

    items: list[dict[str, Any]]
    time_zone: str
    next_sync_token: str | None = None


@dataclass
class FreeBusyCalendar:
    busy: list[tuple[datetime, datetime]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, data: dict[str, Any]) -> None:
        self.busy.extend(
            (_parse_instant(b["start"]), _parse_instant(b["end"])) for b in data.get("busy", [])
        )
        for error in data.get("errors", []):
            reason = error.get("reason", "unknown")
            if reason not in self.errors:
                self.errors.append(reason)

    def merge(self) -> None:
        """Sort and merge overlapping or touching intervals (chunks meet at their seams)."""
        self.busy = merge_intervals(self.busy)


@dataclass(frozen=True)
class ChannelInfo:
    id: str
    resource_id: str
    resource_uri: str
    expiration: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChannelInfo:
        expiration = data.get("expiration")
        return cls(
            id=data["id"],
            resource_id=data["resourceId"],
            resource_uri=data.get("resourceUri", ""),
            expiration=(
                datetime.fromtimestamp(int(expiration) / 1000, UTC) if expiration else None
            ),
        )
