"""calcache installs into another host site: its own settings, another URL prefix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_api_works_in_a_minimal_host_under_another_prefix() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.projects.minimal_host.check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    assert result["url"] == "/scheduling/cache/availability/"
    assert result["anonymous"] == 401
    assert result["bad"][0] == 400 and "'end' is required" in result["bad"][1]["error"]
    # a user with no calendars: not covered by SQL, no JSON, and live freeBusy has nothing
    # to ask for -> an empty answer
    assert result["no_calendars"] == [200, {"busy": [], "source": "live"}]
