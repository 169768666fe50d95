"""Remote control through the database: broadcast commands to workers and collect replies.

A command is a ``ControlMessage`` row (plus a NOTIFY on PostgreSQL, so workers act at once; on
SQLite they look at every poll). Each worker handles the messages addressed to it that arrived
after it started, in order, and writes a ``ControlReply`` row when a reply is wanted. Handlers are
plain functions ``handler(worker, **arguments)``; ``register`` adds custom ones. The built-in
handlers reach the worker only through ``WorkerControl``: the operations it offers them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import resource
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload, runtime_checkable

from django.db import connections

from djq import states, store
from djq.calling.registry import tasks
from djq.conf import DEFAULTS, settings
from djq.models import ControlMessage, ControlReply, Job
from djq.serialization import loads
from djq.store import rows as store_rows
from djq.store.postgres import CONTROL_CHANNEL

if TYPE_CHECKING:  # (for annotations only: the worker imports this module)
    from djq.records import Claim
    from djq.worker import ResolvedWorkerConfig

logger = logging.getLogger("djq.remote")

#: command name → handler(worker, **arguments); the built-in ones are registered below
HANDLERS: dict[str, Callable[..., Any]] = {}
#: a message not handled within this long is dropped (a worker started later never runs it)
MESSAGE_TTL = 60.0

Handler = TypeVar("Handler", bound=Callable[..., Any])


@runtime_checkable
class WorkerControl(Protocol):
    """What remote-control commands may read and do in a worker (``djq.worker.Worker`` is one).

    The built-in handlers use nothing else, so the worker's inside can change without them, and
    they can be run against any object offering these (tests/unit/test_remote_control.py).
    """

    @property
    def name(self) -> str: ...
    @property
    def using(self) -> str: ...
    @property
    def config(self) -> ResolvedWorkerConfig: ...  # (read only: its resolved options)
    @property
    def started(self) -> float: ...  # (time.monotonic() at start)
    @property
    def processed(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def totals(self) -> Mapping[str | None, int]: ...

    def control_clock(self) -> int: ...
    def active_jobs(self) -> list[tuple[Claim, int, float | None]]: ...
    def held_jobs(self) -> list[Claim]: ...
    def revoked_ids(self) -> Collection[str]: ...
    def pool_stats(self) -> dict[str, Any]: ...
    def pool_size(self) -> tuple[int, int]: ...
    def resize_pool(
        self, max_procs: int, min_procs: int | None = None, autoscale: bool = False
    ) -> int: ...
    def set_time_limits(self, task_name: str, soft: float | None, hard: float | None) -> None: ...
    def refresh_limits(self) -> None: ...
    def set_queues(self, queues: list[str]) -> None: ...
    def request_stop(self) -> None: ...
    def set_events(self, on: bool) -> bool: ...


@overload
def register(name: Handler) -> Handler: ...
@overload
def register(name: str | None = None) -> Callable[[Handler], Handler]: ...
def register(name: str | Handler | None = None) -> Handler | Callable[[Handler], Handler]:
    """``@register`` / ``@register("name")``: a custom remote-control command run by workers."""

    def deco(fun: Handler) -> Handler:
        HANDLERS[name if isinstance(name, str) else fun.__name__] = fun
        return fun

    if callable(name):
        return deco(name)
    return deco


# --- the sending side ----------------------------------------------------------------------
def broadcast(
    command: str,
    arguments: dict[str, Any] | None = None,
    destination: list[str] | str | None = None,
    reply: bool = False,
    timeout: float = 1.0,
    limit: int | None = None,
    using: str | None = None,
) -> list[dict[str, Any]] | None:
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
    replies: list[tuple[str, Any]] = []
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

    def __init__(self, worker: WorkerControl, using: str) -> None:
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

    def handle(self, command: str, arguments: dict[str, Any]) -> Any:
        return handle(self.worker, command, arguments)


def handle(worker: WorkerControl, command: str, arguments: dict[str, Any]) -> Any:
    """Run one command's handler; its answer, or an error naming what failed."""
    handler = HANDLERS.get(command)
    if handler is None:
        return {"error": f"unknown command {command!r}"}
    try:
        return handler(worker, **arguments)
    except Exception as exc:
        logger.exception("control command %s failed", command)
        return {"error": f"{type(exc).__name__}: {exc}"}


# --- built-in commands ------------------------------------------------------------------------
def _job_info(
    worker: WorkerControl, job: Claim, pid: int | None = None, time_start: float | None = None
) -> dict[str, Any]:
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
def ping(worker: WorkerControl) -> dict[str, Any]:
    return {"ok": "pong"}


@register
def clock(worker: WorkerControl) -> dict[str, Any]:
    """Celery's logical clock: here the id of the newest control message the worker has read,
    a sequence shared by the whole cluster (the database's)."""
    return {"clock": worker.control_clock()}


@register
def active(worker: WorkerControl) -> list[dict[str, Any]]:
    return [_job_info(worker, *active) for active in worker.active_jobs()]


@register
def reserved(worker: WorkerControl) -> list[dict[str, Any]]:
    running = {job.id for job, _, _ in worker.active_jobs()}
    return [_job_info(worker, job) for job in worker.held_jobs() if job.id not in running]


@register
def scheduled(worker: WorkerControl) -> list[dict[str, Any]]:
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
def revoked(worker: WorkerControl) -> list[str]:
    return sorted(worker.revoked_ids())


@register
def registered(worker: WorkerControl) -> list[str]:
    return tasks.regular()


@register
def stats(worker: WorkerControl) -> dict[str, Any]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "pid": os.getpid(),
        "hostname": worker.config.hostname,
        "uptime": round(time.monotonic() - worker.started, 3),
        "total": dict(worker.totals),
        "processed": worker.processed,
        "failed": worker.failed,
        "pool": worker.pool_stats(),
        "prefetch_count": worker.config.concurrency * worker.config.prefetch_multiplier,
        "broker": {
            "transport": "djq",
            "database": worker.using,
            "vendor": connections[worker.using].vendor,
        },
        "rusage": {"utime": usage.ru_utime, "stime": usage.ru_stime, "maxrss": usage.ru_maxrss},
    }


@register
def active_queues(worker: WorkerControl) -> list[dict[str, Any]]:
    return [{"name": q, "routing_key": q, "exclusive": False} for q in worker.config.queues]


@register
def conf(worker: WorkerControl) -> dict[str, Any]:
    config = {k: v for k, v in vars(worker.config).items() if _jsonable(v)}
    djq = {f"DJQ_{k}": getattr(settings, k) for k in DEFAULTS}
    return {**config, **{k: v for k, v in djq.items() if _jsonable(v)}}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


@register
def query_task(worker: WorkerControl, ids: list[str]) -> dict[str, Any]:
    active_ids = {job.id for job, _, _ in worker.active_jobs()}
    held = {job.id: job for job in worker.held_jobs()}
    return {
        i: ["active" if i in active_ids else "reserved", _job_info(worker, held[i])]
        for i in ids
        if i in held
    }


@register
def time_limit(
    worker: WorkerControl, task_name: str, soft: float | None = None, hard: float | None = None
) -> dict[str, Any]:
    worker.set_time_limits(task_name, soft, hard)
    return {"ok": f"time limits set successfully for {task_name}"}


@register
def rate_limit(
    worker: WorkerControl, task_name: str, rate_limit: str | None = None
) -> dict[str, Any]:
    worker.refresh_limits()
    return {"ok": f"rate limit for {task_name} is {rate_limit or 'off'} (cluster-wide)"}


@register
def refresh_limits(worker: WorkerControl) -> dict[str, Any]:
    worker.refresh_limits()
    return {"ok": "limits reloaded"}


@register
def add_consumer(worker: WorkerControl, queue: str) -> dict[str, Any]:
    if queue not in worker.config.queues:
        worker.set_queues([*worker.config.queues, queue])
    return {"ok": f"add consumer {queue}"}


@register
def cancel_consumer(worker: WorkerControl, queue: str) -> dict[str, Any]:
    if queue in worker.config.queues:
        if len(worker.config.queues) == 1:
            return {"error": "a worker needs at least one queue"}
        worker.set_queues([q for q in worker.config.queues if q != queue])
    return {"ok": f"no longer consuming from {queue}"}


@register
def pool_grow(worker: WorkerControl, n: int = 1) -> dict[str, Any]:
    most, _ = worker.pool_size()
    return {"ok": f"pool will grow to {worker.resize_pool(most + int(n))}"}


@register
def pool_shrink(worker: WorkerControl, n: int = 1) -> dict[str, Any]:
    most, fewest = worker.pool_size()
    target = max(1, most - int(n))
    return {"ok": f"pool will shrink to {worker.resize_pool(target, min(fewest, target))}"}


@register
def autoscale(worker: WorkerControl, max: int, min: int) -> dict[str, Any]:  # noqa: A002 - Celery's argument names
    worker.resize_pool(int(max), int(min), autoscale=True)
    return {"ok": f"autoscale now max={max} min={min}"}


@register
def shutdown(worker: WorkerControl) -> dict[str, Any]:
    worker.request_stop()
    return {"ok": "shutting down"}


@register
def enable_events(worker: WorkerControl) -> dict[str, Any]:
    if worker.set_events(True):
        logger.info("Events of group {task} enabled by remote.")
        return {"ok": "task events enabled"}
    return {"ok": "task events already enabled"}


@register
def disable_events(worker: WorkerControl) -> dict[str, Any]:
    if worker.set_events(False):
        logger.info("Events of group {task} disabled by remote.")
        return {"ok": "task events disabled"}
    return {"ok": "task events already disabled"}
