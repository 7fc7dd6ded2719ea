"""Settings of the ``flags`` app, read lazily from ``django.conf.settings``."""

from __future__ import annotations

from django.conf import settings


class FlagsSettings:
    @property
    def bucket_by_team(self) -> bool:
        """``FLAGS_BUCKET_BY_TEAM`` (default False): a team member's percentage bucket is
        their team's (the explicitly given team, else their team with the lowest id),
        so one organization flips together."""
        return bool(getattr(settings, "FLAGS_BUCKET_BY_TEAM", False))

    @property
    def strict(self) -> bool:
        """``FLAGS_STRICT``: an unknown flag name raises ``UnknownFlag`` instead of being off.

        Default (None): strict under ``DEBUG`` and while Django's test environment
        is set up; off with a warning (logged once per name) in production.
        """
        value = getattr(settings, "FLAGS_STRICT", None)
        if value is not None:
            return bool(value)
        from django.core import mail

        # setup_test_environment() installs mail.outbox; nothing else does.
        return bool(settings.DEBUG) or hasattr(mail, "outbox")


conf = FlagsSettings()
