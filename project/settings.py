"""Settings of calcache's own host site (the demo and the test project).

Everything that differs between machines comes from the environment through
django-environ; see the settings table in README.md. A host site that installs
calcache copies the ``CALCACHE_*`` part and the waffle lines below.
"""

import os
import sys
import tempfile
from pathlib import Path

import environ

from calcache.background.beat import BEAT_SCHEDULE
from project.demo import demo_env_file, live_demo_env

BASE_DIR = Path(__file__).resolve().parent.parent
# This process runs the test suite, or was started by it (pytest sets PYTEST_VERSION).
TESTING = "pytest" in sys.modules or "PYTEST_VERSION" in os.environ

env = environ.Env()
# While `make demo` runs, project/demo.py keeps the demo's settings (DEBUG, the emulator's
# URLs and OAuth client, its cache) in .env.demo, so manage.py in a second shell reaches the
# demo's emulator and cache instead of Google's and its own. As in the demo's processes,
# they win over the environment and .env. Ignored once that demo has stopped, and by the
# test suite.
if not TESTING and live_demo_env(demo_env_file()):
    environ.Env.read_env(demo_env_file(), overwrite=True)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str(
    "SECRET_KEY",
    # Only for the demo and tests; `check --deploy` flags it (security.W009).
    default="django-insecure-calcache-development-key-change-me-0123456789",
)
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "waffle",
    "flags",
    "calcache",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the sync write while the site reads; busy_timeout waits for the
    # writer instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests use a file too: an in-memory shared-cache database locks whole tables
    # without waiting, so threads (sync --workers) would fail where production waits.
    # One file per test process, so parallel runs never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": env.str(
            "SQLITE_TEST_DATABASE",
            default=str(Path(tempfile.gettempdir()) / f"calcache-test-{os.getpid()}.sqlite3"),
        )
    }
else:
    # A connection per request by default: runserver serves each request on a new thread,
    # and a persistent connection per thread piles up idle server connections. In
    # production either keep connections (CONN_MAX_AGE under a fixed number of gunicorn
    # workers) or, better, share a pool (DB_POOL_MAX_SIZE: Django's native psycopg pool).
    _pool_max = env.int("DB_POOL_MAX_SIZE", default=0)
    if _pool_max:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(env.int("DB_POOL_MIN_SIZE", default=1), _pool_max),
            "max_size": _pool_max,
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses persistent + pooled
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # psycopg prepares a statement after this many runs on a connection. Django's own
    # queries bind client-side and are never prepared; calcache's availability query uses
    # a server-side cursor, where planning costs more than running (README "Performance").
    # Behind a transaction-pooling PgBouncer set DB_PREPARE_THRESHOLD to an empty value.
    _prepare = env.str("DB_PREPARE_THRESHOLD", default="5")
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        int(_prepare) if _prepare else None
    )

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# Under the test suite (and the processes it starts) a local-memory cache is a choice:
# the tests change and read flags in one process, and compare commands' output line by
# line. Everywhere else, manage.py, runserver and the demo included, flags.W001 says
# what such a cache costs.
if TESTING and CACHES["default"]["BACKEND"].endswith("LocMemCache"):
    SILENCED_SYSTEM_CHECKS = ["flags.W001"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/calendar-cache/me/"

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)

# Everything to stderr, where the process manager collects it. Django's default sends a
# 500's traceback (logger django.request, level ERROR) only to console under DEBUG and
# otherwise by mail to ADMINS: with DEBUG off and no ADMINS it went nowhere.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "calcache": {
            "handlers": ["console"],
            "level": env.str("CALCACHE_LOG_LEVEL", default="INFO"),
        },
        "flags": {"handlers": ["console"], "level": env.str("CALCACHE_LOG_LEVEL", default="INFO")},
    },
}

# --- feature flags (django-waffle with calcache's deterministic Flag model) ---
WAFFLE_FLAG_MODEL = "flags.Flag"
# Missing flags are handled by flags.is_enabled (error in tests, off + warning in production).
WAFFLE_CREATE_MISSING_FLAGS = False
FLAGS_BUCKET_BY_TEAM = env.bool("FLAGS_BUCKET_BY_TEAM", default=False)

# --- calcache (every setting is documented in calcache/conf.py and README.md) ---
CALCACHE_GOOGLE_API_URL = env.str(
    "CALCACHE_GOOGLE_API_URL", default="https://www.googleapis.com/calendar/v3/"
)
CALCACHE_GOOGLE_TOKEN_URI = env.str(
    "CALCACHE_GOOGLE_TOKEN_URI", default="https://oauth2.googleapis.com/token"
)
CALCACHE_GOOGLE_AUTH_URI = env.str(
    "CALCACHE_GOOGLE_AUTH_URI", default="https://accounts.google.com/o/oauth2/auth"
)
CALCACHE_GOOGLE_CLIENT_ID = env.str("CALCACHE_GOOGLE_CLIENT_ID", default="")
CALCACHE_GOOGLE_CLIENT_SECRET = env.str("CALCACHE_GOOGLE_CLIENT_SECRET", default="")
CALCACHE_WEBHOOK_TOKEN = env.str("CALCACHE_WEBHOOK_TOKEN", default="")
CALCACHE_WEBHOOK_URL = env.str("CALCACHE_WEBHOOK_URL", default="")
CALCACHE_SYNC_PAST_DAYS = env.int("CALCACHE_SYNC_PAST_DAYS", default=30)
CALCACHE_SYNC_FUTURE_DAYS = env.int("CALCACHE_SYNC_FUTURE_DAYS", default=180)
CALCACHE_RETENTION_DAYS = env.int("CALCACHE_RETENTION_DAYS", default=90)
# Empty: derived from SECRET_KEY (and SECRET_KEY_FALLBACKS for decryption).
CALCACHE_ENCRYPTION_KEYS = env.list("CALCACHE_ENCRYPTION_KEYS", default=[])
CALCACHE_JSON_CACHE_ENABLED = env.bool("CALCACHE_JSON_CACHE_ENABLED", default=True)
CALCACHE_SHADOW_SAMPLE_RATE = env.float("CALCACHE_SHADOW_SAMPLE_RATE", default=0.05)
CALCACHE_CHANNEL_TTL_DAYS = env.int("CALCACHE_CHANNEL_TTL_DAYS", default=7)
CALCACHE_CHANNEL_RENEW_MARGIN_HOURS = env.int("CALCACHE_CHANNEL_RENEW_MARGIN_HOURS", default=24)
# Empty: CeleryRunner when CELERY_BROKER_URL is set, else the in-process thread pool.
CALCACHE_BACKGROUND_RUNNER = env.str("CALCACHE_BACKGROUND_RUNNER", default="")
CALCACHE_BACKGROUND_WORKERS = env.int("CALCACHE_BACKGROUND_WORKERS", default=2)
CALCACHE_AVAILABILITY_PERMISSION = env.str("CALCACHE_AVAILABILITY_PERMISSION", default="")
CALCACHE_AVAILABILITY_MAX_USERS = env.int("CALCACHE_AVAILABILITY_MAX_USERS", default=100)
CALCACHE_LIVE_TIMEOUT = env.float("CALCACHE_LIVE_TIMEOUT", default=5.0)
CALCACHE_LIVE_CALLS_PER_MINUTE = env.int("CALCACHE_LIVE_CALLS_PER_MINUTE", default=30)
CALCACHE_METRICS_TOKEN = env.str("CALCACHE_METRICS_TOKEN", default="")
# A streaming replica for availability reads: DATABASE_REPLICA_URL adds the alias "replica"
# (a test mirror of default in test runs) and CALCACHE_READ_DATABASE=replica uses it.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = {
        **DATABASES["default"],
        **env.db("DATABASE_REPLICA_URL"),
        "TEST": {"MIRROR": "default"},
    }
CALCACHE_READ_DATABASE = env.str("CALCACHE_READ_DATABASE", default="default")
# "lease" behind a transaction-pooling PgBouncer (README "Connections and pooling").
CALCACHE_SYNC_LOCKING = env.str("CALCACHE_SYNC_LOCKING", default="")
CALCACHE_REPLICA_MAX_LAG_SECONDS = env.float("CALCACHE_REPLICA_MAX_LAG_SECONDS", default=30.0)
CALCACHE_RETIRE_AFTER_DAYS = env.int("CALCACHE_RETIRE_AFTER_DAYS", default=14)
CALCACHE_ROLLBACK_MIN_SAMPLES = env.int("CALCACHE_ROLLBACK_MIN_SAMPLES", default=200)
CALCACHE_ROLLBACK_MISMATCH_PERCENT = env.float("CALCACHE_ROLLBACK_MISMATCH_PERCENT", default=1.0)
CALCACHE_STORE_SUMMARY = env.bool("CALCACHE_STORE_SUMMARY", default=True)
CALCACHE_GOOGLE_TIMEOUT = env.float("CALCACHE_GOOGLE_TIMEOUT", default=30.0)
CALCACHE_GOOGLE_MAX_ATTEMPTS = env.int("CALCACHE_GOOGLE_MAX_ATTEMPTS", default=5)
CALCACHE_GOOGLE_RETRY_MAX_SECONDS = env.float("CALCACHE_GOOGLE_RETRY_MAX_SECONDS", default=60.0)
CALCACHE_GOOGLE_BACKOFF_SECONDS = env.float("CALCACHE_GOOGLE_BACKOFF_SECONDS", default=0.5)
CALCACHE_STALE_AFTER_MINUTES = env.int("CALCACHE_STALE_AFTER_MINUTES", default=180)
CALCACHE_DIRTY_GRACE_SECONDS = env.int("CALCACHE_DIRTY_GRACE_SECONDS", default=120)
CALCACHE_STALE_SWEEP_LIMIT = env.int("CALCACHE_STALE_SWEEP_LIMIT", default=10_000)
CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE = env.int("CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE", default=30)
CALCACHE_TASK_MAX_RETRIES = env.int("CALCACHE_TASK_MAX_RETRIES", default=8)
CALCACHE_SYNC_LEASE_SECONDS = env.int("CALCACHE_SYNC_LEASE_SECONDS", default=900)
CALCACHE_SYNC_PAGE_SIZE = env.int("CALCACHE_SYNC_PAGE_SIZE", default=2500)

# --- Celery (project/celery.py; README "Background work") ---------------------------------
# Empty: no broker; webhooks use the in-process runner and `sync_calendars` runs in-process.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="calcache")
# A message is acknowledged after its task ran: a worker killed mid-sync leaves it to be
# redelivered (at once on RabbitMQ; on Redis after the visibility timeout, which must be
# longer than the longest sync).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# JSON. On Redis: seconds before an unacknowledged message is handed to another worker
# (above the longest sync and the longest retry countdown, 30 min, which Redis also
# holds unacknowledged), and kombu's scan for such messages every interval x throttle
# seconds (10 s here; 100 s by kombu's defaults). README "Background work".
CELERY_BROKER_TRANSPORT_OPTIONS = env.json(
    "CELERY_BROKER_TRANSPORT_OPTIONS",
    default={
        "visibility_timeout": 3600,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    },
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE
