"""calcache without prometheus-client: it starts and works, the metrics view says what to
install (501), and ``calcache.W010`` warns when metrics are configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core import checks

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("without_prometheus.py")


def test_without_prometheus_client() -> None:
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": "sqlite://:memory:",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("DATABASE_REPLICA_URL", None)
    completed = subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    seen = json.loads(completed.stdout)
    assert seen["available"] is False
    assert "calcache.W010" not in seen["checks_without_token"]
    assert seen["status"] == 501
    assert "pip install 'calcache[metrics]'" in seen["body"]["error"]
    [message] = seen["warnings"].values()
    assert "CALCACHE_METRICS_TOKEN set, but prometheus-client is not installed" in message


# Django 6.1's JSONField check asks each database it is given whether it supports JSON
# (by default every alias, the tests' read mirror too): give it the test database.
@pytest.mark.django_db
def test_with_prometheus_client_a_token_raises_no_warning(settings: Any) -> None:
    settings.CALCACHE_METRICS_TOKEN = "t0ken"
    assert "calcache.W010" not in {m.id for m in checks.run_checks(databases=["default"])}
