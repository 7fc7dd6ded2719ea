"""Run by test_without_prometheus.py in a process of its own where prometheus-client
cannot be imported: Django starts, the metrics view answers 501 and the system check
warns. Prints what it saw as JSON."""

from __future__ import annotations

import json
import sys

sys.modules["prometheus_client"] = None  # type: ignore[assignment]  # import raises ImportError

import django  # noqa: E402

django.setup()

from django.core import checks  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from calcache import metrics  # noqa: E402


def main() -> None:
    seen: dict[str, object] = {"available": metrics.available()}
    seen["checks_without_token"] = [m.id for m in checks.run_checks()]
    with override_settings(CALCACHE_METRICS_TOKEN="t0ken", ALLOWED_HOSTS=["testserver"]):
        response = Client().get("/calendar-cache/metrics/", HTTP_AUTHORIZATION="Bearer t0ken")
        seen["status"] = response.status_code
        seen["body"] = response.json()
        seen["warnings"] = {m.id: m.msg for m in checks.run_checks() if m.id == "calcache.W010"}
    json.dump(seen, sys.stdout)


main()
