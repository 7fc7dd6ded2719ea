"""System checks report missing or contradictory configuration by id."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from calcache.checks import check_deploy, check_settings
from flags.checks import check_shared_cache, check_waffle_model


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
    ],
)
def test_bad_configuration_is_reported(overrides: dict[str, Any], expected: list[str]) -> None:
    with override_settings(**overrides):
        assert ids(check_settings()) == expected


def test_webhook_on_loopback_may_be_plain_http() -> None:
    with override_settings(
        CALCACHE_WEBHOOK_URL="http://127.0.0.1:8000/calendar-cache/webhooks/google/",
        CALCACHE_WEBHOOK_TOKEN="secret",
    ):
        assert check_settings() == []


def test_errors_stop_management_commands() -> None:
    with (
        override_settings(CALCACHE_WEBHOOK_URL="https://example.com/hook/"),
        pytest.raises(SystemCheckError, match="calcache.E001"),
    ):
        call_command("check")


def test_deploy_warnings() -> None:
    assert ids(check_deploy()) == ["calcache.W001"]
    with override_settings(
        CALCACHE_ENCRYPTION_KEYS=[Fernet.generate_key().decode()],
        CALCACHE_GOOGLE_API_URL="http://127.0.0.1:8765/calendar/v3/",
    ):
        assert ids(check_deploy()) == ["calcache.W002"]


def test_flags_checks() -> None:
    assert check_waffle_model() == []
    with override_settings(WAFFLE_FLAG_MODEL="waffle.Flag"):
        assert ids(check_waffle_model()) == ["flags.E002"]
    assert ids(check_shared_cache()) == ["flags.W001"]
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}
    ):
        assert check_shared_cache() == []


def test_checks_reject_a_celery_runner_without_broker_and_bad_numbers(settings: Any) -> None:
    settings.CELERY_BROKER_URL = ""
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.CeleryRunner"
    settings.CALCACHE_SYNC_PAGE_SIZE = 5000
    found = {message.id for message in run_checks()}
    assert {"calcache.E010", "calcache.E011"} <= found
