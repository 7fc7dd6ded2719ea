"""Serving the emulator over HTTP on loopback, with push-notification delivery."""

from __future__ import annotations

import logging
import queue
import threading
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from calcache.emulator.app import EmulatorApp
from calcache.emulator.state import EmulatorState, Notification
from calcache.emulator.timeutil import format_timestamp

logger = logging.getLogger("calcache.emulator")

DELIVERY_TIMEOUT = 5.0


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("%s %s", self.requestline, code)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug(format, *args)

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002
        # Includes the traceback of an injected "drop" fault: expected, not an error.
        logger.debug(message, *args)


class PushDelivery:
    """POSTs notifications to channel addresses from a background thread, in order."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        # None stops the thread; an Event is set once everything before it was sent.
        self.queue: queue.Queue[Notification | threading.Event | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="emulator-push", daemon=True)
        state.notify = self.queue.put

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=DELIVERY_TIMEOUT + 1)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every notification queued so far was attempted (for tests)."""
        done = threading.Event()
        self.queue.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            self._deliver(item)

    def _deliver(self, notification: Notification) -> None:
        channel = notification.channel
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Message-Number": str(notification.number),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-State": notification.state,
            "X-Goog-Resource-URI": self.state.resource_uri(channel),
            "X-Goog-Channel-Expiration": channel.expiration.strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "Content-Length": "0",
        }
        if channel.token:
            headers["X-Goog-Channel-Token"] = channel.token
        request = urllib.request.Request(channel.address, data=b"", headers=headers, method="POST")
        record: dict[str, Any] = {
            "channel_id": channel.id,
            "state": notification.state,
            "message_number": notification.number,
            "address": channel.address,
            "at": format_timestamp(self.state.now()),
        }
        try:
            with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT) as response:
                record["status"] = response.status
        except urllib.error.HTTPError as exc:
            record["status"] = exc.code
        except OSError as exc:
            record["status"] = None
            record["error"] = str(exc)
        with self.state.lock:
            self.state.deliveries.append(record)
            del self.state.deliveries[:-5000]


class EmulatorServer:
    """The emulator on a real HTTP server in a background thread.

    ``port=0`` picks a free port. Use as a context manager, or ``start()`` /
    ``stop()``. ``url`` is the base URL; ``api_url`` is what
    ``CALCACHE_GOOGLE_API_URL`` should be set to.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, state: EmulatorState | None = None
    ) -> None:
        self.state = state or EmulatorState()
        self.app = EmulatorApp(self.state)
        self.push = PushDelivery(self.state)
        self.server: BaseWSGIServer = make_server(
            host, port, self.app, threaded=True, request_handler=_QuietHandler
        )
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="emulator-http", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/calendar/v3/"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def auth_uri(self) -> str:
        return f"{self.url}/o/oauth2/auth"

    def start(self) -> EmulatorServer:
        self.push.start()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.push.stop()

    def serve_forever(self) -> None:
        self.push.start()
        try:
            self.server.serve_forever()
        finally:
            self.push.stop()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
