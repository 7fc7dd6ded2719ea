"""The availability API under a real WSGI server, against a trivial view of the same site.

gunicorn (sync workers) serves bench/http_site.py, calcache's host project with a
trivial login-required JSON view (bench/http_urls.py) beside ``include("calcache.urls")``,
on a loopback socket this process binds to a free port and hands over (``fd://``), and
is stopped at the end. Clients are threads of this process, each with its own
``http.client`` connection (kept alive when the server allows it; gunicorn's sync workers
close each one, so a request is a new connection), signed in with a session cookie made
in the database for the sample's user. For each client count, short phases alternate
between ``GET /calendar-cache/availability/?start=&end=`` (the samples' users and windows)
and the trivial view, so noise hits both alike; each phase is bounded in time and in
requests. Every body is parsed and the availability answers' sources counted.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.availability import THREAD_POOL, Sample
from bench.common import ROOT, log, percentiles

AVAILABILITY_PATH = "/calendar-cache/availability/"
TRIVIAL_PATH = "/bench/ok/"  # bench/http_urls.py
MAX_REQUESTS_PER_PHASE = 50_000


def create_sessions(users: Sequence[Any]) -> dict[Any, str]:
    """A signed-in session per user, stored as a login would store it; user id -> key."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    engine = import_module(settings.SESSION_ENGINE)
    keys = {}
    for user in users:
        store = engine.SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        keys[user.pk] = store.session_key
    return keys


@contextmanager
def gunicorn(workers: int) -> Iterator[int]:
    """gunicorn serving bench/http_site.py on a free loopback port (yielded); stopped
    after, its log printed if it failed."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.http_site",
        "CALCACHE_BACKGROUND_RUNNER": THREAD_POOL,
        "PYTHONPATH": str(ROOT),
    }
    command = [
        *(sys.executable, "-m", "gunicorn", "--workers", str(workers)),
        *("--worker-class", "sync", "--bind", f"fd://{listener.fileno()}"),
        *("--chdir", str(ROOT), "--log-level", "warning", "--timeout", "60"),
        "project.wsgi:application",
    ]
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            command, env=env, pass_fds=[listener.fileno()], stdout=output, stderr=output
        )
        listener.close()
        try:
            _wait_ready(port, process)
            yield port
        except BaseException:
            output.seek(0)
            log(f"gunicorn output:\n{output.read()[-4000:]}")
            raise
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_ready(port: int, process: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", TRIVIAL_PATH, headers={"Accept": "application/json"})
            if conn.getresponse().status == 401:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


@dataclass
class Phase:
    """What the clients of one phase did."""

    latencies: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)
    errors: int = 0
    connections: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def seconds(self) -> float:
        return max(self.ended) - min(self.started) if self.started else 0.0


def _client(
    port: int,
    requests: Sequence[tuple[str, str]],
    first: int,
    seconds: float,
    cap: int,
    barrier: threading.Barrier,
    phase: Phase,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    errors = connections = 0
    answers: Counter[str] = Counter()
    barrier.wait()
    began = time.perf_counter()
    deadline = began + seconds
    n = first
    while time.perf_counter() < deadline and len(latencies) + errors < cap:
        cookie, path = requests[n % len(requests)]
        n += 1
        connections += conn.sock is None
        sent = time.perf_counter()
        try:
            conn.request("GET", path, headers={"Cookie": cookie, "Accept": "application/json"})
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            continue
        if response.status != 200:
            errors += 1
            continue
        latencies.append((time.perf_counter() - sent) * 1000)
        payload = json.loads(body)
        answers[str(payload.get("source", "ok" if payload.get("ok") else "?"))] += 1
    ended = time.perf_counter()
    conn.close()
    with phase.lock:
        phase.latencies.extend(latencies)
        phase.started.append(began)
        phase.ended.append(ended)
        phase.errors += errors
        phase.connections += connections
        phase.answers.update(answers)


def run_phase(
    port: int, requests: Sequence[tuple[str, str]], clients: int, seconds: float
) -> Phase:
    """``clients`` threads sending ``requests`` (cookie, path) round robin, each from its
    own offset, for ``seconds`` (at most MAX_REQUESTS_PER_PHASE in all)."""
    phase = Phase()
    barrier = threading.Barrier(clients)
    threads = [
        threading.Thread(
            target=_client,
            args=(
                port,
                requests,
                k * len(requests) // clients,
                seconds,
                MAX_REQUESTS_PER_PHASE // clients,
                barrier,
                phase,
            ),
            daemon=True,
        )
        for k in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return phase


def measure_http(
    *, samples: Sequence[Sample], clients: Sequence[int], seconds: float, rounds: int, workers: int
) -> dict[str, Any]:
    """Requests/s of the availability API and of the trivial view for each client count."""
    from django.conf import settings
    from django.contrib.sessions.models import Session

    from calcache.availability.live import iso

    users = {sample.user.pk: sample.user for sample in samples}
    keys = create_sessions(list(users.values()))
    cookie = {pk: f"{settings.SESSION_COOKIE_NAME}={key}" for pk, key in keys.items()}
    views = {
        "availability": [
            (
                cookie[s.user.pk],
                f"{AVAILABILITY_PATH}?start={iso(s.start)}&end={iso(s.end)}",
            )
            for s in samples
        ],
        "trivial": [(cookie[s.user.pk], TRIVIAL_PATH) for s in samples],
    }
    phases: dict[tuple[int, str], list[Phase]] = {}
    try:
        with gunicorn(workers) as port:
            log(f"  gunicorn ({workers} sync workers) on 127.0.0.1:{port}")
            for requests in views.values():  # warm-up: imports, connections, prepared statements
                run_phase(port, requests, min(4, max(clients)), min(1.0, seconds))
            for n in clients:
                for r in range(rounds):
                    order = list(views) if r % 2 == 0 else list(views)[::-1]
                    for view in order:
                        phases.setdefault((n, view), []).append(
                            run_phase(port, views[view], n, seconds)
                        )
                log(f"  {n} clients done")
    finally:
        Session.objects.filter(session_key__in=keys.values()).delete()
    result: dict[str, Any] = {
        "workers": workers,
        "worker_class": "sync",
        "seconds_per_phase": seconds,
        "rounds": rounds,
        "users": len(users),
        "clients": {},
    }
    answers: Counter[str] = Counter()
    for n in clients:
        entry: dict[str, Any] = {}
        for view in views:
            done = phases[(n, view)]
            count = sum(len(p.latencies) for p in done)
            elapsed = sum(p.seconds for p in done)
            entry[view] = {
                "requests": count,
                "seconds": elapsed,
                "requests_per_s": count / elapsed if elapsed else 0.0,
                "latency_ms": percentiles([ms for p in done for ms in p.latencies]),
                "errors": sum(p.errors for p in done),
                "connections_per_request": sum(p.connections for p in done) / max(1, count),
            }
            if view == "availability":
                for p in done:
                    answers.update(p.answers)
        entry["ratio"] = entry["availability"]["requests_per_s"] / max(
            1e-9, entry["trivial"]["requests_per_s"]
        )
        result["clients"][str(n)] = entry
    result["sources"] = dict(answers)
    return result
