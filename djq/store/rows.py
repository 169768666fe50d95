"""The store's writes of every djq table but the jobs: workers, queues, task limits, control
messages and replies, periodic tasks and their ticks, leases, and the admin's deletes.

``djq.store`` writes job state; this module writes the rest, so that the store layer is the one
writer of every djq table (the architecture tests hold the rule: ``djq.tools.writers``). The
callers (beat, beat_sync, control, remote, the worker, housekeeping, the admin) decide; these
functions only write, each in one statement where it can.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, F

from djq import states
from djq.models import (
    ControlMessage,
    ControlReply,
    Job,
    PeriodicTask,
    PeriodicTick,
    Queue,
    QueueDepth,
    TaskLimit,
    Worker,
)
from djq.store import alias, db_now

# --- queues and task limits -------------------------------------------------------------------


def set_queue(name: str, using: str | None = None, **fields: Any) -> None:
    """Create or change a queue's row (``paused``, ``concurrency_limit``)."""
    Queue.objects.using(alias(using)).update_or_create(name=name, defaults=fields)


def register_queues(names: Iterable[str], using: str | None = None) -> None:
    """Give queues a row (unpaused) unless they have one."""
    rows = [Queue(name=name) for name in names]
    Queue.objects.using(alias(using)).bulk_create(rows, ignore_conflicts=True)


def delete_queues(names: Iterable[str], using: str | None = None) -> int:
    """Remove queue rows (their settings); jobs are not touched."""
    return Queue.objects.using(alias(using)).filter(name__in=list(names)).delete()[0]


def set_task_limit(name: str, using: str | None = None, **fields: Any) -> None:
    """Create or change a task's cluster-wide limits (``rate_limit``, ``concurrency_limit``)."""
    TaskLimit.objects.using(alias(using)).update_or_create(name=name, defaults=fields)


# --- workers ----------------------------------------------------------------------------------


def set_worker_queues(name: str, queues: list[str], using: str | None = None) -> int:
    """The queues a worker consumes changed (add_consumer / cancel_consumer)."""
    return Worker.objects.using(alias(using)).filter(name=name).update(queues=queues)


def delete_workers(names: Iterable[str], using: str | None = None) -> int:
    """Remove worker rows (the admin); a live worker writes its row again at its heartbeat."""
    return Worker.objects.using(alias(using)).filter(name__in=list(names)).delete()[0]


# --- jobs the admin deletes -------------------------------------------------------------------


def delete_jobs(ids: Iterable[str], using: str | None = None) -> list[str]:
    """Delete those of ``ids`` that no worker holds (waiting or finished); returns their ids.

    A held job (RESERVED, STARTED) is never deleted: its worker would record an outcome for a
    row that is gone and its continuations would never run. Revoke it instead.
    """
    qs = Job.objects.using(alias(using)).filter(id__in=[str(i) for i in ids])
    qs = qs.exclude(state__in=states.HELD_STATES)
    gone = [str(i) for i in qs.values_list("id", flat=True)]
    Job.objects.using(alias(using)).filter(id__in=gone).exclude(
        state__in=states.HELD_STATES
    ).delete()
    return gone


# --- control messages -------------------------------------------------------------------------

#: a worker that handles control messages also sweeps expired ones with this probability; and
#: whenever the table holds more than SWEEP_BACKLOG expired rows, whatever the draw
SWEEP_CHANCE = 0.05
SWEEP_BACKLOG = 100


def add_control_message(
    command: str,
    arguments: dict[str, Any],
    destination: list[str] | None,
    reply: bool,
    ttl: float,
    using: str | None = None,
) -> ControlMessage:
    now = db_now(alias(using))
    return ControlMessage.objects.using(alias(using)).create(
        command=command,
        arguments=arguments,
        destination=destination,
        reply=reply,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=ttl),
    )


def add_control_reply(
    message: ControlMessage, worker: str, reply: Any, now: dt.datetime, using: str | None = None
) -> None:
    ControlReply.objects.using(alias(using)).create(
        message=message, worker=worker, reply=reply, created_at=now
    )


def sweep_control_messages(
    now: dt.datetime, using: str | None = None, chance: float = SWEEP_CHANCE
) -> int:
    """Delete expired control messages (and their replies) now and then.

    Every worker polling the mailbox calls this; each sweeps with probability ``chance``, and any
    of them sweeps at once when more than ``SWEEP_BACKLOG`` expired rows wait, so the table is
    kept small whichever workers run (a sweep tied to a property of the process, such as its
    pid, may never run in a given cluster). Returns the number of messages deleted.
    """
    expired = ControlMessage.objects.using(alias(using)).filter(expires_at__lt=now)
    if random.random() >= chance and not expired[SWEEP_BACKLOG:].exists():
        return 0
    return expired.delete()[1].get(ControlMessage._meta.label, 0)  # replies go by CASCADE


# --- periodic tasks and ticks -----------------------------------------------------------------


def add_tick(
    task_id: int, tick: dt.datetime, job_id: str, manual: bool, now: dt.datetime, using: str
) -> None:
    """The (schedule, tick) guard row: IntegrityError if this tick was enqueued already."""
    PeriodicTick.objects.using(using).create(
        periodic_task_id=task_id, tick=tick, job_id=job_id, manual=manual, created_at=now
    )


def count_run(task_id: int, now: dt.datetime, using: str) -> None:
    PeriodicTask.objects.using(using).filter(pk=task_id).update(
        last_run_at=now, total_run_count=F("total_run_count") + 1
    )


def move_next_run(
    task_id: int, tick: dt.datetime | None, nxt: dt.datetime | None, using: str
) -> bool:
    """``next_run_at`` moves from ``tick`` to ``nxt`` if it still is ``tick`` (``None``: a new
    row's first tick); a schedule with no next tick is disabled. False if another beat or an
    edit moved it first."""
    qs = PeriodicTask.objects.using(using).filter(pk=task_id, enabled=True)
    qs = qs.filter(next_run_at__isnull=True) if tick is None else qs.filter(next_run_at=tick)
    return bool(qs.update(next_run_at=nxt, enabled=nxt is not None))


def set_periodic_enabled(
    task_ids: Iterable[int], enabled: bool, using: str | None = None, only_changed: bool = True
) -> int:
    """Enable or disable schedules; beat recomputes ``next_run_at`` of the re-enabled ones."""
    qs = PeriodicTask.objects.using(alias(using)).filter(pk__in=list(task_ids))
    if only_changed:
        qs = qs.filter(enabled=not enabled)
    return qs.update(enabled=enabled, next_run_at=None)


def save_periodic_task(
    row: PeriodicTask, using: str | None = None, update_fields: Iterable[str] | None = None
) -> None:
    """Save a schedule built or edited in Python (beat_sync, the admin's form)."""
    row.save(using=alias(using), update_fields=update_fields)


def create_periodic_task(using: str, **fields: Any) -> PeriodicTask:
    return PeriodicTask.objects.using(using).create(**fields)


def disable_synced(names_kept: Iterable[str], using: str) -> list[str]:
    """Schedules that came from ``DJQ_BEAT_SCHEDULE`` and left it: disabled and unlinked from
    the setting; returns their names."""
    gone = PeriodicTask.objects.using(using).exclude(settings_hash="")
    gone = gone.exclude(name__in=list(names_kept))
    names = sorted(gone.values_list("name", flat=True))
    gone.update(enabled=False, settings_hash="", next_run_at=None)
    return names


def delete_periodic_tasks(task_ids: Iterable[int], using: str | None = None) -> int:
    return PeriodicTask.objects.using(alias(using)).filter(pk__in=list(task_ids)).delete()[0]


def purge_ticks(before: dt.datetime, using: str) -> int:
    """Delete tick guard rows older than ``before`` (no schedule can fire those ticks again)."""
    return PeriodicTick.objects.using(using).filter(created_at__lt=before).delete()[0]


# --- queue depth (djq.queue_depth samples it, the history page charts it) --------------------


def sample_queue_depth(now: dt.datetime, using: str | None = None) -> int:
    """Write this minute's sample of waiting and running jobs per queue unless it is written
    already (one row per queue that has any, plus queue "" marking the minute); rows written.

    The backlog is read through the partial indexes that hold only waiting and running jobs."""
    db = alias(using)
    minute = now.replace(second=0, microsecond=0)
    if QueueDepth.objects.using(db).filter(bucket=minute, queue="").exists():
        return 0
    depth: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    jobs: Any = Job.objects.using(db)  # (JobQuerySet's waiting()/running() are unannotated)
    for i, backlog in enumerate((jobs.waiting(), jobs.running())):
        for row in backlog.values("queue").annotate(n=Count("*")).order_by():
            depth[row["queue"]][i] = row["n"]
    total = [sum(w for w, _ in depth.values()), sum(r for _, r in depth.values())]
    rows = [
        QueueDepth(bucket=minute, queue=q, waiting=w, running=r)
        for q, (w, r) in sorted(depth.items())
        if q
    ] + [QueueDepth(bucket=minute, queue="", waiting=total[0], running=total[1])]
    return len(QueueDepth.objects.using(db).bulk_create(rows, ignore_conflicts=True))


def prune_queue_depth(before: dt.datetime, using: str | None = None) -> int:
    return QueueDepth.objects.using(alias(using)).filter(bucket__lt=before).delete()[0]
