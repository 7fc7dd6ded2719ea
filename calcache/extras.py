"""The optional parts of calcache and the extras that install them.

The core install carries only what the reusable app needs at run time. A part that
needs more raises ``MissingExtra`` when its imports fail, so a host that uses it without
the extra gets one clear error naming the ``pip install`` to run, not a bare
``ModuleNotFoundError`` from deep inside; the system checks ask ``missing_module``::

    try:
        from celery import shared_task
    except ImportError as exc:
        raise MissingExtra("celery", exc) from exc
"""

from __future__ import annotations

import sys
from importlib import import_module
from importlib.util import find_spec
from types import ModuleType

from calcache.exceptions import CalcacheError

#: extra name -> (the modules it provides, what in calcache needs it)
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "celery": (("celery", "kombu"), "Celery workers and the beat schedule (calcache.tasks)"),
    "emulator": (("werkzeug", "dateutil.rrule"), "the Google Calendar emulator"),
    "metrics": (("prometheus_client",), "Prometheus metrics (calcache.metrics)"),
    "postgres": (("psycopg",), "PostgreSQL (psycopg 3)"),
}


class MissingExtra(CalcacheError, ImportError):
    """A part of calcache was used without the optional dependencies it needs."""

    def __init__(self, extra: str, cause: ImportError | str) -> None:
        if isinstance(cause, str):
            missing, detail = cause, f"{cause} is not installed"
        else:
            missing = cause.name or ""
            detail = f"{missing} is not installed" if missing else str(cause)
        self.extra = extra
        self.missing = missing
        super().__init__(
            f"{EXTRAS[extra][1]} needs the optional {extra!r} extra ({detail}): "
            f"{install_hint(extra)}",
            name=missing or None,
        )


def missing_module(extra: str) -> str | None:
    """The first module of ``extra`` that is not installed, or None when all are (for the
    system checks, which must not import what they look for)."""
    for module in EXTRAS[extra][0]:
        if module in sys.modules:  # imported already, or blocked (None)
            if sys.modules[module] is None:
                return module
            continue
        try:
            found = find_spec(module) is not None
        except ModuleNotFoundError:  # the parent package of a dotted name is missing
            found = False
        if not found:
            return module
    return None


def import_psycopg() -> ModuleType:
    """psycopg 3, imported where calcache talks to PostgreSQL itself; MissingExtra when
    it does not import (calcache.E017 reports the same at start-up)."""
    try:
        return import_module("psycopg")
    except ImportError as exc:
        raise MissingExtra("postgres", exc) from exc


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install 'calcache[{extra}]'"
