"""System checks for missing or contradictory calcache configuration (``calcache.E0xx``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.version import get_version_tuple

from calcache.conf import conf
from calcache.extras import install_hint, missing_module

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
POSTGRES_ENGINES = {"django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis"}
GOOGLE_TOKEN_MAX_LENGTH = 256  # events.watch: channel tokens are at most 256 characters


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _is_loopback(value: str) -> bool:
    return (urlsplit(value).hostname or "") in LOOPBACK_HOSTS


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []

    if conf.webhooks_enabled:
        if not conf.webhook_token:
            errors.append(
                Error(
                    "CALCACHE_WEBHOOK_URL is set but CALCACHE_WEBHOOK_TOKEN is empty.",
                    hint="Set CALCACHE_WEBHOOK_TOKEN to a long random string: it signs each "
                    "channel's own token, which the webhook view requires.",
                    id="calcache.E001",
                )
            )
        url = conf.webhook_url
        if not _is_http_url(url) or (urlsplit(url).scheme != "https" and not _is_loopback(url)):
            errors.append(
                Error(
                    f"CALCACHE_WEBHOOK_URL {url!r} is not an https URL.",
                    hint="Google delivers push notifications only to https addresses "
                    "(plain http is accepted for loopback, where the emulator runs).",
                    id="calcache.E002",
                )
            )
    if len(conf.webhook_token) > GOOGLE_TOKEN_MAX_LENGTH:
        errors.append(
            Error(
                f"CALCACHE_WEBHOOK_TOKEN is {len(conf.webhook_token)} characters long; Google "
                f"accepts at most {GOOGLE_TOKEN_MAX_LENGTH}.",
                id="calcache.E003",
            )
        )

    days: dict[str, int] = {}
    for name in ("SYNC_PAST_DAYS", "SYNC_FUTURE_DAYS", "RETENTION_DAYS"):
        try:
            days[name] = getattr(conf, name.lower())
        except (TypeError, ValueError):
            errors.append(
                Error(f"CALCACHE_{name} must be a whole number of days.", id="calcache.E004")
            )
    if days.get("SYNC_PAST_DAYS", 0) < 0 or days.get("RETENTION_DAYS", 0) < 0:
        errors.append(
            Error(
                "CALCACHE_SYNC_PAST_DAYS and CALCACHE_RETENTION_DAYS cannot be negative.",
                id="calcache.E004",
            )
        )
    if "SYNC_FUTURE_DAYS" in days and days["SYNC_FUTURE_DAYS"] < 1:
        errors.append(
            Error(
                "CALCACHE_SYNC_FUTURE_DAYS must be at least 1: the SQL copy would cover no future.",
                id="calcache.E004",
            )
        )
    if (
        "SYNC_PAST_DAYS" in days
        and "RETENTION_DAYS" in days
        and days["RETENTION_DAYS"] < days["SYNC_PAST_DAYS"]
    ):
        errors.append(
            Error(
                f"CALCACHE_RETENTION_DAYS ({days['RETENTION_DAYS']}) is shorter than "
                f"CALCACHE_SYNC_PAST_DAYS ({days['SYNC_PAST_DAYS']}).",
                hint="Cleanup would delete events inside the synced window, and the SQL copy "
                "would answer 'free' for time it claims to cover.",
                id="calcache.E005",
            )
        )

    for index, key in enumerate(conf.encryption_keys):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            errors.append(
                Error(
                    f"CALCACHE_ENCRYPTION_KEYS[{index}] is not a valid Fernet key.",
                    hint="Generate one with: python -c 'from cryptography.fernet import "
                    "Fernet; print(Fernet.generate_key().decode())'",
                    id="calcache.E006",
                )
            )

    if bool(conf.google_client_id) != bool(conf.google_client_secret):
        errors.append(
            Error(
                "Only one of CALCACHE_GOOGLE_CLIENT_ID and CALCACHE_GOOGLE_CLIENT_SECRET is set.",
                hint="The OAuth client needs both, or neither to disable the connect flow.",
                id="calcache.E007",
            )
        )

    errors.extend(_check_availability_permission())
    try:
        rate_ok = 0 <= conf.shadow_sample_rate <= 1
    except (TypeError, ValueError):
        rate_ok = False
    if not rate_ok:
        errors.append(
            Error(
                f"CALCACHE_SHADOW_SAMPLE_RATE is {settings.CALCACHE_SHADOW_SAMPLE_RATE!r}, "
                "not a share between 0 and 1.",
                hint="0.05 compares one answer in twenty with the other source; 0 turns "
                "the comparisons off, 1 compares every answer.",
                id="calcache.E015",
            )
        )

    for name in ("GOOGLE_API_URL", "GOOGLE_TOKEN_URI", "GOOGLE_AUTH_URI"):
        value = getattr(conf, name.lower())
        if not _is_http_url(value):
            errors.append(
                Error(f"CALCACHE_{name} {value!r} is not an http(s) URL.", id="calcache.E008")
            )

    for name, minimum in (
        ("GOOGLE_TIMEOUT", 0.001),
        ("GOOGLE_MAX_ATTEMPTS", 1),
        ("GOOGLE_RETRY_MAX_SECONDS", 0),
        ("GOOGLE_BACKOFF_SECONDS", 0),
        ("LIVE_TIMEOUT", 0.001),
    ):
        try:
            ok = getattr(conf, name.lower()) >= minimum
        except (TypeError, ValueError):
            ok = False
        if not ok:
            errors.append(
                Error(
                    f"CALCACHE_{name} must be a number of at least {minimum}.",
                    id="calcache.E009",
                )
            )

    if (
        conf.background_runner == "calcache.background.runners.CeleryRunner"
        and not conf.celery_enabled
    ):
        errors.append(
            Error(
                "CALCACHE_BACKGROUND_RUNNER is CeleryRunner but CELERY_BROKER_URL is empty.",
                hint="Set CELERY_BROKER_URL (redis://... or amqp://...), or leave "
                "CALCACHE_BACKGROUND_RUNNER empty to sync in-process without a broker.",
                id="calcache.E010",
            )
        )
    if conf.background_runner == "calcache.background.runners.CeleryRunner" and (
        missing := missing_module("celery")
    ):
        errors.append(
            Error(
                f"Background syncs go to Celery (CELERY_BROKER_URL or "
                f"CALCACHE_BACKGROUND_RUNNER), but {missing} is not installed.",
                hint="pip install 'calcache[celery]', or leave CELERY_BROKER_URL and "
                "CALCACHE_BACKGROUND_RUNNER empty to sync in-process.",
                id="calcache.E016",
            )
        )
    if conf.read_database not in settings.DATABASES:
        errors.append(
            Error(
                f"CALCACHE_READ_DATABASE names {conf.read_database!r}, which is not in DATABASES.",
                hint="Name the alias of the replica in DATABASES, or leave it 'default'.",
                id="calcache.E012",
            )
        )
    errors.extend(_check_postgres_driver())
    try:
        lag_ok = conf.replica_max_lag_seconds >= 0
    except (TypeError, ValueError):
        lag_ok = False
    if not lag_ok:
        errors.append(
            Error(
                "CALCACHE_REPLICA_MAX_LAG_SECONDS must be a number of seconds, at least 0.",
                id="calcache.E012",
            )
        )
    if conf.sync_locking not in ("", "lease"):
        errors.append(
            Error(
                f"CALCACHE_SYNC_LOCKING is {conf.sync_locking!r}; use '' or 'lease'.",
                hint="'' takes PostgreSQL's advisory lock (the lease elsewhere); 'lease' "
                "the token row's lease everywhere, as a transaction-pooling PgBouncer needs.",
                id="calcache.E013",
            )
        )
    elif not conf.sync_locking and _prepared_statements_off():
        errors.append(
            Warning(
                "Prepared statements are off (prepare_threshold None) while syncs take "
                "PostgreSQL's session-level advisory lock.",
                hint="Behind a transaction-pooling PgBouncer a session's lock neither holds "
                "nor is released: set CALCACHE_SYNC_LOCKING = 'lease'. Without a pooler, "
                "ignore this (or silence calcache.W003).",
                id="calcache.W003",
            )
        )
    for name, minimum, maximum in (
        ("STALE_AFTER_MINUTES", 1, None),
        ("DIRTY_GRACE_SECONDS", 0, None),
        ("STALE_SWEEP_LIMIT", 1, None),
        ("CREDENTIAL_SYNCS_PER_MINUTE", 0, None),
        ("TASK_MAX_RETRIES", 0, None),
        ("SYNC_LEASE_SECONDS", 1, None),
        ("SYNC_PAGE_SIZE", 1, 2500),
        ("AVAILABILITY_MAX_USERS", 1, None),
        ("LIVE_CALLS_PER_MINUTE", 0, None),
    ):
        try:
            value = getattr(conf, name.lower())
            ok = value >= minimum and (maximum is None or value <= maximum)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            bounds = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
            errors.append(
                Error(f"CALCACHE_{name} must be a whole number {bounds}.", id="calcache.E011")
            )
    return errors


def _check_availability_permission() -> list[CheckMessage]:
    """``calcache.E014``: the permission hook must import and be callable, or every
    request that asks about another user would fail."""
    path = conf.availability_permission
    if not path:
        return []
    hint = (
        "Name a function (request, target_user) -> bool by its dotted path, e.g. "
        "'myproject.permissions.may_see_availability', or leave it empty (own "
        "availability only)."
    )
    try:
        conf.availability_permission_hook()
    except ImportError as exc:
        problem = f"does not import ({exc})"
    except TypeError as exc:
        problem = str(exc)
    except Exception as exc:  # the module itself fails as it is imported
        problem = f"fails to import ({type(exc).__name__}: {exc})"
    else:
        return []
    return [
        Error(
            f"CALCACHE_AVAILABILITY_PERMISSION {path!r} {problem}.", hint=hint, id="calcache.E014"
        )
    ]


def _check_postgres_driver() -> list[CheckMessage]:
    """``calcache.E017``: calcache's own PostgreSQL statements (availability reads, sync
    upserts) run on psycopg 3. Looks at the installed driver only, never connects."""
    problems: list[CheckMessage] = []
    for alias in dict.fromkeys((DEFAULT_DB_ALIAS, conf.read_database)):
        if settings.DATABASES.get(alias, {}).get("ENGINE") not in POSTGRES_ENGINES:
            continue
        if missing := missing_module("postgres"):
            problem = f"{missing} is not installed"
        else:
            try:
                # Loads the backend module, opens no connection.
                driver = connections[alias].Database  # type: ignore[attr-defined]
            except ImproperlyConfigured as exc:
                problem = f"Django cannot load its driver ({exc})"
            else:
                if driver.__name__ != "psycopg":
                    problem = f"Django runs it on {driver.__name__} {driver.__version__}"
                elif get_version_tuple(driver.__version__.split(" ", 1)[0]) < (3, 2):
                    problem = f"psycopg is {driver.__version__}"
                else:
                    continue
        problems.append(
            Error(
                f"The database {alias!r} is PostgreSQL, which calcache uses through "
                f"psycopg 3.2 or newer, but {problem}.",
                hint=f"{install_hint('postgres')} (psycopg>=3.2); Django prefers psycopg 3 "
                "to psycopg2 once it is installed.",
                id="calcache.E017",
            )
        )
    return problems


def _prepared_statements_off() -> bool:
    default = settings.DATABASES.get("default", {})
    options = default.get("OPTIONS", {})
    return (
        default.get("ENGINE") == "django.db.backends.postgresql"
        and "prepare_threshold" in options
        and options["prepare_threshold"] is None
    )


@register(Tags.security, deploy=True)
def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    warnings: list[CheckMessage] = []
    if not conf.encryption_keys:
        warnings.append(
            Warning(
                "OAuth tokens are encrypted with a key derived from SECRET_KEY.",
                hint="Set CALCACHE_ENCRYPTION_KEYS so tokens survive a SECRET_KEY change and "
                "keys can be rotated on their own.",
                id="calcache.W001",
            )
        )
    for name in ("GOOGLE_API_URL", "GOOGLE_TOKEN_URI", "GOOGLE_AUTH_URI"):
        value = getattr(conf, name.lower())
        if _is_http_url(value) and urlsplit(value).scheme != "https":
            warnings.append(
                Warning(
                    f"CALCACHE_{name} is {value!r}, not https (the bundled emulator?).",
                    id="calcache.W002",
                )
            )
    return warnings


@register(Tags.compatibility)
def check_metrics(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``calcache.W010``: metrics are configured but prometheus-client is not installed."""
    from calcache import metrics

    configured = [
        name
        for name, value in (
            ("CALCACHE_METRICS_TOKEN", conf.metrics_token),
            (metrics.MULTIPROC_ENV, metrics.multiprocess_dir()),
        )
        if value
    ]
    if metrics.available() and (problem := metrics.multiprocess_dir_problem()):
        return [
            Warning(
                f"{problem}: calcache counts no metrics and calendar-cache/metrics/ answers 503.",
                hint="Create the directory (empty, writable by every worker) before the "
                "processes start, or unset PROMETHEUS_MULTIPROC_DIR.",
                id="calcache.W011",
            )
        ]
    if not configured or metrics.available():
        return []
    return [
        Warning(
            f"{' and '.join(configured)} set, but prometheus-client is not installed: "
            "nothing is counted and calendar-cache/metrics/ answers 501.",
            hint=f"{metrics.INSTALL_HINT} (or unset {', '.join(configured)}).",
            id="calcache.W010",
        )
    ]
