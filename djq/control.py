"""Controlling jobs and queues: revoke, pause/resume and purge.

The admin, ``djq_control`` and the Python API all call these functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from djq import options as checks
from djq import states, store
from djq.calling.enqueue import build_row, enqueue
from djq.calling.result import AsyncResult
from djq.conf import settings
from djq.limits import parse_rate
from djq.models import Job
from djq.roles.remote import broadcast as send
from djq.roles.remote import register
from djq.store import rows as store_rows
from djq.store.postgres import JOBS_CHANNEL


def revoke(
    task_id: str | Iterable[str],
    terminate: bool = False,
    signal: str = "SIGTERM",
    using: str | None = None,
) -> list[tuple]:
    """Revoke jobs by id. A waiting job ends REVOKED at once and never runs; with ``terminate`` a
    running job's process is sent ``signal`` by its worker and the job ends REVOKED. The revoke is
    stored in the job row, so it survives worker restarts."""
    ids = [task_id] if isinstance(task_id, str) else list(task_id)
    return store.revoke(ids, terminate=terminate, signal=signal, using=using)


def pause_queue(name: str, using: str | None = None) -> None:
    """Stop workers from claiming the queue's jobs; running ones finish."""
    store_rows.set_queue(name, using, paused=True)


def resume_queue(name: str, using: str | None = None) -> None:
    store_rows.set_queue(name, using, paused=False)
    _wake(name, using)


def _wake(queue: str, using: str | None) -> None:
    from django.db import connections

    connection = connections[using or settings.DATABASE]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [JOBS_CHANNEL, queue])


def purge(queue: str | None = None, using: str | None = None) -> int:
    """Delete waiting jobs (of one queue, or all). Returns how many."""
    return store.purge_waiting(queue, using=using)


#: options a retried job keeps; links, chain steps and chord membership are not re-sent (they ran
#: or were marked failed with the original job, and a chord counts each member once)
RETRY_OPTIONS = (
    "headers",
    "time_limit",
    "soft_time_limit",
    "ignore_result",
    "track_started",
    "shadow",
    "related",
)


def purge_jobs(ids: Iterable[str], using: str | None = None) -> int:
    """Delete those of ``ids`` that are still waiting (PENDING or RETRY); the number deleted.
    ``purge`` for chosen jobs rather than a whole queue (the admin's bulk "purge")."""
    return store.purge_waiting(using=using, ids=[str(i) for i in ids])


def retry_jobs(ids: Iterable[str], using: str | None = None) -> list:
    """Re-enqueue FAILURE and REVOKED jobs as new jobs: same task, arguments, queue and priority,
    each linked to the job it retries (``parent_id``; same work-flow root). Other jobs are
    skipped, and so are jobs retried before (a job is retried once: see ``retried_as``).
    Returns the new jobs' ``AsyncResult``s, in the order of ``ids``."""
    from django.db import transaction

    db = store.alias(using)
    ids = [str(i) for i in ids]
    with transaction.atomic(using=db):
        # the rows are locked, so two retries of the same job at once make one new job
        found = (
            Job.objects.using(db)
            .select_for_update()
            .filter(id__in=ids, state__in=[states.FAILURE, states.REVOKED])
        )
        jobs = {str(job.id): job for job in found}
        done = retried_as(list(jobs), using=db)
        rows = [_retry_row(jobs[i]) for i in ids if i in jobs and i not in done]
        enqueue(rows, using=db)
    return [AsyncResult(row["id"], task_name=row["name"], using=using) for row in rows]


def retried_as(ids: Iterable[str], using: str | None = None) -> dict[str, str]:
    """{old job id: id of the job that retries it} for those of ``ids`` retried already (the
    new job is a child whose options carry ``retry_of``)."""
    ids = [str(i) for i in ids]
    if not ids:
        return {}
    kids = Job.objects.using(store.alias(using)).filter(parent_id__in=ids)
    found = kids.filter(options__has_key="retry_of").values_list("parent_id", "id")
    return {str(parent): str(new) for parent, new in found}


def _retry_row(job) -> dict:
    options = {k: v for k, v in (job.options or {}).items() if k in RETRY_OPTIONS}
    options.update(
        queue=job.queue,
        priority=job.priority,
        parent_id=str(job.id),
        root_id=str(job.root_id or job.id),
        retry_of=str(job.id),
    )
    # the arguments were accepted when the job was first sent; a task whose signature changed
    # since then fails in the worker, where the error is recorded on the new job
    return build_row(job.name, job.args, job.kwargs, options, check=False)


def register_queues(names: Iterable[str], using: str | None = None) -> None:
    """Give queues known only from their jobs or workers a row (unpaused), so that the admin can
    list, pause and purge them. Existing rows are left as they are."""
    store_rows.register_queues(names, using)


# --- remote control (workers act on these; see djq.remote) ------------------------------------
def broadcast(command: str, arguments: dict | None = None, **options) -> list[dict] | None:
    """Celery's ``app.control.broadcast``: send a command to workers through the database
    (``destination``, ``reply``, ``timeout``, ``limit``, ``using``: see ``djq.remote``)."""
    return send(command, arguments, **options)


def command(name=None):
    """``@control.command``: register a custom remote-control command ``fn(worker, **kw)``."""
    return register(name)


def _send(command: str, destination, reply: bool, timeout: float, **arguments):
    return broadcast(command, arguments, destination=destination, reply=reply, timeout=timeout)


def ping(destination=None, timeout: float = 1.0) -> list[dict]:
    """Every live worker answers ``{name: {"ok": "pong"}}`` within the timeout."""
    return _send("ping", destination, True, timeout) or []


def rate_limit(
    task_name: str,
    rate: str | None,
    destination=None,
    reply: bool = False,
    timeout: float = 1.0,
    using: str | None = None,
):
    """Set a task's rate limit for the whole cluster ("100/m"; None or "" removes it). Stored in
    the database, so it applies to every worker, including ones started later."""
    parse_rate(rate)  # ValueError for a bad rate, before anything is written
    # "0" (not ""): an explicit "no limit" that overrides the task's own rate_limit
    store_rows.set_task_limit(task_name, using, rate_limit=str(rate) if rate else "0")
    return _send("rate_limit", destination, reply, timeout, task_name=task_name, rate_limit=rate)


def concurrency_limit(task_name: str, limit: int | None, using: str | None = None) -> None:
    """At most ``limit`` jobs of the task running at once across the cluster (None: no limit)."""
    store_rows.set_task_limit(task_name, using, concurrency_limit=limit)
    broadcast("refresh_limits", using=using)


def queue_concurrency_limit(queue: str, limit: int | None, using: str | None = None) -> None:
    """At most ``limit`` jobs of the queue running at once across the cluster."""
    store_rows.set_queue(queue, using, concurrency_limit=limit)
    broadcast("refresh_limits", using=using)


def time_limit(
    task_name: str,
    soft: float | None = None,
    hard: float | None = None,
    destination=None,
    reply: bool = False,
    timeout: float = 1.0,
):
    """Change a task's soft/hard time limits in the running workers."""
    checks.limit(task_name, "soft_time_limit", soft), checks.limit(task_name, "time_limit", hard)
    return _send(
        "time_limit", destination, reply, timeout, task_name=task_name, soft=soft, hard=hard
    )


def add_consumer(queue: str, destination=None, reply: bool = False, timeout: float = 1.0):
    """Make workers take jobs of ``queue`` too, without a restart."""
    return _send("add_consumer", destination, reply, timeout, queue=queue)


def cancel_consumer(queue: str, destination=None, reply: bool = False, timeout: float = 1.0):
    """Make workers stop taking jobs of ``queue`` (running ones finish)."""
    return _send("cancel_consumer", destination, reply, timeout, queue=queue)


def pool_grow(n: int = 1, destination=None, reply: bool = False, timeout: float = 1.0):
    return _send("pool_grow", destination, reply, timeout, n=n)


def pool_shrink(n: int = 1, destination=None, reply: bool = False, timeout: float = 1.0):
    return _send("pool_shrink", destination, reply, timeout, n=n)


def autoscale(
    max: int,
    min: int,
    destination=None,
    reply: bool = False,  # noqa: A002
    timeout: float = 1.0,
):
    return _send("autoscale", destination, reply, timeout, max=max, min=min)


def shutdown(destination=None, reply: bool = False, timeout: float = 1.0):
    """Warm shutdown of the workers (running jobs finish, unstarted ones go back)."""
    return _send("shutdown", destination, reply, timeout)


def enable_events(destination=None, reply: bool = False, timeout: float = 1.0):
    """Make running workers publish task and worker events (Celery's ``enable_events``)."""
    return _send("enable_events", destination, reply, timeout)


def disable_events(destination=None, reply: bool = False, timeout: float = 1.0):
    """Make running workers stop publishing events (Celery's ``disable_events``)."""
    return _send("disable_events", destination, reply, timeout)


class Inspect:
    """Celery's ``app.control.inspect()``: each method returns ``{worker_name: answer}``, or
    ``None`` when no worker answered within the timeout."""

    def __init__(self, destination=None, timeout: float = 1.0, limit: int | None = None):
        self.destination = destination
        self.timeout = timeout
        self.limit = limit

    def _request(self, command: str, **arguments) -> dict | None:
        replies = broadcast(
            command,
            arguments,
            destination=self.destination,
            reply=True,
            timeout=self.timeout,
            limit=self.limit,
        )
        merged: dict = {}
        for reply in replies or ():
            merged.update(reply)
        return merged or None

    def ping(self):
        return self._request("ping")

    def clock(self):
        return self._request("clock")

    def active(self):
        return self._request("active")

    def reserved(self):
        return self._request("reserved")

    def scheduled(self):
        return self._request("scheduled")

    def revoked(self):
        return self._request("revoked")

    def registered(self):
        return self._request("registered")

    def stats(self):
        return self._request("stats")

    def active_queues(self):
        return self._request("active_queues")

    def conf(self):
        return self._request("conf")

    def query_task(self, *ids: Any) -> Any:
        if len(ids) == 1 and not isinstance(ids[0], str):
            ids = tuple(ids[0])
        return self._request("query_task", ids=list(ids))


def inspect(destination=None, timeout: float = 1.0, limit: int | None = None) -> Inspect:
    return Inspect(destination, timeout, limit)
