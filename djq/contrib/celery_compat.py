"""Moving from Celery: what each Celery setting becomes in djq, and a reader of a project's
``CELERY_*`` settings (``manage.py djq_check_celery``; docs/migrating-from-celery.md).

The settings module is read with ``ast``, never imported: it may import Celery (no longer
installed) or read the environment. Literal values are converted; other expressions (``crontab(…)``,
``env(…)``) are shown as written.
"""

from __future__ import annotations

import ast
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SETTING, CLI, NOT_NEEDED, UNSUPPORTED, UNKNOWN = (
    "setting",
    "cli",
    "not needed",
    "not supported",
    "unknown",
)


@dataclass(frozen=True)
class Entry:
    status: str  # SETTING, CLI, NOT_NEEDED or UNSUPPORTED
    target: str  # a DJQ_ setting, a command option, or ""
    note: str = ""


def _s(target: str, note: str = "") -> Entry:
    return Entry(SETTING, target, note)


def _cli(target: str, note: str = "") -> Entry:
    return Entry(CLI, target, note)


def _no(note: str) -> Entry:
    return Entry(NOT_NEEDED, "", note)


def _unsupported(note: str) -> Entry:
    return Entry(UNSUPPORTED, "", note)


_BROKER = "the broker is the Django database: DJQ_DATABASE names a DATABASES alias"
_RESULTS = "results are columns of the job row, in DJQ_DATABASE"
_JSON = "arguments and results are always JSON (plus datetime, date, time, UUID, Decimal)"
_QUEUES = "queues need no declaration: a job names its queue, a worker lists its queues (-Q)"
_AMQP = "there are no exchanges or routing keys: a job is routed by its queue name"
_EVENTS = "events are rows, kept for DJQ_EVENTS_EXPIRES: djq_events --last N shows the past"
_LOGGING = "configure the 'djq' logger in Django's LOGGING"

#: Celery setting (lower-case name) → what it becomes in djq
SETTINGS: dict[str, Entry] = {
    # broker and result backend
    "broker_url": _no(_BROKER),
    "broker_transport": _no(_BROKER),
    "broker_transport_options": _no(
        _BROKER + "; visibility timeouts are leases (DJQ_WORKER_LEASE)"
    ),
    "broker_connection_retry": _no("workers retry a lost database with backoff by themselves"),
    "broker_connection_retry_on_startup": _no("workers retry the database by themselves"),
    "broker_connection_max_retries": _no("workers retry the database until it is back"),
    "broker_connection_timeout": _no("set connect_timeout in the DATABASES OPTIONS"),
    "broker_heartbeat": _no("worker liveness is the lease heartbeat (DJQ_WORKER_LEASE / 3)"),
    "broker_pool_limit": _no("each process holds one database connection (docs/deployment.md)"),
    "broker_use_ssl": _no("set sslmode in the DATABASES OPTIONS"),
    "result_backend": _no(_RESULTS),
    "result_backend_transport_options": _no(_RESULTS),
    "result_extended": _no("name, args, kwargs, worker, retries and times are always stored"),
    "result_persistent": _no("results are rows: durable as the database"),
    "result_expires": _s(
        "DJQ_RESULT_EXPIRES",
        "the built-in djq.purge_results task (run by "
        "beat hourly) and manage.py djq_purge delete older results",
    ),
    "result_serializer": _no(_JSON),
    "result_accept_content": _no(_JSON),
    "result_compression": _unsupported(
        "results are JSON columns (PostgreSQL compresses large values itself)"
    ),
    "result_chord_join_timeout": _no(
        "a chord's body is enqueued by the completion of its last member, not by polling"
    ),
    "database_url": _no(_RESULTS + " (not SQLAlchemy)"),
    "cache_backend": _no(_RESULTS),
    # serialization
    "task_serializer": _no(_JSON),
    "accept_content": _no(_JSON + "; pickle is never accepted"),
    "task_compression": _unsupported("arguments are JSON columns"),
    "timezone": _s("DJQ_TIMEZONE", "defaults to Django's TIME_ZONE"),
    "enable_utc": _no("times are stored as aware datetimes (UTC) by the database clock"),
    # tasks
    "imports": _s("DJQ_IMPORTS", "tasks.py of every installed app is imported anyway"),
    "include": _s("DJQ_IMPORTS"),
    "task_always_eager": _s("DJQ_TASK_ALWAYS_EAGER"),
    "task_eager_propagates": _s("DJQ_TASK_EAGER_PROPAGATES"),
    "task_store_eager_result": _unsupported(
        "eager runs (Task.apply) return an EagerResult and write nothing"
    ),
    "task_track_started": _s("DJQ_TASK_TRACK_STARTED", "djq's default is True"),
    "task_acks_late": _s("DJQ_TASK_ACKS_LATE"),
    "task_acks_on_failure_or_timeout": _unsupported(
        "a failed or timed-out job always ends FAILURE (retries are explicit)"
    ),
    "task_reject_on_worker_lost": _unsupported(
        "acks_late jobs of a dead worker are requeued "
        "when its lease expires; a pool child that dies "
        "mid-job fails its job (WorkerLostError)"
    ),
    "task_time_limit": _s("DJQ_TASK_TIME_LIMIT"),
    "task_soft_time_limit": _s("DJQ_TASK_SOFT_TIME_LIMIT"),
    "task_default_queue": _s("DJQ_DEFAULT_QUEUE"),
    "task_default_priority": _s(
        "DJQ_TASK_DEFAULT_PRIORITY",
        "-100..255, higher first (Celery on Redis runs lower numbers first)",
    ),
    "task_queue_max_priority": _no("priorities are always -100..255 on every database"),
    "task_inherit_parent_priority": _unsupported("give the priority when calling"),
    "task_routes": _s("DJQ_TASK_ROUTES", "only queue and priority are kept"),
    "task_annotations": _s("DJQ_TASK_ANNOTATIONS"),
    "task_default_rate_limit": _s(
        "DJQ_TASK_ANNOTATIONS", 'as {"*": {"rate_limit": …}}; djq enforces it for the whole cluster'
    ),
    "task_ignore_result": _s("DJQ_TASK_ANNOTATIONS", 'as {"*": {"ignore_result": …}}'),
    "task_queues": _no(_QUEUES),
    "task_create_missing_queues": _no(_QUEUES),
    "task_default_exchange": _no(_AMQP),
    "task_default_exchange_type": _no(_AMQP),
    "task_default_routing_key": _no(_AMQP),
    "task_default_delivery_mode": _no("jobs are rows: always persistent"),
    "task_publish_retry": _no("enqueueing is an INSERT in your transaction; errors raise"),
    "task_publish_retry_policy": _no("enqueueing is an INSERT in your transaction; errors raise"),
    "task_send_sent_event": _s("DJQ_TASK_SEND_SENT_EVENT"),
    "task_remote_tracebacks": _no("the traceback is always stored with the failure"),
    "worker_send_task_events": _s("DJQ_WORKER_SEND_TASK_EVENTS", "or djq_worker -E"),
    "event_queue_expires": _no(_EVENTS),
    "event_queue_ttl": _no(_EVENTS),
    # worker
    "worker_concurrency": _s("DJQ_WORKER_CONCURRENCY"),
    "worker_pool": _s("DJQ_WORKER_POOL", "prefork, threads or solo (no eventlet/gevent)"),
    "worker_prefetch_multiplier": _s(
        "DJQ_WORKER_PREFETCH_MULTIPLIER",
        "djq's default is 16 (Celery: 4); prefetched jobs are RESERVED, not started",
    ),
    "worker_max_tasks_per_child": _s("DJQ_WORKER_MAX_TASKS_PER_CHILD"),
    "worker_max_memory_per_child": _s("DJQ_WORKER_MAX_MEMORY_PER_CHILD"),
    "worker_autoscaler": _unsupported("djq_worker --autoscale MAX,MIN has one built-in policy"),
    "worker_disable_rate_limits": _s(
        "DJQ_DISABLE_RATE_LIMITS", "rate limits are otherwise enforced for the whole cluster"
    ),
    "worker_enable_remote_control": _no("remote control goes through the database; always on"),
    "worker_hijack_root_logger": _no(_LOGGING),
    "worker_log_format": _no(_LOGGING),
    "worker_task_log_format": _no(_LOGGING),
    "worker_redirect_stdouts": _no(_LOGGING),
    "worker_redirect_stdouts_level": _no(_LOGGING),
    "worker_lost_wait": _no("a dead pool child is found at once (its pipe closes)"),
    "worker_state_db": _no("revokes are stored in the job row and survive restarts"),
    "worker_pool_restarts": _unsupported("restart the worker with SIGHUP instead"),
    "worker_cancel_long_running_tasks_on_connection_loss": _no(
        "running jobs keep running; fencing discards a result that comes after a rescue"
    ),
    "worker_deduplicate_successful_tasks": _no(
        "a job is claimed by one worker; every write is fenced by its attempt number"
    ),
    # beat
    "beat_schedule": _s("DJQ_BEAT_SCHEDULE", "import crontab (and solar) from djq"),
    "beat_scheduler": _no(
        "schedules always live in the database (PeriodicTask, editable in "
        "the admin), as with django-celery-beat"
    ),
    "beat_schedule_filename": _no("beat keeps its state in the database, not in a file"),
    "beat_max_loop_interval": _cli("djq_beat --max-interval"),
    "beat_sync_every": _no("beat writes each tick in the transaction that enqueues it"),
    # security
    "security_key": _unsupported("jobs never leave the database; its permissions protect them"),
    "security_certificate": _unsupported("jobs never leave the database"),
    "security_cert_store": _unsupported("jobs never leave the database"),
    "security_key_password": _unsupported("jobs never leave the database"),
    "security_digest": _unsupported("jobs never leave the database"),
    # the rest of Celery's settings (old names map here through OLD_NAMES / _OLD_PREFIXES)
    "broker_read_url": _no(_BROKER),
    "broker_write_url": _no(_BROKER),
    "broker_failover_strategy": _no(_BROKER + "; fail over with your database's own tools"),
    "broker_login_method": _no(_BROKER),
    "broker_channel_error_retry": _no("workers retry the database by themselves"),
    "broker_native_delayed_delivery_queue_type": _no("ETAs are a column of the job row"),
    "broker_host": _no(_BROKER),
    "broker_port": _no(_BROKER),
    "broker_user": _no(_BROKER),
    "broker_password": _no(_BROKER),
    "broker_vhost": _no(_BROKER),
    "broker_insist": _no(_BROKER),
    "result_cache_max": _no(_RESULTS + "; AsyncResult reads the row, nothing is cached"),
    "result_exchange": _no(_RESULTS),
    "result_exchange_type": _no(_RESULTS),
    "result_backend_always_retry": _no(_RESULTS + " (written in the completion transaction)"),
    "result_backend_max_retries": _no(_RESULTS + " (written in the completion transaction)"),
    "result_backend_base_sleep_between_retries": _no(_RESULTS),
    "result_backend_max_sleep_between_retries": _no(_RESULTS),
    "result_backend_thread_safe": _no(_RESULTS + "; Django's connections are per thread"),
    "result_chord_retry_interval": _no("a chord's body is enqueued by its last member"),
    "result_chord_ordered": _no("a chord's body gets its header's results in header order"),
    "result_dburi": _no(_RESULTS),
    "cache_backend_options": _no(_RESULTS),
    "task_protocol": _no("jobs are rows, not messages"),
    "task_default_queue_type": _no(_QUEUES),
    "task_create_missing_queue_type": _no(_QUEUES),
    "task_create_missing_queue_exchange_type": _no(_QUEUES),
    "task_store_errors_even_if_ignored": _no("a failure is always stored with its job"),
    "task_allow_error_cb_on_chord_header": _unsupported("give the chord's body a link_error"),
    "chord_propagates": _no("a failed chord member fails the chord's body"),
    "send_task_error_emails": _unsupported("attach Django's AdminEmailHandler to the 'djq' logger"),
    "task_error_whitelist": _unsupported("attach a logging filter to the 'djq' logger"),
    "queue_ha_policy": _no(_QUEUES),
    "worker_agent": _no("there is no monitoring agent: the admin reads the database"),
    "worker_consumer": _unsupported("the worker's claim loop cannot be replaced"),
    "worker_timer": _no("ETAs are kept by the database, not by a timer in the worker"),
    "worker_timer_precision": _no("ETAs are kept by the database (due by its clock)"),
    "worker_pool_putlocks": _no("a job is handed only to a free pool slot"),
    "worker_direct": _no("address a worker by giving it its own queue (-Q)"),
    "worker_log_color": _no(_LOGGING),
    "worker_log_level": _cli("djq_worker -l LEVEL"),
    "worker_log_file": _cli("djq_worker --logfile FILE"),
    "worker_proc_alive_timeout": _no("a pool child is ready when it answers its pipe"),
    "worker_eta_task_limit": _no("ETAs wait in the database, not in worker memory"),
    "worker_enable_prefetch_count_reduction": _no("claims are sized to free slots"),
    "worker_disable_prefetch": _cli("djq_worker --prefetch-multiplier 1", "djq's default"),
    "worker_detect_quorum_queues": _no(_QUEUES),
    "worker_soft_shutdown_timeout": _no(
        "SIGTERM is a warm shutdown: running jobs finish, unstarted ones go back to the queue"
    ),
    "worker_enable_soft_shutdown_on_idle": _no("SIGTERM is a warm shutdown"),
    "worker_autoreloader": _unsupported("restart the worker with SIGHUP"),
    "worker_force_execv": _no("pool children are forked before any database connection"),
    "worker_mediator": _no("jobs go from the claim to the pool directly"),
    "worker_eta_scheduler": _no("ETAs are kept by the database"),
    "worker_eta_scheduler_precision": _no("ETAs are kept by the database"),
    "beat_cron_starting_deadline": _no(
        "beat runs a missed tick once at start (per task: catch_up once, skip or all)"
    ),
    "beat_log_level": _cli("djq_beat -l LEVEL"),
    "beat_log_file": _cli("djq_beat --logfile FILE"),
    "mon_log_level": _no("celerymon is gone: the admin is the monitor"),
    "mon_log_file": _no("celerymon is gone: the admin is the monitor"),
    "mon_log_format": _no("celerymon is gone: the admin is the monitor"),
    "amqp_task_result_expires": _s("DJQ_RESULT_EXPIRES"),
    "amqp_task_result_connection_max": _no(_RESULTS),
    "broadcast_queue": _no("remote control goes through the database"),
    "broadcast_exchange": _no("remote control goes through the database"),
    "broadcast_exchange_type": _no("remote control goes through the database"),
}

#: families of Celery settings (lower-case name prefix) that share one answer
FAMILIES: dict[str, Entry] = {
    "broker_": _no(_BROKER),
    "result_": _no(_RESULTS),
    "database_": _no(_RESULTS + " (Django's DATABASES, not SQLAlchemy)"),
    "redis_": _no(_RESULTS),
    "cassandra_": _no(_RESULTS),
    "s3_": _no(_RESULTS),
    "mongodb_": _no(_RESULTS),
    "couchbase_": _no(_RESULTS),
    "arangodb_": _no(_RESULTS),
    "cosmosdbsql_": _no(_RESULTS),
    "azureblockblob_": _no(_RESULTS),
    "gcs_": _no(_RESULTS),
    "elasticsearch_": _no(_RESULTS),
    "riak_": _no(_RESULTS),
    "couchdb_": _no(_RESULTS),
    "consul_": _no(_RESULTS),
    "dynamodb_": _no(_RESULTS),
    "filesystem_": _no(_RESULTS),
    "event_": _no(_EVENTS),
    "control_": _no("remote control goes through the database (djq_control, djq_inspect)"),
    "security_": _unsupported("jobs never leave the database"),
}

#: Celery 3 (pre-4.0) upper-case names → their lower-case names
OLD_NAMES = {
    "BROKER_URL": "broker_url",
    "BROKER_TRANSPORT_OPTIONS": "broker_transport_options",
    "BROKER_POOL_LIMIT": "broker_pool_limit",
    "BROKER_HEARTBEAT": "broker_heartbeat",
    "BROKER_CONNECTION_TIMEOUT": "broker_connection_timeout",
    "BROKER_USE_SSL": "broker_use_ssl",
    "CELERY_ALWAYS_EAGER": "task_always_eager",
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERY_TRACK_STARTED": "task_track_started",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERY_ROUTES": "task_routes",
    "CELERY_ANNOTATIONS": "task_annotations",
    "CELERY_QUEUES": "task_queues",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_DEFAULT_EXCHANGE": "task_default_exchange",
    "CELERY_DEFAULT_ROUTING_KEY": "task_default_routing_key",
    "CELERY_DEFAULT_RATE_LIMIT": "task_default_rate_limit",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERYD_CONCURRENCY": "worker_concurrency",
    "CELERYD_PREFETCH_MULTIPLIER": "worker_prefetch_multiplier",
    "CELERYD_MAX_TASKS_PER_CHILD": "worker_max_tasks_per_child",
    "CELERYD_MAX_MEMORY_PER_CHILD": "worker_max_memory_per_child",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERYD_POOL": "worker_pool",
    "CELERYD_HIJACK_ROOT_LOGGER": "worker_hijack_root_logger",
    "CELERYD_LOG_FORMAT": "worker_log_format",
    "CELERYD_TASK_LOG_FORMAT": "worker_task_log_format",
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERYBEAT_SCHEDULER": "beat_scheduler",
    "CELERYBEAT_MAX_LOOP_INTERVAL": "beat_max_loop_interval",
    "CELERY_SEND_EVENTS": "worker_send_task_events",
    "CELERY_SEND_TASK_SENT_EVENT": "task_send_sent_event",
    # Celery's table of old → new names (https://docs.celeryq.dev, "New lowercase settings")
    "CELERY_ACCEPT_CONTENT": "accept_content",
    "CELERY_ENABLE_UTC": "enable_utc",
    "CELERY_IMPORTS": "imports",
    "CELERY_INCLUDE": "include",
    "CELERY_TIMEZONE": "timezone",
    "CELERYBEAT_SCHEDULE_FILENAME": "beat_schedule_filename",
    "CELERYBEAT_SYNC_EVERY": "beat_sync_every",
    "BROKER_TRANSPORT": "broker_transport",
    "BROKER_CONNECTION_RETRY": "broker_connection_retry",
    "BROKER_CONNECTION_MAX_RETRIES": "broker_connection_max_retries",
    "BROKER_FAILOVER_STRATEGY": "broker_failover_strategy",
    "BROKER_LOGIN_METHOD": "broker_login_method",
    "BROKER_READ_URL": "broker_read_url",
    "BROKER_WRITE_URL": "broker_write_url",
    "CELERY_CACHE_BACKEND": "cache_backend",
    "CELERY_CACHE_BACKEND_OPTIONS": "cache_backend_options",
    "CASSANDRA_COLUMN_FAMILY": "cassandra_table",
    "CASSANDRA_ENTRY_TTL": "cassandra_entry_ttl",
    "CASSANDRA_KEYSPACE": "cassandra_keyspace",
    "CASSANDRA_PORT": "cassandra_port",
    "CASSANDRA_READ_CONSISTENCY": "cassandra_read_consistency",
    "CASSANDRA_SERVERS": "cassandra_servers",
    "CASSANDRA_WRITE_CONSISTENCY": "cassandra_write_consistency",
    "CASSANDRA_OPTIONS": "cassandra_options",
    "S3_ACCESS_KEY_ID": "s3_access_key_id",
    "S3_SECRET_ACCESS_KEY": "s3_secret_access_key",
    "S3_BUCKET": "s3_bucket",
    "S3_BASE_PATH": "s3_base_path",
    "S3_ENDPOINT_URL": "s3_endpoint_url",
    "S3_REGION": "s3_region",
    "CELERY_COUCHBASE_BACKEND_SETTINGS": "couchbase_backend_settings",
    "CELERY_ARANGODB_BACKEND_SETTINGS": "arangodb_backend_settings",
    "CELERY_MONGODB_BACKEND_SETTINGS": "mongodb_backend_settings",
    "CELERY_EVENT_QUEUE_EXPIRES": "event_queue_expires",
    "CELERY_EVENT_QUEUE_TTL": "event_queue_ttl",
    "CELERY_EVENT_QUEUE_PREFIX": "event_queue_prefix",
    "CELERY_EVENT_SERIALIZER": "event_serializer",
    "CELERY_REDIS_DB": "redis_db",
    "CELERY_REDIS_HOST": "redis_host",
    "CELERY_REDIS_MAX_CONNECTIONS": "redis_max_connections",
    "CELERY_REDIS_USERNAME": "redis_username",
    "CELERY_REDIS_PASSWORD": "redis_password",
    "CELERY_REDIS_PORT": "redis_port",
    "CELERY_REDIS_BACKEND_USE_SSL": "redis_backend_use_ssl",
    "CELERY_RESULT_BACKEND": "result_backend",
    "CELERY_MAX_CACHED_RESULTS": "result_cache_max",
    "CELERY_MESSAGE_COMPRESSION": "result_compression",
    "CELERY_RESULT_EXCHANGE": "result_exchange",
    "CELERY_RESULT_EXCHANGE_TYPE": "result_exchange_type",
    "CELERY_RESULT_EXPIRES": "result_expires",
    "CELERY_RESULT_PERSISTENT": "result_persistent",
    "CELERY_RESULT_SERIALIZER": "result_serializer",
    "CELERY_RESULT_DBURI": "result_backend",
    "CELERY_RESULT_ENGINE_OPTIONS": "database_engine_options",
    "CELERY_RESULT_DB_SHORT_LIVED_SESSIONS": "database_short_lived_sessions",
    "CELERY_RESULT_DB_TABLE_NAMES": "database_table_names",
    "CELERY_SECURITY_CERTIFICATE": "security_certificate",
    "CELERY_SECURITY_CERT_STORE": "security_cert_store",
    "CELERY_SECURITY_KEY": "security_key",
    "CELERY_SECURITY_KEY_PASSWORD": "security_key_password",
    "CELERY_ACKS_ON_FAILURE_OR_TIMEOUT": "task_acks_on_failure_or_timeout",
    "CELERY_TASK_ALWAYS_EAGER": "task_always_eager",
    "CELERY_COMPRESSION": "task_compression",
    "CELERY_CREATE_MISSING_QUEUES": "task_create_missing_queues",
    "CELERY_DEFAULT_DELIVERY_MODE": "task_default_delivery_mode",
    "CELERY_DEFAULT_EXCHANGE_TYPE": "task_default_exchange_type",
    "CELERY_DEFAULT_QUEUE_TYPE": "task_default_queue_type",
    "CELERY_EAGER_PROPAGATES": "task_eager_propagates",
    "CELERY_PUBLISH_RETRY": "task_publish_retry",
    "CELERY_PUBLISH_RETRY_POLICY": "task_publish_retry_policy",
    "CELERY_TASK_PUBLISH_RETRY": "task_publish_retry",
    "CELERY_TASK_PUBLISH_RETRY_POLICY": "task_publish_retry_policy",
    "CELERY_SEND_SENT_EVENT": "task_send_sent_event",
    "CELERYD_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERYD_SOFT_TASK_TIME_LIMIT": "task_soft_time_limit",
    "CELERYD_TIME_LIMIT": "task_time_limit",
    "CELERY_TASK_REJECT_ON_WORKER_LOST": "task_reject_on_worker_lost",
    "CELERY_ALLOW_ERROR_CB_ON_CHORD_HEADER": "task_allow_error_cb_on_chord_header",
    "CELERY_STORE_ERRORS_EVEN_IF_IGNORED": "task_store_errors_even_if_ignored",
    "CELERYD_AGENT": "worker_agent",
    "CELERYD_AUTOSCALER": "worker_autoscaler",
    "CELERYD_CONSUMER": "worker_consumer",
    "CELERY_WORKER_DIRECT": "worker_direct",
    "CELERY_DISABLE_RATE_LIMITS": "worker_disable_rate_limits",
    "CELERY_ENABLE_REMOTE_CONTROL": "worker_enable_remote_control",
    "CELERYD_LOG_COLOR": "worker_log_color",
    "CELERY_WORKER_LOG_FORMAT": "worker_log_format",
    "CELERYD_WORKER_LOST_WAIT": "worker_lost_wait",
    "CELERYD_POOL_PUTLOCKS": "worker_pool_putlocks",
    "CELERYD_POOL_RESTARTS": "worker_pool_restarts",
    "CELERYD_ETA_TASK_LIMIT": "worker_eta_task_limit",
    "CELERYD_ENABLE_PREFETCH_COUNT_REDUCTION": "worker_enable_prefetch_count_reduction",
    "CELERYD_REDIRECT_STDOUTS": "worker_redirect_stdouts",
    "CELERYD_REDIRECT_STDOUTS_LEVEL": "worker_redirect_stdouts_level",
    "CELERY_REDIRECT_STDOUTS": "worker_redirect_stdouts",
    "CELERY_REDIRECT_STDOUTS_LEVEL": "worker_redirect_stdouts_level",
    "CELERYD_SEND_EVENTS": "worker_send_task_events",
    "CELERYD_STATE_DB": "worker_state_db",
    "CELERY_WORKER_TASK_LOG_FORMAT": "worker_task_log_format",
    "CELERYD_TIMER": "worker_timer",
    "CELERYD_TIMER_PRECISION": "worker_timer_precision",
    "CELERYD_DETECT_QUORUM_QUEUES": "worker_detect_quorum_queues",
    "CELERY_AMQP_TASK_RESULT_EXPIRES": "amqp_task_result_expires",
    "BROKER_HOST": "broker_host",
    "BROKER_PORT": "broker_port",
    "BROKER_USER": "broker_user",
    "BROKER_PASSWORD": "broker_password",
    "BROKER_VHOST": "broker_vhost",
}

#: upper-case prefixes of old names not listed above → their lower-case namespace
_OLD_PREFIXES = (
    ("CELERYD_", "worker_"),
    ("CELERYBEAT_", "beat_"),
    ("CELERYMON_", "mon_"),
    ("BROKER_", "broker_"),
    ("CELERY_", ""),
)


#: the guide's import rewrites (docs/migrating-from-celery.md), in order
IMPORTS = (
    ("from celery.schedules import", "from djq import"),
    ("from celery.result import", "from djq import"),
    ("from celery.exceptions import", "from djq.exceptions import"),
    ("from celery.signals import", "from djq.signals import"),
    ("from celery import", "from djq import"),
)


def convert_imports(source: str) -> str:
    """Apply the import rewrites to a module's source, line by line."""
    lines = []
    for line in source.splitlines(keepends=True):
        for old, new in IMPORTS:
            if line.startswith(old):
                line = new + line[len(old) :]
                break
        lines.append(line)
    return "".join(lines)


# --- reading a settings module (without importing it) ---------------------------------------
@dataclass
class Value:
    source: str  # the expression as written
    value: Any = None
    literal: bool = False


@dataclass
class Finding:
    name: str  # as written in the module
    celery: str | None  # its lower-case Celery name
    value: Value
    entry: Entry | None
    suggestion: str = ""  # e.g. "DJQ_TASK_ROUTES = {...}"
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.entry.status if self.entry else UNKNOWN


def find_module(target: str) -> Path:
    """A settings file: a path, or a dotted module name looked up on sys.path (not imported)."""
    if target.endswith(".py") or os.sep in target:
        path = Path(target)
        if path.is_file():
            return path
        raise FileNotFoundError(f"no such file: {target}")
    parts = target.split(".")
    for base in [Path.cwd(), *map(Path, sys.path)]:
        for candidate in (
            base.joinpath(*parts).with_suffix(".py"),
            base.joinpath(*parts, "__init__.py"),
        ):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"module {target} not found on sys.path")


def read_assignments(path: Path) -> dict[str, Value]:
    """Top-level ``NAME = expression`` statements of a module, in order."""
    text = path.read_text()
    found: dict[str, Value] = {}
    for node in ast.parse(text, str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, expr = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, expr = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            found[target.id] = _value(text, expr)
    return found


def _value(text: str, expr: ast.expr) -> Value:
    source = ast.get_source_segment(text, expr) or ""
    try:
        return Value(source, ast.literal_eval(expr), True)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return Value(source)


def celery_name(name: str) -> str | None:
    """The lower-case Celery name of a module-level name, or None if it is not a Celery one."""
    if name in OLD_NAMES:
        return OLD_NAMES[name]
    for prefix, namespace in _OLD_PREFIXES:
        if name.startswith(prefix):
            return namespace + name[len(prefix) :].lower()
    if name in SETTINGS or _family(name):  # a celeryconfig.py module: lower-case names
        return name
    return None


def entry_for(celery: str) -> Entry | None:
    """What a (lower-case) Celery setting becomes: its own entry, else its family's."""
    return SETTINGS.get(celery) or _family(celery)


def _family(name: str) -> Entry | None:
    return next((e for prefix, e in FAMILIES.items() if name.startswith(prefix)), None)


def check_settings(target: str) -> list[Finding]:
    """What every Celery setting of the module maps to, in the module's order."""
    findings = []
    for name, value in read_assignments(find_module(target)).items():
        celery = celery_name(name)
        if celery is None:
            continue
        finding = Finding(name, celery, value, entry_for(celery))
        if finding.status == SETTING:
            finding.suggestion = _suggest(finding)
        findings.append(finding)
    return findings


def _suggest(finding: Finding) -> str:
    target, value = finding.entry.target, finding.value
    convert = _CONVERT.get(finding.celery)
    if not value.literal:
        if convert is not None:
            finding.notes.append("convert by hand: " + finding.entry.note)
        return f"{target} = {value.source}"
    return f"{target} = {(convert or _identity)(value.value, finding.notes)!r}"


def _routes(value, notes: list[str]):
    entries = value if isinstance(value, (list, tuple)) else [value]
    converted = []
    for entry in entries:
        if not isinstance(entry, dict):
            notes.append(f"router {entry!r} is not a dict: write a function router by hand")
            continue
        out = {}
        for pattern, route in entry.items():
            route = {"queue": route} if isinstance(route, str) else dict(route)
            dropped = sorted(set(route) - {"queue", "priority"})
            if dropped:
                notes.append(f"{pattern}: dropped {', '.join(dropped)} ({_AMQP})")
            out[pattern] = {k: v for k, v in route.items() if k in ("queue", "priority")}
        converted.append(out)
    return converted[0] if len(converted) == 1 else converted


def _star(key: str):
    return lambda value, notes: {"*": {key: value}}


def _pool(value, notes: list[str]):
    if value not in ("prefork", "threads", "solo"):
        notes.append(f"pool {value!r} is not supported: use prefork or threads")
        return "threads" if value in ("eventlet", "gevent") else "prefork"
    return value


def _as_list(value, notes: list[str]):
    return list(value) if isinstance(value, (list, tuple)) else value


#: conversions of literal values (any other setting is copied as it is)
_CONVERT = {
    "task_routes": _routes,
    "task_default_rate_limit": _star("rate_limit"),
    "task_ignore_result": _star("ignore_result"),
    "worker_pool": _pool,
    "imports": _as_list,
    "include": _as_list,
}


def _identity(value, notes: list[str]):
    return value


def report(target: str, findings: list[Finding]) -> str:
    """The text ``djq_check_celery`` prints."""
    lines = [f"{len(findings)} Celery setting(s) in {target}:", ""]
    for f in findings:
        lines.append(f"{f.name}  ({f.status})")
        entry = f.entry
        if entry is None:
            lines.append("    not a Celery setting djq knows: check it by hand")
        elif entry.status == SETTING:
            lines.append(f"    -> {f.suggestion}")
        elif entry.status == CLI:
            lines.append(f"    -> {entry.target}")
        if entry is not None and entry.note and entry.status != SETTING:
            lines.append(f"    {entry.status}: {entry.note}")
        elif entry is not None and entry.note:
            lines.append(f"    note: {entry.note}")
        lines.extend(f"    note: {note}" for note in f.notes)
    suggestions = _merged_suggestions(findings)
    if suggestions:
        lines += ["", "# djq settings to add (settings.py):"] + suggestions
    return "\n".join(lines) + "\n"


def _merged_suggestions(findings: list[Finding]) -> list[str]:
    """One line per DJQ_ setting (annotations from several Celery settings merged)."""
    out: dict[str, str] = {}
    merged: dict[str, dict] = {}
    for f in findings:
        if not f.suggestion:
            continue
        target = f.entry.target
        value = f.value.value
        if target == "DJQ_TASK_ANNOTATIONS" and f.value.literal:
            value = _CONVERT.get(f.celery, _identity)(value, [])
        if target == "DJQ_TASK_ANNOTATIONS" and f.value.literal and isinstance(value, dict):
            for pattern, options in value.items():
                merged.setdefault(pattern, {}).update(options if isinstance(options, dict) else {})
            out[target] = f"{target} = {merged!r}"
        else:
            out[target] = f.suggestion
    return list(out.values())
