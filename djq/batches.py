"""Batches: many jobs, and callbacks that run once all of them have ended, whatever happened.

Unlike a chord (whose body runs only if every header job succeeded, and gets their results), a
batch's ``on_finish`` runs exactly once when every member has ended — succeeded, failed, revoked
or lost with its worker — with a summary of what happened; ``on_success`` runs only if all
succeeded and ``on_failure`` if any did not (GoodJob's batches are the model).

The coordination is in the database: the ``Batch`` row counts ended members. Its completion hook
(``after_complete``, registered by ``djq.apps``) runs in the transaction that records finished
jobs, adds them to their batches' counters under the row lock, and enqueues the callbacks of a
closed batch whose last member just ended — so exactly one completer fires them, however many
workers end the last members at once. A member that is retried has not ended. An open batch
(``open=True``) takes members with ``BatchResult.add`` until ``close()``; it cannot end before.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Any

from django.db import transaction

from djq import states, store
from djq.calling.enqueue import build_row, enqueue
from djq.calling.result import AsyncResult
from djq.canvas import Signature, maybe_signature
from djq.conf import settings
from djq.models import Batch, Job
from djq.serialization import exception_to_dict, loads

logger = logging.getLogger("djq.batches")

CALLBACKS = ("on_finish", "on_success", "on_failure")
#: member ids read per query when a batch's summary is built (SQLite's variable limit)
_CHUNK = 500


class batch:  # noqa: N801 - lower case like group and chord
    """``batch([add.s(1, 1), add.s(2, 2)], on_finish=report.s())``; ``.apply_async()`` enqueues
    the members and returns a ``BatchResult``.

    Each callback is a task signature; it is called with the summary prepended to its arguments
    (an immutable ``.si()`` signature gets nothing). ``open=True`` creates the batch open: add
    members with ``BatchResult.add`` and ``close()`` it; only a closed batch ends. Members are
    task signatures (not chains, groups or chords: their end is not one job's end).
    """

    def __init__(
        self,
        sigs=(),
        on_finish=None,
        on_success=None,
        on_failure=None,
        open: bool = False,  # noqa: A002 - the documented keyword
        id: str | None = None,  # noqa: A002 - as Signature's task_id, the batch's id
    ):
        self.members = [_member(sig) for sig in sigs]
        given = {"on_finish": on_finish, "on_success": on_success, "on_failure": on_failure}
        self.callbacks = {name: _callback(name, sig) for name, sig in given.items() if sig}
        self.open = bool(open)
        self.id = str(id) if id else str(uuid.uuid4())

    def __repr__(self) -> str:
        calls = ", ".join(f"{k}={v!r}" for k, v in self.callbacks.items())
        return f"batch({self.members!r}{', ' if calls else ''}{calls})"

    def delay(self) -> BatchResult | EagerBatchResult:
        return self.apply_async()

    def apply_async(self, using: str | None = None) -> BatchResult | EagerBatchResult:
        """Write the batch and its members in one transaction (the caller's, if it has one)."""
        if settings.TASK_ALWAYS_EAGER:
            eager = EagerBatchResult(self.id, self.callbacks)
            eager.add(*self.members)
            if not self.open:
                eager.close()
            return eager
        ids = {}
        for name, sig in self.callbacks.items():
            ids[name] = sig["options"].setdefault("task_id", str(uuid.uuid4()))
        with transaction.atomic(using=store.alias(using)):
            store.create_batch(self.id, {k: dict(v) for k, v in self.callbacks.items()}, ids, using)
            result = BatchResult(self.id, [], using=using)
            if self.members:
                result.add(*self.members)
            if not self.open:
                result.close()
        return result


class BatchResult:
    """A batch's handle: its id, the members' ``AsyncResult``s, ``add``/``close``, progress."""

    def __init__(self, id: str, results: list | None = None, using: str | None = None):  # noqa: A002
        self.id = str(id)
        self.using = using
        self._results = results

    def __repr__(self) -> str:
        return f"<BatchResult: {self.id}>"

    def _row(self) -> dict[str, Any]:
        found = Batch.objects.using(store.alias(self.using)).filter(id=self.id).values().first()
        if found is None:
            raise LookupError(f"batch {self.id} does not exist")
        return dict(found)

    @property
    def results(self) -> list[AsyncResult]:
        if self._results is None:
            self._results = [AsyncResult(i, using=self.using) for i in self._row()["children"]]
        return self._results

    @property
    def callbacks(self) -> dict[str, AsyncResult]:
        """The callbacks' results by name (PENDING until the batch ends; never run for the
        one of ``on_success``/``on_failure`` that does not apply)."""
        return {k: AsyncResult(v, using=self.using) for k, v in self._row()["callback_ids"].items()}

    def add(self, *sigs) -> list[AsyncResult]:
        """Enqueue more members into the open batch (in one transaction); a closed batch refuses
        them with ``ValueError`` and nothing is written."""
        members = [_member(sig) for sig in sigs]
        rows: list[dict] = []
        memo: dict = {}
        for sig in members:
            args, kwargs, options = sig._merge(None, None, {"batch": self.id})
            rows.append(build_row(sig.task, args, kwargs, options, memo))
        with transaction.atomic(using=store.alias(self.using)):
            if not store.add_to_batch(self.id, [r["id"] for r in rows], using=self.using):
                raise ValueError(f"batch {self.id} is closed (or unknown): cannot add members")
            existing = enqueue(rows, using=self.using)
        added = [AsyncResult(existing.get(r["id"], r["id"]), using=self.using) for r in rows]
        if self._results is not None:
            self._results.extend(added)
        return added

    def close(self) -> bool:
        """Close the batch (no more members); it ends when its members have. An empty closed
        batch ends at once. False if it was closed already."""
        with transaction.atomic(using=store.alias(self.using)):
            closed, ended = store.close_batch(self.id, using=self.using)
            if ended is not None:
                _fire(ended, self.using)
        return closed

    def progress(self) -> dict[str, Any]:
        """``{"total", "ended", "failed", "closed", "finished"}`` from the batch row."""
        row = self._row()
        return {
            "total": row["size"],
            "ended": row["ended"],
            "failed": row["failed"],
            "closed": row["closed_at"] is not None,
            "finished": row["finished_at"] is not None,
        }

    def ready(self) -> bool:
        """True once every member of the closed batch has ended (the callbacks are enqueued)."""
        return self.progress()["finished"]

    def summary(self) -> dict[str, Any]:
        """What ``on_finish`` gets (computed now: members still running count as their state)."""
        row = self._row()
        return summary(row["id"], row["children"], self.using)


class EagerBatchResult:
    """``DJQ_TASK_ALWAYS_EAGER``: members run at once in the caller (``apply``), the callbacks
    when the batch is closed; nothing is written. ``callbacks`` fills in at ``close()``."""

    def __init__(self, id: str, callbacks: dict[str, Signature]):  # noqa: A002
        self.id = id
        self.results: list = []
        self.callbacks: dict = {}
        self._wanted = callbacks
        self._closed = False

    def add(self, *sigs) -> list:
        if self._closed:
            raise ValueError(f"batch {self.id} is closed (or unknown): cannot add members")
        added = [_member(sig).apply() for sig in sigs]
        self.results.extend(added)
        return added

    def close(self) -> bool:
        if self._closed:
            return False
        self._closed = True
        result = self.summary()
        for name in ("on_finish", "on_failure" if result["failed"] else "on_success"):
            if name in self._wanted:
                self.callbacks[name] = self._wanted[name].apply((result,))
        return True

    def summary(self) -> dict[str, Any]:
        member_states = [r.state for r in self.results]
        failed = [r.id for r in self.results if r.state != states.SUCCESS]
        return {
            "batch_id": self.id,
            "total": len(self.results),
            "succeeded": len(self.results) - len(failed),
            "failed": len(failed),
            "counts": dict(Counter(member_states)),
            "failed_ids": failed,
        }

    def progress(self) -> dict[str, Any]:
        done = self._closed
        failed = self.summary()["failed"]
        total = len(self.results)
        return {"total": total, "ended": total, "failed": failed, "closed": done, "finished": done}

    def ready(self) -> bool:
        return self._closed


def _member(sig) -> Signature:
    member = maybe_signature(sig) if isinstance(sig, dict) else None
    if member is None:
        raise TypeError(f"batch: a member must be a task signature, got {sig!r}")
    if member.subtask_type:
        raise TypeError(
            f"batch: member {member!r} is a {member.subtask_type}; a batch's members are task "
            "signatures (add the chain's or group's jobs to the batch one by one)"
        )
    return member


def _callback(name: str, sig) -> Signature:
    """A callback, checked now against the summary it will get (a bad one fails the call)."""
    callback = _member(sig) if isinstance(sig, dict) else None
    if callback is None:
        raise TypeError(f"batch: {name} must be a task signature, got {sig!r}")
    args, kwargs, options = callback._merge((summary("", [], None),), None, {})
    try:
        build_row(callback.task, args, kwargs, options)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"batch: {name}={callback!r} cannot take the batch summary: {exc}"
        ) from None
    return callback.clone()


def summary(batch_id: str, children: list, using: str | None) -> dict:
    """The summary callbacks get: counts per state, failed member ids (in order), the batch id.
    A member no longer stored (forgotten) counts as failed, in state ``"MISSING"``."""
    found: dict[str, str] = {}
    jobs = Job.objects.using(store.alias(using))
    for start in range(0, len(children), _CHUNK):
        chunk = [str(c) for c in children[start : start + _CHUNK]]
        found.update((str(i), s) for i, s in jobs.filter(id__in=chunk).values_list("id", "state"))
    member_states = [found.get(str(c), "MISSING") for c in children]
    failed = [str(c) for c, s in zip(children, member_states, strict=True) if s != states.SUCCESS]
    return {
        "batch_id": batch_id,
        "total": len(children),
        "succeeded": len(children) - len(failed),
        "failed": len(failed),
        "counts": dict(Counter(member_states)),
        "failed_ids": failed,
    }


# --- the completion hook ------------------------------------------------------------------------
def after_complete(finished: list[dict], using: str | None = None) -> None:
    """Count just-recorded members into their batches; fire the batches that ended."""
    counts: dict[str, list[int]] = {}
    for job in finished:
        batch_id = _batch_of(job)
        if batch_id is not None and job["state"] in states.READY_STATES:
            ended = counts.setdefault(batch_id, [0, 0])
            ended[0] += 1
            ended[1] += job["state"] != states.SUCCESS
    if counts:
        for row in store.count_batch_members({k: (v[0], v[1]) for k, v in counts.items()}, using):
            _fire(row, using)


def _batch_of(job: dict) -> str | None:
    """The batch of a finished job row; options written by something else than djq (not a JSON
    object, a batch that is not a string) have none. A job re-run from the admin (``retry_of``)
    copies its original's options but is no member: the original's end was counted already."""
    raw = job.get("options")
    if isinstance(raw, str):
        if '"batch"' not in raw:
            return None
        try:
            raw = loads(raw)
        except (TypeError, ValueError):
            return None
    if not isinstance(raw, dict) or raw.get("retry_of"):
        return None
    value = raw.get("batch")
    return value if isinstance(value, str) and value else None


def _fire(row: dict, using: str | None) -> None:
    """Enqueue the callbacks of a batch that just ended (in the transaction that ended it).

    A callback that cannot be enqueued any more (its task changed since) is logged and recorded
    as FAILURE under its id, so that nothing waits for it forever; the others still run."""
    result = summary(row["id"], row["children"], using)
    logger.info(
        "Batch %s finished: %d of %d members failed", row["id"], result["failed"], result["total"]
    )
    wanted = ["on_finish", "on_failure" if result["failed"] else "on_success"]
    for name in wanted:
        sig = maybe_signature(row.get(name))
        if sig is not None:
            _enqueue_callback(row["id"], name, sig, result, using)


def _enqueue_callback(batch_id: str, name: str, sig: Signature, result: dict, using) -> None:
    args, kwargs, options = sig._merge((result,), None, {})
    try:
        with transaction.atomic(using=store.alias(using)):
            enqueue([build_row(sig.task, args, kwargs, options)], using=using)
        return
    except Exception as exc:
        logger.exception("Batch %s: the %s callback %r cannot be enqueued", batch_id, name, sig)
        error = exception_to_dict(exc)
    task_id = {"task_id": options["task_id"]} if options.get("task_id") else {}
    row = build_row(sig.task, (), {}, task_id, check=False)
    enqueue([row], using=using)
    store.fail_jobs([{"id": row["id"], "result": error}], using=using)
