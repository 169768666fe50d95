"""The one module that writes job state: enqueue, claim, complete, release, heartbeat, rescue,
revoke, progress and purge. The worker, the API, the admin and the commands all come here.

Each function takes a database alias (default ``DJQ_DATABASE``) and delegates its SQL to the vendor
module in ``djq.db``. Claimed jobs and outcomes travel as typed records (``djq.records``: Claim,
Outcome); the vendor modules get plain rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from types import ModuleType
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Count, F, QuerySet
from django.db.models.functions import Now

from djq import states
from djq.conf import settings
from djq.exceptions import TaskRevokedError, WorkerLostError
from djq.job_guard import claim_order
from djq.limits import slots
from djq.models import Batch, EventBatch, Group, Job, JobStat, Queue, TaskLimit, Worker
from djq.records import Claim, Outcome, not_run, outcome
from djq.serialization import dumps, exception_to_dict, loads
from djq.store import postgres
from djq.store.vendor import sql_for

FINISHED_FIELDS = (
    "id",
    "state",
    "name",
    "options",
    "result",
    "parent_id",
    "root_id",
    "group_id",
)


#: Called with (finished job rows, using) inside the transaction that recorded them: complete,
#: rescue and revoke run work-flow continuations this way. ``djq.apps`` registers
#: ``djq.continuation.after_complete`` in ``ready()``; the store never imports the layers above.
CompletionHook = Callable[[list[dict[str, Any]], "str | None"], None]
_completion_hooks: list[CompletionHook] = []


def add_completion_hook(hook: CompletionHook) -> None:
    """Run ``hook(finished, using)`` after jobs end (idempotent: a hook is added once)."""
    if hook not in _completion_hooks:
        _completion_hooks.append(hook)


def _run_completion_hooks(finished: list[dict[str, Any]], using: str | None = None) -> None:
    for hook in _completion_hooks:
        hook(finished, using)


def alias(using: str | None = None) -> str:
    return using or settings.DATABASE


def _cursor_and_sql(using: str | None) -> tuple[CursorWrapper, ModuleType]:
    connection = connections[alias(using)]
    return connection.cursor(), sql_for(connection)


def insert_jobs(rows: Sequence[dict[str, Any]], using: str | None = None) -> dict[str, str]:
    """Insert job rows (built by ``djq.enqueue``) in one statement, in the caller's transaction.

    On PostgreSQL the same statement NOTIFYs the rows' queues; the notification is delivered at
    commit, so a worker is never woken for a job it cannot see yet. Unique jobs whose key is
    taken are not inserted: returns {their id: the id of the job holding the key}.
    """
    if not rows:
        return {}
    if any(row.get("id_given") for row in rows):
        return _insert_given_ids(rows, using)
    return _insert(rows, using)


def _insert_given_ids(rows: Sequence[dict[str, Any]], using: str | None) -> dict[str, str]:
    """Rows whose task id the caller chose may collide with an existing job: the insert runs in
    a savepoint, so a taken id is a ValueError naming it and the caller's transaction goes on
    (a unique violation waits for a concurrent inserter of the same id: race-free)."""
    ids = [row["id"] for row in rows]
    if len(set(ids)) < len(ids):
        dup = next(row for i, row in enumerate(rows) if row["id"] in ids[:i])
        raise ValueError(f"{dup['name']}: task_id {dup['id']!r} is given to two jobs")
    try:
        with transaction.atomic(using=alias(using)):
            return _insert(rows, using)
    except IntegrityError:
        given = [row["id"] for row in rows if row.get("id_given")]
        taken = set(
            Job.objects.using(alias(using)).filter(id__in=given).values_list("id", flat=True)
        )
        for row in rows:
            if row.get("id_given") and _same_id(row["id"], taken):
                raise ValueError(
                    f"{row['name']}: task_id {row['id']!r} is already the id of another job"
                ) from None
        raise


def _same_id(job_id: str, taken: set[str]) -> bool:
    return any(str(t) == str(job_id) for t in taken)


def _insert(rows: Sequence[dict[str, Any]], using: str | None) -> dict[str, str]:
    existing: dict[str, str] = {}
    if not any(row.get("unique_key") for row in rows):
        cursor, sql = _cursor_and_sql(using)
        with cursor:
            sql.insert(cursor, list(rows))
        return existing
    with transaction.atomic(using=alias(using)):  # the key and its job commit together
        cursor, sql = _cursor_and_sql(using)
        with cursor:
            taken: dict[str, str] = {}  # keys taken by rows of this very batch
            rows = [row for row in rows if not _taken(cursor, sql, row, existing, taken)]
            if rows:
                sql.insert(cursor, list(rows))
    return existing


def _taken(
    cursor: CursorWrapper,
    sql: ModuleType,
    row: dict[str, Any],
    existing: dict[str, Any],
    taken: dict[str, Any],
) -> bool:
    """Take the row's unique key for it, or note which job holds it (True: do not insert).

    The lock row is written with one upsert that succeeds only when the key is free (its
    holder finished more than ``unique_for`` ago); concurrent enqueuers of a key wait for each
    other on that row, so exactly one of them inserts a job. A holder that was deleted (purged)
    is replaced by a conditional update.
    """
    key = row.get("unique_key")
    if not key:
        return False
    if key in taken:  # an earlier row of this batch (not inserted yet) holds it
        existing[row["id"]] = taken[key]
        return True
    if sql.take_unique(cursor, key, row["id"]):
        taken[key] = row["id"]
        return False
    holder = sql.unique_holder(cursor, key)

    if holder and not Job.objects.using(cursor.db.alias).filter(id=holder).exists():
        if sql.replace_unique(cursor, key, holder, row["id"]):
            taken[key] = row["id"]
            return False
        holder = sql.unique_holder(cursor, key)
    if holder and _unique_mode(cursor, sql, row, key, holder):
        taken[key] = row["id"]
        return False
    existing[row["id"]] = holder
    return True


def _unique_mode(
    cursor: CursorWrapper, sql: ModuleType, row: dict[str, Any], key: str, holder: str
) -> bool:
    """The call's ``unique_mode`` while ``holder`` holds the key (and its lock row is locked by
    this transaction: concurrent enqueuers of the key wait). True: insert the row, which now
    holds the key; False: the call is answered by the holder (its arguments may be updated).

    keep: the holder stays as it is. replace / debounce: a waiting holder takes the call's
    arguments (debounce: and its run time), in one conditional update, so a worker claiming it
    at that moment either runs the new arguments or makes the update miss; a holder that is
    already held (claimed, running) cannot take them, and the call is enqueued as a new job
    holding the key (its arguments are not lost). cancel_running: the holder is revoked
    (terminated if running) and the call enqueued. A holder that finished (inside
    ``unique_for``) keeps the key, except for cancel_running.
    """
    mode = row.get("unique_mode") or "keep"
    if mode == "keep":
        return False
    if mode in ("replace", "debounce"):
        move = mode == "debounce"
        if sql.update_waiting(cursor, holder, row, move):
            return False
        state = Job.objects.using(cursor.db.alias).filter(id=holder).values_list("state", flat=True)
        if next(iter(state), None) not in states.HELD_STATES:
            return False
    else:  # cancel_running
        revoke([holder], terminate=True, using=cursor.db.alias)
    replaced: bool = sql.replace_unique(cursor, key, holder, row["id"])
    return replaced


def release_unique(jobs: Iterable[tuple[str, str, float]], using: str | None = None) -> None:
    """Finished unique jobs (key, job id, unique_for): their key is free after unique_for."""
    cursor, sql = _cursor_and_sql(using)
    with cursor:
        for key, job_id, unique_for in jobs:
            sql.release_unique(cursor, key, job_id, unique_for)


def claim(
    worker: str,
    queues: Sequence[str],
    limit: int,
    lease: float,
    using: str | None = None,
    skip: Sequence[str] = (),
    fair: dict[str, Any] | None = None,
) -> list[Claim]:
    """Mark up to ``limit`` due jobs of ``queues`` RESERVED for ``worker``, highest priority
    first (jobs of the task names in ``skip`` are left alone).

    ``fair`` ({"weights": {key: weight}, "skip_keys": [key, ...]}) takes turns between the
    concurrency keys of the backlog (the vendor's ``FAIR_CLAIM``); None: priority and ETA only."""
    if limit <= 0 or not queues:
        return []
    cursor, sql = _cursor_and_sql(using)
    with cursor:
        rows = sql.claim(cursor, worker, list(queues), limit, lease, list(skip), fair)
    jobs = [Claim(*row) for row in rows]
    jobs.sort(key=claim_order)  # (a row with a bad priority or ETA is failed at dispatch)
    return jobs


def complete(
    outcomes: Sequence[Outcome | dict[str, Any]],
    using: str | None = None,
    started: Sequence[Any] = (),
) -> list[dict[str, Any]]:
    """Record outcomes of claimed jobs in one statement; returns the jobs actually recorded.

    An outcome whose (id, attempt) no longer holds a held job (the lease ran out and the job
    was rescued, or it was recorded already) is not recorded: the caller logs it as discarded.
    ``started`` (claims): see ``complete_and_mark``.
    """
    return complete_and_mark(outcomes, started, using=using)[0]


def complete_and_mark(
    outcomes: Sequence[Outcome | dict[str, Any]],
    started: Sequence[Any] = (),
    using: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """``complete``, and the jobs a child asks to begin marked STARTED in the same statement:
    returns the recorded jobs and the ids marked (a job no longer RESERVED by this attempt —
    rescued, finished — is not: its child must not run it).

    Continuations (links, chains, chords) are enqueued in the same transaction, so they happen
    exactly once; a batch whose jobs have none is a single autocommitted statement.
    """
    records = [outcome(o) for o in outcomes]
    done = {o.id for o in records}  # (a row must not be updated twice in one statement)
    started = [s for s in _fences(started) if s["id"] not in done]
    if not records:
        return [], mark_started(started, using=using)
    rows_in = [o.recorded() for o in records]
    cursor, sql = _cursor_and_sql(using)
    if not any(o.continues is not False for o in records):
        with cursor:
            rows, marked = sql.complete(cursor, rows_in, started)
        return [dict(zip(FINISHED_FIELDS, row[:8], strict=True)) for row in rows], marked
    with transaction.atomic(using=alias(using)), cursor:
        rows, marked = sql.complete(cursor, rows_in, started)
        finished = [dict(zip(FINISHED_FIELDS, row[:8], strict=True)) for row in rows]
        _run_completion_hooks(finished, using=using)
    return finished, marked


def _fences(jobs: Iterable[Any]) -> list[dict[str, Any]]:
    """(id, attempt) of claims — or of dicts holding them — for a fenced statement."""
    return [
        {"id": j.id, "attempt": j.attempt}
        if isinstance(j, Claim)
        else {"id": j["id"], "attempt": j["attempt"]}
        for j in jobs
    ]


def mark_started(
    started: Iterable[Any], using: str | None = None, durable: bool = True
) -> list[str]:
    """RESERVED → STARTED for jobs a child is about to begin (a batch: one statement); returns
    the ids marked. Idempotent for one claim: a job already STARTED by the same attempt (a mark
    whose commit was in flight when the connection broke) is returned too.

    ``durable=False`` (PostgreSQL; its transaction, the caller's or its own): the commit does not
    wait for the server's disk — committed and visible to every session at once, but a crash of the
    database in the next moment may lose it; the worker uses it for the marks, which a live
    worker's outcomes supersede (docs/worker.md)."""
    started = _fences(started)
    if not started:
        return []
    cursor, sql = _cursor_and_sql(using)
    # (SQLite marks row by row: one transaction for them; PostgreSQL's is one statement)
    one = connections[alias(using)].vendor == "sqlite"
    with transaction.atomic(using=alias(using)) if one else nullcontext(), cursor:
        return [row[0] for row in sql.mark_started(cursor, started, durable)]


def start_reserved(cursor: Any, job: Claim) -> bool:
    """RESERVED → STARTED for one job, on ``cursor`` (PostgreSQL: a prefork child's own
    connection, djq.running.pools.child_marks); False when the job is not RESERVED by this claim
    (rescued, revoked, or marked already). Never a second time, unlike ``mark_started``: a job
    handed back after its child died while marking it cannot be started again elsewhere."""
    return postgres.start_reserved(cursor, job.id, job.attempt)


def started_of(claims: Iterable[Claim], using: str | None = None) -> set[str]:
    """Which of these claims are STARTED (PostgreSQL): a dead child marked them itself."""
    fences = _fences(claims)
    if not fences:
        return set()
    with connections[alias(using)].cursor() as cursor:
        return postgres.started_of(cursor, fences)


def release(claims: Iterable[Any], using: str | None = None) -> list[str]:
    """Hand claimed-but-unstarted jobs back to the queue (warm shutdown)."""
    claims = _fences(claims)
    if not claims:
        return []
    cursor, sql = _cursor_and_sql(using)
    with cursor:
        return [row[0] for row in sql.release(cursor, claims)]


def heartbeat(
    worker: str,
    ids: Iterable[str],
    lease: float,
    processed: int = 0,
    failed: int = 0,
    using: str | None = None,
) -> list[tuple[Any, ...]]:
    """Extend the leases of the jobs ``worker`` holds (``ids``) and refresh its Worker row.

    Only the jobs the worker knows it holds are extended: a job claimed by a statement whose
    answer was lost (connection dropped at commit) is left to expire and be rescued.
    Returns (id, attempt, revoked, signal) of those jobs so the worker can act on revokes.
    """
    cursor, sql = _cursor_and_sql(using)
    with cursor:
        rows: list[tuple[Any, ...]] = sql.heartbeat(
            cursor, worker, list(ids), lease, processed, failed
        )
        return rows


def rescue(
    worker: str | None = None, using: str | None = None, grace: float = 0.0
) -> list[dict[str, Any]]:
    """Jobs whose lease expired (or, with ``worker``, all jobs of that dead worker).

    Reserved (never started) and started acks_late jobs are put back on the queue; the other
    started ones end FAILURE with WorkerLostError.
    ``grace``: seconds after a database restart during which expired leases are left alone, so
    that live workers reconnect and extend theirs first (PostgreSQL).
    """
    lost = WorkerLostError(
        f"Worker {worker} exited prematurely" if worker else "Worker lost: its lease expired"
    )
    most = settings.MAX_WORKER_LOST
    dead = WorkerLostError(f"{lost}; lost with its worker {most} times (DJQ_MAX_WORKER_LOST)")
    with transaction.atomic(using=alias(using)):
        cursor, sql = _cursor_and_sql(using)
        with cursor:
            rows = sql.rescue(
                cursor,
                dumps(exception_to_dict(lost)),
                worker,
                grace,
                dead_json=dumps(exception_to_dict(dead)),
                max_lost=int(most or 0),
            )
        rescued = [dict(zip((*FINISHED_FIELDS, "worker"), row[:9], strict=True)) for row in rows]
        _run_completion_hooks([r for r in rescued if r["state"] != states.PENDING], using)
    return rescued


def revoke(
    ids: Iterable[str], terminate: bool = False, signal: str = "SIGTERM", using: str | None = None
) -> list[tuple[Any, ...]]:
    """Revoke jobs: waiting ones end REVOKED at once and never run; running ones are marked, and
    with ``terminate`` their worker kills the child running them. Returns (id, state, worker)."""
    ids = [str(i) for i in ids]
    if not ids:
        return []
    revoked = dumps(exception_to_dict(TaskRevokedError("revoked")))
    with transaction.atomic(using=alias(using)):
        cursor, sql = _cursor_and_sql(using)
        with cursor:
            rows = sql.revoke(cursor, ids, signal if terminate else "", revoked)
        # jobs that never ran still count for their chord and fire their errbacks
        finished = [
            dict(zip(("id", "state", "worker", *FINISHED_FIELDS[2:]), row[:9], strict=True))
            for row in rows
            if row[1] == states.REVOKED
        ]
        _run_completion_hooks(finished, using=using)
    return [tuple(row[:3]) for row in rows]


def requeue_dead(ids: Iterable[str], using: str | None = None, chunk: int = 500) -> list[str]:
    """Dead letters (``states.DEAD``) back to waiting, due now, as fresh jobs under the same id
    (retries and lost count at zero, result cleared); jobs that are not dead are left alone.
    Returns the ids requeued."""
    ids = [str(i) for i in ids]
    done: list[str] = []
    cursor, sql = _cursor_and_sql(using)
    with cursor:
        for start in range(0, len(ids), chunk):
            done.extend(sql.requeue_dead(cursor, ids[start : start + chunk]))
    return done


def expire_outcome(job: Claim) -> Outcome:
    """The outcome recorded for a claimed job whose ``expires`` has passed: REVOKED."""
    return not_run(job, TaskRevokedError("expired"), text="")


def set_progress(
    job_id: str, state: str, meta: Any, attempt: int | None = None, using: str | None = None
) -> bool:
    """``Task.update_state`` for a running job: a custom state and its meta (only while the
    job is STARTED, and with ``attempt`` only for that run)."""
    cursor, sql = _cursor_and_sql(using)
    with cursor:
        changed: int = sql.set_progress(cursor, str(job_id), state, dumps(meta), attempt)
        return changed > 0


def next_due(queues: Sequence[str], using: str | None = None) -> float | None:
    """Seconds (by the database clock) until the next waiting job of ``queues`` is due."""
    cursor, sql = _cursor_and_sql(using)
    with cursor:
        due: float | None = sql.next_due(cursor, list(queues))
        return due


def db_now(using: str | None = None) -> dt.datetime:
    cursor, sql = _cursor_and_sql(using)
    with cursor:
        now: dt.datetime = sql.db_now(cursor)
        return now


def purge_finished(before: dt.datetime, using: str | None = None, batch: int = 10_000) -> int:
    """Delete finished jobs older than ``before``, in batches so locks stay short."""
    total = 0
    qs = Job.objects.using(alias(using)).finished().filter(finished_at__lt=before)
    while True:
        ids = list(qs.values_list("id", flat=True)[:batch])
        if not ids:
            return total
        total += Job.objects.using(alias(using)).filter(id__in=ids).delete()[0]


def purge_waiting(
    queue: str | None = None, using: str | None = None, ids: Sequence[str] | None = None
) -> int:
    """Delete waiting jobs (of one queue, or all, or of ``ids``): Celery's ``purge``."""
    qs = Job.objects.using(alias(using)).waiting()
    if queue is not None:
        qs = qs.filter(queue=queue)
    if ids is not None:
        qs = qs.filter(id__in=list(ids))
    return qs.delete()[0]


def forget(job_id: str, using: str | None = None) -> int:
    """Remove a finished job's row (its result): Celery's ``AsyncResult.forget``."""
    qs = Job.objects.using(alias(using)).finished().filter(id=job_id)
    return qs.delete()[0]


def save_group(group_id: str, children: list[str], using: str | None = None) -> None:
    Group.objects.using(alias(using)).update_or_create(
        id=group_id, defaults={"children": [str(c) for c in children], "size": len(children)}
    )


def create_chord(
    group_id: str, children: list[str], body: dict[str, Any], using: str | None = None
) -> None:
    """The chord's counter row, written in the same transaction as its header jobs."""
    Group.objects.using(alias(using)).create(
        id=group_id, size=len(children), children=[str(c) for c in children], body=body
    )


def count_chord_members(counts: dict[str, int], using: str | None = None) -> list[dict[str, Any]]:
    """Add finished header jobs to their chords' counters; return the chords now complete.

    Runs inside the completion transaction. The UPDATE takes the chord row's lock, so concurrent
    completers of one chord are serialised and exactly one of them sees the counter reach the
    size and sets ``fired_at``.
    """
    from django.db.models import F

    fired: list[dict[str, Any]] = []
    for group_id, n in sorted(counts.items()):
        qs = Group.objects.using(alias(using)).filter(id=group_id, body__isnull=False)
        if not qs.update(completed=F("completed") + n):
            continue
        done = qs.filter(completed__gte=F("size"), fired_at__isnull=True).update(fired_at=Now())
        if done:
            chord = qs.values("id", "children", "body").get()
            fired.append({"id": chord["id"], "children": chord["children"], "body": chord["body"]})
    return fired


# --- batches (djq.batches) ----------------------------------------------------------------------
BATCH_FIELDS = ("id", "size", "children", "on_finish", "on_success", "on_failure", "callback_ids")


def create_batch(
    batch_id: str,
    callbacks: dict[str, Any],
    callback_ids: dict[str, Any],
    using: str | None = None,
) -> None:
    """The batch's row, open (members are added next, in the same transaction)."""
    Batch.objects.using(alias(using)).create(id=batch_id, callback_ids=callback_ids, **callbacks)


def add_to_batch(batch_id: str, children: list[str], using: str | None = None) -> bool:
    """Count new members into an open batch; False if it is closed (or unknown).

    The conditional UPDATE takes the row's lock first, so a completer counting the batch's last
    member waits for this transaction: it sees the new size, and the batch cannot end early.
    """
    db = alias(using)
    qs = Batch.objects.using(db).filter(id=batch_id, closed_at__isnull=True)
    if not qs.update(size=F("size") + len(children)):
        return False
    row = qs.values_list("children", flat=True).get()  # (locked by the UPDATE above)
    qs.update(children=[*(row or []), *children])
    return True


def close_batch(batch_id: str, using: str | None = None) -> tuple[bool, dict[str, Any] | None]:
    """Close a batch: (whether it was open, the batch row if it ended now — fire it)."""
    qs = Batch.objects.using(alias(using)).filter(id=batch_id)
    closed = bool(qs.filter(closed_at__isnull=True).update(closed_at=Now()))
    return closed, _batch_if_ended(qs) if closed else None


def count_batch_members(
    counts: dict[str, tuple[int, int]], using: str | None = None
) -> list[dict[str, Any]]:
    """Add ended members (ended, failed) to their batches; return the batches that ended now.

    Runs in the completion transaction: the UPDATE takes the row lock, so of several completers
    recording a batch's last members at once exactly one sees it end and sets ``finished_at``.
    """
    ended = []
    for batch_id, (n, failed) in sorted(counts.items()):
        qs = Batch.objects.using(alias(using)).filter(id=batch_id)
        if qs.update(ended=F("ended") + n, failed=F("failed") + failed):
            row = _batch_if_ended(qs)
            if row is not None:
                ended.append(row)
    return ended


def _batch_if_ended(qs: QuerySet[Batch]) -> dict[str, Any] | None:
    done = qs.filter(
        closed_at__isnull=False, finished_at__isnull=True, ended__gte=F("size")
    ).update(finished_at=Now())
    return qs.values(*BATCH_FIELDS).get() if done else None


def fail_jobs(rows: list[dict[str, Any]], using: str | None = None) -> None:
    """Mark freshly inserted jobs FAILURE with a given exception (a chord body whose header
    failed): the job exists, so its AsyncResult tells why it did not run."""

    db = alias(using)
    at = db_now(db).isoformat()
    jobs = Job.objects.using(db)
    found = jobs.filter(id__in=[r["id"] for r in rows]).values_list("id", "history")
    history = {str(i): h for i, h in found}
    for row in rows:
        entries = list(history.get(str(row["id"])) or []) + [[states.FAILURE, at, ""]]
        jobs.filter(id=row["id"], state=states.PENDING).update(
            state=states.FAILURE,
            result=row["result"],
            traceback=row.get("traceback", ""),
            finished_at=Now(),
            history=entries,  # the timeline shows the FAILURE (read, then written: fresh rows)
        )


def register_worker(
    name: str,
    hostname: str,
    pid: int,
    queues: list[str],
    concurrency: int,
    pool: str,
    lease: float,
    using: str | None = None,
) -> str | None:
    """Create or take over the Worker row ``name``.

    A row of that name whose heartbeat is fresh belongs to a live worker, unless it is on this host
    and its process is gone (a restart after a crash): then its jobs are rescued at once. Returns
    an error message when the name is taken by a live worker.
    """
    import os

    db = alias(using)
    now = db_now(using)
    old = Worker.objects.using(db).filter(name=name).first()
    if old is not None and old.stopped_at is None:
        fresh = (now - old.last_heartbeat).total_seconds() < lease
        if fresh and not (old.hostname == hostname and not _pid_alive(old.pid, os.getpid())):
            return (
                f"a worker named {name!r} is running (pid {old.pid} on {old.hostname}); "
                "give each worker a unique name with -n"
            )
        rescue(worker=name, using=using)
    Worker.objects.using(db).update_or_create(
        name=name,
        defaults={
            "hostname": hostname,
            "pid": pid,
            "queues": list(queues),
            "concurrency": concurrency,
            "pool": pool,
            "started_at": now,
            "last_heartbeat": now,
            "stopped_at": None,
            "processed": 0,
            "failed": 0,
        },
    )
    return None


def _pid_alive(pid: int, me: int) -> bool:
    import os

    if pid == me:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_worker(name: str, processed: int, failed: int, using: str | None = None) -> None:

    Worker.objects.using(alias(using)).filter(name=name).update(
        stopped_at=Now(), processed=processed, failed=failed
    )


def claim_limited(
    worker: str,
    queues: Sequence[str],
    limit: int,
    lease: float,
    task_limits: dict[str, tuple[float | None, int | None]],
    queue_limits: dict[str, int],
    skip: Sequence[str] = (),
    using: str | None = None,
    keyed: Iterable[str] = (),
    fair: dict[str, Any] | None = None,
) -> tuple[list[Claim], set[str], set[str], set[str]]:
    """``claim``, then cluster-wide flow control in the same transaction.

    ``task_limits``: name → (rate in jobs/s, concurrency limit); ``queue_limits``: queue →
    concurrency limit; the limits of the task names in ``keyed`` hold per concurrency key.
    Rate-limited jobs whose slot is in the future are deferred to it; jobs over a concurrency
    limit are handed back. The ``TaskLimit``/``Queue`` row of each limited name is locked while
    its running jobs are counted, so concurrent claimers are serialised.
    Returns (jobs to run, saturated task names, saturated queues, saturated keys).
    """
    db = alias(using)
    keyed = frozenset(keyed)
    with transaction.atomic(using=db):
        jobs = claim(worker, queues, limit, lease, using, skip, fair)
        names = sorted({j.name for j in jobs if j.name in task_limits})
        limited_queues = sorted({j.queue for j in jobs if j.queue in queue_limits})
        if not names and not limited_queues:
            return jobs, set(), set(), set()
        now = db_now(using)
        dropped: dict[str, Claim] = {}
        deferred: dict[str, tuple[Claim, dt.datetime]] = {}
        full_tasks: set[str] = set()
        full_queues: set[str] = set()
        full_keys: set[str] = set()
        TaskLimit.objects.using(db).bulk_create(
            [TaskLimit(name=n) for n in names], ignore_conflicts=True
        )
        for name in names:
            row = TaskLimit.objects.using(db).select_for_update().get(name=name)
            mine = [j for j in jobs if j.name == name]
            if name in keyed:
                full_keys |= _key_limits(db, name, mine, task_limits[name], now, deferred, dropped)
            elif _task_limits(db, row, mine, task_limits[name], now, deferred, dropped):
                full_tasks.add(name)
        for queue in limited_queues:
            if _queue_limit(db, queue, jobs, queue_limits[queue], deferred, dropped):
                full_queues.add(queue)
        cursor, sql = _cursor_and_sql(using)
        with cursor:
            if deferred:
                items = [
                    {"id": j.id, "attempt": j.attempt, "slot": slot, "slot_text": slot.isoformat()}
                    for j, slot in deferred.values()
                ]
                sql.defer(cursor, items)
        release(dropped.values(), using=using)
    kept = [j for j in jobs if j.id not in dropped and j.id not in deferred]
    return kept, full_tasks, full_queues, full_keys


_HELD = sorted(states.HELD_STATES)  # reserved jobs count: they will run


def _task_limits(
    db: str,
    row: TaskLimit,
    mine: list[Claim],
    limits: tuple[float | None, int | None],
    now: dt.datetime,
    deferred: dict[str, tuple[Claim, dt.datetime]],
    dropped: dict[str, Claim],
) -> bool:
    """A task's rate and concurrency limits over its claimed jobs; True when at its limit."""
    rate, most = limits
    if rate:
        _take_slots(db, row, mine, rate, now, deferred)
    mine = [j for j in mine if j.id not in deferred]
    if most is None:
        return False
    running = Job.objects.using(db).filter(name=row.name, state__in=_HELD).count()
    running -= sum(1 for j, _ in deferred.values() if j.name == row.name)
    return _over(mine, running - most, dropped)


def _key_limits(
    db: str,
    name: str,
    mine: list[Claim],
    limits: tuple[float | None, int | None],
    now: dt.datetime,
    deferred: dict[str, tuple[Claim, dt.datetime]],
    dropped: dict[str, Claim],
) -> set[str]:
    """A keyed task's limits, per concurrency key: each key has its own rate slots (a
    ``TaskLimit`` row named ``task[key]``) and its own count of held jobs. Returns the keys
    found at their concurrency limit."""
    rate, most = limits
    by_key: dict[str, list[Claim]] = {}
    for job in mine:
        by_key.setdefault(job.concurrency_key or "", []).append(job)
    if rate:
        slot_rows = {key_limit_name(name, key): key for key in by_key}
        TaskLimit.objects.using(db).bulk_create(
            [TaskLimit(name=n) for n in slot_rows], ignore_conflicts=True
        )
        for row in TaskLimit.objects.using(db).select_for_update().filter(name__in=slot_rows):
            _take_slots(db, row, by_key[slot_rows[row.name]], rate, now, deferred)
    if most is None:
        return set()
    held = dict(
        Job.objects.using(db)
        .filter(name=name, state__in=_HELD, concurrency_key__in=list(by_key))
        .order_by()
        .values_list("concurrency_key")
        .annotate(n=Count("id"))
    )
    full = set()
    for key, jobs in by_key.items():
        running = held.get(key, 0) - sum(1 for j in jobs if j.id in deferred)
        if _over([j for j in jobs if j.id not in deferred], running - most, dropped):
            full.add(key)
    return full


def key_limit_name(name: str, key: str) -> str:
    """The ``TaskLimit`` row holding the rate slots of one key of a keyed task (the column holds
    255 characters: a longer name ends with a digest of the whole)."""
    full = f"{name}[{key}]"
    if len(full) <= 255:
        return full
    return full[:222] + "…" + hashlib.sha256(full.encode()).hexdigest()[:32]


def _queue_limit(
    db: str,
    queue: str,
    jobs: list[Claim],
    most: int,
    deferred: dict[str, tuple[Claim, dt.datetime]],
    dropped: dict[str, Claim],
) -> bool:
    """A queue's concurrency limit over the claimed jobs left; True when at its limit."""
    Queue.objects.using(db).select_for_update().filter(name=queue).first()
    mine = [j for j in jobs if j.queue == queue and j.id not in dropped and j.id not in deferred]
    running = Job.objects.using(db).filter(queue=queue, state__in=_HELD).count()
    running -= sum(1 for j, _ in deferred.values() if j.queue == queue)
    running -= sum(1 for j in dropped.values() if j.queue == queue)
    return _over(mine, running - most, dropped)


def _take_slots(
    db: str,
    row: TaskLimit,
    jobs: list[Claim],
    rate: float,
    now: dt.datetime,
    deferred: dict[str, tuple[Claim, dt.datetime]],
) -> None:
    """Give each job without a slot the next rate-limit slot; future slots are deferred.
    (A row whose ETA is not a timestamp, written by anything, gets a slot like a fresh job.)"""
    fresh = []
    for job in jobs:
        slot = (loads(job.options) or {}).get("rate_slot")
        eta = job.eta
        if (
            slot is None
            or not isinstance(eta, dt.datetime)
            or abs((dt.datetime.fromisoformat(slot) - eta).total_seconds()) > 0.001
        ):
            fresh.append(job)
    if not fresh:
        return
    taken, next_slot = slots(row.next_slot_at, now, len(fresh), rate)
    TaskLimit.objects.using(db).filter(name=row.name).update(next_slot_at=next_slot)
    for job, slot in zip(fresh, taken, strict=True):
        if slot > now:
            deferred[job.id] = (job, slot)


def _over(jobs: list[Claim], excess: int, dropped: dict[str, Claim]) -> bool:
    """Hand back the ``excess`` last (lowest-priority) of ``jobs``; True when at the limit."""
    for job in jobs[::-1][: max(excess, 0)]:
        dropped[job.id] = job
    return excess >= 0


def insert_events(
    hostnames: list[str], counts: list[int], payloads: list[str], using: str | None = None
) -> None:
    """Append batches of monitoring events (each a JSON text of ``counts[i]`` events) in one
    statement, in the caller's transaction; on PostgreSQL readers are NOTIFYed at commit."""
    if not payloads:
        return
    cursor, sql = _cursor_and_sql(using)
    with cursor:
        sql.insert_events(cursor, hostnames, counts, payloads)


def prune_events(before: dt.datetime, using: str | None = None, batch: int = 10_000) -> int:
    """Delete monitoring event batches older than ``before``, in chunks so locks stay short."""
    events = EventBatch.objects.using(alias(using))
    total = 0
    while True:
        ids = list(events.filter(created_at__lt=before).values_list("id", flat=True)[:batch])
        if not ids:
            return total
        total += events.filter(id__in=ids).delete()[0]


def write_job_stats(rows: list[dict[str, Any]], using: str | None = None) -> int:
    """Insert per-minute rollup rows (``JobStat``); a row already written is left as it is."""
    made = JobStat.objects.using(alias(using)).bulk_create(
        [JobStat(**row) for row in rows], ignore_conflicts=True
    )
    return len(made)


def prune_job_stats(before: dt.datetime, using: str | None = None) -> int:
    return JobStat.objects.using(alias(using)).filter(bucket__lt=before).delete()[0]
