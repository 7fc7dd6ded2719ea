"""Migrations are complete and leave the rollout flags present and off."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection


@pytest.mark.django_db
def test_no_missing_migrations() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_availability_index_exists_on_this_database() -> None:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "calcache_calendarevent")
    index = constraints["calcache_event_busy_range"]
    assert index["columns"][:3] == ["credential_id", "calendar_id", "start_time"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'calcache_event_busy_range'"
            )
            (definition,) = cursor.fetchone()
            cursor.execute(
                "SELECT count(*) FROM pg_statistic_ext "
                "WHERE stxname = 'calcache_event_credential_calendar_stats'"
            )
            (statistics,) = cursor.fetchone()
        assert "INCLUDE (end_time)" in definition and "WHERE" in definition
        assert statistics == 1


@pytest.mark.django_db
def test_swapped_waffle_tables_do_not_block_truncating_users() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite flushes with DELETE; only PostgreSQL's TRUNCATE is affected")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid IN (to_regclass('waffle_flag_users'), to_regclass('waffle_flag_groups')) "
            "AND confrelid <> to_regclass('waffle_flag')"
        )
        (links,) = cursor.fetchone()
    assert links == 0
