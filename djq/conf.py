"""All of djq's settings, read in one place. Every setting is ``DJQ_<NAME>`` in Django settings.

Read them through ``djq.conf.settings.NAME`` (never ``django.conf.settings.DJQ_NAME`` directly) so
that the defaults below are the only ones, and tests that override settings see the change at once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # The database alias that holds jobs, queues, results and workers.
    "DATABASE": "default",
    "DEFAULT_QUEUE": "default",
    # {"task.name" or "glob.*": {"queue": ..., "priority": ...}}; the first match wins.
    "TASK_ROUTES": {},
    # {"task.name" or "*": {"rate_limit": ..., "time_limit": ...}}: per-task option overrides
    # (the keys read are ANNOTATION_KEYS below).
    "TASK_ANNOTATIONS": {},
    "TASK_ALWAYS_EAGER": False,
    "TASK_EAGER_PROPAGATES": False,
    # djq records STARTED for free (the lease lives on the job row), so it is on by default.
    "TASK_TRACK_STARTED": True,
    "TASK_ACKS_LATE": False,
    "TASK_TIME_LIMIT": None,
    "TASK_SOFT_TIME_LIMIT": None,
    "TASK_DEFAULT_PRIORITY": 0,
    # Finished jobs older than this (seconds or timedelta) are removed by ``djq_purge``.
    "RESULT_EXPIRES": 86400,
    "BEAT_SCHEDULE": {},
    # catch_up="all": at most this many missed ticks of one schedule are enqueued after downtime
    # (the latest ones); a PeriodicTask's backfill_limit overrides it.
    "BEAT_BACKFILL_LIMIT": 100,
    # catch_up="skip": a tick beat reaches more than this many seconds late (or later than the
    # schedule's next tick) was missed and is dropped.
    "BEAT_MISSED_AFTER": 60.0,
    "TIMEZONE": None,
    "IMPORTS": (),
    # True: workers ignore every rate limit (Celery's worker_disable_rate_limits); concurrency
    # limits still hold.
    "DISABLE_RATE_LIMITS": False,
    # Fair claims between the concurrency keys of tasks with ``concurrency_key``: True takes
    # turns (round robin), a dict {key: weight} gives a key that many jobs a turn (others 1),
    # False claims by priority and ETA only (djq.limits.fair_weights).
    "FAIR_KEYS": True,
    # Worker defaults (each has a ``djq_worker`` option too).
    "WORKER_CONCURRENCY": None,  # None: the number of CPUs
    "WORKER_POOL": "prefork",
    # Jobs a worker claims per pool slot (Celery's worker_prefetch_multiplier). Claimed jobs wait
    # in the worker's reserve as RESERVED, not STARTED: a killed worker's reserve goes back to
    # the queue and runs elsewhere, so prefetching is safe. 1: claim only what starts at once.
    "WORKER_PREFETCH_MULTIPLIER": 16,
    # Seconds a reserved job may wait behind a running one: after it, the worker stops queueing
    # jobs behind that one and hands those queued back (to its idle slots, or to the queue for
    # other workers), so a short job never waits long behind a long one.
    "WORKER_RESERVE_WAIT": 1.0,
    "WORKER_MAX_TASKS_PER_CHILD": None,
    "WORKER_MAX_MEMORY_PER_CHILD": None,
    # How long a claim lives without a heartbeat; a dead worker's jobs are rescued after it.
    "WORKER_LEASE": 30.0,
    # A started acks_late job lost with its worker (its lease ran out) goes back to the queue;
    # the time it is lost this many times it ends a dead letter instead (FAILURE with
    # WorkerLostError, dead_reason "worker_lost"), so a job that kills its worker stops looping.
    # 0: requeue it forever.
    "MAX_WORKER_LOST": 3,
    # Safety-net poll interval; on PostgreSQL, LISTEN/NOTIFY wakes workers long before it.
    "WORKER_POLL_INTERVAL": 1.0,
    # LISTEN for NOTIFY wake-ups on PostgreSQL (workers, and ``AsyncResult.get()``). False: poll
    # only; needed behind PgBouncer in transaction pooling mode, where LISTEN does not work.
    "LISTEN": True,
    # ``djq.urls``'s Prometheus endpoint (/metrics) accepts staff users with a djq job permission,
    # and, when this is set, scrapers sending ``Authorization: Bearer <token>``.
    "METRICS_TOKEN": None,
    # Result ``get()`` re-checks at least this often even when NOTIFY is available.
    "RESULT_POLL_INTERVAL": 0.5,
    # Monitoring events (djq.events, ``djq_events``): workers publish task and worker events
    # (Celery's -E; also ``djq_worker -E`` and ``control.enable_events()``).
    "WORKER_SEND_TASK_EVENTS": False,
    # Callers publish task-sent when they enqueue (Celery's task_send_sent_event).
    "TASK_SEND_SENT_EVENT": False,
    # Events older than this (seconds or timedelta) are pruned by the publishing workers.
    "EVENTS_EXPIRES": 3600,
    # Log records emitted inside a task at this level or above (a name or a number) are kept
    # with the attempt and shown on the job's admin page; None: none are kept. Loggers still
    # filter first: a record below its logger's level (the worker's -l) is never made.
    "TASK_LOG_LEVEL": "INFO",
    # At most this many bytes (UTF-8) of log text per attempt; the rest is dropped and the text
    # ends with a marker saying how much. 0: keep none.
    "TASK_LOG_MAX_BYTES": 65536,
    # Also keep what a task prints (sys.stdout / sys.stderr); it still reaches the worker's
    # output too.
    "TASK_LOG_PRINT": False,
}


#: the DJQ_TASK_ANNOTATIONS keys djq reads (djq.task.resolve_options, djq.limits); others warn
ANNOTATION_KEYS = frozenset(
    {
        "time_limit",
        "soft_time_limit",
        "ignore_result",
        "track_started",
        "rate_limit",
        "concurrency_limit",
        "atomic",
    }
)


class Settings:
    """Attribute access to ``DJQ_*`` settings with the defaults above.

    Values are cached: the worker reads settings for every job, and a setting left at its
    default costs Django's settings object an AttributeError on each read (~10 µs). Changes
    through ``override_settings`` (Django's ``setting_changed`` signal) clear the cache; Django
    settings are not meant to change otherwise while running."""

    def __init__(self):
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._cache[name]
        except KeyError:
            pass
        if name not in DEFAULTS:
            raise AttributeError(f"djq has no setting {name!r} (known: {sorted(DEFAULTS)})")
        value = self._cache[name] = getattr(django_settings, f"DJQ_{name}", DEFAULTS[name])
        return value

    def clear(self) -> None:
        self._cache.clear()


settings = Settings()


def _changed(**kwargs) -> None:
    settings.clear()


setting_changed.connect(_changed, dispatch_uid="djq.conf.settings")


def timezone_name() -> str:
    """``DJQ_TIMEZONE``, then Django's ``TIME_ZONE``, then UTC."""
    return settings.TIMEZONE or getattr(django_settings, "TIME_ZONE", None) or "UTC"
