"""Eager mode: ``Task.apply`` and ``DJQ_TASK_ALWAYS_EAGER`` run the worker's execute steps
inline and return an ``EagerResult``; link callbacks run inline too.

Separate from ``djq.execute`` so that the executor (imported by pool children) does not depend on
results, canvas and enqueue: eager mode sits above all three.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db import transaction

from djq import states
from djq.calling import request as request_context
from djq.calling.enqueue import callbacks
from djq.calling.result import EagerResult
from djq.canvas import Signature
from djq.conf import settings
from djq.running.execute import run_task
from djq.serialization import loads

if TYPE_CHECKING:
    from djq.task import Task


def run_eagerly(
    task: Task, args: Any, kwargs: Any, task_id: str | None = None, **options: Any
) -> EagerResult:
    """``Task.apply``: the execute pipeline inline, retrying inline, returning an EagerResult."""
    task.check_arguments(args, kwargs)
    task_id = str(task_id or uuid.uuid4())
    parent = request_context.current()
    retries = int(options.get("retries") or 0)
    while True:
        req = request_context.Request(
            id=task_id,
            task=task.name,
            args=list(args),
            kwargs=dict(kwargs),
            retries=retries,
            max_retries=options.get("max_retries"),
            is_eager=True,
            called_directly=False,
            hostname="eager",
            parent_id=parent.id if parent else None,
            root_id=(parent.root_id or parent.id) if parent else task_id,
            delivery_info={"is_eager": True},
            headers=options.get("headers") or {},
        )
        outcome = _run(task, req, options)
        if outcome["state"] != states.RETRY:
            break
        retries += 0 if outcome.get("snoozed") else 1  # (a snooze re-runs at once, unspent)
        if outcome.get("args") is not None:  # retry(args=, kwargs=)
            args, kwargs = loads(outcome["args"]), loads(outcome["kwargs"])
    result = EagerResult(task_id, outcome, task_name=task.name)
    if result.state == states.FAILURE and (options.get("throw") or settings.TASK_EAGER_PROPAGATES):
        raise result.result
    if result.state == states.SUCCESS:
        for link in callbacks(options.get("link")):
            Signature.from_dict(link).apply((result.result,))  # type: ignore[no-untyped-call]
    return result


def _run(task: Task, req: request_context.Request, options: dict[str, Any]) -> dict[str, Any]:
    """One eager run; an atomic task's writes are kept only when it succeeds (a savepoint in
    the caller's transaction of DJQ_DATABASE, as on a worker)."""
    atomic = options.get("atomic")
    if not (task.atomic if atomic is None else atomic):
        return run_task(task, req, keep_exception=True)
    with transaction.atomic(using=settings.DATABASE):
        outcome = run_task(task, req, keep_exception=True)
        if outcome["state"] != states.SUCCESS:
            transaction.set_rollback(True, using=settings.DATABASE)
    return outcome
