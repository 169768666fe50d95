"""Remote control through the database: broadcast commands to workers and collect replies.

A command is a ``ControlMessage`` row (plus a NOTIFY on PostgreSQL, so workers act at once; on
SQLite they look at every poll). Each worker handles the messages addressed to it that arrived
after it started, in order, and writes a ``ControlReply`` row when a reply is wanted. Handlers are
plain functions ``handler(worker, **arguments)``; ``register`` adds custom ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import resource
import time
from collections.abc import Callable
from typing import Any

from django.db import connections

from djq import states, store
from djq.calling.registry import tasks
from djq.conf import DEFAULTS, settings
from djq.models import ControlMessage, ControlReply, Job
from djq.serialization import loads
from djq.store import rows as store_rows
from djq.store.postgres import CONTROL_CHANNEL

logger = logging.getLogger("djq.remote")

#: command name → handler(worker, **arguments); the built-in ones are registered below
HANDLERS: dict[str, Callable[..., Any]] = {}
#: a message not handled within this long is dropped (a worker started later never runs it)
MESSAGE_TTL = 60.0


def register(name: str | Callable | None = None):
    """``@register`` / ``@register("name")``: a custom remote-control command run by workers."""

    def deco(fun: Callable) -> Callable:
        HANDLERS[name if isinstance(name, str) else fun.__name__] = fun
        return fun

    if callable(name):
        return deco(name)
    return deco


# --- the sending side ----------------------------------------------------------------------
def broadcast(
    command: str,
    arguments: dict | None = None,
    destination: list[str] | str | None = None,
    reply: bool = False,
    timeout: float = 1.0,
    limit: int | None = None,
    using: str | None = None,
) -> list[dict] | None:
    """Send ``command`` to every worker (or those named in ``destination``). With ``reply``,
    wait up to ``timeout`` seconds (or for ``limit`` replies, or one per destination) and return
    Celery's shape: ``[{worker_name: reply}, …]``."""
    db = store.alias(using)
    if isinstance(destination, str):
        destination = [d.strip() for d in destination.split(",") if d.strip()]
    message = store_rows.add_control_message(
        command, arguments or {}, destination or None, reply, MESSAGE_TTL, using=db
    )
    _notify(db, "broadcast")
    if not reply:
        return None
    expected = limit or (len(destination) if destination else None)
    deadline = time.monotonic() + timeout
    replies: list = []
    while True:
        replies = list(
            ControlReply.objects.using(db)
            .filter(message=message)
            .order_by("id")
            .values_list("worker", "reply")
        )
        if (expected and len(replies) >= expected) or time.monotonic() >= deadline:
            break
        time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
    return [{worker: answer} for worker, answer in replies]


def _notify(db: str, payload: str) -> None:
    connection = connections[db]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CONTROL_CHANNEL, payload])


# --- the receiving side (in the worker's main loop) ----------------------------------------
class Mailbox:
    """A worker's view of the control table: the messages after ``last_id`` meant for it."""

    def __init__(self, worker, using: str):
        self.worker = worker
        self.using = using
        newest = ControlMessage.objects.using(using).order_by("-id").values_list("id", flat=True)
        self.last_id = newest.first() or 0

    def poll(self) -> int:
        now = store.db_now(self.using)
        messages = list(
            ControlMessage.objects.using(self.using)
            .filter(id__gt=self.last_id, expires_at__gt=now)
            .order_by("id")
        )
        for message in messages:
            self.last_id = message.id
            if message.destination and self.worker.name not in message.destination:
                continue
            answer = self.handle(message.command, message.arguments or {})
            if message.reply:
                store_rows.add_control_reply(message, self.worker.name, answer, now, self.using)
        if messages:  # now and then, somebody sweeps old messages (see the function)
            store_rows.sweep_control_messages(now, self.using)
        return len(messages)

    def handle(self, command: str, arguments: dict) -> Any:
        handler = HANDLERS.get(command)
        if handler is None:
            return {"error": f"unknown command {command!r}"}
        try:
            return handler(self.worker, **arguments)
        except Exception as exc:
            logger.exception("control command %s failed", command)
            return {"error": f"{type(exc).__name__}: {exc}"}


# --- built-in commands ------------------------------------------------------------------------
def _job_info(worker, job, pid: int | None = None, time_start: float | None = None) -> dict:
    """Celery's description of a held job (a ``Claim``): running, with its process, or not."""
    return {
        "id": job.id,
        "name": job.name,
        "type": job.name,
        "args": loads(job.args),
        "kwargs": loads(job.kwargs),
        "hostname": worker.name,
        "time_start": time_start,
        "acknowledged": True,
        "worker_pid": pid,
        "delivery_info": {"routing_key": job.queue, "priority": job.priority},
    }


@register
def ping(worker) -> dict:
    return {"ok": "pong"}


@register
def clock(worker) -> dict:
    """Celery's logical clock: here the id of the newest control message the worker has read,
    a sequence shared by the whole cluster (the database's)."""
    return {"clock": worker.mailbox.last_id if worker.mailbox is not None else 0}


@register
def active(worker) -> list:
    return [_job_info(worker, *active) for active in worker.pool.active_jobs()]


@register
def reserved(worker) -> list:
    running = {job.id for job, _, _ in worker.pool.active_jobs()}
    held = [*worker.pool.running_jobs(), *worker.buffer]
    return [_job_info(worker, job) for job in held if job.id not in running]


@register
def scheduled(worker) -> list:
    """Jobs of this worker's queues waiting for their ETA (they wait in the database)."""
    now = time.time()
    rows = (
        Job.objects.using(worker.using)
        .filter(
            state__in=sorted(states.WAITING_STATES),
            queue__in=worker.config.queues,
            run_after__gt=dt.datetime.fromtimestamp(now, dt.UTC),
        )
        .order_by("run_after")[:100]
    )
    return [
        {
            "eta": row.run_after.isoformat(),
            "priority": row.priority,
            "request": {
                "id": str(row.id),
                "name": row.name,
                "args": row.args,
                "kwargs": row.kwargs,
                "hostname": worker.name,
            },
        }
        for row in rows
    ]


@register
def revoked(worker) -> list:
    return sorted(worker.revoked)


@register
def registered(worker) -> list:
    return tasks.regular()


@register
def stats(worker) -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "pid": os.getpid(),
        "hostname": worker.config.hostname,
        "uptime": round(time.monotonic() - worker.started, 3),
        "total": dict(worker.totals),
        "processed": worker.processed,
        "failed": worker.failed,
        "pool": {
            "implementation": worker.config.pool,
            "max-concurrency": worker.pool.concurrency,
            "processes": worker.pool.pids(),
            "max-tasks-per-child": worker.config.max_tasks_per_child,
        },
        "prefetch_count": worker.config.concurrency * worker.config.prefetch_multiplier,
        "broker": {
            "transport": "djq",
            "database": worker.using,
            "vendor": connections[worker.using].vendor,
        },
        "rusage": {"utime": usage.ru_utime, "stime": usage.ru_stime, "maxrss": usage.ru_maxrss},
    }


@register
def active_queues(worker) -> list:
    return [{"name": q, "routing_key": q, "exclusive": False} for q in worker.config.queues]


@register
def conf(worker) -> dict:
    config = {k: v for k, v in vars(worker.config).items() if _jsonable(v)}
    djq = {f"DJQ_{k}": getattr(settings, k) for k in DEFAULTS}
    return {**config, **{k: v for k, v in djq.items() if _jsonable(v)}}


def _jsonable(value) -> bool:
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


@register
def query_task(worker, ids: list[str]) -> dict:
    active_ids = {job.id for job, _, _ in worker.pool.active_jobs()}
    held = {job.id: job for job in [*worker.pool.running_jobs(), *worker.buffer]}
    return {
        i: ["active" if i in active_ids else "reserved", _job_info(worker, held[i])]
        for i in ids
        if i in held
    }


@register
def time_limit(worker, task_name: str, soft: float | None = None, hard: float | None = None):
    worker.time_limits[task_name] = (soft, hard)
    return {"ok": f"time limits set successfully for {task_name}"}


@register
def rate_limit(worker, task_name: str, rate_limit: str | None = None) -> dict:
    worker.refresh_limits()
    return {"ok": f"rate limit for {task_name} is {rate_limit or 'off'} (cluster-wide)"}


@register
def refresh_limits(worker) -> dict:
    worker.refresh_limits()
    return {"ok": "limits reloaded"}


@register
def add_consumer(worker, queue: str) -> dict:
    if queue not in worker.config.queues:
        worker.set_queues([*worker.config.queues, queue])
    return {"ok": f"add consumer {queue}"}


@register
def cancel_consumer(worker, queue: str) -> dict:
    if queue in worker.config.queues:
        if len(worker.config.queues) == 1:
            return {"error": "a worker needs at least one queue"}
        worker.set_queues([q for q in worker.config.queues if q != queue])
    return {"ok": f"no longer consuming from {queue}"}


@register
def pool_grow(worker, n: int = 1) -> dict:
    worker.pool.resize(worker.pool.max_procs + int(n))
    worker.config.concurrency = worker.pool.max_procs
    return {"ok": f"pool will grow to {worker.pool.max_procs}"}


@register
def pool_shrink(worker, n: int = 1) -> dict:
    target = max(1, worker.pool.max_procs - int(n))
    worker.pool.resize(target, min(worker.pool.min_procs, target))
    worker.config.concurrency = worker.pool.max_procs
    return {"ok": f"pool will shrink to {worker.pool.max_procs}"}


@register
def autoscale(worker, max: int, min: int) -> dict:  # noqa: A002 - Celery's argument names
    worker.pool.autoscale = (int(max), int(min))
    worker.pool.resize(int(max), int(min))
    worker.config.concurrency = worker.pool.max_procs
    return {"ok": f"autoscale now max={max} min={min}"}


@register
def shutdown(worker) -> dict:
    worker.stopping = worker.stopping or "warm"
    return {"ok": "shutting down"}


@register
def enable_events(worker) -> dict:
    if worker.events.set_enabled(True):
        logger.info("Events of group {task} enabled by remote.")
        return {"ok": "task events enabled"}
    return {"ok": "task events already enabled"}


@register
def disable_events(worker) -> dict:
    if worker.events.set_enabled(False):
        logger.info("Events of group {task} disabled by remote.")
        return {"ok": "task events disabled"}
    return {"ok": "task events already disabled"}
