"""Run by test_checks.py (``python -m tests.calcache.without_psycopg MODE``) in a process of
its own, with PostgreSQL on a port where nothing listens: ``without`` blocks psycopg's
import (the read database is PostgreSQL: Django itself cannot start on a PostgreSQL
default without a driver), ``psycopg2`` puts a psycopg2 module under Django's PostgreSQL
default. Prints the calcache.E017 messages and whether a connection was opened, as JSON."""

from __future__ import annotations

import json
import sys
from types import ModuleType

if sys.argv[1] == "without":
    sys.modules["psycopg"] = None  # type: ignore[assignment]  # import raises ImportError

import django  # noqa: E402

django.setup()

from django.core import checks  # noqa: E402
from django.db import connections  # noqa: E402


def main() -> None:
    if sys.argv[1] == "psycopg2":
        driver = ModuleType("psycopg2")
        driver.__version__ = "2.9.10 (dt dec pq3 ext lo64)"  # type: ignore[attr-defined]
        connections["default"].Database = driver  # type: ignore[attr-defined]
    seen: dict[str, object] = {
        # databases=[]: Django 6.1's JSONField check would otherwise connect to each one
        "errors": [
            [m.msg, m.hint] for m in checks.run_checks(databases=[]) if m.id == "calcache.E017"
        ],
        "backend_loaded": "django.db.backends.postgresql.base" in sys.modules,
        "connected": any(c.connection is not None for c in connections.all(initialized_only=True)),
    }
    json.dump(seen, sys.stdout)


main()
