"""calcache's settings: one typed, documented property per ``CALCACHE_*`` setting.

Values are read from ``django.conf.settings`` on every access, so
``override_settings`` in tests and settings changed at run time take effect.
Use ``from calcache.conf import conf`` and ``conf.sync_past_days``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

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
    "CALCACHE_BACKGROUND_RUNNER": "",
    "CALCACHE_BACKGROUND_WORKERS": 2,
    "CALCACHE_AVAILABILITY_PERMISSION": "",
    "CALCACHE_AVAILABILITY_MAX_USERS": 100,
    "CALCACHE_LIVE_TIMEOUT": 5.0,
    "CALCACHE_LIVE_CALLS_PER_MINUTE": 30,
    "CALCACHE_READ_DATABASE": "default",
    "CALCACHE_REPLICA_MAX_LAG_SECONDS": 30.0,
    "CALCACHE_RETIRE_AFTER_DAYS": 14,
    "CALCACHE_ROLLBACK_MIN_SAMPLES": 200,
    "CALCACHE_ROLLBACK_MISMATCH_PERCENT": 1.0,
    "CALCACHE_GOOGLE_TIMEOUT": 30.0,
    "CALCACHE_GOOGLE_MAX_ATTEMPTS": 5,
    "CALCACHE_GOOGLE_RETRY_MAX_SECONDS": 60.0,
    "CALCACHE_GOOGLE_BACKOFF_SECONDS": 0.5,
    "CALCACHE_STALE_AFTER_MINUTES": 180,
    "CALCACHE_DIRTY_GRACE_SECONDS": 120,
    "CALCACHE_STALE_SWEEP_LIMIT": 10_000,
    "CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE": 30,
    "CALCACHE_TASK_MAX_RETRIES": 8,
    "CALCACHE_SYNC_LEASE_SECONDS": 900,
    "CALCACHE_SYNC_LOCKING": "",
    "CALCACHE_SYNC_PAGE_SIZE": 2500,
    "CALCACHE_METRICS_TOKEN": "",
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
        """Key that signs each push channel's own ``X-Goog-Channel-Token``
        (``calcache.push.tokens``); channels opened before per-channel tokens carry it
        itself until renewed."""
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
    def celery_enabled(self) -> bool:
        """A Celery broker is configured (``CELERY_BROKER_URL``): background work goes to
        ``calcache.tasks`` on the queue instead of running in this process."""
        return bool(getattr(settings, "CELERY_BROKER_URL", ""))

    @property
    def background_runner(self) -> str:
        """Dotted path of the class that runs webhook-triggered syncs in the background.

        Empty (the default): ``CeleryRunner`` when a broker is configured, otherwise the
        in-process ``ThreadPoolRunner``.
        """
        path = str(_get("CALCACHE_BACKGROUND_RUNNER"))
        if path:
            return path
        if self.celery_enabled:
            return "calcache.background.runners.CeleryRunner"
        return "calcache.background.runners.ThreadPoolRunner"

    @property
    def background_workers(self) -> int:
        """Threads of the default in-process background runner."""
        return int(_get("CALCACHE_BACKGROUND_WORKERS"))

    @property
    def availability_permission(self) -> str:
        """Dotted path to ``(request, target_user) -> bool`` allowing ``?user=`` on the
        availability API; empty: users see only their own availability."""
        return str(_get("CALCACHE_AVAILABILITY_PERMISSION"))

    def availability_permission_hook(self) -> Callable[..., Any] | None:
        """The function ``CALCACHE_AVAILABILITY_PERMISSION`` names, imported; None when the
        setting is empty. Raises ``ImportError`` when it does not import (or whatever the
        module raises while importing), ``TypeError`` when it is not callable
        (``calcache.E014`` reports both at start-up)."""
        path = self.availability_permission
        if not path:
            return None
        hook = import_string(path)
        if not callable(hook):
            raise TypeError(f"is a {type(hook).__name__}, not a function")
        return hook

    @property
    def availability_max_users(self) -> int:
        """Most distinct users one availability request (``users=``, ``team=``) may ask about."""
        return int(_get("CALCACHE_AVAILABILITY_MAX_USERS"))

    @property
    def live_timeout(self) -> float:
        """Seconds one live Google read made for a request may take: one attempt, no retry."""
        return float(_get("CALCACHE_LIVE_TIMEOUT"))

    @property
    def read_database(self) -> str:
        """The database alias availability reads use (a streaming replica); writes, syncs,
        locks and the rollout always use ``default``."""
        return str(_get("CALCACHE_READ_DATABASE"))

    @property
    def replica_max_lag_seconds(self) -> float:
        """Above this replay lag (or when it does not answer) reads use ``default``."""
        return float(_get("CALCACHE_REPLICA_MAX_LAG_SECONDS"))

    @property
    def live_calls_per_minute(self) -> int:
        """Live freeBusy calls a minute on behalf of each user whose availability is read
        (answers from SQL or the JSON cache cost nothing); 0: no limit."""
        return int(_get("CALCACHE_LIVE_CALLS_PER_MINUTE"))

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

    @property
    def stale_after_minutes(self) -> int:
        """The ``refresh_stale`` sweep syncs calendars whose last successful sync is older
        (the safety net under push notifications, and what rolls windows forward)."""
        return int(_get("CALCACHE_STALE_AFTER_MINUTES"))

    @property
    def dirty_grace_seconds(self) -> int:
        """A calendar marked changed by a notification for longer than this has lost its
        background sync (a crashed process, a broker outage): the next notification or the
        ``refresh_stale`` sweep submits it again."""
        return int(_get("CALCACHE_DIRTY_GRACE_SECONDS"))

    @property
    def stale_sweep_limit(self) -> int:
        """Most tasks one ``refresh_stale`` run enqueues (oldest first); the rest wait for
        the next run, so a long outage does not flood the queue at once."""
        return int(_get("CALCACHE_STALE_SWEEP_LIMIT"))

    @property
    def credential_syncs_per_minute(self) -> int:
        """Background syncs one Google account may start per minute, across all workers
        (counted in Django's default cache: use a shared one, e.g. Redis). 0: no limit."""
        return int(_get("CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE"))

    @property
    def task_max_retries(self) -> int:
        """Failed attempts one background task retries (rate limits, Google outages,
        database errors; waiting for a lock or the account's budget does not count) before
        it gives up; the calendar stays stale or marked for the sweep."""
        return int(_get("CALCACHE_TASK_MAX_RETRIES"))

    @property
    def sync_lease_seconds(self) -> int:
        """SQLite only: how long a sync's lease on its calendar lasts. A crashed worker's
        calendar is blocked this long (PostgreSQL's advisory lock dies with the worker)."""
        return int(_get("CALCACHE_SYNC_LEASE_SECONDS"))

    @property
    def sync_locking(self) -> str:
        """How a sync holds its calendar: ``""`` (PostgreSQL's advisory lock, the lease on
        other databases) or ``"lease"`` (the token row's lease everywhere: needed behind a
        transaction-pooling PgBouncer, where a session's lock neither holds nor goes)."""
        return str(_get("CALCACHE_SYNC_LOCKING"))

    @property
    def sync_page_size(self) -> int:
        """Events asked of Google per ``events.list`` page (at most 2500, Google's cap);
        each page is written in one transaction."""
        return int(_get("CALCACHE_SYNC_PAGE_SIZE"))

    @property
    def metrics_token(self) -> str:
        """The bearer token Prometheus sends to the ``metrics/`` view
        (``Authorization: Bearer <token>``); empty: token access is off and only signed-in
        users with ``calcache.view_dashboard`` may scrape."""
        return str(_get("CALCACHE_METRICS_TOKEN"))


conf = CalcacheSettings()
