"""The emulator's in-memory model of Google Calendar, guarded by one lock.

Every mutation takes the next value of a global change counter (``seq``). A sync
token remembers the counter at the moment its full listing was taken, so an
incremental list returns exactly the entries changed since. Deleted events and
removed instances stay as cancelled tombstones until purged; a token older than
a purge is answered with 410 ``fullSyncRequired``, as Google does.
"""

from __future__ import annotations

import copy
import json
import random
import secrets
import string
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from calcache.emulator.errors import ApiError
from calcache.emulator.events import (
    Occurrence,
    Recurrence,
    Resource,
    instance_suffix,
    is_busy_for,
    make_instance,
    parse_when,
    span,
    when_to_json,
)
from calcache.emulator.timeutil import (
    BadTime,
    format_datetime,
    format_timestamp,
    parse_datetime,
    zone,
)

DEFAULT_MAX_RESULTS = 250
MAX_RESULTS_LIMIT = 2500
INT32_MAX = 2**31 - 1  # Google's integer parameters are int32: beyond, 400 invalid
FREEBUSY_MAX_DAYS = 92  # Google answers timeRangeTooLong past about three months
FREEBUSY_MAX_CALENDARS = 50
MAX_PAGE_CURSORS = 5000
ACCESS_TOKEN_SECONDS = 3600
CHANNEL_DEFAULT_SECONDS = 7 * 24 * 3600
CHANNEL_MAX_SECONDS = 30 * 24 * 3600
# Recurring series without an end are expanded this far around the clock.
EXPANSION_PAST = timedelta(days=3 * 365)
EXPANSION_FUTURE = timedelta(days=2 * 365)
SYNC_TOKEN_FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
DEFAULT_CLIENT_ID = "calcache-emulator.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "calcache-emulator-secret"


def _time_param(params: dict[str, str], name: str) -> datetime | None:
    """An optional RFC 3339 query parameter; a bad one is Google's 400 badRequest."""
    if not params.get(name):
        return None
    try:
        return parse_datetime(params[name], field=name)
    except BadTime as exc:
        raise ApiError(400, "badRequest", str(exc)) from exc


def _random_id(length: int = 26) -> str:
    # Google event ids use base32hex: lowercase a-v and digits.
    alphabet = string.digits + "abcdefghijklmnopqrstuv"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


@dataclass
class Account:
    email: str
    time_zone: str


@dataclass
class Calendar:
    id: str
    owner: str
    summary: str
    time_zone: str
    description: str = ""
    seq: int = 0

    @property
    def tz(self) -> tzinfo:
        return zone(self.time_zone)


@dataclass
class StoredEvent:
    resource: Resource
    seq: int
    deleted_at: datetime | None = None


@dataclass
class SyncToken:
    calendar_id: str
    seq: int
    single_events: bool
    issued_at: datetime


@dataclass
class PageCursor:
    items: list[Resource]
    offset: int
    page_index: int
    extra: dict[str, Any]


@dataclass
class Channel:
    id: str
    resource_id: str
    calendar_id: str
    address: str
    token: str | None
    expiration: datetime
    message_number: int = 0
    stopped: bool = False


FREEBUSY_FAULT = "freebusy"


@dataclass
class Fault:
    # "error" | "slow" | "drop" fail a whole request; "freebusy" fails one calendar's
    # entry inside a freeBusy answer that is still a 200 (``errors`` with ``reason``).
    kind: str
    remaining: int
    method: str | None = None
    path: str | None = None  # substring of the request path
    status: int = 500
    reason: str = "backendError"
    retry_after: int | None = None
    delay: float = 0.0
    calendar_id: str | None = None  # kind "freebusy": the calendar whose entry fails

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and self.kind != FREEBUSY_FAULT
            and (self.method is None or self.method.upper() == method.upper())
            and (self.path is None or self.path in path)
        )


@dataclass
class OAuthCode:
    client_id: str
    email: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: datetime


@dataclass
class RefreshToken:
    email: str
    client_id: str
    scope: str
    revoked: bool = False


@dataclass
class AccessToken:
    email: str
    expires_at: datetime


@dataclass
class Notification:
    channel: Channel
    state: str
    number: int


class EmulatorState:
    """All of the emulator's data. Every public method is thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.notify: Callable[[Notification], None] = lambda notification: None
        self.reset()

    # --- housekeeping -----------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.clock_offset = timedelta(0)
            self.frozen_at: datetime | None = None
            self.seq = 0
            self.accounts: dict[str, Account] = {}
            self.calendars: dict[str, Calendar] = {}
            self.calendar_lists: dict[str, list[str]] = {}
            self.events: dict[str, dict[str, StoredEvent]] = {}
            self.sync_tokens: dict[str, SyncToken] = {}
            self.token_floor: dict[str, int] = {}  # calendar id -> tokens below this seq are void
            self.cursors: dict[str, PageCursor] = {}
            self.clients: dict[str, str] = {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
            self.codes: dict[str, OAuthCode] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.access_tokens: dict[str, AccessToken] = {}
            self.channels: dict[str, Channel] = {}
            self.faults: list[Fault] = []
            self.request_log: list[dict[str, Any]] = []
            self.deliveries: list[dict[str, Any]] = []
            self.page_shape = "full"
            self.rng = random.Random(1234)

    def now(self) -> datetime:
        """The emulator's clock: real time (or a frozen instant) plus an offset, in ms."""
        with self.lock:
            moment = (self.frozen_at or datetime.now(UTC)) + self.clock_offset
            return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def set_clock(
        self,
        *,
        now: datetime | None = None,
        advance: timedelta | None = None,
        freeze: bool | None = None,
    ) -> datetime:
        with self.lock:
            if now is not None:
                self.frozen_at = now.astimezone(UTC) if freeze is not False else None
                self.clock_offset = timedelta(0) if freeze is not False else now - datetime.now(UTC)
            if advance is not None:
                self.clock_offset += advance
            if freeze is False and self.frozen_at is not None:
                self.clock_offset += self.frozen_at - datetime.now(UTC)
                self.frozen_at = None
            return self.now()

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # --- accounts and calendars -------------------------------------------------
    def add_account(
        self, email: str, *, time_zone: str = "UTC", client_id: str = DEFAULT_CLIENT_ID
    ) -> dict[str, Any]:
        """Create an account with its primary calendar; returns a fresh token pair."""
        email = email.lower()
        zone(time_zone)
        with self.lock:
            if email not in self.accounts:
                self.accounts[email] = Account(email=email, time_zone=time_zone)
                self.calendar_lists[email] = []
                self.add_calendar(
                    owner=email, calendar_id=email, summary=email, time_zone=time_zone
                )
            return self.issue_tokens(
                email, client_id=client_id, scope="https://www.googleapis.com/auth/calendar"
            )

    def add_calendar(
        self,
        *,
        owner: str,
        calendar_id: str | None = None,
        summary: str | None = None,
        time_zone: str | None = None,
    ) -> Calendar:
        owner = owner.lower()
        with self.lock:
            account = self.accounts.get(owner)
            if account is None:
                raise ApiError(404, "notFound", f"No account {owner}")
            calendar_id = calendar_id or f"{_random_id(20)}@group.calendar.google.com"
            if calendar_id in self.calendars:
                raise ApiError(409, "duplicate")
            tz_name = time_zone or account.time_zone
            zone(tz_name)
            calendar = Calendar(
                id=calendar_id,
                owner=owner,
                summary=summary or calendar_id,
                time_zone=tz_name,
                seq=self._next_seq(),
            )
            self.calendars[calendar_id] = calendar
            self.events[calendar_id] = {}
            self.calendar_lists[owner].append(calendar_id)
            return calendar

    def insert_calendar(self, body: Resource, *, account: str) -> Resource:
        """``calendars.insert``: a secondary calendar owned by ``account``, listed in its
        calendar list; ``summary`` is required, ``timeZone`` defaults to the account's."""
        summary = body.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise ApiError(400, "required", "Missing title.", location="summary")
        time_zone = body.get("timeZone")
        description = body.get("description")
        if time_zone is not None and not isinstance(time_zone, str):
            raise ApiError(400, "invalid", "Invalid time zone.", location="timeZone")
        if description is not None and not isinstance(description, str):
            raise ApiError(400, "invalid", "Invalid Value", location="description")
        with self.lock:
            try:
                calendar = self.add_calendar(owner=account, summary=summary, time_zone=time_zone)
            except BadTime as exc:
                raise ApiError(400, "invalid", str(exc), location="timeZone") from exc
            calendar.description = description or ""
            return self.calendar_json(calendar)

    def delete_calendar(self, calendar_id: str, *, account: str) -> None:
        """``calendars.delete``: the owner deletes a secondary calendar with its events;
        it leaves every calendar list, and its channels and sync tokens die with it."""
        with self.lock:
            calendar = self._calendar(calendar_id, account)
            if calendar.owner != account:
                raise ApiError(403, "forbidden", "Forbidden")
            if calendar.id == calendar.owner:
                raise ApiError(
                    400, "cannotDeletePrimaryCalendar", "Cannot delete primary calendar."
                )
            del self.calendars[calendar.id]
            del self.events[calendar.id]
            for listed in self.calendar_lists.values():
                if calendar.id in listed:
                    listed.remove(calendar.id)
            for channel in self.channels.values():
                if channel.calendar_id == calendar.id:
                    channel.stopped = True
            for token, sync in list(self.sync_tokens.items()):
                if sync.calendar_id == calendar.id:
                    del self.sync_tokens[token]
            self.token_floor.pop(calendar.id, None)

    def share_calendar(self, calendar_id: str, email: str) -> None:
        with self.lock:
            self._calendar(calendar_id)
            listed = self.calendar_lists.setdefault(email.lower(), [])
            if calendar_id not in listed:
                listed.append(calendar_id)

    def _calendar(self, calendar_id: str, account: str | None = None) -> Calendar:
        if account is not None and calendar_id == "primary":
            calendar_id = account
        calendar = self.calendars.get(calendar_id)
        if calendar is None or (
            account is not None and calendar_id not in self.calendar_lists.get(account, [])
        ):
            raise ApiError(404, "notFound")
        return calendar

    def resolve_calendar(self, calendar_id: str, account: str | None) -> Calendar:
        with self.lock:
            return self._calendar(calendar_id, account)

    def calendar_json(self, calendar: Calendar) -> Resource:
        return {
            "kind": "calendar#calendar",
            "etag": f'"{calendar.seq}"',
            "id": calendar.id,
            "summary": calendar.summary,
            "description": calendar.description,
            "timeZone": calendar.time_zone,
        }

    def calendar_list_entry(self, calendar: Calendar, account: str) -> Resource:
        entry = self.calendar_json(calendar)
        entry.update(
            {
                "kind": "calendar#calendarListEntry",
                "accessRole": "owner" if calendar.owner == account else "reader",
                "primary": calendar.id == account,
                "selected": True,
                "backgroundColor": "#9fc6e7",
                "foregroundColor": "#000000",
                "defaultReminders": [],
            }
        )
        if not entry["primary"]:
            entry.pop("primary")
        return entry

    def calendar_list(self, account: str) -> list[Resource]:
        with self.lock:
            return [
                self.calendar_list_entry(self.calendars[cid], account)
                for cid in self.calendar_lists.get(account, [])
            ]

    # --- events: writes ---------------------------------------------------------
    def _validate_event(self, body: Resource, calendar: Calendar) -> None:
        try:
            start, end = span(body, calendar.tz)
            start_when = parse_when(body.get("start"), field="start")
            end_when = parse_when(body.get("end"), field="end")
        except BadTime as exc:
            raise ApiError(
                400, "required" if "Missing" in str(exc) else "invalid", str(exc)
            ) from exc
        if start_when.all_day != end_when.all_day:
            raise ApiError(
                400, "invalid", "Start and end times must either both be date or both be dateTime."
            )
        if end < start:
            raise ApiError(400, "timeRangeEmpty", location="end.dateTime")
        if body.get("recurrence"):
            if not start_when.all_day and not start_when.time_zone:
                raise ApiError(400, "required", "Missing time zone definition for start time.")
            try:
                Recurrence(body, calendar.tz)
            except BadTime as exc:
                raise ApiError(400, "invalid", str(exc)) from exc
        if body.get("transparency") not in (None, "opaque", "transparent"):
            raise ApiError(400, "invalid", "Invalid transparency value.")
        if body.get("status") not in (None, "confirmed", "tentative", "cancelled"):
            raise ApiError(400, "invalid", "Invalid status value.")

    def _store(self, calendar: Calendar, resource: Resource, *, created: bool) -> StoredEvent:
        now = self.now()
        seq = self._next_seq()
        resource["kind"] = "calendar#event"
        resource["etag"] = f'"{seq}{secrets.randbelow(1000):03d}"'
        resource["updated"] = format_timestamp(now)
        if created:
            resource.setdefault("created", format_timestamp(now))
        resource.setdefault("status", "confirmed")
        resource.setdefault("sequence", 0)
        resource.setdefault("eventType", "default")
        resource.setdefault("organizer", {"email": calendar.owner, "self": True})
        resource.setdefault("creator", {"email": calendar.owner, "self": True})
        stored = StoredEvent(resource=resource, seq=seq)
        self.events[calendar.id][resource["id"]] = stored
        return stored

    def _changes_times(self, old: Resource, new: Resource) -> bool:
        return any(old.get(k) != new.get(k) for k in ("start", "end", "recurrence"))

    def insert_event(
        self, calendar_id: str, body: Resource, *, account: str | None = None
    ) -> Resource:
        with self.lock:
            calendar = self._calendar(calendar_id, account)
            body = copy.deepcopy(body)
            for read_only in ("kind", "etag", "updated", "created", "htmlLink"):
                body.pop(read_only, None)
            event_id = body.get("id") or _random_id()
            if not (5 <= len(event_id) <= 1024) or any(
                c not in string.digits + "abcdefghijklmnopqrstuv" for c in event_id
            ):
                raise ApiError(400, "invalid", "Invalid resource id value.", location="id")
            if event_id in self.events[calendar.id]:
                raise ApiError(409, "duplicate")
            body["id"] = event_id
            body.setdefault("iCalUID", f"{event_id}@google.com")
            self._validate_event(body, calendar)
            stored = self._store(calendar, body, created=True)
            self._changed(calendar)
            return self._render(stored, calendar, calendar.tz, account)

    def _find_instance(
        self, calendar: Calendar, event_id: str
    ) -> tuple[Resource, Occurrence] | None:
        parent_id, sep, suffix = event_id.rpartition("_")
        if not sep:
            return None
        parent = self.events[calendar.id].get(parent_id)
        if parent is None or parent.deleted_at or not parent.resource.get("recurrence"):
            return None
        recurrence = Recurrence(parent.resource, calendar.tz)
        try:
            if len(suffix) == 8:
                day = datetime.strptime(suffix, "%Y%m%d")
                lo = datetime(day.year, day.month, day.day, tzinfo=calendar.tz).astimezone(
                    UTC
                ) - timedelta(days=2)
            else:
                lo = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) - timedelta(
                    days=2
                )
        except ValueError:
            return None
        for occurrence in recurrence.occurrences(lo, lo + timedelta(days=4)):
            if instance_suffix(occurrence.original_start) == suffix:
                return parent.resource, occurrence
        return None

    def update_event(
        self,
        calendar_id: str,
        event_id: str,
        body: Resource,
        *,
        patch: bool,
        account: str | None = None,
    ) -> Resource:
        with self.lock:
            calendar = self._calendar(calendar_id, account)
            stored = self.events[calendar.id].get(event_id)
            if stored is None or stored.deleted_at is not None:
                found = self._find_instance(calendar, event_id) if stored is None else None
                if found is None:
                    raise ApiError(404, "notFound") if stored is None else ApiError(410, "deleted")
                parent, occurrence = found
                base = make_instance(parent, occurrence, calendar.tz)
                base["created"] = parent.get("created")
                stored = StoredEvent(resource=base, seq=0)
            old = stored.resource
            body = copy.deepcopy(body)
            for read_only in (
                "kind",
                "etag",
                "updated",
                "created",
                "htmlLink",
                "id",
                "recurringEventId",
                "originalStartTime",
                "iCalUID",
            ):
                body.pop(read_only, None)
            if patch:
                new = copy.deepcopy(old)
                new.update(body)
            else:
                new = {
                    k: old[k]
                    for k in (
                        "id",
                        "created",
                        "iCalUID",
                        "recurringEventId",
                        "originalStartTime",
                        "sequence",
                    )
                    if k in old
                }
                new.update(body)
            self._validate_event(new, calendar)
            old_sequence = int(old.get("sequence", 0))
            if self._changes_times(old, new) and int(new.get("sequence", 0)) <= old_sequence:
                # A time change is a new iCalendar version, also when the client sends
                # back the current sequence (get, modify, update); a higher one stands.
                new["sequence"] = old_sequence + 1
            if old.get("recurrence") and self._changes_times(old, new):
                before = self._instance_ids(old, calendar)
                after = self._instance_ids(new, calendar)
                self._tombstone_instances(calendar, old, before - after)
            stored = self._store(calendar, new, created=False)
            self._changed(calendar)
            return self._render(stored, calendar, calendar.tz, account)

    def delete_event(self, calendar_id: str, event_id: str, *, account: str | None = None) -> None:
        with self.lock:
            calendar = self._calendar(calendar_id, account)
            stored = self.events[calendar.id].get(event_id)
            if stored is None:
                found = self._find_instance(calendar, event_id)
                if found is None:
                    raise ApiError(404, "notFound")
                parent, occurrence = found
                self._tombstone(calendar, make_instance(parent, occurrence, calendar.tz))
                self._changed(calendar)
                return
            if (
                stored.deleted_at is not None
                or stored.resource.get("status") == "cancelled"
                and (stored.resource.get("recurringEventId"))
            ):
                raise ApiError(410, "deleted")
            if stored.resource.get("recurrence"):
                ids = self._instance_ids(stored.resource, calendar)
                self._tombstone_instances(calendar, stored.resource, ids)
                # modified instances (exceptions) go with their series
                for other in list(self.events[calendar.id].values()):
                    resource = other.resource
                    if (
                        resource.get("recurringEventId") == event_id
                        and resource.get("status") != "cancelled"
                    ):
                        self._tombstone(calendar, resource)
            stored.resource["status"] = "cancelled"
            stored.deleted_at = self.now()
            stored.seq = self._next_seq()
            stored.resource["updated"] = format_timestamp(self.now())
            stored.resource["etag"] = f'"{stored.seq}000"'
            self._changed(calendar)

    def _instance_ids(self, parent: Resource, calendar: Calendar) -> set[str]:
        now = self.now()
        recurrence = Recurrence(parent, calendar.tz)
        return {
            f"{parent['id']}_{instance_suffix(o.original_start)}"
            for o in recurrence.occurrences(now - EXPANSION_PAST, now + EXPANSION_FUTURE)
        }

    def _tombstone_instances(
        self, calendar: Calendar, parent: Resource, ids: Iterable[str]
    ) -> None:
        recurrence = Recurrence(parent, calendar.tz)
        now = self.now()
        wanted = set(ids)
        for occurrence in recurrence.occurrences(now - EXPANSION_PAST, now + EXPANSION_FUTURE):
            instance = make_instance(parent, occurrence, calendar.tz)
            if instance["id"] in wanted and instance["id"] not in self.events[calendar.id]:
                self._tombstone(calendar, instance)

    def _tombstone(self, calendar: Calendar, instance: Resource) -> None:
        existing = self.events[calendar.id].get(instance["id"])
        resource = existing.resource if existing else instance
        resource["status"] = "cancelled"
        self._store(calendar, resource, created=existing is None)

    def _changed(self, calendar: Calendar) -> None:
        now = self.now()
        for channel in list(self.channels.values()):
            if channel.calendar_id != calendar.id or channel.stopped:
                continue
            if channel.expiration <= now:
                channel.stopped = True
                continue
            channel.message_number += 1
            self.notify(
                Notification(channel=channel, state="exists", number=channel.message_number)
            )

    def purge_tombstones(self, *, calendar_id: str | None = None) -> int:
        """Forget cancelled entries (Google does, eventually); older tokens get 410."""
        with self.lock:
            purged = 0
            # Tokens issued before this point (seq < floor) are void; ones issued after
            # carry seq >= floor, so a full sync right away gives a working token.
            floor = self._next_seq()
            for cid, events in self.events.items():
                if calendar_id and cid != calendar_id:
                    continue
                dead = [
                    eid for eid, ev in events.items() if ev.resource.get("status") == "cancelled"
                ]
                for eid in dead:
                    del events[eid]
                purged += len(dead)
                self.token_floor[cid] = floor
            return purged

    def invalidate_sync_tokens(self, *, calendar_id: str | None = None) -> None:
        with self.lock:
            floor = self._next_seq()  # see purge_tombstones
            for cid in self.calendars:
                if calendar_id is None or cid == calendar_id:
                    self.token_floor[cid] = floor

    # --- events: reads ----------------------------------------------------------
    def _render(
        self, stored: StoredEvent, calendar: Calendar, render_tz: tzinfo, account: str | None
    ) -> Resource:
        return self._render_resource(stored.resource, calendar, render_tz, account)

    def _render_resource(
        self, resource: Resource, calendar: Calendar, render_tz: tzinfo, account: str | None
    ) -> Resource:
        if resource.get("status") == "cancelled" and (
            resource.get("recurringEventId")
            or not resource.get("start")
            or self._is_deleted(calendar, resource)
        ):
            minimal: Resource = {
                "kind": "calendar#event",
                "etag": resource.get("etag"),
                "id": resource["id"],
                "status": "cancelled",
            }
            if resource.get("recurringEventId"):
                minimal["recurringEventId"] = resource["recurringEventId"]
                minimal["originalStartTime"] = self._rezone(
                    resource["originalStartTime"], render_tz
                )
            return minimal
        out = copy.deepcopy(resource)
        for key in ("start", "end", "originalStartTime"):
            if key in out:
                out[key] = self._rezone(out[key], render_tz)
        me = (account or calendar.owner).lower()
        for attendee in out.get("attendees") or []:
            if (attendee.get("email") or "").lower() == me:
                attendee["self"] = True
        out["htmlLink"] = f"https://www.google.com/calendar/event?eid={out['id']}"
        return out

    def _is_deleted(self, calendar: Calendar, resource: Resource) -> bool:
        stored = self.events[calendar.id].get(resource["id"])
        return stored is not None and stored.deleted_at is not None

    def _rezone(self, when_json: dict[str, Any], render_tz: tzinfo) -> dict[str, Any]:
        when = parse_when(when_json, field="time")
        return when_to_json(when, render_tz)

    def _expanded(
        self,
        calendar: Calendar,
        *,
        single_events: bool,
        window: tuple[datetime, datetime],
        include: Callable[[StoredEvent], bool],
    ) -> list[tuple[Resource, int]]:
        """(resource, seq) entries of the calendar as a listing sees them."""
        entries: list[tuple[Resource, int]] = []
        events = self.events[calendar.id]
        for stored in events.values():
            resource = stored.resource
            if resource.get("recurrence") and single_events:
                if stored.deleted_at is not None:
                    if include(stored):
                        entries.append((resource, stored.seq))
                    continue
                if not include(stored):
                    continue
                recurrence = Recurrence(resource, calendar.tz)
                for occurrence in recurrence.occurrences(*window):
                    instance = make_instance(resource, occurrence, calendar.tz)
                    if instance["id"] in events:
                        continue  # an exception (modified or cancelled) stands for it
                    entries.append((instance, stored.seq))
            elif include(stored):
                entries.append((resource, stored.seq))
        return entries

    def _overlaps(
        self, resource: Resource, calendar: Calendar, lo: datetime | None, hi: datetime | None
    ) -> bool:
        if lo is None and hi is None:
            return True
        if resource.get("recurrence"):
            window = (lo or self.now() - EXPANSION_PAST, hi or self.now() + EXPANSION_FUTURE)
            return bool(Recurrence(resource, calendar.tz).occurrences(*window))
        if not resource.get("start"):
            return True
        key = (
            "originalStartTime"
            if resource.get("status") == "cancelled" and resource.get("originalStartTime")
            else None
        )
        if key:
            when = parse_when(resource[key], field=key)
            start = end = when.utc(calendar.tz)
        else:
            start, end = span(resource, calendar.tz)
        if end == start:  # zero-length events still sit at their start
            end = start + timedelta(microseconds=1)
        return (lo is None or end > lo) and (hi is None or start < hi)

    def list_events(
        self, calendar_id: str, params: dict[str, str], *, account: str | None
    ) -> Resource:
        with self.lock:
            calendar = self._calendar(calendar_id, account)
            max_results = self._max_results(params)
            page_token = params.get("pageToken")
            if page_token:
                return self._next_page(page_token, max_results, calendar)
            single_events = params.get("singleEvents", "false").lower() == "true"
            show_deleted = params.get("showDeleted", "false").lower() == "true"
            render_tz = zone(params["timeZone"]) if params.get("timeZone") else calendar.tz
            sync_token = params.get("syncToken")
            if sync_token:
                for name in SYNC_TOKEN_FORBIDDEN:
                    if name in params:
                        raise ApiError(400, "syncTokenWithRequestRestrictions", location=name)
                if params.get("showDeleted", "").lower() == "false":
                    raise ApiError(400, "syncTokenWithRequestRestrictions", location="showDeleted")
                info = self.sync_tokens.get(sync_token)
                if info is None or info.calendar_id != calendar.id:
                    raise ApiError(
                        400, "invalid", "Invalid sync token value.", location="syncToken"
                    )
                if info.seq < self.token_floor.get(calendar.id, 0):
                    raise ApiError(410, "fullSyncRequired", location="syncToken")
                if info.single_events != single_events:
                    raise ApiError(
                        400,
                        "invalid",
                        "singleEvents must match the request that produced the sync token.",
                        location="singleEvents",
                    )
                since = info.seq
                now = self.now()
                window = (now - EXPANSION_PAST, now + EXPANSION_FUTURE)
                entries = self._expanded(
                    calendar,
                    single_events=single_events,
                    window=window,
                    include=lambda s: s.seq > since,
                )
                items = [self._render_resource(r, calendar, render_tz, account) for r, _ in entries]
                items.sort(key=lambda item: item["id"])
            else:
                items = self._full_listing(
                    calendar,
                    params,
                    single_events=single_events,
                    show_deleted=show_deleted,
                    render_tz=render_tz,
                    account=account,
                )
            # The token remembers the counter as of this listing; changes made while
            # the pages are read come back in the next incremental sync.
            sync = SyncToken(
                calendar_id=calendar.id,
                seq=self.seq,
                single_events=single_events,
                issued_at=self.now(),
            )
            cursor = PageCursor(
                items=items,
                offset=0,
                page_index=0,
                extra={"sync": sync, "timeZone": str(render_tz)},
            )
            return self._page(cursor, max_results, calendar)

    def _max_results(self, params: dict[str, str]) -> int:
        raw = params.get("maxResults")
        if raw is None:
            return DEFAULT_MAX_RESULTS
        try:
            value = int(raw)
        except ValueError as exc:
            raise ApiError(
                400, "invalid", f"Invalid value '{raw[:64]}'.", location="maxResults"
            ) from exc
        if value > INT32_MAX:
            raise ApiError(400, "invalid", f"Invalid value '{raw[:64]}'.", location="maxResults")
        if value < 1:
            raise ApiError(
                400,
                "invalid",
                f"Invalid value '{raw}'. Values must be within the range: [1, 2500]",
                location="maxResults",
            )
        return min(value, MAX_RESULTS_LIMIT)

    def _full_listing(
        self,
        calendar: Calendar,
        params: dict[str, str],
        *,
        single_events: bool,
        show_deleted: bool,
        render_tz: tzinfo,
        account: str | None,
    ) -> list[Resource]:
        lo = _time_param(params, "timeMin")
        hi = _time_param(params, "timeMax")
        updated_min = _time_param(params, "updatedMin")
        if lo is not None and hi is not None and lo >= hi:
            raise ApiError(400, "timeRangeEmpty", location="timeMax")
        order_by = params.get("orderBy")
        if order_by not in (None, "startTime", "updated"):
            raise ApiError(400, "invalid", f"Invalid value '{order_by}'.", location="orderBy")
        if order_by == "startTime" and not single_events:
            raise ApiError(
                400,
                "badRequest",
                "The requested ordering is not available for the particular query.",
                location="orderBy",
            )
        now = self.now()
        window = (lo or now - EXPANSION_PAST, hi or now + EXPANSION_FUTURE)

        def include(stored: StoredEvent) -> bool:
            if updated_min is not None:
                updated = parse_datetime(stored.resource["updated"], field="updated")
                return updated >= updated_min  # deleted entries included regardless
            return True

        entries = self._expanded(
            calendar, single_events=single_events, window=window, include=include
        )
        items: list[Resource] = []
        for resource, _seq in entries:
            cancelled = resource.get("status") == "cancelled"
            if cancelled and not show_deleted and updated_min is None:
                continue
            if resource.get("recurrence") and single_events:
                continue  # a deleted parent: its instances are tombstones already
            if not self._overlaps(resource, calendar, lo, hi):
                continue
            items.append(self._render_resource(resource, calendar, render_tz, account))
        if order_by == "startTime":

            def start_key(item: Resource) -> datetime:
                when = item.get("start") or item.get("originalStartTime")
                return parse_when(when, field="start").utc(calendar.tz) if when else now

            items.sort(key=lambda item: (start_key(item), item["id"]))
        elif order_by == "updated":
            items.sort(key=lambda item: (item.get("updated", ""), item["id"]))
        else:
            items.sort(key=lambda item: item["id"])
        return items

    def _page_size(self, cursor: PageCursor, max_results: int) -> int:
        if self.page_shape == "short":
            # a full page, an empty page, a short page, and again
            return [max_results, 0, max(1, max_results // 3)][cursor.page_index % 3]
        if self.page_shape == "empty-first" and cursor.page_index == 0:
            return 0
        return max_results

    def _page(self, cursor: PageCursor, max_results: int, calendar: Calendar) -> Resource:
        size = self._page_size(cursor, max_results)
        chunk = cursor.items[cursor.offset : cursor.offset + size]
        cursor.offset += len(chunk)
        cursor.page_index += 1
        response: Resource = {
            "kind": "calendar#events",
            "etag": f'"{self.seq}"',
            "summary": calendar.summary,
            "description": calendar.description,
            "updated": format_timestamp(self.now()),
            "timeZone": cursor.extra["timeZone"],
            "accessRole": "owner",
            "defaultReminders": [],
            "items": chunk,
        }
        if cursor.offset < len(cursor.items):
            token = _token("EjY")
            self.cursors[token] = cursor
            while len(self.cursors) > MAX_PAGE_CURSORS:  # replayable, so kept a while
                del self.cursors[next(iter(self.cursors))]
            response["nextPageToken"] = token
        else:
            sync = cursor.extra["sync"]
            token = _token("CPD")
            self.sync_tokens[token] = sync
            response["nextSyncToken"] = token
        return response

    def _next_page(self, page_token: str, max_results: int, calendar: Calendar) -> Resource:
        cursor = self.cursors.get(page_token)
        if cursor is None:
            raise ApiError(400, "invalid", "Invalid page token value.", location="pageToken")
        # A page token can be replayed (a client retrying a page whose response was
        # lost), so advance a copy and leave the stored cursor as it was.
        return self._page(copy.copy(cursor), max_results, calendar)

    def get_event(
        self, calendar_id: str, event_id: str, params: dict[str, str], *, account: str | None
    ) -> Resource:
        with self.lock:
            calendar = self._calendar(calendar_id, account)
            render_tz = zone(params["timeZone"]) if params.get("timeZone") else calendar.tz
            stored = self.events[calendar.id].get(event_id)
            if stored is not None:
                return self._render(stored, calendar, render_tz, account)
            found = self._find_instance(calendar, event_id)
            if found is None:
                raise ApiError(404, "notFound")
            parent, occurrence = found
            return self._render_resource(
                make_instance(parent, occurrence, calendar.tz), calendar, render_tz, account
            )

    def instances(
        self, calendar_id: str, event_id: str, params: dict[str, str], *, account: str | None
    ) -> Resource:
        with self.lock:
            calendar = self._calendar(calendar_id, account)
            stored = self.events[calendar.id].get(event_id)
            if stored is None or not stored.resource.get("recurrence"):
                raise ApiError(404, "notFound")
            if stored.deleted_at is not None:
                raise ApiError(410, "deleted")
            if params.get("pageToken"):
                return self._next_page(params["pageToken"], self._max_results(params), calendar)
            lo = _time_param(params, "timeMin")
            hi = _time_param(params, "timeMax")
            if lo is not None and hi is not None and lo >= hi:
                raise ApiError(400, "timeRangeEmpty", location="timeMax")
            now = self.now()
            window = (lo or now - EXPANSION_PAST, hi or now + EXPANSION_FUTURE)
            render_tz = zone(params["timeZone"]) if params.get("timeZone") else calendar.tz
            show_deleted = params.get("showDeleted", "false").lower() == "true"
            items = []
            prefix = f"{event_id}_"
            for occurrence in Recurrence(stored.resource, calendar.tz).occurrences(*window):
                instance = make_instance(stored.resource, occurrence, calendar.tz)
                exception = self.events[calendar.id].get(instance["id"])
                if exception is not None:
                    instance = exception.resource
                if instance.get("status") == "cancelled" and not show_deleted:
                    continue
                items.append(self._render_resource(instance, calendar, render_tz, account))
            for eid, exc_event in self.events[calendar.id].items():
                if eid.startswith(prefix) and all(eid != i["id"] for i in items):
                    resource = exc_event.resource
                    if resource.get("status") != "cancelled" and self._overlaps(
                        resource, calendar, lo, hi
                    ):
                        items.append(self._render_resource(resource, calendar, render_tz, account))
            items.sort(key=lambda i: i["id"])
            cursor = PageCursor(
                items=items,
                offset=0,
                page_index=0,
                extra={
                    "sync": SyncToken(calendar.id, self.seq, True, now),
                    "timeZone": str(render_tz),
                },
            )
            return self._page(cursor, self._max_results(params), calendar)

    # --- freeBusy -----------------------------------------------------------------
    def busy_intervals(
        self, calendar: Calendar, lo: datetime, hi: datetime
    ) -> list[tuple[datetime, datetime]]:
        """Merged busy time of ``calendar`` within [lo, hi), as freeBusy computes it."""
        entries = self._expanded(
            calendar, single_events=True, window=(lo, hi), include=lambda s: True
        )
        raw: list[tuple[datetime, datetime]] = []
        for resource, _ in entries:
            if resource.get("recurrence") or not is_busy_for(resource, calendar.owner):
                continue
            start, end = span(resource, calendar.tz)
            start, end = max(start, lo), min(end, hi)
            if start < end:
                raw.append((start, end))
        raw.sort()
        merged: list[tuple[datetime, datetime]] = []
        for start, end in raw:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def freebusy(self, body: Resource, *, account: str | None) -> Resource:
        with self.lock:
            try:
                lo = parse_datetime(body.get("timeMin", ""), field="timeMin")
                hi = parse_datetime(body.get("timeMax", ""), field="timeMax")
                render_tz = zone(body.get("timeZone") or "UTC")
            except BadTime as exc:
                raise ApiError(400, "badRequest", str(exc)) from exc
            if lo >= hi:
                raise ApiError(400, "timeRangeEmpty", location="timeMax")
            if hi - lo > timedelta(days=FREEBUSY_MAX_DAYS):
                raise ApiError(400, "timeRangeTooLong", location="timeMax")
            items = body.get("items") or []
            if not isinstance(items, list) or not all(
                isinstance(item, dict) and isinstance(item.get("id", ""), str) for item in items
            ):
                raise ApiError(
                    400,
                    "invalid",
                    "items must be a list of objects with a string id.",
                    location="items",
                )
            if len(items) > FREEBUSY_MAX_CALENDARS:
                raise ApiError(
                    400,
                    "tooManyCalendarsRequested",
                    f"At most {FREEBUSY_MAX_CALENDARS} calendars per request.",
                )
            calendars: dict[str, Any] = {}
            for item in items:
                cid = item.get("id", "")
                failure = self.take_freebusy_fault(cid)
                try:
                    calendar = self._calendar(cid, account)
                except ApiError:
                    # A calendar that does not exist, or is not shared with the account.
                    failure = failure or "notFound"
                if failure is not None:
                    calendars[cid] = {
                        "errors": [{"domain": "global", "reason": failure}],
                        "busy": [],
                    }
                    continue
                calendars[cid] = {
                    "busy": [
                        {
                            "start": format_datetime(s, render_tz),
                            "end": format_datetime(e, render_tz),
                        }
                        for s, e in self.busy_intervals(calendar, lo, hi)
                    ]
                }
            return {
                "kind": "calendar#freeBusy",
                "timeMin": format_datetime(lo, UTC),
                "timeMax": format_datetime(hi, UTC),
                "calendars": calendars,
            }

    # --- push channels --------------------------------------------------------------
    def watch(self, calendar_id: str, body: Resource, *, account: str | None) -> Resource:
        with self.lock:
            calendar = self._calendar(calendar_id, account)
            channel_id = body.get("id") or ""
            if not channel_id or len(channel_id) > 64:
                raise ApiError(
                    400,
                    "required" if not channel_id else "invalid",
                    "Channel id is required (at most 64 characters).",
                    location="id",
                )
            if body.get("type") not in ("web_hook", "webhook"):
                raise ApiError(400, "invalid", "Invalid channel type.", location="type")
            address = body.get("address") or ""
            if not address.startswith(("https://", "http://127.0.0.1", "http://localhost")):
                raise ApiError(
                    400, "invalid", "WebHook callback must be HTTPS: " + address, location="address"
                )
            token = body.get("token")
            if token is not None and len(token) > 256:
                raise ApiError(
                    400, "invalid", "Channel token longer than 256 characters.", location="token"
                )
            if channel_id in self.channels and not self.channels[channel_id].stopped:
                raise ApiError(400, "channelIdNotUnique", "Channel id not unique.")
            now = self.now()
            expiration = now + timedelta(seconds=CHANNEL_DEFAULT_SECONDS)
            if body.get("expiration"):
                # Milliseconds since the epoch, clamped before they become a datetime:
                # a giant or negative one is Google's "as long as allowed" / "at once".
                now_ms = int(now.timestamp() * 1000)
                requested_ms = min(
                    max(int(body["expiration"]), now_ms + 1000),
                    now_ms + CHANNEL_MAX_SECONDS * 1000,
                )
                expiration = datetime.fromtimestamp(requested_ms / 1000, UTC)
            channel = Channel(
                id=channel_id,
                resource_id=_random_id(27),
                calendar_id=calendar.id,
                address=address,
                token=token,
                expiration=expiration,
            )
            self.channels[channel_id] = channel
            self.notify(Notification(channel=channel, state="sync", number=1))
            channel.message_number = 1
            return self.channel_json(channel)

    def channel_json(self, channel: Channel) -> Resource:
        return {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": self.resource_uri(channel),
            "token": channel.token,
            "expiration": str(int(channel.expiration.timestamp() * 1000)),
        }

    def resource_uri(self, channel: Channel) -> str:
        return (
            f"https://www.googleapis.com/calendar/v3/calendars/{channel.calendar_id}"
            "/events?alt=json"
        )

    def stop_channel(self, body: Resource) -> None:
        with self.lock:
            channel = self.channels.get(body.get("id", ""))
            if channel is None or channel.resource_id != body.get("resourceId") or channel.stopped:
                raise ApiError(
                    404, "notFound", f"Channel '{body.get('id')}' not found for project."
                )
            channel.stopped = True

    # --- OAuth ------------------------------------------------------------------------
    def issue_tokens(self, email: str, *, client_id: str, scope: str) -> dict[str, Any]:
        with self.lock:
            refresh = _token("1//")
            self.refresh_tokens[refresh] = RefreshToken(
                email=email, client_id=client_id, scope=scope
            )
            access = self._issue_access(email)
            return {
                "access_token": access,
                "expires_in": ACCESS_TOKEN_SECONDS,
                "refresh_token": refresh,
                "scope": scope,
                "token_type": "Bearer",
                "email": email,
                "client_id": client_id,
                "client_secret": self.clients[client_id],
            }

    def _issue_access(self, email: str) -> str:
        access = _token("ya29.")
        self.access_tokens[access] = AccessToken(
            email=email, expires_at=self.now() + timedelta(seconds=ACCESS_TOKEN_SECONDS)
        )
        return access

    def account_for_access_token(self, access_token: str) -> str | None:
        with self.lock:
            token = self.access_tokens.get(access_token)
            if token is None or token.expires_at <= self.now():
                return None
            refresh_alive = any(
                r.email == token.email and not r.revoked for r in self.refresh_tokens.values()
            )
            return token.email if refresh_alive else None

    def create_code(
        self,
        *,
        client_id: str,
        email: str,
        redirect_uri: str,
        scope: str,
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> str:
        with self.lock:
            code = _token("4/")
            self.codes[code] = OAuthCode(
                client_id,
                email.lower(),
                redirect_uri,
                scope,
                code_challenge,
                code_challenge_method,
                self.now() + timedelta(minutes=10),
            )
            return code

    def exchange_code(self, form: dict[str, str]) -> dict[str, Any]:
        import base64
        import hashlib

        with self.lock:
            self._check_client(form)
            code = self.codes.pop(form.get("code", ""), None)
            if code is None or code.expires_at <= self.now():
                raise OAuthError("invalid_grant", "Malformed auth code.")
            if code.redirect_uri != form.get("redirect_uri"):
                raise OAuthError("redirect_uri_mismatch", "Bad Request")
            if code.code_challenge:
                verifier = form.get("code_verifier", "")
                if code.code_challenge_method == "S256":
                    digest = hashlib.sha256(verifier.encode()).digest()
                    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                else:
                    computed = verifier
                if computed != code.code_challenge:
                    raise OAuthError("invalid_grant", "Invalid code verifier.")
            if code.email not in self.accounts:
                self.add_account(code.email)
            tokens = self.issue_tokens(code.email, client_id=code.client_id, scope=code.scope)
            return {
                k: tokens[k]
                for k in ("access_token", "expires_in", "refresh_token", "scope", "token_type")
            }

    def refresh(self, form: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self._check_client(form)
            token = self.refresh_tokens.get(form.get("refresh_token", ""))
            if token is None or token.revoked:
                raise OAuthError("invalid_grant", "Token has been expired or revoked.")
            return {
                "access_token": self._issue_access(token.email),
                "expires_in": ACCESS_TOKEN_SECONDS,
                "scope": token.scope,
                "token_type": "Bearer",
            }

    def _check_client(self, form: dict[str, str]) -> None:
        client_id = form.get("client_id", "")
        if client_id not in self.clients:
            raise OAuthError("invalid_client", "The OAuth client was not found.", status=401)
        if self.clients[client_id] != form.get("client_secret"):
            raise OAuthError("invalid_client", "Unauthorized", status=401)

    def revoke(self, email: str) -> int:
        with self.lock:
            count = 0
            for token in self.refresh_tokens.values():
                if token.email == email.lower() and not token.revoked:
                    token.revoked = True
                    count += 1
            for access, info in list(self.access_tokens.items()):
                if info.email == email.lower():
                    del self.access_tokens[access]
            return count

    def expire_access_tokens(self, email: str | None = None) -> None:
        with self.lock:
            for access, info in list(self.access_tokens.items()):
                if email is None or info.email == email.lower():
                    del self.access_tokens[access]

    # --- faults and log -------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    return copy.copy(fault)
            return None

    def take_freebusy_fault(self, calendar_id: str) -> str | None:
        """The reason of a ``freebusy`` fault left for ``calendar_id``, used up by this
        answer (each freeBusy answer that lists the calendar uses one), else None."""
        with self.lock:
            for fault in self.faults:
                if (
                    fault.kind == FREEBUSY_FAULT
                    and fault.remaining > 0
                    and fault.calendar_id == calendar_id
                ):
                    fault.remaining -= 1
                    return fault.reason
            return None

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.request_log.append(entry)
            del self.request_log[:-5000]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return json.loads(
                json.dumps(
                    {
                        "now": format_timestamp(self.now()),
                        "accounts": sorted(self.accounts),
                        "calendars": {cid: len(evs) for cid, evs in self.events.items()},
                        "channels": len(self.channels),
                    }
                )
            )


class OAuthError(Exception):
    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
