"""The records of the hot path: a ``Claim`` (a claimed job row) and its ``Outcome``.

A claim travels store → worker → pool (a prefork child gets it as JSON: ``to_message`` /
``from_message``), an outcome pool → worker → store. Both are typed records built here and only
here, so what a step may read or set is named in one place instead of in dict keys spread over
the worker, the pools and the store. Rows may have been written by anything: a ``Claim`` holds
what the row held, and ``djq.job_guard`` checks it before the worker acts on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from djq import states
from djq.serialization import dumps, exception_to_dict


@dataclass(frozen=True, slots=True)
class Claim:
    """A job as ``store.claim`` returned it: leased to this worker, RESERVED (not started).

    In a prefork child ``eta`` and ``expires`` are ISO texts (the claim crossed a pipe as JSON).
    """

    id: Any
    name: Any
    args: Any
    kwargs: Any
    options: Any
    retries: Any
    max_retries: Any
    attempt: Any
    eta: dt.datetime | str | None
    expires: dt.datetime | str | None
    expired: bool
    parent_id: str | None
    root_id: str | None
    group_id: str | None
    priority: Any
    queue: str
    acks_late: bool
    revoked: bool
    #: the job's concurrency key ("" for none): per-key limits count by it (djq.calling.keys)
    concurrency_key: str = ""

    def to_message(self) -> dict[str, Any]:
        """The claim as a dict for a prefork child's pipe (JSON: datetimes become text)."""
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> Claim:
        return cls(**message)


#: the columns ``store.complete`` writes from an outcome (the vendor SQL reads these keys)
_RECORDED = (
    "id",
    "attempt",
    "state",
    "result",
    "keep_result",
    "traceback",
    "meta",
    "countdown",
    "eta",
    "args",
    "kwargs",
    "started",
    "dead_reason",
    "snoozed",
)


@dataclass(slots=True)
class Outcome:
    """What running (or not running) a claimed job came to; recorded by ``store.complete``.

    Not frozen: the worker decides ``continues`` (whether the completion runs continuations)
    once the pool has answered, from the claim's options.
    """

    id: Any
    attempt: Any
    state: str
    name: str | None = None
    result: str | None = None  # JSON text
    keep_result: bool = True
    traceback: str | None = None
    meta: str | None = None  # JSON text (update_state)
    countdown: float | None = None  # RETRY / requeue: due in this many seconds ...
    eta: str | None = None  # ... or at this ISO time
    args: str | None = None  # retry(args=, kwargs=): JSON texts
    kwargs: str | None = None
    started: bool = True  # False: it never ran (expired, revoked before it started)
    repr: str = ""
    runtime: float = 0.0
    lost: bool = False  # its process died before answering: the worker runs its failure hooks
    expected: bool = False  # a FAILURE in the task's ``throws``
    rejected: bool = False  # Reject: the task-rejected event
    unstorable: bool = False  # the FAILURE that stands for an outcome the database refused
    continues: bool | None = None  # None: not decided yet (see the worker)
    dead_reason: str | None = None  # a FAILURE that is a dead letter: why (states.DEAD_REASONS)
    snoozed: bool = False  # a RETRY asked by ``Task.snooze``: no retry is spent
    #: an atomic task's child recorded this outcome itself, in the transaction of the task's
    #: writes (djq.running.execute): the completer must not record it again
    committed: bool = False
    #: the attempt's captured log ({"text", "truncated"}: djq.task_log)
    log: dict[str, Any] | None = None

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Outcome:
        """From a mapping (a child's JSON answer, or a caller's dict); unknown keys are errors."""
        return cls(**values)

    def to_message(self) -> dict[str, Any]:
        """The outcome as a dict for the pipe back from a prefork child (JSON)."""
        return {name: getattr(self, name) for name in self.__slots__}

    def recorded(self) -> dict[str, Any]:
        """The fields ``store.complete`` writes, as the vendor SQL reads them."""
        return {key: getattr(self, key) for key in _RECORDED}


def outcome(values: Outcome | Mapping[str, Any]) -> Outcome:
    """An ``Outcome`` as it is, or one made of a mapping (callers of ``store.complete``)."""
    return values if isinstance(values, Outcome) else Outcome.of(values)


def lost(job: Claim, exc: BaseException, state: str = states.FAILURE, **more: Any) -> Outcome:
    """A job whose process died (or was killed) before answering; ``more``: other fields."""
    return Outcome(
        id=job.id,
        attempt=job.attempt,
        name=job.name,
        state=state,
        result=dumps(exception_to_dict(exc)),
        repr=repr(exc),
        lost=True,
        **more,
    )


def not_run(job: Claim, exc: BaseException, text: str | None = None) -> Outcome:
    """A claimed job that never runs (expired, revoked before it started): REVOKED with ``exc``
    (``text``: what the log says, by default the exception's repr)."""
    return Outcome(
        id=job.id,
        attempt=job.attempt,
        name=job.name,
        state=states.REVOKED,
        result=dumps(exception_to_dict(exc)),
        repr=repr(exc) if text is None else text,
        started=False,
    )


def requeued(job: Claim, why: str) -> Outcome:
    """Back to the queue, due at once, its result untouched (acks_late at a cold shutdown)."""
    return Outcome(
        id=job.id,
        attempt=job.attempt,
        name=job.name,
        state=states.PENDING,
        keep_result=False,
        countdown=0,
        repr=why,
    )


def failed(job: Any, exc: BaseException, traceback: str, text: str) -> Outcome:
    """The FAILURE of a job the worker could not handle (``djq.job_guard``): no continuation."""
    name = getattr(job, "name", None)
    return Outcome(
        id=getattr(job, "id", None),
        attempt=getattr(job, "attempt", None),
        name=name if isinstance(name, str) else None,
        state=states.FAILURE,
        result=dumps(exception_to_dict(exc)),
        traceback=traceback,
        repr=text,
        continues=False,
    )


def unstorable(refused: Outcome, exc: BaseException) -> Outcome:
    """The FAILURE recorded instead of an outcome the database refused to store."""
    error = RuntimeError(
        f"the job's outcome ({refused.state}) could not be stored: {type(exc).__name__}: {exc}"
    )
    return Outcome(
        id=refused.id,
        attempt=refused.attempt,
        name=refused.name,
        state=states.FAILURE,
        result=dumps(exception_to_dict(error)),
        repr=repr(error),
        unstorable=True,
        continues=True,
    )
