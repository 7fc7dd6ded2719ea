"""A Python client for the emulator's ``/_emulator/`` control API, for tests and demos.

emulator = EmulatorClient("http://127.0.0.1:8765")
token = emulator.add_account("ada@example.com", time_zone="Europe/London")
emulator.add_event("ada@example.com", start="2026-06-10T09:00:00Z", end="2026-06-10T10:00:00Z")
emulator.fail_next(status=503, reason="backendError", path="/events")
emulator.fail_freebusy("ada@example.com", reason="internalError")
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, timedelta
from typing import Any

from calcache.emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"


class EmulatorError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"emulator answered {status}: {body}")
        self.status = status
        self.body = body


def _when(value: Any, time_zone: str | None = None) -> dict[str, str]:
    if isinstance(value, dict):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("use aware datetimes with the emulator")
        out = {"dateTime": value.isoformat()}
    elif isinstance(value, date):
        out = {"date": value.isoformat()}
    elif isinstance(value, str) and len(value) == 10:
        out = {"date": value}
    else:
        out = {"dateTime": str(value)}
    if time_zone and "dateTime" in out:
        out["timeZone"] = time_zone
    return out


class EmulatorClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/calendar/v3/"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def auth_uri(self) -> str:
        return f"{self.base_url}/o/oauth2/auth"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise EmulatorError(exc.code, exc.read().decode(errors="replace")) from exc
        return json.loads(raw) if raw else None

    @staticmethod
    def _quote(value: str) -> str:
        return urllib.parse.quote(value, safe="")

    # --- setup -------------------------------------------------------------------------
    def reset(self) -> None:
        self._call("POST", "/_emulator/reset", {})

    def add_account(self, email: str, *, time_zone: str = "UTC") -> dict[str, Any]:
        """Create an account (and its primary calendar); returns a google-auth token dict."""
        issued = self._call("POST", "/_emulator/accounts", {"email": email, "time_zone": time_zone})
        return self._authorized_user(issued)

    def authorized_token(self, email: str) -> dict[str, Any]:
        """A fresh google-auth authorized-user dict for an existing account."""
        issued = self._call("POST", f"/_emulator/accounts/{self._quote(email)}/token", {})
        return self._authorized_user(issued)

    def _authorized_user(self, issued: dict[str, Any]) -> dict[str, Any]:
        # google-auth reads "expiry" as naive UTC; without it the token counts as expired.
        expiry = datetime.now(UTC) + timedelta(seconds=int(issued["expires_in"]) - 60)
        return {
            "token": issued["access_token"],
            "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "refresh_token": issued["refresh_token"],
            "token_uri": self.token_uri,
            "client_id": issued.get("client_id", DEFAULT_CLIENT_ID),
            "client_secret": issued.get("client_secret", DEFAULT_CLIENT_SECRET),
            "scopes": [CALENDAR_SCOPE],
            "account": issued.get("email", ""),
        }

    def add_calendar(
        self,
        owner: str,
        *,
        calendar_id: str | None = None,
        summary: str | None = None,
        time_zone: str | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "/_emulator/calendars",
            {"owner": owner, "id": calendar_id, "summary": summary, "time_zone": time_zone},
        )

    def share_calendar(self, calendar_id: str, email: str) -> None:
        self._call(
            "POST", f"/_emulator/calendars/{self._quote(calendar_id)}/share", {"email": email}
        )

    def add_event(
        self,
        calendar_id: str,
        *,
        start: Any = None,
        end: Any = None,
        time_zone: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Insert an event. ``start``/``end`` take datetimes, dates, ISO strings or dicts;
        other keyword arguments are Google fields (``summary``, ``recurrence``,
        ``transparency``, ``attendees``, ``status``, ``id``...)."""
        body = dict(fields)
        if start is not None:
            body["start"] = _when(start, time_zone)
        if end is not None:
            body["end"] = _when(end, time_zone)
        return self._call("POST", f"/_emulator/calendars/{self._quote(calendar_id)}/events", body)

    def patch_event(self, calendar_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
        body = dict(fields)
        time_zone = body.pop("time_zone", None)
        for key in ("start", "end"):
            if key in body:
                body[key] = _when(body[key], time_zone)
        return self._call(
            "PATCH",
            f"/_emulator/calendars/{self._quote(calendar_id)}/events/{self._quote(event_id)}",
            body,
        )

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        self._call(
            "DELETE",
            f"/_emulator/calendars/{self._quote(calendar_id)}/events/{self._quote(event_id)}",
        )

    def busy(
        self, calendar_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """freeBusy's answer for one calendar, without the API's range limit."""
        query = urllib.parse.urlencode({"timeMin": start.isoformat(), "timeMax": end.isoformat()})
        data = self._call("GET", f"/_emulator/calendars/{self._quote(calendar_id)}/busy?{query}")
        return [
            (datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"]))
            for b in data["busy"]
        ]

    # --- time, tokens, faults -------------------------------------------------------
    def set_clock(self, now: datetime, *, freeze: bool = True) -> datetime:
        data = self._call("POST", "/_emulator/clock", {"now": now.isoformat(), "freeze": freeze})
        return datetime.fromisoformat(data["now"])

    def advance_clock(self, delta: timedelta) -> datetime:
        data = self._call("POST", "/_emulator/clock", {"advance_seconds": delta.total_seconds()})
        return datetime.fromisoformat(data["now"])

    def now(self) -> datetime:
        return datetime.fromisoformat(self._call("GET", "/_emulator/clock")["now"])

    def invalidate_sync_tokens(self, calendar_id: str | None = None) -> None:
        self._call("POST", "/_emulator/sync_tokens/invalidate", {"calendar_id": calendar_id})

    def purge_tombstones(self, calendar_id: str | None = None) -> int:
        return int(
            self._call("POST", "/_emulator/tombstones/purge", {"calendar_id": calendar_id})[
                "purged"
            ]
        )

    def revoke(self, email: str) -> None:
        self._call("POST", f"/_emulator/accounts/{self._quote(email)}/revoke", {})

    def expire_access_tokens(self, email: str) -> None:
        self._call("POST", f"/_emulator/accounts/{self._quote(email)}/expire_access_tokens", {})

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        reason: str = "backendError",
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = None,
        kind: str = "error",
        delay: float = 0.0,
    ) -> None:
        """Make the next ``count`` matching API requests fail.

        ``kind``: ``error`` (``status`` + ``reason``, optional ``Retry-After``),
        ``slow`` (answer after ``delay`` seconds) or ``drop`` (close the
        connection mid-body). ``path`` matches a substring of the request path.
        """
        self._call(
            "POST",
            "/_emulator/faults",
            {
                "kind": kind,
                "count": count,
                "status": status,
                "reason": reason,
                "method": method,
                "path": path,
                "retry_after": retry_after,
                "delay": delay,
            },
        )

    def fail_freebusy(
        self, calendar_id: str, *, reason: str = "backendError", count: int = 1
    ) -> None:
        """Make ``calendar_id``'s entry in the next ``count`` freeBusy answers that list it
        fail as Google's do: the answer stays a 200 and the entry is ``{"errors":
        [{"domain": "global", "reason": reason}], "busy": []}`` (``internalError``,
        ``backendError``, ``notFound``, ...). ``clear_faults`` drops what is left."""
        self._call(
            "POST",
            "/_emulator/faults",
            {"kind": "freebusy", "calendar_id": calendar_id, "reason": reason, "count": count},
        )

    def clear_faults(self) -> None:
        self._call("DELETE", "/_emulator/faults")

    def set_page_shape(self, shape: str) -> None:
        """``full`` (default), ``short`` (full, empty and short pages) or ``empty-first``."""
        self._call("POST", "/_emulator/options", {"page_shape": shape})

    def requests(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_emulator/requests")["requests"])

    def clear_requests(self) -> None:
        self._call("DELETE", "/_emulator/requests")

    def deliveries(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_emulator/deliveries")["deliveries"])

    def seed_demo(self, now: datetime | None = None) -> dict[str, Any]:
        return dict(
            self._call("POST", "/_emulator/seed", {"now": now.isoformat() if now else None})
        )
