"""System checks for the flags app (``flags.E0xx``)."""

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
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend.endswith(("LocMemCache", "DummyCache")):
        return [
            Warning(
                f"The default cache is {backend.rsplit('.', 1)[-1]}: flag changes made in the "
                "admin reach other processes only when their cached copy times out.",
                hint="Use a shared cache (Redis, Memcached, database) in production.",
                id="flags.W001",
            )
        ]
    return []


def register() -> None:
    from django.core.checks import register as register_check

    register_check(check_waffle_model, Tags.compatibility)
    register_check(check_shared_cache, Tags.caches, deploy=True)
