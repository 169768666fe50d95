"""Settings of the djq test/demo project.

Everything that differs between machines comes from the environment (django-environ):

    DATABASE_URL          default sqlite:///<repo>/db.sqlite3; postgres://user@host:port/name for
                          PostgreSQL (scripts/pg-throwaway prints one)
    DJQ_SQLITE_TEST_NAME  file of the SQLite *test* database (default <repo>/.test-db.sqlite3);
                          a file, not :memory:, so that worker subprocesses started by the tests
                          open the same database
    DEBUG, SECRET_KEY, DJQ_LOG_LEVEL, DJQ_* worker tuning (below)
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-djq-dev-only-not-for-production")
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djq",
    "testproject.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "testproject.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WSGI_APPLICATION = "testproject.wsgi.application"

# --- Database ---------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # Wait for the single writer instead of failing with "database is locked".
            "timeout": 30,
            # BEGIN IMMEDIATE: take the write lock at the start of atomic blocks (no lock
            # upgrade deadlocks between the worker and the web process).
            "transaction_mode": "IMMEDIATE",
            # WAL: readers do not block the writer (and vice versa).
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["TEST"] = {
        "NAME": env.str("DJQ_SQLITE_TEST_NAME", default=str(BASE_DIR / ".test-db.sqlite3")),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- djq ----------------------------------------------------------------------------------------
# Worker tuning read from the environment, so that tests can shorten leases, heartbeats and
# polling for worker subprocesses (see tests/helpers.py: start_worker(env_extra={...})).
# The exact names are defined by djq.conf; e.g.:
# DJQ_WORKER_LEASE = env.float("DJQ_WORKER_LEASE", default=30.0)
# DJQ_WORKER_HEARTBEAT = env.float("DJQ_WORKER_HEARTBEAT", default=10.0)
# DJQ_WORKER_POLL_INTERVAL = env.float("DJQ_WORKER_POLL_INTERVAL", default=1.0)

# --- Auth, i18n, static -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "artifacts" / "static"

# --- Logging ------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {
            "format": "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "console",
        },
        # Root gets warnings only: django.* INFO records (already printed by Django's own
        # handler) must not show twice when they propagate.
        "console_warnings": {
            "class": "logging.StreamHandler",
            "formatter": "console",
            "level": "WARNING",
        },
    },
    "root": {"handlers": ["console_warnings"], "level": "WARNING"},
    "loggers": {
        "djq": {
            "handlers": ["console"],
            "level": env.str("DJQ_LOG_LEVEL", default="INFO").upper(),
            "propagate": False,
        },
    },
}
