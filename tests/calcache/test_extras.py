"""calcache.extras: the optional parts fail with the ``pip install`` that fixes them."""

from __future__ import annotations

import sys

import psycopg
import pytest

from calcache.extras import MissingExtra, import_psycopg


def test_import_psycopg_returns_psycopg_3() -> None:
    assert import_psycopg() is psycopg


def test_without_psycopg_import_psycopg_names_the_postgres_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import raises ImportError
    with pytest.raises(MissingExtra) as raised:
        import_psycopg()
    assert raised.value.extra == "postgres"
    assert raised.value.missing == "psycopg"
    assert isinstance(raised.value, ImportError)  # what a bare `import psycopg` raised
    assert str(raised.value) == (
        "PostgreSQL (psycopg 3) needs the optional 'postgres' extra (psycopg is not "
        "installed): pip install 'calcache[postgres]'"
    )
