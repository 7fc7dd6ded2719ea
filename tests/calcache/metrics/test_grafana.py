"""contrib/grafana/calcache.json is a dashboard Grafana can import, and every metric its
panels query is one the exposition holds."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from calcache.emulator import EmulatorClient
from calcache.exceptions import GoogleUnavailable
from calcache.services import get_availability
from calcache.sync.engine import SyncOutcome, sync_calendar
from tests.calcache.metrics.conftest import NOW, Scrape, connected_calendar

DASHBOARD = Path(__file__).resolve().parents[3] / "contrib" / "grafana" / "calcache.json"
METRIC = re.compile(r"\bcalcache_[a-z0-9_]+\b")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def queried_metrics() -> set[str]:
    return {
        name
        for panel in dashboard()["panels"]
        for target in panel["targets"]
        for name in METRIC.findall(target["expr"])
    }


def test_the_dashboard_is_importable_json() -> None:
    board = dashboard()
    assert board["title"] == "calcache" and board["uid"] == "calcache"
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"], panel["title"]


@pytest.mark.django_db
def test_every_queried_metric_is_exposed(
    emulator: EmulatorClient, write_flag_on: None, scrape: Callable[[], Scrape]
) -> None:
    selected = connected_calendar(emulator, events=2)
    emulator.fail_next(1, status=503, path="/events")  # retried: one Google error
    assert sync_calendar(selected, now=NOW).outcome == SyncOutcome.FULL
    get_availability(user=selected.credential.user, start=NOW, end=NOW + timedelta(hours=8))
    unsynced = connected_calendar(emulator, "grace@example.com")
    emulator.fail_next(1, status=503, path="/freeBusy")
    with pytest.raises(GoogleUnavailable):  # a live read that fails: a read error
        get_availability(user=unsynced.credential.user, start=NOW, end=NOW + timedelta(hours=8))

    exposed = scrape().names
    queried = queried_metrics()
    assert len(queried) >= 12
    assert queried <= exposed, sorted(queried - exposed)
