"""A database outage, end to end: the site (gunicorn) and ``sync_calendars`` run in
processes of their own against a throwaway PostgreSQL cluster that the test stops in
the middle of a sync and starts again (README "On call: outages").

Runs the same on both CI legs: the cluster is independent of DATABASE_URL.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import psycopg

from calcache.emulator import EmulatorClient
from calcache.emulator.server import EmulatorServer
from tests.commands import sync_summary
from tests.postgres_server import PostgresServer, free_port
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "oncall@example.com"
CALENDARS = [EMAIL, "standups@example.com", "releases@example.com"]
WAITING = "The database failed during the sync; waiting up to"


class Output:
    """A pipe read line by line in a thread, so the test can wait for a line."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)


class Site:
    """The host project in subprocesses: manage.py commands, and gunicorn serving it."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.port = 0

    def manage(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def python(self, module: str, stdin: str) -> str:
        completed = subprocess.run(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        return completed.stdout

    @contextmanager
    def serving(self) -> Iterator[Site]:
        self.port = free_port()
        log = (self.logs / "gunicorn.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "project.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                "2",
                "--timeout",
                "120",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: self._answers() or process.poll() is not None, timeout=120)
            assert process.poll() is None, (self.logs / "gunicorn.log").read_text()[-3000:]
            yield self
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()

    def _answers(self) -> bool:
        try:
            self.get("/calendar-cache/availability/")
        except OSError:
            return False
        return True

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            connection.close()


class Command:
    """A manage.py command running in the background, its output read as it comes."""

    def __init__(self, site: Site, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=site.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout = Output(self.process.stdout)
        self.stderr = Output(self.process.stderr)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        """Wait for it to exit: its status, standard output and standard error."""
        status = self.process.wait(timeout=timeout)
        self.stdout.thread.join(timeout=60)
        self.stderr.thread.join(timeout=60)
        return status, self.stdout.text, self.stderr.text

    def kill(self) -> None:
        if self.running:
            self.process.kill()
        self.process.wait(timeout=60)


def waiting_on_a_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as watcher:
        row = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])


def test_database_outage_answers_503_and_the_sync_records_its_errors(
    throwaway_postgres: PostgresServer,
    google_emulator_server: EmulatorServer,
    emulator: EmulatorClient,
    tmp_path: Path,
) -> None:
    server = throwaway_postgres
    database = "calcache_outage"
    url = server.create_database(database)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": url,
        "DATABASE_REPLICA_URL": "",
        "CALCACHE_READ_DATABASE": "default",
        "DB_POOL_MAX_SIZE": "0",
        # persistent connections: the site must also recover the one the restart broke
        "CONN_MAX_AGE": "60",
        "CACHE_URL": "locmemcache://",
        "CELERY_BROKER_URL": "",
        "CALCACHE_GOOGLE_API_URL": google_emulator_server.api_url,
        "CALCACHE_GOOGLE_TOKEN_URI": google_emulator_server.token_uri,
        "CALCACHE_GOOGLE_AUTH_URI": google_emulator_server.auth_uri,
        "CALCACHE_GOOGLE_BACKOFF_SECONDS": "0.01",
        "CALCACHE_SHADOW_SAMPLE_RATE": "0",
        "PYTHONUNBUFFERED": "1",
    }
    site = Site(env, tmp_path)
    migrated = site.manage("migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr[-3000:]

    emulator.add_account(EMAIL)
    for calendar_id in CALENDARS[1:]:
        emulator.add_calendar(EMAIL, calendar_id=calendar_id, summary=calendar_id)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for calendar_id in CALENDARS:
        begins = start + timedelta(days=1, hours=9)
        emulator.add_event(calendar_id, start=begins, end=begins + timedelta(hours=1))
    given = {"token": emulator.authorized_token(EMAIL), "calendars": CALENDARS}
    session = json.loads(site.python("tests.calcache.outage_setup", json.dumps(given)))["session"]
    cookie = {"Cookie": f"sessionid={session}"}
    first = site.manage("sync_calendars")
    assert first.returncode == 0, first.stdout + first.stderr
    assert sync_summary(first.stdout)["synced (full)"] == 3
    order = server.psql("SELECT calendar_id FROM calcache_selectedcalendar ORDER BY id", database)
    first_id, second_id, third_id = order.split()

    window = f"start={start:%Y-%m-%dT%H:%M:%SZ}&end={start + timedelta(days=7):%Y-%m-%dT%H:%M:%SZ}"
    api = f"/calendar-cache/availability/?{window}"
    with site.serving():
        status, _, body = site.get(api, **cookie)
        assert status == 200, body

        # The outage starts mid-run: the second calendar's sync waits for its token row,
        # which this test holds, when the server goes down.
        holder = psycopg.connect(url)
        holder.execute(
            "SELECT 1 FROM calcache_calendarsynctoken WHERE calendar_id = %s FOR UPDATE",
            [second_id],
        )
        sync = Command(site, "sync_calendars", "--db-wait", "300")
        try:
            wait_for(lambda: waiting_on_a_lock(url) or not sync.running, timeout=120)
            assert sync.running, sync.stderr.text
            server.stop()
            with suppress(psycopg.Error):
                holder.close()
            wait_for(lambda: WAITING in sync.stderr.text or not sync.running, timeout=120)
            assert sync.running, sync.stderr.text

            # While it is down: the API answers JSON 503 with Retry-After, whatever the
            # Accept header says; the pages a friendly 503.
            for accept in ("application/json", "text/html"):
                status, headers, body = site.get(api, Accept=accept, **cookie)
                assert (status, headers.get("Retry-After")) == (503, "30"), body
                assert headers["Content-Type"] == "application/json"
                assert "database is unavailable" in json.loads(body)["error"]
            for page in ("me/", "calendars/", "dashboard/", "connect/google/"):
                status, headers, body = site.get(f"/calendar-cache/{page}", **cookie)
                assert (status, headers.get("Retry-After")) == (503, "30"), (page, body)
                assert headers["Content-Type"].startswith("text/html")
                assert "Calendars are unavailable for a moment" in body, page
                assert "Our database is not answering" in body, page

            server.start()
            code, out, err = sync.finish()
        finally:
            sync.kill()  # only when a failure above left it running

        assert code == 1, out + err
        table = sync_summary(out)
        assert (table["calendars"], table["synced (incremental)"], table["failed"]) == (3, 1, 2)
        failed = re.findall(r"^  FAILED (\S+): database unavailable: ", out, flags=re.MULTILINE)
        assert failed == [second_id, third_id], out
        assert "not recorded" not in out
        assert "Traceback" not in out + err
        assert len(err.splitlines()) < 15, err  # one line per failed calendar, no tracebacks
        assert "CommandError: 2 of 3 calendar(s) failed." in err

        # Back up: the errors are on the token rows and the dashboard, and the API answers.
        errors = server.psql(
            "SELECT calendar_id, last_error <> '', last_error_at IS NOT NULL"
            " FROM calcache_calendarsynctoken ORDER BY calendar_id",
            database,
        )
        assert sorted(errors.splitlines()) == sorted(
            [f"{first_id}|f|f", f"{second_id}|t|t", f"{third_id}|t|t"]
        )
        status, _, body = site.get("/calendar-cache/dashboard/", **cookie)
        assert status == 200 and body.count("database unavailable") == 2, body[-2000:]
        status, _, body = site.get(api, **cookie)
        assert status == 200, body
        assert "busy" in json.loads(body)

    # Down before any calendar is listed: one line, exit status 1.
    server.stop()
    unlisted = site.manage("sync_calendars")
    assert unlisted.returncode == 1
    assert unlisted.stdout == "Sync summary: no calendar synced, the database is unavailable.\n"
    assert unlisted.stderr.startswith("CommandError: The database is unavailable (Operational")
    assert unlisted.stderr.endswith("; no calendar was synced.\n")
    assert len(unlisted.stderr.splitlines()) == 1, unlisted.stderr
