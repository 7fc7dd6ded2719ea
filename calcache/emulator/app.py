"""The emulator's WSGI app: Calendar API v3, OAuth endpoints and the ``/_emulator/`` control API."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from calcache.emulator.errors import ApiError
from calcache.emulator.state import (
    DEFAULT_CLIENT_ID,
    FREEBUSY_FAULT,
    EmulatorState,
    Fault,
    OAuthError,
)
from calcache.emulator.timeutil import BadTime, format_timestamp, parse_datetime

API = "/calendar/v3"

URLS = Map(
    [
        Rule(f"{API}/users/me/calendarList", endpoint="calendar_list", methods=["GET"]),
        Rule(
            f"{API}/users/me/calendarList/<calendar_id>",
            endpoint="calendar_list_get",
            methods=["GET"],
        ),
        Rule(f"{API}/calendars", endpoint="calendars_insert", methods=["POST"]),
        Rule(f"{API}/calendars/<calendar_id>", endpoint="calendar", methods=["GET", "DELETE"]),
        Rule(f"{API}/calendars/<calendar_id>/events", endpoint="events", methods=["GET", "POST"]),
        Rule(f"{API}/calendars/<calendar_id>/events/watch", endpoint="watch", methods=["POST"]),
        Rule(
            f"{API}/calendars/<calendar_id>/events/<event_id>",
            endpoint="event",
            methods=["GET", "PATCH", "PUT", "DELETE"],
        ),
        Rule(
            f"{API}/calendars/<calendar_id>/events/<event_id>/instances",
            endpoint="instances",
            methods=["GET"],
        ),
        Rule(f"{API}/freeBusy", endpoint="freebusy", methods=["POST"]),
        Rule(f"{API}/channels/stop", endpoint="channel_stop", methods=["POST"]),
        Rule("/o/oauth2/auth", endpoint="oauth_consent", methods=["GET", "POST"]),
        Rule("/token", endpoint="oauth_token", methods=["POST"]),
        Rule("/_emulator/reset", endpoint="ctl_reset", methods=["POST"]),
        Rule("/_emulator/state", endpoint="ctl_state", methods=["GET"]),
        Rule("/_emulator/accounts", endpoint="ctl_accounts", methods=["POST"]),
        Rule("/_emulator/accounts/<email>/token", endpoint="ctl_account_token", methods=["POST"]),
        Rule("/_emulator/accounts/<email>/revoke", endpoint="ctl_revoke", methods=["POST"]),
        Rule(
            "/_emulator/accounts/<email>/expire_access_tokens",
            endpoint="ctl_expire",
            methods=["POST"],
        ),
        Rule("/_emulator/calendars", endpoint="ctl_calendars", methods=["POST"]),
        Rule("/_emulator/calendars/<calendar_id>/share", endpoint="ctl_share", methods=["POST"]),
        Rule("/_emulator/calendars/<calendar_id>/events", endpoint="ctl_events", methods=["POST"]),
        Rule(
            "/_emulator/calendars/<calendar_id>/events/<event_id>",
            endpoint="ctl_event",
            methods=["PATCH", "DELETE"],
        ),
        Rule("/_emulator/calendars/<calendar_id>/busy", endpoint="ctl_busy", methods=["GET"]),
        Rule("/_emulator/clock", endpoint="ctl_clock", methods=["GET", "POST"]),
        Rule("/_emulator/sync_tokens/invalidate", endpoint="ctl_invalidate", methods=["POST"]),
        Rule("/_emulator/tombstones/purge", endpoint="ctl_purge", methods=["POST"]),
        Rule("/_emulator/faults", endpoint="ctl_faults", methods=["POST", "DELETE"]),
        Rule("/_emulator/requests", endpoint="ctl_requests", methods=["GET", "DELETE"]),
        Rule("/_emulator/deliveries", endpoint="ctl_deliveries", methods=["GET"]),
        Rule("/_emulator/options", endpoint="ctl_options", methods=["POST"]),
        Rule("/_emulator/seed", endpoint="ctl_seed", methods=["POST"]),
    ]
)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(data, indent=1),
        status=status,
        headers=headers,
        content_type="application/json; charset=UTF-8",
    )


def _error(error: ApiError) -> Response:
    return _json(error.body(), status=error.code, headers=error.headers)


def _logged_body(request: Request) -> Any:
    """The JSON body for the request log; None when there is none or it does not parse."""
    if not request.is_json or not request.data:
        return None
    try:
        return json.loads(request.data)
    except (ValueError, RecursionError):
        return None


class _DroppedConnection(Exception):
    """Raised mid-body to make the server close the connection (fault ``drop``)."""


class EmulatorApp:
    """A WSGI application over one ``EmulatorState``."""

    def __init__(self, state: EmulatorState | None = None) -> None:
        self.state = state or EmulatorState()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    # --- dispatch ---------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        path = request.path
        is_control = path.startswith("/_emulator/")
        fault = None if is_control else self.state.take_fault(request.method, path)
        account: str | None = None
        try:
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            if fault is not None and fault.kind == "error":
                headers = (
                    {"Retry-After": str(fault.retry_after)}
                    if fault.retry_after is not None
                    else None
                )
                raise ApiError(fault.status, fault.reason, headers=headers)
            adapter = URLS.bind_to_environ(request.environ)
            endpoint, args = adapter.match()
            if path.startswith(API):
                account = self._authenticate(request)
            response = getattr(self, f"on_{endpoint}")(request, account=account, **args)
        except ApiError as exc:
            response = _error(exc)
        except (NotFound, MethodNotAllowed) as exc:
            response = _error(ApiError(exc.code or 404, "notFound", exc.description))
        except HTTPException as exc:
            response = _error(ApiError(exc.code or 400, "badRequest", exc.description))
        except BadTime as exc:
            response = _error(ApiError(400, "badRequest", str(exc)))
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            response = _error(ApiError(400, "badRequest", f"Bad Request: {str(exc)[:200]}"))
        except OverflowError as exc:
            # Date arithmetic past year 1 or 9999 on values each within range (an event
            # spanning millennia, say): the input's fault, as Google would say.
            response = _error(ApiError(400, "badRequest", f"Bad Request: out of range ({exc})"))
        if not is_control:
            self.state.log_request(
                {
                    "method": request.method,
                    "path": path,
                    "query": dict(request.args),
                    "body": _logged_body(request),
                    "status": response.status_code,
                    "account": account,
                    "at": format_timestamp(self.state.now()),
                    "fault": fault.kind if fault else None,
                }
            )
        if fault is not None and fault.kind == "drop":
            return self._dropped(response)
        return response

    def _dropped(self, response: Response) -> Response:
        body = response.get_data()

        def broken() -> Iterator[bytes]:
            yield body[: max(1, len(body) // 2)]
            raise _DroppedConnection("connection dropped by an injected fault")

        dropped = Response(broken(), status=response.status_code, headers=dict(response.headers))
        dropped.headers["Content-Length"] = str(len(body))
        return dropped

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        account = self.state.account_for_access_token(token) if scheme.lower() == "bearer" else None
        if account is None:
            raise ApiError(
                401,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                location="Authorization",
                location_type="header",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        return account

    def _body(self, request: Request) -> dict[str, Any]:
        if not request.data:
            return {}
        try:
            data = json.loads(request.data)
        except RecursionError as exc:  # nested deeper than the parser goes
            raise ApiError(400, "parseError", "Parse Error") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "parseError", "Parse Error")
        return data

    # --- Calendar API -------------------------------------------------------------
    def on_calendar_list(self, request: Request, account: str) -> Response:
        items = self.state.calendar_list(account)
        return _json(
            {
                "kind": "calendar#calendarList",
                "etag": f'"{self.state.seq}"',
                "nextSyncToken": "calendarlist-sync",
                "items": items,
            }
        )

    def on_calendar_list_get(self, request: Request, account: str, calendar_id: str) -> Response:
        calendar = self.state.resolve_calendar(calendar_id, account)
        return _json(self.state.calendar_list_entry(calendar, account))

    def on_calendars_insert(self, request: Request, account: str) -> Response:
        return _json(self.state.insert_calendar(self._body(request), account=account))

    def on_calendar(self, request: Request, account: str, calendar_id: str) -> Response:
        if request.method == "DELETE":
            self.state.delete_calendar(calendar_id, account=account)
            return Response(status=204)
        return _json(self.state.calendar_json(self.state.resolve_calendar(calendar_id, account)))

    def on_events(self, request: Request, account: str, calendar_id: str) -> Response:
        if request.method == "POST":
            return _json(self.state.insert_event(calendar_id, self._body(request), account=account))
        return _json(self.state.list_events(calendar_id, dict(request.args), account=account))

    def on_event(self, request: Request, account: str, calendar_id: str, event_id: str) -> Response:
        if request.method == "GET":
            return _json(
                self.state.get_event(calendar_id, event_id, dict(request.args), account=account)
            )
        if request.method == "DELETE":
            self.state.delete_event(calendar_id, event_id, account=account)
            return Response(status=204)
        return _json(
            self.state.update_event(
                calendar_id,
                event_id,
                self._body(request),
                patch=request.method == "PATCH",
                account=account,
            )
        )

    def on_instances(
        self, request: Request, account: str, calendar_id: str, event_id: str
    ) -> Response:
        return _json(
            self.state.instances(calendar_id, event_id, dict(request.args), account=account)
        )

    def on_freebusy(self, request: Request, account: str) -> Response:
        return _json(self.state.freebusy(self._body(request), account=account))

    def on_watch(self, request: Request, account: str, calendar_id: str) -> Response:
        return _json(self.state.watch(calendar_id, self._body(request), account=account))

    def on_channel_stop(self, request: Request, account: str) -> Response:
        self.state.stop_channel(self._body(request))
        return Response(status=204)

    # --- OAuth ------------------------------------------------------------------------
    def on_oauth_consent(self, request: Request, account: None) -> Response:
        params = request.values
        redirect_uri = params.get("redirect_uri", "")
        client_id = params.get("client_id", "")
        if client_id not in self.state.clients or not redirect_uri:
            return Response(
                "<h1>Error 400: invalid_request</h1><p>Unknown client or missing redirect_uri.</p>",
                status=400,
                content_type="text/html",
            )
        state = params.get("state")
        if request.method == "POST":
            query: dict[str, str] = {}
            if params.get("decision") == "allow" and params.get("email"):
                query["code"] = self.state.create_code(
                    client_id=client_id,
                    email=params["email"],
                    redirect_uri=redirect_uri,
                    scope=params.get("scope", ""),
                    code_challenge=params.get("code_challenge") or None,
                    code_challenge_method=params.get("code_challenge_method") or None,
                )
                query["scope"] = params.get("scope", "")
            else:
                query["error"] = "access_denied"
            if state:
                query["state"] = state
            separator = "&" if "?" in redirect_uri else "?"
            return Response(
                status=302, headers={"Location": redirect_uri + separator + urlencode(query)}
            )
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        accounts = "".join(
            f'<option value="{html.escape(email)}">{html.escape(email)}</option>'
            for email in sorted(self.state.accounts)
        )
        login_hint = html.escape(params.get("login_hint", ""))
        page = f"""<!doctype html><title>Sign in - Google Calendar emulator</title>
<h1>calcache's Google emulator</h1>
<p>An application wants to see your calendars ({html.escape(params.get("scope", ""))}).</p>
<form method="post">{hidden}
<label>Account <input name="email" list="accounts" value="{login_hint}"></label>
<datalist id="accounts">{accounts}</datalist>
<button name="decision" value="allow">Allow</button>
<button name="decision" value="deny">Deny</button></form>"""
        return Response(page, content_type="text/html; charset=utf-8")

    def on_oauth_token(self, request: Request, account: None) -> Response:
        form = dict(request.form)
        if request.authorization and request.authorization.type == "basic":
            # RFC 6749 2.3.1: client credentials may come as HTTP Basic auth instead.
            form.setdefault("client_id", request.authorization.username or "")
            form.setdefault("client_secret", request.authorization.password or "")
        grant = form.get("grant_type")
        try:
            if grant == "authorization_code":
                return _json(self.state.exchange_code(form))
            if grant == "refresh_token":
                return _json(self.state.refresh(form))
            raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant}")
        except OAuthError as exc:
            return _json(
                {"error": exc.error, "error_description": exc.description}, status=exc.status
            )

    # --- control API ----------------------------------------------------------------
    def on_ctl_reset(self, request: Request, account: None) -> Response:
        self.state.reset()
        return _json({"ok": True})

    def on_ctl_state(self, request: Request, account: None) -> Response:
        return _json(self.state.snapshot())

    def on_ctl_accounts(self, request: Request, account: None) -> Response:
        body = self._body(request)
        return _json(self.state.add_account(body["email"], time_zone=body.get("time_zone", "UTC")))

    def on_ctl_account_token(self, request: Request, account: None, email: str) -> Response:
        if email.lower() not in self.state.accounts:
            raise ApiError(404, "notFound", f"No account {email}")
        return _json(
            self.state.issue_tokens(
                email.lower(),
                client_id=DEFAULT_CLIENT_ID,
                scope="https://www.googleapis.com/auth/calendar",
            )
        )

    def on_ctl_revoke(self, request: Request, account: None, email: str) -> Response:
        return _json({"revoked": self.state.revoke(email)})

    def on_ctl_expire(self, request: Request, account: None, email: str) -> Response:
        self.state.expire_access_tokens(email)
        return _json({"ok": True})

    def on_ctl_calendars(self, request: Request, account: None) -> Response:
        body = self._body(request)
        calendar = self.state.add_calendar(
            owner=body["owner"],
            calendar_id=body.get("id"),
            summary=body.get("summary"),
            time_zone=body.get("time_zone"),
        )
        return _json(self.state.calendar_json(calendar))

    def on_ctl_share(self, request: Request, account: None, calendar_id: str) -> Response:
        self.state.share_calendar(calendar_id, self._body(request)["email"])
        return _json({"ok": True})

    def on_ctl_events(self, request: Request, account: None, calendar_id: str) -> Response:
        return _json(self.state.insert_event(calendar_id, self._body(request)))

    def on_ctl_event(
        self, request: Request, account: None, calendar_id: str, event_id: str
    ) -> Response:
        if request.method == "DELETE":
            self.state.delete_event(calendar_id, event_id)
            return Response(status=204)
        return _json(
            self.state.update_event(calendar_id, event_id, self._body(request), patch=True)
        )

    def on_ctl_busy(self, request: Request, account: None, calendar_id: str) -> Response:
        calendar = self.state.resolve_calendar(calendar_id, None)
        lo = parse_datetime(request.args["timeMin"], field="timeMin")
        hi = parse_datetime(request.args["timeMax"], field="timeMax")
        with self.state.lock:
            busy = self.state.busy_intervals(calendar, lo, hi)
        return _json({"busy": [{"start": s.isoformat(), "end": e.isoformat()} for s, e in busy]})

    def on_ctl_clock(self, request: Request, account: None) -> Response:
        if request.method == "POST":
            body = self._body(request)
            now = parse_datetime(body["now"], field="now") if body.get("now") else None
            advance = (
                timedelta(seconds=float(body["advance_seconds"]))
                if body.get("advance_seconds")
                else None
            )
            freeze = body.get("freeze")
            self.state.set_clock(now=now, advance=advance, freeze=freeze)
        return _json({"now": format_timestamp(self.state.now())})

    def on_ctl_invalidate(self, request: Request, account: None) -> Response:
        self.state.invalidate_sync_tokens(calendar_id=self._body(request).get("calendar_id"))
        return _json({"ok": True})

    def on_ctl_purge(self, request: Request, account: None) -> Response:
        return _json(
            {
                "purged": self.state.purge_tombstones(
                    calendar_id=self._body(request).get("calendar_id")
                )
            }
        )

    def on_ctl_faults(self, request: Request, account: None) -> Response:
        if request.method == "DELETE":
            with self.state.lock:
                self.state.faults.clear()
            return _json({"ok": True})
        body = self._body(request)
        kind = body.get("kind", "error")
        if kind not in ("error", "slow", "drop", FREEBUSY_FAULT):
            raise ApiError(400, "invalid", f"Unknown fault kind {kind!r}")
        calendar_id = body.get("calendar_id")
        if kind == FREEBUSY_FAULT and not (calendar_id and isinstance(calendar_id, str)):
            raise ApiError(400, "required", "A freebusy fault names its calendar_id.")
        self.state.add_fault(
            Fault(
                kind=kind,
                remaining=int(body.get("count", 1)),
                method=body.get("method"),
                path=body.get("path"),
                status=int(body.get("status", 500)),
                reason=body.get("reason", "backendError"),
                retry_after=body.get("retry_after"),
                delay=float(body.get("delay", 0)),
                calendar_id=calendar_id,
            )
        )
        return _json({"ok": True})

    def on_ctl_requests(self, request: Request, account: None) -> Response:
        with self.state.lock:
            if request.method == "DELETE":
                self.state.request_log.clear()
                return _json({"ok": True})
            return _json({"requests": list(self.state.request_log)})

    def on_ctl_deliveries(self, request: Request, account: None) -> Response:
        with self.state.lock:
            return _json({"deliveries": list(self.state.deliveries)})

    def on_ctl_options(self, request: Request, account: None) -> Response:
        body = self._body(request)
        if "page_shape" in body:
            if body["page_shape"] not in ("full", "short", "empty-first"):
                raise ApiError(400, "invalid", "page_shape is one of full, short, empty-first")
            with self.state.lock:
                self.state.page_shape = body["page_shape"]
        return _json({"page_shape": self.state.page_shape})

    def on_ctl_seed(self, request: Request, account: None) -> Response:
        from calcache.emulator.seed import seed_demo

        body = self._body(request)
        start = parse_datetime(body["now"], field="now") if body.get("now") else None
        return _json(seed_demo(self.state, now=start or self.state.now()))


def make_app(state: EmulatorState | None = None) -> EmulatorApp:
    return EmulatorApp(state)
