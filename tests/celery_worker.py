"""Real Celery workers for the tests: `celery -A project worker` subprocesses against
the machine's Redis or RabbitMQ, on the test database and the test emulator.

Each test session uses its own queue (and, on Redis, a database it empties first), so a
message left behind by an earlier run, or by a worker a test killed, never reaches it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("CALCACHE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
RABBITMQ_URL = os.environ.get("CALCACHE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": REDIS_URL, "rabbitmq": RABBITMQ_URL}
SESSION_QUEUE = f"calcache-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
NO_BROKER = (
    "NO CELERY BROKER REACHABLE: neither Redis nor RabbitMQ answers "
    f"({', '.join(BROKERS.values())}); the real-worker tests did not run"
)


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    port = parts.port or {"redis": 6379, "amqp": 5672}.get(parts.scheme, 0)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def available_brokers() -> list[str]:
    return [name for name, url in BROKERS.items() if reachable(url)]


def empty_broker(url: str) -> None:
    """Drop what earlier sessions left in the Redis test database (queues, unacked
    messages); on RabbitMQ every session's queue is new and deleted at its end."""
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url).flushdb()


def delete_queue(url: str, queue: str = SESSION_QUEUE) -> None:
    from kombu import Connection

    with Connection(url) as conn, contextlib.suppress(Exception):
        channel: Any = conn.default_channel
        channel.queue_delete(queue)


def queued_messages(url: str, queue: str = SESSION_QUEUE) -> int:
    """Messages waiting in ``queue`` (declared if missing, as a worker would)."""
    from kombu import Connection

    with Connection(url) as conn:
        channel: Any = conn.default_channel
        return int(channel.queue_declare(queue, durable=True).message_count)


def database_url() -> str:
    """The URL of the test database this process uses (pytest-django created it)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = quote(settings.get("USER") or "")
    password = settings.get("PASSWORD")
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings['NAME']}"


@dataclass
class Worker:
    """One worker process group (the main process and its prefork children)."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready after {timeout} s:\n{self.log()}")

    def wait_until(self, condition: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Poll ``condition``; on timeout fail with the worker's log as it is then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise AssertionError(
            f"timed out after {timeout} s waiting for {what}; worker log:\n{self.log()[-5000:]}"
        )

    def kill(self) -> None:
        """SIGKILL to the whole group: what a crashed machine looks like to the broker."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # warm shutdown
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def start_worker(
    broker_url: str,
    *,
    emulator_url: str,
    queue: str = SESSION_QUEUE,
    concurrency: int = 2,
    extra_env: dict[str, str] | None = None,
) -> Worker:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        # Redelivery of a dead worker's task within seconds, not the production hour.
        "CELERY_BROKER_TRANSPORT_OPTIONS": (
            '{"visibility_timeout": 5, "unacked_restore_interval": 1,'
            ' "unacked_restore_throttle": 1}'
        ),
        "CALCACHE_GOOGLE_API_URL": f"{emulator_url}/calendar/v3/",
        "CALCACHE_GOOGLE_TOKEN_URI": f"{emulator_url}/token",
        "CALCACHE_GOOGLE_BACKOFF_SECONDS": "0.01",
        "CALCACHE_SYNC_LEASE_SECONDS": "3",
        "CALCACHE_LOG_LEVEL": "INFO",
        **(extra_env or {}),
    }
    handle, log_name = tempfile.mkstemp(prefix="calcache-celery-", suffix=".log")
    with os.fdopen(handle, "wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "project",
                "worker",
                "--queues",
                queue,
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"test-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process=process, log_path=Path(log_name))
    worker.wait_ready()
    return worker


@contextmanager
def producer_for(broker_url: str, settings: Any, queue: str = SESSION_QUEUE) -> Iterator[Any]:
    """Point this process's Celery app (and calcache's broker check) at ``broker_url``."""
    from project.celery import app

    saved = (app.conf.broker_url, app.conf.task_default_queue)
    settings.CELERY_BROKER_URL = broker_url
    app.conf.update(broker_url=broker_url, task_default_queue=queue)
    _drop_connections(app)
    try:
        yield app
    finally:
        app.conf.update(broker_url=saved[0], task_default_queue=saved[1])
        _drop_connections(app)


@contextmanager
def eager_tasks() -> Iterator[None]:
    """``.delay()`` and ``.apply_async()`` run the task at once in this process, as
    ``Task.apply`` does, instead of sending it to a broker."""
    from project.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = eager


def _drop_connections(app: Any) -> None:
    # Pools and queue declarations are built from the configuration on first use.
    app.close()
    app.__dict__.pop("amqp", None)
