"""Across processes: two worker processes count into the same PROMETHEUS_MULTIPROC_DIR
and one scrape (from a third process, this one) sums them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from calcache.emulator import EmulatorClient
from calcache.emulator.server import EmulatorServer
from tests.calcache.metrics.conftest import Scrape

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).with_name("worker_process.py")


def start_worker(
    server: EmulatorServer, multiproc_dir: Path, email: str, token: dict[str, Any]
) -> subprocess.Popen[str]:
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": "sqlite://:memory:",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
        "CALCACHE_GOOGLE_API_URL": server.api_url,
        "CALCACHE_GOOGLE_TOKEN_URI": server.token_uri,
        "CALCACHE_GOOGLE_AUTH_URI": server.auth_uri,
    }
    env.pop("DATABASE_REPLICA_URL", None)
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps({"email": email, "token": token})],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_scrape_sums_the_worker_processes(
    emulator: EmulatorClient,
    google_emulator_server: EmulatorServer,
    scrape: Callable[[], Scrape],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = timezone.now()
    workers = []
    for number, email in enumerate(("ada@example.com", "grace@example.com"), start=1):
        token = emulator.add_account(email)
        for hour in range(number * 2):  # 2 and 4 events
            start = now + timedelta(hours=hour + 1)
            emulator.add_event(email, start=start, end=start + timedelta(minutes=30))
        workers.append(start_worker(google_emulator_server, tmp_path, email, token))
    reports = []
    for process in workers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-3000:]
        reports.append(json.loads(out))
    assert [r["outcome"] for r in reports] == ["full", "full"]
    assert [r["written"] for r in reports] == [2, 4]
    assert len(list(tmp_path.glob("*.db"))) >= 2  # each process wrote its own files

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    summed = scrape()
    sources = {r["source"] for r in reports}
    for source in sources:
        expected = sum(1 for r in reports if r["source"] == source)
        assert summed.value("calcache_availability_answers_total", source=source) == expected
        assert summed.value("calcache_availability_answer_seconds_count", source=source) == (
            expected
        )
    assert summed.value("calcache_sync_runs_total", outcome="full") == 2
    assert summed.value("calcache_sync_events_written_total") == 6
    assert summed.value("calcache_sync_last_success_timestamp_seconds") >= now.timestamp()
    # this process's own counters are not in the directory; the rollout gauges are read
    # from this process's database
    assert summed.value("calcache_metrics_database_up") == 1
    assert summed.value("calcache_rollout_stage") == 1
    # the host's own metrics, in the same files, are not calcache's to expose
    assert summed.names and all(name.startswith("calcache_") for name in summed.names)


def test_an_unusable_multiprocess_directory_turns_metrics_off_not_the_site(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "not-made"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": "sqlite://:memory:",
        "PROMETHEUS_MULTIPROC_DIR": str(missing),
    }
    env.pop("DATABASE_REPLICA_URL", None)
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "calcache.W011" in checked.stderr and "is not a directory" in checked.stderr
    assert "Metrics are off" in checked.stderr  # the error logged at start-up
