"""Controlling jobs and queues: revoke, pause/resume and purge.

The admin, ``djq_control`` and the Python API all call these functions.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import store
from .conf import settings


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
    from .models import Queue

    Queue.objects.using(using or settings.DATABASE).update_or_create(
        name=name, defaults={"paused": True}
    )


def resume_queue(name: str, using: str | None = None) -> None:
    from .models import Queue

    Queue.objects.using(using or settings.DATABASE).update_or_create(
        name=name, defaults={"paused": False}
    )
    _wake(name, using)


def _wake(queue: str, using: str | None) -> None:
    from django.db import connections

    connection = connections[using or settings.DATABASE]
    if connection.vendor == "postgresql":
        from .db.postgres import JOBS_CHANNEL

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [JOBS_CHANNEL, queue])


def purge(queue: str | None = None, using: str | None = None) -> int:
    """Delete waiting jobs (of one queue, or all). Returns how many."""
    return store.purge_waiting(queue, using=using)
