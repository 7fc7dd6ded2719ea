"""events.watch and push notifications: the api#channel reply, a ``sync`` message
then ``exists`` messages POSTed with the X-Goog-* headers to the channel address,
nothing after channels.stop or after the channel expired, overlapping channels."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from calcache.emulator.client import EmulatorClient
from calcache.emulator.server import EmulatorServer
from tests.calcache.emulator.helpers import ADA, NOW


class Receiver:
    """A tiny webhook endpoint on 127.0.0.1 that records every POST."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.received.append(
                    {
                        "path": self.path,
                        # header names are case-insensitive (urllib sends X-goog-...)
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def states(self, channel_id: str | None = None) -> list[str]:
        return [
            r["headers"]["x-goog-resource-state"]
            for r in self.received
            if channel_id is None or r["headers"]["x-goog-channel-id"] == channel_id
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(google_emulator_server: EmulatorServer) -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    google_emulator_server.push.wait_idle()
    hook.close()


def watch(service: Any, address: str, channel_id: str = "chan-1", **extra: Any) -> dict[str, Any]:
    body = {"id": channel_id, "type": "web_hook", "address": address, **extra}
    return dict(service.events().watch(calendarId="primary", body=body).execute())


def change(emulator: EmulatorClient, calendar_id: str = ADA, hours: int = 1) -> None:
    start = NOW + timedelta(days=1, hours=hours)
    emulator.add_event(calendar_id, start=start, end=start + timedelta(hours=1))


def test_watch_returns_a_channel(service: Any, receiver: Receiver) -> None:
    expiration = int((NOW + timedelta(days=1)).timestamp() * 1000)
    channel = watch(service, receiver.url(), token="secret=1", expiration=expiration)
    assert channel["kind"] == "api#channel"
    assert channel["id"] == "chan-1"
    assert channel["resourceId"]
    assert "/calendars/" in channel["resourceUri"] and "/events" in channel["resourceUri"]
    assert channel["token"] == "secret=1"
    assert int(channel["expiration"]) == expiration


def test_notifications_sync_then_exists_with_goog_headers(
    emulator: EmulatorClient,
    google_emulator_server: EmulatorServer,
    service: Any,
    receiver: Receiver,
) -> None:
    channel = watch(service, receiver.url(), token="tenant=7")
    google_emulator_server.push.wait_idle()
    change(emulator)
    service.events().insert(
        calendarId="primary",
        body={
            "start": {"dateTime": "2026-06-05T09:00:00Z"},
            "end": {"dateTime": "2026-06-05T10:00:00Z"},
        },
    ).execute()
    google_emulator_server.push.wait_idle()
    assert receiver.states() == ["sync", "exists", "exists"]
    expiration = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC)
    for number, message in enumerate(receiver.received, start=1):
        headers = message["headers"]
        assert message["path"] == "/hook"
        assert message["body"] == b""
        assert headers["x-goog-channel-id"] == "chan-1"
        assert headers["x-goog-message-number"] == str(number)
        assert headers["x-goog-resource-id"] == channel["resourceId"]
        assert headers["x-goog-resource-uri"] == channel["resourceUri"]
        assert headers["x-goog-channel-token"] == "tenant=7"
        assert parsedate_to_datetime(headers["x-goog-channel-expiration"]) == expiration
    deliveries = emulator.deliveries()
    assert [(d["state"], d["status"]) for d in deliveries] == [
        ("sync", 200),
        ("exists", 200),
        ("exists", 200),
    ]


def test_no_token_header_without_a_token(
    emulator: EmulatorClient,
    google_emulator_server: EmulatorServer,
    service: Any,
    receiver: Receiver,
) -> None:
    watch(service, receiver.url())
    google_emulator_server.push.wait_idle()
    assert receiver.states() == ["sync"]
    assert "x-goog-channel-token" not in receiver.received[0]["headers"]


def test_no_notifications_after_channels_stop(
    emulator: EmulatorClient,
    google_emulator_server: EmulatorServer,
    service: Any,
    receiver: Receiver,
) -> None:
    channel = watch(service, receiver.url())
    change(emulator, hours=1)
    google_emulator_server.push.wait_idle()
    service.channels().stop(
        body={"id": channel["id"], "resourceId": channel["resourceId"]}
    ).execute()
    change(emulator, hours=2)
    google_emulator_server.push.wait_idle()
    assert receiver.states() == ["sync", "exists"]
    with pytest.raises(HttpError) as caught:  # already stopped
        service.channels().stop(
            body={"id": channel["id"], "resourceId": channel["resourceId"]}
        ).execute()
    assert caught.value.resp.status == 404


def test_no_notifications_after_expiry(
    emulator: EmulatorClient,
    google_emulator_server: EmulatorServer,
    service: Any,
    receiver: Receiver,
) -> None:
    expiration = emulator.now() + timedelta(minutes=1)
    watch(service, receiver.url(), expiration=int(expiration.timestamp() * 1000))
    change(emulator, hours=1)
    emulator.advance_clock(timedelta(minutes=2))
    change(emulator, hours=2)
    google_emulator_server.push.wait_idle()
    assert receiver.states() == ["sync", "exists"]


def test_overlapping_channels_both_notify_until_the_old_is_stopped(
    emulator: EmulatorClient,
    google_emulator_server: EmulatorServer,
    service: Any,
    receiver: Receiver,
) -> None:
    old = watch(service, receiver.url("/old"), channel_id="old")
    watch(service, receiver.url("/new"), channel_id="new")
    change(emulator, hours=1)
    google_emulator_server.push.wait_idle()
    service.channels().stop(body={"id": "old", "resourceId": old["resourceId"]}).execute()
    change(emulator, hours=2)
    google_emulator_server.push.wait_idle()
    assert receiver.states("old") == ["sync", "exists"]
    assert receiver.states("new") == ["sync", "exists", "exists"]


def test_changes_on_another_calendar_do_not_notify(
    emulator: EmulatorClient,
    google_emulator_server: EmulatorServer,
    service: Any,
    receiver: Receiver,
) -> None:
    team = emulator.add_calendar(ADA, calendar_id="team@group.calendar.google.com")["id"]
    watch(service, receiver.url())
    change(emulator, team)
    google_emulator_server.push.wait_idle()
    assert receiver.states() == ["sync"]


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x" * 65},
        {"id": "ok", "token": "t" * 257},
        {"id": "ok", "type": "email"},
    ],
)
def test_watch_validates_the_channel(
    service: Any, receiver: Receiver, body: dict[str, Any]
) -> None:
    full = {"type": "web_hook", "address": receiver.url(), **body}
    with pytest.raises(HttpError) as caught:
        service.events().watch(calendarId="primary", body=full).execute()
    assert caught.value.resp.status == 400


def test_channel_ids_are_unique(service: Any, receiver: Receiver) -> None:
    watch(service, receiver.url(), channel_id="same")
    with pytest.raises(HttpError) as caught:
        watch(service, receiver.url(), channel_id="same")
    assert caught.value.resp.status == 400
