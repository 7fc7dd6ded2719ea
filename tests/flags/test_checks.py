"""The flags app's system checks: flags.E0xx for a broken set-up, flags.W001 for a cache
that does not carry flag changes from one process to the others."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks import Tags, run_checks
from django.test import override_settings

from flags.checks import check_shared_cache, check_waffle_model

ROOT = Path(__file__).resolve().parents[2]
REDIS = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


def test_waffle_model() -> None:
    assert check_waffle_model() == []
    with override_settings(WAFFLE_FLAG_MODEL="waffle.Flag"):
        assert [m.id for m in check_waffle_model()] == ["flags.E002"]


def test_a_local_memory_cache_warns_with_the_consequence_and_the_fix() -> None:
    with override_settings(CACHES={"default": {**settings.CACHES["default"], "TIMEOUT": 300}}):
        (warning,) = check_shared_cache()
    assert warning.id == "flags.W001"
    assert "LocMemCache, private to each process" in warning.msg
    assert "calendar_cache_rollout set-read" in warning.msg
    assert "only when its cached copy expires (300 s)" in warning.msg
    hint = str(warning.hint)
    assert "RedisCache" in hint and "DatabaseCache" in hint and "createcachetable" in hint
    with override_settings(CACHES=DUMMY):
        (warning,) = check_shared_cache()
    assert "keeps nothing" in warning.msg and "not enforced" in warning.msg
    with override_settings(CACHES=REDIS):
        assert check_shared_cache() == []


def test_the_warning_is_part_of_a_plain_check_not_only_deploy() -> None:
    with override_settings(SILENCED_SYSTEM_CHECKS=[]):
        found = run_checks(tags=[Tags.caches], include_deployment_checks=False)
    assert [m.id for m in found] == ["flags.W001"]


@pytest.mark.skipif(
    not settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"),
    reason="the suite runs on a shared cache (CACHE_URL): nothing is silenced",
)
def test_the_suite_silences_it_on_its_local_memory_cache() -> None:
    assert settings.SILENCED_SYSTEM_CHECKS == ["flags.W001"]
    started_by_the_suite = manage_check(PYTEST_VERSION=pytest.__version__)
    assert started_by_the_suite.returncode == 0, started_by_the_suite.stderr
    assert "flags.W001" not in started_by_the_suite.stdout + started_by_the_suite.stderr


def manage_check(**env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py check`` as from a shell: not under pytest, on the default cache."""
    drop = ("CACHE_URL", "DATABASE_URL", "PYTEST_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            **base,
            "DATABASE_URL": "sqlite:///:memory:",
            "CALCACHE_DEMO_ENV_FILE": os.devnull,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_manage_py_check_shows_it_on_the_default_cache_and_not_on_a_shared_one() -> None:
    done = manage_check()
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "(flags.W001) The default cache is LocMemCache" in output
    assert "calendar_cache_rollout set-read" in output
    shared = manage_check(CACHE_URL="dbcache://calcache_cache")
    assert shared.returncode == 0, shared.stderr
    assert "flags.W001" not in shared.stdout + shared.stderr
