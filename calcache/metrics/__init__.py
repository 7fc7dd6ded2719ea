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

import os

from calcache.extras import install_hint, missing_module

INSTALL_HINT = install_hint("metrics")


def available() -> bool:
    """Whether prometheus-client is installed."""
    return missing_module("metrics") is None


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str:
    """``PROMETHEUS_MULTIPROC_DIR``, read at each use; empty: one process."""
    return os.environ.get(MULTIPROC_ENV, "")


def multiprocess_dir_problem() -> str:
    """Why ``PROMETHEUS_MULTIPROC_DIR`` cannot be used, or empty when it is unset or a
    writable directory. prometheus-client opens its files there as the metrics are
    defined, so a bad directory would stop every process from starting."""
    path = multiprocess_dir()
    if not path:
        return ""
    if not os.path.isdir(path):
        return f"{MULTIPROC_ENV}={path!r} is not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{MULTIPROC_ENV}={path!r} is not writable by this process"
    return ""


def usable() -> bool:
    """prometheus-client is installed and its multiprocess directory, if any, usable."""
    return available() and not multiprocess_dir_problem()
