"""project/settings.py, the host project's settings: logging and database connections,
each read in a process of its own (settings are read once, at start-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_python(
    args: list[str], tmp_path: Path, env: dict[str, str], drop: tuple[str, ...] = ("DEBUG",)
) -> subprocess.CompletedProcess[str]:
    """``python args`` in the repository under project.settings; the environment is ours
    without the variables starting with ``drop``, plus ``env`` (a throwaway SQLite file
    unless DATABASE_URL is given)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    base["DATABASE_URL"] = f"sqlite:///{tmp_path / 'project.sqlite3'}"
    base["DJANGO_SETTINGS_MODULE"] = "project.settings"
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_project(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``script`` under project.settings in a new interpreter (see ``run_python``)."""
    prelude = "import django\ndjango.setup()\n"
    return run_python(["-c", prelude + textwrap.dedent(script)], tmp_path, env)


def database_settings(tmp_path: Path, **env: str) -> dict[str, Any]:
    done = run_project(
        """
        import json
        from django.conf import settings
        default = settings.DATABASES["default"]
        print(json.dumps({"age": default["CONN_MAX_AGE"], "options": default["OPTIONS"]}))
        """,
        tmp_path,
        **env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_500_with_debug_off_is_logged_to_stderr_with_its_traceback(tmp_path: Path) -> None:
    done = run_project(
        """
        from django.test import Client, override_settings
        from django.urls import path

        def broken(request):
            raise RuntimeError("the traceback an on-call engineer needs")

        urlpatterns = [path("broken/", broken)]
        with override_settings(ROOT_URLCONF="__main__", ALLOWED_HOSTS=["testserver"]):
            response = Client(raise_request_exception=False).get("/broken/")
        print(response.status_code)
        """,
        tmp_path,
        DEBUG="false",
    )
    assert done.stdout.strip() == "500", done.stderr
    assert "ERROR django.request: Internal Server Error: /broken/" in done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert "RuntimeError: the traceback an on-call engineer needs" in done.stderr


def test_postgresql_connections_are_closed_after_each_request_by_default(tmp_path: Path) -> None:
    found = database_settings(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused")
    assert found["age"] == 0
    assert "pool" not in found["options"]
    kept = database_settings(
        tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused", CONN_MAX_AGE="60"
    )
    assert kept["age"] == 60


def test_db_pool_max_size_turns_on_djangos_psycopg_pool(tmp_path: Path) -> None:
    found = database_settings(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused",
        DB_POOL_MAX_SIZE="8",
        CONN_MAX_AGE="60",  # ignored: Django refuses persistent connections with a pool
    )
    assert found["age"] == 0
    assert found["options"]["pool"] == {"min_size": 1, "max_size": 8, "timeout": 10.0}
    assert found["options"]["prepare_threshold"] == 5


@pytest.mark.django_db
def test_the_pool_keeps_the_availability_statement_prepared(tmp_path: Path) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("Django's connection pool is PostgreSQL's")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    done = run_project(
        """
        import json
        from datetime import UTC, datetime, timedelta
        from django.db import connection
        from calcache.selectors import busy_intervals

        start = datetime(2026, 3, 2, tzinfo=UTC)
        backends = set()
        for _ in range(12):  # each call takes a pooled connection and gives it back
            busy_intervals(user=1, start=start, end=start + timedelta(days=7))
            backends.add(connection.connection.info.backend_pid)
            connection.close()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE %s",
                ["%LEFT JOIN LATERAL%calcache_calendarevent%"],
            )
            prepared = cursor.fetchall()
        print(json.dumps({"backends": len(backends), "prepared": prepared}))
        """,
        tmp_path,
        DATABASE_URL=url,
        DB_POOL_MAX_SIZE="1",
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["backends"] == 1  # the same server connection every time: pooled, not new
    assert len(found["prepared"]) == 1  # prepared once, and kept while pooled
    generic, custom = found["prepared"][0]
    # run 6 and on ran prepared; after 5 custom plans the generic one is chosen and reused
    assert generic + custom == 12 - 5 and generic >= 1


def test_a_dead_workers_task_on_redis_comes_back_within_the_hour_and_ten_seconds(
    tmp_path: Path,
) -> None:
    done = run_project(
        """
        import json
        from django.conf import settings
        print(json.dumps(settings.CELERY_BROKER_TRANSPORT_OPTIONS))
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    options = json.loads(done.stdout)
    # above the longest retry countdown (30 min), which Redis also holds unacknowledged
    assert options["visibility_timeout"] == 3600 > 30 * 60
    # kombu scans for such messages every interval x throttle seconds (100 s by default)
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] == 10


DEMO_KEYS = ("DEBUG", "CACHE_URL", "CALCACHE_DEMO_ENV_FILE", "CALCACHE_GOOGLE_", "PYTEST_")
SHOW_DEMO_SETTINGS = (
    "import json; from django.conf import settings; print(json.dumps({"
    "'api': settings.CALCACHE_GOOGLE_API_URL, 'token': settings.CALCACHE_GOOGLE_TOKEN_URI, "
    "'auth': settings.CALCACHE_GOOGLE_AUTH_URI, 'client': settings.CALCACHE_GOOGLE_CLIENT_ID, "
    "'secret': settings.CALCACHE_GOOGLE_CLIENT_SECRET, 'debug': settings.DEBUG, "
    "'cache': settings.CACHES['default']['BACKEND']}))"
)


def demo_settings_seen(tmp_path: Path, **env: str) -> dict[str, Any]:
    """What ``manage.py shell`` in a second shell sees: our environment without DEBUG,
    the cache, the Google settings and pytest's marker, plus ``env``."""
    done = run_python(
        ["manage.py", "shell", "-v", "0", "-c", SHOW_DEMO_SETTINGS], tmp_path, env, DEMO_KEYS
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def demo_process(tmp_path: Path) -> Iterator[int]:
    """The pid of a running ``demo.py`` (a stand-in that waits for its stdin to close)."""
    script = tmp_path / "demo.py"
    script.write_text("import sys\nsys.stdin.read()\n")
    process = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE)
    try:
        yield process.pid
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


def test_a_running_demos_settings_reach_manage_py_in_a_second_shell(
    tmp_path: Path, demo_process: int
) -> None:
    from calcache.emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
    from project.demo import demo_settings, write_demo_env

    path = tmp_path / ".env.demo"
    write_demo_env(path, demo_settings("http://127.0.0.1:8765"), pid=demo_process)
    seen = demo_settings_seen(tmp_path, CALCACHE_DEMO_ENV_FILE=str(path))
    assert seen == {
        "api": "http://127.0.0.1:8765/calendar/v3/",
        "token": "http://127.0.0.1:8765/token",
        "auth": "http://127.0.0.1:8765/o/oauth2/auth",
        "client": DEFAULT_CLIENT_ID,
        "secret": DEFAULT_CLIENT_SECRET,
        "debug": True,
        "cache": "django.core.cache.backends.db.DatabaseCache",
    }
    # The demo's settings win over the shell's, as they do in the demo's own processes
    # (project/demo.py), so the second shell uses the cache and the Google the site uses.
    seen = demo_settings_seen(
        tmp_path,
        CALCACHE_DEMO_ENV_FILE=str(path),
        CALCACHE_GOOGLE_API_URL="https://www.googleapis.com/calendar/v3/",
        CACHE_URL="locmemcache://",
        DEBUG="0",
    )
    assert seen["api"] == "http://127.0.0.1:8765/calendar/v3/"
    assert seen["cache"] == "django.core.cache.backends.db.DatabaseCache"
    assert seen["debug"] is True
    # The processes the test suite starts never take a running demo's settings.
    seen = demo_settings_seen(
        tmp_path, CALCACHE_DEMO_ENV_FILE=str(path), PYTEST_VERSION=pytest.__version__
    )
    assert seen["api"] == "https://www.googleapis.com/calendar/v3/"


def test_a_stopped_demos_settings_are_ignored(tmp_path: Path) -> None:
    from project.demo import demo_settings, write_demo_env

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    path = tmp_path / ".env.demo"
    write_demo_env(path, demo_settings("http://127.0.0.1:8765"), pid=ended.pid)
    seen = demo_settings_seen(tmp_path, CALCACHE_DEMO_ENV_FILE=str(path))
    assert seen["api"] == "https://www.googleapis.com/calendar/v3/"
    assert seen["debug"] is False


def test_a_file_naming_a_live_process_that_is_not_the_demo_is_ignored(tmp_path: Path) -> None:
    from project.demo import demo_settings, live_demo_env, write_demo_env

    path = tmp_path / ".env.demo"
    # A killed demo's pid, reused by a program that is not the demo: this test's own.
    write_demo_env(path, demo_settings("http://127.0.0.1:8765"), pid=os.getpid())
    assert live_demo_env(path) is False
    seen = demo_settings_seen(tmp_path, CALCACHE_DEMO_ENV_FILE=str(path))
    assert seen["api"] == "https://www.googleapis.com/calendar/v3/"
    assert seen["debug"] is False


def test_the_demo_never_replaces_a_file_it_did_not_write(tmp_path: Path) -> None:
    from project.demo import remove_demo_env, write_demo_env

    path = tmp_path / ".env.demo"
    path.write_text("SECRET_KEY=mine\n")
    with pytest.raises(SystemExit, match="was not written by the demo"):
        write_demo_env(path, {"DEBUG": "1"}, pid=os.getpid())
    remove_demo_env(path, pid=os.getpid())
    assert path.read_text() == "SECRET_KEY=mine\n"
    path.unlink()
    write_demo_env(path, {"DEBUG": "1"}, pid=os.getpid())
    write_demo_env(path, {"DEBUG": "1"}, pid=os.getpid())  # its own file: rewritten
    remove_demo_env(path, pid=os.getpid() + 1)  # another demo's: kept
    assert path.exists()
    remove_demo_env(path, pid=os.getpid())
    assert not path.exists()
