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
# Every DJQ_* setting and its default is in djq/conf.py. Worker tuning can also be given on the
# command line (djq_worker --lease 2 --poll-interval 0.2), which is what the tests do.

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

# --- Django's Tasks framework on djq (issue 7; docs/django-tasks.md) -------------------------------
# Django >= 6.0 only: the test app testproject.djtasks uses nothing but `from django.tasks import
# task`; its tasks are enqueued as djq jobs and run by djq_worker.
# DJQ_WORKER_SEND_TASK_EVENTS=1 / DJQ_TASK_SEND_SENT_EVENT=1: monitoring events (docs/monitoring.md).
DJQ_WORKER_SEND_TASK_EVENTS = env.bool("DJQ_WORKER_SEND_TASK_EVENTS", default=False)
DJQ_TASK_SEND_SENT_EVENT = env.bool("DJQ_TASK_SEND_SENT_EVENT", default=False)

# Logs per attempt (docs/admin.md): the environment may change the cap and keep prints too.
DJQ_TASK_LOG_MAX_BYTES = env.int("DJQ_TASK_LOG_MAX_BYTES", default=65536)
DJQ_TASK_LOG_PRINT = env.bool("DJQ_TASK_LOG_PRINT", default=False)

# DJQ_FAIR_KEYS=0 in the environment: claims by priority and ETA only, also for keyed tasks (the
# demo has some: tenant_exclusive, tenant_record); make bench measures both (docs/keys.md).
# A JSON object ('{"a": 4}') gives weights (the worker tests of weighted fairness use it).
DJQ_FAIR_KEYS = (
    env.json("DJQ_FAIR_KEYS")
    if env.str("DJQ_FAIR_KEYS", default="").lstrip().startswith("{")
    else env.bool("DJQ_FAIR_KEYS", default=True)
)

# Dead letters (docs/tasks.md): the chaos scenarios that kill workers hundreds of times raise it.
DJQ_MAX_WORKER_LOST = env.int("DJQ_MAX_WORKER_LOST", default=3)

# DJQ_LISTEN=0 in the environment: poll instead of LISTEN (PgBouncer in transaction mode).
DJQ_LISTEN = env.bool("DJQ_LISTEN", default=True)
if env.bool("DATABASE_DISABLE_SERVER_SIDE_CURSORS", default=False):  # behind PgBouncer
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True

try:
    import django.tasks  # noqa: F401
except ImportError:  # Django 5.2: no Tasks framework
    pass
else:
    INSTALLED_APPS += ["testproject.djtasks"]
    TASKS = {
        "default": {
            "BACKEND": "djq.backends.DjqBackend",
            "QUEUES": ["default", "other"],
        },
    }

# --- The demo (make run: scripts/run_demo.py starts every process with DJQ_DEMO=1) ---------------
if env.bool("DJQ_DEMO", default=False):
    from djq import solar  # (as a project's settings would: djq imports no model at import)

    # three schedules (cron, interval, solar), so that the periodic pages and beat show something
    DJQ_BEAT_SCHEDULE = {
        "demo: nightly report, every minute here": {
            "task": "testproject.demo.tasks.demo_report",
            "schedule": "* * * * *",
            "options": {"queue": "reports"},
        },
        "demo: add every 20 seconds": {
            "task": "testproject.demo.tasks.add",
            "schedule": 20.0,
            "args": (20, 22),
        },
        "demo: a report at sunset in Oslo": {
            "task": "testproject.demo.tasks.demo_report",
            "schedule": solar("sunset", 59.91, 10.75),  # latitude, longitude
            "kwargs": {"kind": "sunset"},
            "options": {"queue": "reports"},
        },
    }
    # a request log line per dashboard refresh would bury everything else
    LOGGING["loggers"]["django.server"] = {
        "handlers": ["console_warnings"],
        "level": "WARNING",
        "propagate": False,
    }
