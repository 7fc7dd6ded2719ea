"""The README's "Install into a host site", done as a new user would: build the sdist and
wheel with ``python -m build``, install the wheel into a fresh virtualenv, create a host
with ``django-admin startproject`` (no admin, no ``logout`` URL), add the README's own
snippets (extracted from README.md), migrate, connect an account through the emulator's
OAuth consent page, sync, and read the availability API and the week page.

Everything runs in subprocesses of that virtualenv; nothing of this repository is on
its path but what the wheel installed. Runs the same on both CI legs (the host has its
own SQLite database).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest

import calcache
from tests.commands import sync_summary
from tests.postgres_server import free_port
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
FLOW = ROOT / "tests" / "projects" / "readme_host" / "flow.py"
EMAIL = "ada@example.com"
SNIPPET = re.compile(r"<!-- readme-host: (\S+) -->\s*```python\n(.*?)```", re.DOTALL)
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", ".hypothesis", "db.sqlite3*", "test-artifacts", "results",
)  # fmt: skip


CELERY_CHECK = """
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "waffle", "flags",
                    "calcache"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    WAFFLE_FLAG_MODEL="flags.Flag",
    CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
)
django.setup()
from django.core.checks import run_checks
for message in run_checks():
    print(message.id, message.msg, message.hint)
"""


CELERY_ENQUEUE = (
    CELERY_CHECK.split("from django.core.checks")[0]
    + """
from django.core.management import call_command
from django.core.management.base import CommandError
call_command("migrate", verbosity=0)
try:
    call_command("sync_calendars", "--enqueue", skip_checks=True)
except CommandError as exc:
    print("CommandError", exc)
"""
)


def readme_snippets() -> list[tuple[str, str]]:
    """The README's host-site code blocks, each with the file of the host it goes into."""
    return SNIPPET.findall((ROOT / "README.md").read_text())


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{' '.join(map(str, args))} exited {completed.returncode}\n"
        f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    )
    return completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build`` on a copy of the checkout (the build writes into its source)."""
    work = tmp_path_factory.mktemp("build")
    source = work / "calcache"
    shutil.copytree(ROOT, source, ignore=COPY_IGNORE)
    run(sys.executable, "-m", "build", "--outdir", work / "dist", source, cwd=work)
    (wheel,) = (work / "dist").glob("calcache-*.whl")
    (sdist,) = (work / "dist").glob("calcache-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def host_python(tmp_path_factory: pytest.TempPathFactory, built: dict[str, Path]) -> Path:
    """A fresh virtualenv with only the core install of the built wheel."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        built["wheel"], cwd=home)  # fmt: skip
    return python


def test_the_wheel_holds_the_two_apps_and_their_data(built: dict[str, Path]) -> None:
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = Parser().parsestr(
            wheel.read(f"calcache-{calcache.__version__}.dist-info/METADATA").decode()
        )
    tops = {name.split("/")[0] for name in names}
    assert tops == {"calcache", "flags", f"calcache-{calcache.__version__}.dist-info"}
    for needed in (
        "calcache/py.typed",
        "flags/py.typed",
        "calcache/migrations/0001_initial.py",
        "flags/migrations/0001_initial.py",
        "calcache/templates/calcache/base.html",
        f"calcache-{calcache.__version__}.dist-info/licenses/LICENSE",
    ):
        assert needed in names
    requires = metadata.get_all("Requires-Dist", [])
    core = sorted(r.split(">")[0].split("<")[0].split("[")[0] for r in requires if "extra" not in r)
    assert core == [
        "Django", "cryptography", "django-waffle", "google-api-python-client", "google-auth",
        "google-auth-httplib2", "google-auth-oauthlib", "tenacity", "tqdm",
    ]  # fmt: skip
    extras = set(metadata.get_all("Provides-Extra", []))
    assert extras >= {"celery", "emulator", "postgres", "metrics"}
    assert "Framework :: Django :: 6.1" in metadata.get_all("Classifier", [])
    assert metadata["License-Expression"] == "MIT"


def test_the_sdist_holds_the_documents_not_the_repositorys_own_site(built: dict[str, Path]) -> None:
    with tarfile.open(built["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "CHANGELOG.md", "docs/rollout.md", "calcache/py.typed"} <= names
    assert not {name for name in names if name.startswith(("tests/", "bench/", "project/"))}


def test_a_part_without_its_extra_names_the_extra(host_python: Path, tmp_path: Path) -> None:
    for module, extra in (
        ("calcache.tasks", "celery"),
        ("calcache.background.beat", "celery"),
        ("calcache.emulator", "emulator"),
    ):
        completed = subprocess.run(
            [host_python, "-c", f"import {module}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 1
        assert f"pip install 'calcache[{extra}]'" in completed.stderr, completed.stderr
    # A broker configured without the extra: the checks say so before any task is sent, and
    # `sync_calendars --enqueue` names the extra instead of failing on an import.
    checked = run(host_python, "-c", CELERY_CHECK, cwd=tmp_path)
    assert "calcache.E016" in checked and "pip install 'calcache[celery]'" in checked, checked
    enqueued = subprocess.run(
        [host_python, "-c", CELERY_ENQUEUE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "CommandError" in enqueued.stdout, enqueued.stdout + enqueued.stderr
    assert "pip install 'calcache[celery]'" in enqueued.stdout


@pytest.fixture
def host(host_python: Path, built: dict[str, Path], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``django-admin startproject`` with the README's snippets, and the emulator from the
    ``emulator`` extra serving on a free port."""
    run(host_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        f"{built['wheel']}[emulator]", cwd=tmp_path)  # fmt: skip
    site = tmp_path / "site"
    site.mkdir()
    run(host_python.parent / "django-admin", "startproject", "hostsite", site, cwd=tmp_path)
    package = site / "hostsite"
    # startproject's quotes differ between Django versions: drop the lines, not the text
    without_admin = re.compile(
        r"^.*(django\.contrib\.admin|admin\.site\.urls|import admin).*\n", re.M
    )
    settings = without_admin.sub("", (package / "settings.py").read_text())
    urls = without_admin.sub("", (package / "urls.py").read_text())
    assert "admin" not in settings.split("INSTALLED_APPS")[1].split("]")[0]
    assert "admin.site" not in urls
    files = {"settings.py": settings, "urls.py": urls}
    snippets = readme_snippets()
    assert [name for name, _ in snippets] == ["settings.py", "urls.py", "settings.py"]
    for name, code in snippets:
        files[name] += "\n\n# From calcache's README\n" + code
    for name, text in files.items():
        (package / name).write_text(text)

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CALCACHE_"))},
        "DJANGO_SETTINGS_MODULE": "hostsite.settings",
        "CALCACHE_EMULATOR_URL": f"http://127.0.0.1:{port}",
        "PYTHONPATH": str(site),
    }
    log = (tmp_path / "emulator.log").open("w")
    emulator = subprocess.Popen(
        [host_python, "manage.py", "run_google_emulator", "--port", str(port), "--seed", "demo"],
        cwd=site,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _answers(port) or emulator.poll() is not None, timeout=120)
        assert emulator.poll() is None, (tmp_path / "emulator.log").read_text()
        yield {"python": host_python, "site": site, "env": env}
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
        log.close()


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_new_host_site_runs_from_the_readme(host: dict[str, Any]) -> None:
    python, site, env = host["python"], host["site"], host["env"]

    def manage(*args: str) -> str:
        return run(python, "manage.py", *args, cwd=site, env=env)

    def flow(action: str) -> dict[str, Any]:
        out = run(python, FLOW, action, EMAIL, cwd=site, env=env)
        return json.loads(out.strip().splitlines()[-1])

    checked = manage("check")
    assert "System check identified no issues" in checked or "WARNINGS" in checked, checked
    assert "ERRORS" not in checked, checked
    manage("migrate", "--no-input")
    manage("calendar_cache_rollout", "set-write", "--everyone")
    manage("calendar_cache_rollout", "set-read", "--everyone")

    connected = flow("connect")
    assert connected["start"] == 302
    assert connected["consent_url"].startswith(env["CALCACHE_EMULATOR_URL"] + "/o/oauth2/auth")
    assert connected["consent_page"] == 200
    assert connected["callback"] == 302
    assert connected["callback_location"].endswith("/calendar-cache/calendars/")
    assert connected["calendars"] == 200
    assert EMAIL in connected["calendars_html"]

    synced = sync_summary(manage("sync_calendars"))
    assert synced["calendars"] == 1 and synced["synced (full)"] == 1, synced
    assert synced["events upserted"] > 0 and synced["failed"] == 0, synced

    answered = flow("read")
    assert answered["api"] == 200, answered
    body = answered["api_body"]
    assert body["source"] == "sql"
    assert body["busy"], "the demo seed has busy time every week"
    assert answered["week"] == 200
    week = answered["week_html"]
    assert 'id="source" data-source="sql"' in week
    # this week's busy blocks are listed, not "free" or "nothing connected"
    assert 'id="busy-list"' in week and 'id="week-free"' not in week
    assert 'id="no-calendars"' not in week
