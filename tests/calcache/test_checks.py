"""System checks report missing or contradictory configuration by id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from calcache.checks import check_deploy, check_settings

ROOT = Path(__file__).resolve().parents[2]


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_default_settings_pass() -> None:
    assert check_settings() == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"CALCACHE_WEBHOOK_URL": "https://example.com/hook/"}, ["calcache.E001"]),
        (
            {"CALCACHE_WEBHOOK_URL": "http://example.com/hook/", "CALCACHE_WEBHOOK_TOKEN": "t"},
            ["calcache.E002"],
        ),
        ({"CALCACHE_WEBHOOK_TOKEN": "x" * 257}, ["calcache.E003"]),
        ({"CALCACHE_SYNC_FUTURE_DAYS": 0}, ["calcache.E004"]),
        ({"CALCACHE_SYNC_PAST_DAYS": "soon"}, ["calcache.E004"]),
        ({"CALCACHE_SYNC_PAST_DAYS": 120, "CALCACHE_RETENTION_DAYS": 90}, ["calcache.E005"]),
        ({"CALCACHE_ENCRYPTION_KEYS": ["not-a-key"]}, ["calcache.E006"]),
        ({"CALCACHE_GOOGLE_CLIENT_ID": "id"}, ["calcache.E007"]),
        ({"CALCACHE_GOOGLE_API_URL": "googleapis"}, ["calcache.E008"]),
        ({"CALCACHE_GOOGLE_MAX_ATTEMPTS": 0}, ["calcache.E009"]),
        ({"CALCACHE_GOOGLE_TIMEOUT": "soon"}, ["calcache.E009"]),
        ({"CALCACHE_READ_DATABASE": "no-such-alias"}, ["calcache.E012"]),
        ({"CALCACHE_REPLICA_MAX_LAG_SECONDS": -1}, ["calcache.E012"]),
        ({"CALCACHE_REPLICA_MAX_LAG_SECONDS": "a while"}, ["calcache.E012"]),
        ({"CALCACHE_AVAILABILITY_PERMISSION": "no.such.module.allow"}, ["calcache.E014"]),
        ({"CALCACHE_AVAILABILITY_PERMISSION": "calcache.checks.no_such_hook"}, ["calcache.E014"]),
        ({"CALCACHE_AVAILABILITY_PERMISSION": "allow_everyone"}, ["calcache.E014"]),
        ({"CALCACHE_AVAILABILITY_PERMISSION": "calcache.conf.DEFAULTS"}, ["calcache.E014"]),
        ({"CALCACHE_SHADOW_SAMPLE_RATE": 5}, ["calcache.E015"]),
        ({"CALCACHE_SHADOW_SAMPLE_RATE": -0.1}, ["calcache.E015"]),
        ({"CALCACHE_SHADOW_SAMPLE_RATE": "often"}, ["calcache.E015"]),
        ({"CALCACHE_SHADOW_SAMPLE_RATE": None}, ["calcache.E015"]),
        ({"CALCACHE_SHADOW_SAMPLE_RATE": float("nan")}, ["calcache.E015"]),
    ],
)
def test_bad_configuration_is_reported(overrides: dict[str, Any], expected: list[str]) -> None:
    with override_settings(**overrides):
        assert ids(check_settings()) == expected


def allow_staff(request: Any, target_user: Any) -> bool:
    return bool(request.user.is_staff)


@pytest.mark.parametrize(
    "overrides",
    [
        {"CALCACHE_AVAILABILITY_PERMISSION": f"{__name__}.allow_staff"},
        {"CALCACHE_SHADOW_SAMPLE_RATE": 0},
        {"CALCACHE_SHADOW_SAMPLE_RATE": 1},
        {"CALCACHE_SHADOW_SAMPLE_RATE": "0.5"},
    ],
)
def test_good_hooks_and_rates_pass(overrides: dict[str, Any]) -> None:
    with override_settings(**overrides):
        assert check_settings() == []


def test_bad_permission_and_rate_messages_say_what_and_how() -> None:
    with override_settings(CALCACHE_AVAILABILITY_PERMISSION="calcache.conf.DEFAULTS"):
        (error,) = check_settings()
    assert (
        error.msg
        == "CALCACHE_AVAILABILITY_PERMISSION 'calcache.conf.DEFAULTS' is a dict, not a function."
    )
    assert "(request, target_user) -> bool" in str(error.hint)
    with override_settings(CALCACHE_AVAILABILITY_PERMISSION="no.such.module.allow"):
        (error,) = check_settings()
    assert "'no.such.module.allow' does not import (No module named 'no')" in error.msg
    with override_settings(CALCACHE_SHADOW_SAMPLE_RATE=5):
        (error,) = check_settings()
    assert error.msg == "CALCACHE_SHADOW_SAMPLE_RATE is 5, not a share between 0 and 1."


def test_webhook_on_loopback_may_be_plain_http() -> None:
    with override_settings(
        CALCACHE_WEBHOOK_URL="http://127.0.0.1:8000/calendar-cache/webhooks/google/",
        CALCACHE_WEBHOOK_TOKEN="secret",
    ):
        assert check_settings() == []


# Django 6.1's JSONField check asks each database it is given whether it supports JSON
# (by default every alias, the tests' read mirror too): give it the test database.
@pytest.mark.django_db
def test_errors_stop_management_commands() -> None:
    with (
        override_settings(CALCACHE_WEBHOOK_URL="https://example.com/hook/"),
        pytest.raises(SystemCheckError, match="calcache.E001"),
    ):
        call_command("check", databases=["default"])


def test_deploy_warnings() -> None:
    assert ids(check_deploy()) == ["calcache.W001"]
    with override_settings(
        CALCACHE_ENCRYPTION_KEYS=[Fernet.generate_key().decode()],
        CALCACHE_GOOGLE_API_URL="http://127.0.0.1:8765/calendar/v3/",
    ):
        assert ids(check_deploy()) == ["calcache.W002"]


# Django 6.1's JSONField check asks each database it is given whether it supports JSON
# (by default every alias, the tests' read mirror too): give it the test database.
@pytest.mark.django_db
def test_checks_reject_a_celery_runner_without_broker_and_bad_numbers(settings: Any) -> None:
    settings.CELERY_BROKER_URL = ""
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.CeleryRunner"
    settings.CALCACHE_SYNC_PAGE_SIZE = 5000
    found = {message.id for message in run_checks(databases=["default"])}
    assert {"calcache.E010", "calcache.E011"} <= found


NOWHERE = "postgres://calcache@127.0.0.1:9/calcache_e017"  # the discard port: nothing listens


def e017_seen(mode: str, **env: str) -> dict[str, Any]:
    """What ``without_psycopg.py`` saw in a process of its own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CALCACHE_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "tests.calcache.without_psycopg", mode],
        cwd=ROOT,
        env=base | {"DJANGO_SETTINGS_MODULE": "project.settings", "PYTHONPATH": str(ROOT)} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    seen: dict[str, Any] = json.loads(completed.stdout)
    assert seen["connected"] is False  # the check looks at the driver, never at the server
    return seen


def test_a_postgresql_read_database_without_psycopg_is_an_error() -> None:
    seen = e017_seen(
        "without",
        DATABASE_URL="sqlite://:memory:",
        DATABASE_REPLICA_URL=NOWHERE,
        CALCACHE_READ_DATABASE="replica",
    )
    [[message, hint]] = seen["errors"]
    assert message == (
        "The database 'replica' is PostgreSQL, which calcache uses through psycopg 3.2 or "
        "newer, but psycopg is not installed."
    )
    assert hint.startswith("pip install 'calcache[postgres]' (psycopg>=3.2)")
    assert seen["backend_loaded"] is False  # nothing imported what is not there


def test_postgresql_on_psycopg2_is_an_error() -> None:
    seen = e017_seen("psycopg2", DATABASE_URL=NOWHERE)
    [[message, _hint]] = seen["errors"]  # default is also the read database: said once
    assert message == (
        "The database 'default' is PostgreSQL, which calcache uses through psycopg 3.2 or "
        "newer, but Django runs it on psycopg2 2.9.10 (dt dec pq3 ext lo64)."
    )


def test_postgresql_on_psycopg_3_passes() -> None:
    assert e017_seen("psycopg3", DATABASE_URL=NOWHERE)["errors"] == []
