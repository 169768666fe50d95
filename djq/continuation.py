"""What happens after a job is recorded: links, the next step of a chain, chord bodies.

Called by ``djq.store`` inside the transaction that records finished jobs, so a continuation is
enqueued exactly when (and only if) its job's outcome is committed. The worker loop does not know
work-flows exist. A continuation that cannot be enqueued never blocks the recording of the batch:
it is retried job by job in savepoints, and what still fails is logged and the steps that will
not run are recorded as FAILURE, so that nothing waits for them forever.
"""

from __future__ import annotations

import logging
from collections import Counter

from django.db import transaction

from djq import states, store
from djq.calling.enqueue import build_row, callbacks, enqueue
from djq.calling.registry import tasks
from djq.canvas import final_steps, maybe_signature
from djq.exceptions import ChordError
from djq.models import Job
from djq.serialization import exception_to_dict, loads

logger = logging.getLogger("djq.continuation")

#: the options a step marked as not run keeps (so that it still counts for its chord)
_KEPT_WHEN_NOT_RUN = (
    "task_id",
    "group_id",
    "group_index",
    "chord",
    "parent_id",
    "root_id",
    "queue",
    "priority",
)


class _Batch:
    """What the continuations of a batch produce: job rows to insert in one statement, and
    work-flow steps that will not run (with the error to record for them)."""

    def __init__(self):
        self.rows: list[dict] = []
        #: (steps, error, lineage): the steps' parent is the job that stopped them
        self.failed: list[tuple[list, dict, dict]] = []


def after_complete(finished: list[dict], using: str | None = None) -> None:
    """Enqueue the continuations of just-recorded jobs (rows from ``store.complete``)."""
    done = [job for job in finished if job["state"] in states.READY_STATES]
    if not done:
        return
    db = store.alias(using)
    try:
        with transaction.atomic(using=db):
            _continue(done, using)
        return
    except Exception:
        logger.exception("Continuations of %d jobs failed; retrying them one by one", len(done))
    for job in done:
        try:
            with transaction.atomic(using=db):
                _continue([job], using)
        except Exception:
            logger.exception("Could not enqueue the continuations of job %s", job["id"])
            _give_up(job, db)


def _give_up(job: dict, db: str) -> None:
    """The job's chain cannot go on: record its remaining steps as FAILURE (logged above)."""
    error = exception_to_dict(RuntimeError(f"the continuation of job {job['id']} failed"))
    try:
        with transaction.atomic(using=db):
            steps = _options(job).get("chain") or []
            _mark_not_run(steps, error, db, _lineage(job))
    except Exception:
        logger.exception("Could not record the steps after job %s as not run", job["id"])


def _options(job: dict) -> dict:
    """A finished job's options; a row whose options are not a JSON object (written by
    something else than djq; its job was failed by the worker's guard) has no continuation."""
    try:
        options = loads(job["options"])
    except (TypeError, ValueError):
        return {}
    return options if isinstance(options, dict) else {}


def _continue(finished: list[dict], using) -> None:
    batch = _Batch()
    chord_counts: Counter = Counter()
    unique: list[tuple[str, str, float]] = []
    for job in finished:
        options = _options(job)
        if options.get("unique_key"):
            unique.append((options["unique_key"], job["id"], options.get("unique_for") or 0.0))
        if job["state"] == states.SUCCESS:
            _on_success(job, options, batch, using)
        else:
            _on_failure(job, options, batch, using)
        if options.get("chord") and job["group_id"]:
            chord_counts[job["group_id"]] += 1
    if unique:
        store.release_unique(unique, using=using)
    while chord_counts or batch.failed:  # steps marked as not run may complete a chord too
        for chord in store.count_chord_members(chord_counts, using=using):
            _fire_chord(chord, batch, using)
        chord_counts = Counter()
        failed, batch.failed = batch.failed, []
        for steps, error, lineage in failed:
            chord_counts.update(_mark_not_run(steps, error, using, lineage))
    if batch.rows:
        enqueue(batch.rows, using=using)


def _on_success(job: dict, options: dict, batch: _Batch, using) -> None:
    result = loads(job["result"])
    for link in callbacks(options.get("link")):
        _follow(link, (result,), {}, job, batch, using)
    chain = options.get("chain")
    if chain:
        rest = chain[1:]
        _follow(chain[0], (result,), {"chain": rest} if rest else {}, job, batch, using)


def _on_failure(job: dict, options: dict, batch: _Batch, using) -> None:
    """Errbacks run for the failed job; a chain stops, its remaining steps are marked."""
    errbacks = list(callbacks(options.get("link_error")))
    for step in options.get("chain") or ():
        errbacks.extend(callbacks(maybe_signature(step).options.get("link_error")))
    for errback in errbacks:
        args, extra = _errback_call(errback, job, using)
        _follow(errback, args, extra, job, batch, using)
    chain = options.get("chain")
    if chain:
        error = loads(job["result"]) or exception_to_dict(RuntimeError("a previous step failed"))
        batch.failed.append((chain, error, _lineage(job)))


def _errback_call(errback, job: dict, using) -> tuple[tuple, dict]:
    """Celery's two errback styles: ``f(task_id)``, or ``f(request, exc, traceback)`` when the
    errback task takes three positional arguments (request and exception rebuilt on run)."""
    name = maybe_signature(errback).task
    if name not in tasks or not _takes_three(tasks[name]):
        return (job["id"],), {}

    row = (
        Job.objects.using(store.alias(using))
        .filter(id=job["id"])
        .values("name", "args", "kwargs", "traceback", "retries", "root_id")
        .first()
        or {}
    )
    request = {
        "id": job["id"],
        "task": row.get("name"),
        "args": row.get("args") or [],
        "kwargs": row.get("kwargs") or {},
        "retries": row.get("retries", 0),
        "root_id": str(row["root_id"]) if row.get("root_id") else None,
    }
    exc = loads(job["result"]) or exception_to_dict(RuntimeError(job["state"]))
    return (request, exc, row.get("traceback") or ""), {"errback": True}


def _takes_three(task) -> bool:
    """Named positional parameters only: a ``*args`` errback keeps the simple style."""
    sig = task._signature()
    if sig is None:
        return False
    positional = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return len(positional) >= 3


def _follow(sig_data, args: tuple, extra: dict, job: dict, batch: _Batch, using) -> None:
    """Queue one continuation. Arguments that do not fit fail the step (and what follows it)
    now; a work-flow step is applied in a savepoint, so that a failure leaves the batch intact."""
    sig = maybe_signature(sig_data)
    lineage = _lineage(job)
    if sig.subtask_type:  # a chord or group (chains arrive flattened): apply it now
        with transaction.atomic(using=store.alias(using)):
            sig.clone().apply_async(args, **extra, **lineage, using=using)
        return
    new_args, kwargs, options = sig._merge(args, None, {**extra, **lineage})
    try:
        batch.rows.append(build_row(sig.task, new_args, kwargs, options))
    except (TypeError, ValueError) as exc:
        logger.error("The continuation %r of job %s cannot be enqueued: %s", sig, job["id"], exc)
        step = sig.clone()
        step["options"].update(extra)
        batch.failed.append(([step], exception_to_dict(exc), lineage))


def _fire_chord(chord: dict, batch: _Batch, using) -> None:
    """All header jobs finished: the body gets their results in order, or fails if one did."""
    members = {
        str(row["id"]): row
        for row in Job.objects.using(store.alias(using))
        .filter(group_id=chord["id"])
        .values("id", "name", "state", "result", "root_id")
    }
    ordered = [members.get(str(child)) for child in chord["children"]]
    body = maybe_signature(chord["body"])
    bad = next((m for m in ordered if m is None or m["state"] != states.SUCCESS), None)
    if bad is None:
        results = [m["result"] for m in ordered]
        # the body's parent is the header's first job (the header is a group, not a job)
        first = {"id": str(ordered[0]["id"]), "root_id": ordered[0]["root_id"]}
        _follow(body, (results,), {}, first, batch, using)
        return
    who = f"{bad['name']}[{bad['id']}] ended {bad['state']}" if bad else "a member is missing"
    error = ChordError(f"Dependency {who}")
    logger.info("Chord %s failed: %s", chord["id"], error)
    for errback in callbacks(body.options.get("link_error")):
        _follow(errback, (body.id,), {}, {"id": chord["id"]}, batch, using)
    # the failed body's parent is the member that failed it (so its page shows the chord)
    cause = bad or ordered_first(ordered)
    lineage = _lineage(cause) if cause else {}
    batch.failed.append(([body], exception_to_dict(error), lineage))


def ordered_first(members: list) -> dict | None:
    """The first header job still stored (a missing member has no row)."""
    return next((m for m in members if m is not None), None)


def _lineage(job: dict) -> dict:
    """The parent and root options of the jobs that ``job`` enqueues (or stops)."""
    job_id = str(job["id"])
    return {"parent_id": job_id, "root_id": str(job.get("root_id") or job_id)}


def _mark_not_run(steps: list, error: dict, using, lineage: dict | None = None) -> Counter:
    """Record the steps a failure stopped as FAILURE with that error: each frozen result id
    gets a finished job row, so ``get()`` on a chain's or chord's result raises at once.
    Each step's parent is the one before it (the first's: ``lineage``, the job that stopped
    them), so the failed job's work-flow tree still shows them.
    Returns the chords (group id → count) that the marked steps were members of."""
    rows, members = [], Counter()
    lineage = dict(lineage or {})
    for step in steps:
        for final in final_steps(step):
            options = {k: v for k, v in final.options.items() if k in _KEPT_WHEN_NOT_RUN}
            options = {**{k: v for k, v in lineage.items() if v}, **options}
            if options.get("task_id"):
                lineage = {"parent_id": options["task_id"], "root_id": lineage.get("root_id")}
            # the step never runs, so its arguments are not checked against its signature
            rows.append(build_row(final.task, (), {}, options, check=False))
            if options.get("chord") and options.get("group_id"):
                members[str(options["group_id"])] += 1
    if rows:
        enqueue(rows, using=using)
        store.fail_jobs([{"id": r["id"], "result": error} for r in rows], using=using)
    return members
