"""calcache's settings: one typed, documented property per ``CALCACHE_*`` setting.

Values are read from ``django.conf.settings`` on every access, so
``override_settings`` in tests and settings changed at run time take effect.
Use ``from calcache.conf import conf`` and ``conf.sync_past_days``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "CALCACHE_GOOGLE_API_URL": "https://www.googleapis.com/calendar/v3/",
    "CALCACHE_GOOGLE_TOKEN_URI": "https://oauth2.googleapis.com/token",
    "CALCACHE_GOOGLE_AUTH_URI": "https://accounts.google.com/o/oauth2/auth",
    "CALCACHE_GOOGLE_CLIENT_ID": "",
    "CALCACHE_GOOGLE_CLIENT_SECRET": "",
    "CALCACHE_WEBHOOK_TOKEN": "",
    "CALCACHE_WEBHOOK_URL": "",
    "CALCACHE_SYNC_PAST_DAYS": 30,
    "CALCACHE_SYNC_FUTURE_DAYS": 180,
    "CALCACHE_RETENTION_DAYS": 90,
    "CALCACHE_ENCRYPTION_KEYS": [],
    "CALCACHE_STORE_SUMMARY": True,
    "CALCACHE_JSON_CACHE_ENABLED": True,
    "CALCACHE_SHADOW_SAMPLE_RATE": 0.05,
    "CALCACHE_CHANNEL_TTL_DAYS": 7,
    "CALCACHE_CHANNEL_RENEW_MARGIN_HOURS": 24,
    "CALCACHE_BACKGROUND_RUNNER": "calcache.runner.ThreadPoolRunner",
    "CALCACHE_BACKGROUND_WORKERS": 2,
    "CALCACHE_AVAILABILITY_PERMISSION": "",
    "CALCACHE_RETIRE_AFTER_DAYS": 14,
    "CALCACHE_ROLLBACK_MIN_SAMPLES": 200,
    "CALCACHE_ROLLBACK_MISMATCH_PERCENT": 1.0,
    "CALCACHE_GOOGLE_TIMEOUT": 30.0,
    "CALCACHE_GOOGLE_MAX_ATTEMPTS": 5,
    "CALCACHE_GOOGLE_RETRY_MAX_SECONDS": 60.0,
    "CALCACHE_GOOGLE_BACKOFF_SECONDS": 0.5,
}


def _get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


class CalcacheSettings:
    """Typed access to the ``CALCACHE_*`` settings, with their defaults."""

    @property
    def google_api_url(self) -> str:
        """Base URL of the Calendar API v3; the bundled emulator's URL in tests and the demo.

        Always ends with ``/`` (google-api-python-client's ``api_endpoint`` needs it).
        """
        url = str(_get("CALCACHE_GOOGLE_API_URL"))
        return url if url.endswith("/") else url + "/"

    @property
    def google_token_uri(self) -> str:
        """OAuth 2.0 token endpoint, used to exchange codes and refresh access tokens."""
        return str(_get("CALCACHE_GOOGLE_TOKEN_URI"))

    @property
    def google_auth_uri(self) -> str:
        """OAuth 2.0 consent endpoint the connect flow sends the user to."""
        return str(_get("CALCACHE_GOOGLE_AUTH_URI"))

    @property
    def google_client_id(self) -> str:
        """OAuth client id of the host site's Google Cloud project."""
        return str(_get("CALCACHE_GOOGLE_CLIENT_ID"))

    @property
    def google_client_secret(self) -> str:
        """OAuth client secret matching ``google_client_id``."""
        return str(_get("CALCACHE_GOOGLE_CLIENT_SECRET"))

    @property
    def webhook_token(self) -> str:
        """Shared secret carried by every push channel (``X-Goog-Channel-Token``)."""
        return str(_get("CALCACHE_WEBHOOK_TOKEN"))

    @property
    def webhook_url(self) -> str:
        """Public https URL of the webhook view given to ``events.watch``; empty: no push."""
        return str(_get("CALCACHE_WEBHOOK_URL"))

    @property
    def webhooks_enabled(self) -> bool:
        """Push channels are opened only when a webhook URL is configured."""
        return bool(self.webhook_url)

    @property
    def sync_past_days(self) -> int:
        """The synced window starts this many days before now."""
        return int(_get("CALCACHE_SYNC_PAST_DAYS"))

    @property
    def sync_future_days(self) -> int:
        """The synced window ends this many days after now; it rolls forward daily."""
        return int(_get("CALCACHE_SYNC_FUTURE_DAYS"))

    @property
    def retention_days(self) -> int:
        """``cleanup_calendar_cache`` deletes events that ended longer ago than this."""
        return int(_get("CALCACHE_RETENTION_DAYS"))

    @property
    def encryption_keys(self) -> list[str]:
        """Fernet keys for OAuth tokens at rest, newest first (the first one encrypts).

        Empty: one key derived from ``SECRET_KEY`` (plus ``SECRET_KEY_FALLBACKS``
        for decryption only). A comma-separated string is accepted too.
        """
        value = _get("CALCACHE_ENCRYPTION_KEYS")
        if isinstance(value, str):
            value = value.split(",")
        return [str(key).strip() for key in value if str(key).strip()]

    @property
    def json_cache_enabled(self) -> bool:
        """The legacy JSON cache is read and written (False after stage 4's retirement)."""
        return bool(_get("CALCACHE_JSON_CACHE_ENABLED"))

    @property
    def shadow_sample_rate(self) -> float:
        """Share (0-1) of availability answers, for users with the write flag on, that are
        also computed from the other source and compared (``CacheComparison``)."""
        return float(_get("CALCACHE_SHADOW_SAMPLE_RATE"))

    @property
    def channel_ttl_days(self) -> int:
        """Lifetime asked of Google for each push channel (Google may grant less)."""
        return int(_get("CALCACHE_CHANNEL_TTL_DAYS"))

    @property
    def channel_renew_margin_hours(self) -> int:
        """``renew_calendar_channels`` replaces channels expiring within this many hours."""
        return int(_get("CALCACHE_CHANNEL_RENEW_MARGIN_HOURS"))

    @property
    def background_runner(self) -> str:
        """Dotted path of the class that runs webhook-triggered syncs in the background."""
        return str(_get("CALCACHE_BACKGROUND_RUNNER"))

    @property
    def background_workers(self) -> int:
        """Threads of the default in-process background runner."""
        return int(_get("CALCACHE_BACKGROUND_WORKERS"))

    @property
    def availability_permission(self) -> str:
        """Dotted path to ``(request, target_user) -> bool`` allowing ``?user=`` on the
        availability API; empty: users see only their own availability."""
        return str(_get("CALCACHE_AVAILABILITY_PERMISSION"))

    @property
    def retire_after_days(self) -> int:
        """Days the read flag must stay at 100% before ``retire_json_cache`` runs."""
        return int(_get("CALCACHE_RETIRE_AFTER_DAYS"))

    @property
    def rollback_min_samples(self) -> int:
        """Comparisons the automatic rollback looks at (the newest ones); it acts only
        once this many exist."""
        return int(_get("CALCACHE_ROLLBACK_MIN_SAMPLES"))

    @property
    def rollback_mismatch_percent(self) -> float:
        """Mismatch rate (percent) over those comparisons above which the kill switch is
        turned on automatically."""
        return float(_get("CALCACHE_ROLLBACK_MISMATCH_PERCENT"))

    @property
    def store_summary(self) -> bool:
        """Keep event titles in SQL (off: summaries are never stored, for privacy)."""
        return bool(_get("CALCACHE_STORE_SUMMARY"))

    @property
    def google_timeout(self) -> float:
        """Seconds before one HTTP request to Google is abandoned (then retried)."""
        return float(_get("CALCACHE_GOOGLE_TIMEOUT"))

    @property
    def google_max_attempts(self) -> int:
        """Attempts per Google call for 5xx, 429, rate-limit 403s and dropped connections."""
        return int(_get("CALCACHE_GOOGLE_MAX_ATTEMPTS"))

    @property
    def google_retry_max_seconds(self) -> float:
        """Cap on the total time one Google call may spend retrying."""
        return float(_get("CALCACHE_GOOGLE_RETRY_MAX_SECONDS"))

    @property
    def google_backoff_seconds(self) -> float:
        """First backoff step; later ones double (with full jitter) up to 30 s each."""
        return float(_get("CALCACHE_GOOGLE_BACKOFF_SECONDS"))


conf = CalcacheSettings()
