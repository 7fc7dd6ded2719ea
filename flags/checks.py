"""System checks for the flags app (``flags.E0xx``, ``flags.W0xx``)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning


def check_waffle_model(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if not apps.is_installed("waffle"):
        errors.append(
            Error(
                "'waffle' is not in INSTALLED_APPS.",
                hint="flags builds on django-waffle: add 'waffle' before 'flags'.",
                id="flags.E001",
            )
        )
    model = getattr(settings, "WAFFLE_FLAG_MODEL", "waffle.Flag")
    if model != "flags.Flag":
        errors.append(
            Error(
                f"WAFFLE_FLAG_MODEL is {model!r}, not 'flags.Flag'.",
                hint="Set WAFFLE_FLAG_MODEL = 'flags.Flag' before the first migrate; otherwise "
                "teams and deterministic percentages are ignored.",
                id="flags.E002",
            )
        )
    return errors


def check_shared_cache(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``flags.W001``: the default cache is private to each process (or keeps nothing), so
    a flag change made in one process does not reach the others at once."""
    default = settings.CACHES.get("default", {})
    backend = default.get("BACKEND", "")
    name = backend.rsplit(".", 1)[-1]
    fix = (
        "Give CACHES['default'] a cache every process shares: "
        "django.core.cache.backends.redis.RedisCache, memcached, or "
        "django.core.cache.backends.db.DatabaseCache (then `manage.py createcachetable`)."
    )
    if backend.endswith("LocMemCache"):
        timeout = default.get("TIMEOUT", 300)
        until = "never" if timeout is None else f"only when its cached copy expires ({timeout} s)"
        return [
            Warning(
                f"The default cache is {name}, private to each process: a flag change made in "
                "another process (`manage.py calendar_cache_rollout set-read` in a shell, the "
                f"admin on another worker) reaches a running server {until}; the "
                "per-user live-call budget and sync pacing are counted per process too.",
                hint=fix,
                id="flags.W001",
            )
        ]
    if backend.endswith("DummyCache"):
        return [
            Warning(
                f"The default cache is {name}, which keeps nothing: every flag check reads "
                "the database, and the per-user live-call budget and sync pacing are not "
                "enforced.",
                hint=fix,
                id="flags.W001",
            )
        ]
    return []


def register() -> None:
    from django.core.checks import register as register_check

    register_check(check_waffle_model, Tags.compatibility)
    register_check(check_shared_cache, Tags.caches)
