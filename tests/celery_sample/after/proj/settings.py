"""Settings of the sample shop project."""

from pathlib import Path

import environ

from djq import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

SECRET_KEY = env.str("SECRET_KEY", default="sample-shop-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "djq",
    "shop",
]
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # development only
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=30, transaction_mode="IMMEDIATE", init_command="PRAGMA journal_mode=WAL;"
    )
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DJQ_TIMEZONE = 'UTC'
DJQ_TASK_TRACK_STARTED = True
DJQ_TASK_ACKS_LATE = True
DJQ_TASK_TIME_LIMIT = 300
DJQ_TASK_SOFT_TIME_LIMIT = 240
DJQ_WORKER_PREFETCH_MULTIPLIER = 1
DJQ_RESULT_EXPIRES = 3600
DJQ_DEFAULT_QUEUE = 'default'
DJQ_TASK_ROUTES = {'shop.tasks.send_receipt': {'queue': 'email'}}
DJQ_BEAT_SCHEDULE = {
    "nightly-report": {"task": "shop.tasks.daily_report", "schedule": crontab(minute=0, hour=3)},
    "heartbeat": {"task": "shop.tasks.heartbeat", "schedule": 1.0},
}
