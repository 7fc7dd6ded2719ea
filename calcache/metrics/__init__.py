"""Prometheus metrics of availability answers, syncs, Google errors and the rollout
(docs/metrics.md).

Collected only when prometheus-client is installed (``pip install 'calcache[metrics]'``);
without it calcache works the same and the ``metrics/`` view answers 501. Counting goes
through calcache's signals (``calcache.signals``), whose receivers
``calcache.metrics.collectors.connect`` connects from the app's ``ready()``; the figures
kept in the database (rollout stage, shadow mismatches) are read when Prometheus
scrapes.
"""

from __future__ import annotations

from calcache.extras import install_hint, missing_module

INSTALL_HINT = install_hint("metrics")


def available() -> bool:
    """Whether prometheus-client is installed."""
    return missing_module("metrics") is None
