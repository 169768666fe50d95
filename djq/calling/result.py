"""Results: ``AsyncResult`` reads a job row; ``EagerResult`` wraps an inline run; ``GroupResult``.

``get()`` waits on PostgreSQL's NOTIFY and re-checks the row when one of its results is announced,
with a slow poll as the safety net; on SQLite it polls. A completion NOTIFYs only results someone
waits on: ``get()`` LISTENs on its results' channels and then flags their rows (``waited``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from django.db import connections

from djq import states, store
from djq.calling.registry import tasks
from djq.conf import settings
from djq.exceptions import TaskRevokedError, TimeoutError
from djq.listen import Listener
from djq.models import Group, Job
from djq.options import resolve_options
from djq.serialization import decode, dict_to_exception
from djq.store.postgres import MARK_WAITED, done_channel

_FIELDS = (
    "id",
    "dead_reason",
    "name",
    "state",
    "custom_state",
    "result",
    "meta",
    "traceback",
    "finished_at",
    "args",
    "kwargs",
    "retries",
    "parent_id",
    "options",
    "group_id",
    "root_id",
)


class ResultBase:
    id: str

    if TYPE_CHECKING:  # (defined by each subclass; a group has no single result)

        @property
        def state(self) -> str: ...

        @property
        def result(self) -> Any: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.id}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ResultBase):
            return str(other.id) == str(self.id)
        if isinstance(other, str):
            return other == str(self.id)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self.id))

    @property
    def status(self) -> str:
        return self.state

    @property
    def info(self) -> Any:
        return self.result

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    def _value(self, row: dict[str, Any] | None, propagate: bool) -> Any:
        state, value = _state_of(row), _result_of(row)
        if propagate and state in states.PROPAGATE_STATES and isinstance(value, BaseException):
            raise value
        return value


class AsyncResult(ResultBase):
    """The result of a job, by id. An unknown id is PENDING, as in Celery; ``exists()`` tells."""

    def __init__(
        self, id: Any, task_name: str | None = None, parent: Any = None, using: str | None = None
    ) -> None:
        self.id = str(id)
        self.task_id = self.id
        self._name = task_name
        self._parent: Any = parent
        self._using = using
        self._cache: dict[str, Any] | None = None

    # --- reading the row -----------------------------------------------------------------
    def _row(self) -> dict[str, Any] | None:
        if self._cache is not None:
            return self._cache

        row: dict[str, Any] | None = (
            Job.objects.using(self._using or settings.DATABASE)
            .filter(id=self.id)
            .values(*_FIELDS)
            .first()
        )
        if row is not None and row["state"] in states.READY_STATES:
            self._cache = row  # finished rows do not change any more
        return row

    def exists(self) -> bool:
        return self._row() is not None

    @property
    def state(self) -> str:
        return _state_of(self._row())

    @property
    def result(self) -> Any:
        return _result_of(self._row())

    @property
    def traceback(self) -> str | None:
        row = self._row()
        return (row["traceback"] or None) if row else None

    @property
    def date_done(self) -> Any:
        row = self._row()
        return row["finished_at"] if row else None

    @property
    def name(self) -> str | None:
        row = self._row()
        name: str | None = row["name"] if row else self._name
        return name

    @property
    def args(self) -> list[Any] | None:
        row = self._row()
        return row["args"] if row else None

    @property
    def kwargs(self) -> dict[str, Any] | None:
        row = self._row()
        return row["kwargs"] if row else None

    @property
    def retries(self) -> int | None:
        row = self._row()
        return row["retries"] if row else None

    @property
    def dead_reason(self) -> str | None:
        """Why this FAILURE is a dead letter (``states.DEAD_REASONS``: "retries_exhausted",
        "rejected", "worker_lost"), or None. The state stays FAILURE, as Celery reports it."""
        row = self._row()
        return (row["dead_reason"] or None) if row else None

    @property
    def parent(self) -> AsyncResult | None:
        if self._parent is not None:
            parent: AsyncResult = self._parent
            return parent
        row = self._row()
        if row and row["parent_id"]:
            return AsyncResult(row["parent_id"], using=self._using)
        return None

    @parent.setter
    def parent(self, value: Any) -> None:
        self._parent = value

    @property
    def children(self) -> list[AsyncResult]:
        ids = (
            Job.objects.using(self._using or settings.DATABASE)
            .filter(parent_id=self.id)
            .order_by("created_at")
            .values_list("id", "name")
        )
        return [AsyncResult(i, task_name=n, using=self._using) for i, n in ids]

    # --- waiting ---------------------------------------------------------------------------
    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float | None = None,
        disable_sync_subtasks: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Wait until the job is ready and return its result (re-raising its exception)."""
        row = wait_for_rows([self], timeout, interval, self._using)[self.id]
        return self._value(row, propagate)

    wait = get

    # (the promise API is not supported)
    def then(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise TypeError("AsyncResult.then is not supported by djq; use link= instead")

    # --- acting ------------------------------------------------------------------------
    def revoke(self, terminate: bool = False, signal: str = "SIGTERM", **kwargs: Any) -> None:
        store.revoke([self.id], terminate=terminate, signal=signal, using=self._using)

    def forget(self) -> None:
        store.forget(self.id, using=self._using)
        self._cache = None

    def refresh(self) -> None:
        self._cache = None

    def as_tuple(self) -> tuple[str, Any]:
        parent = self.parent
        return (self.id, parent.as_tuple() if parent else None)


def _state_of(row: dict[str, Any] | None) -> str:
    if row is None:
        return states.PENDING
    state: str = row["state"]
    if state == states.RESERVED:  # prefetched, not started: as it was before (Celery's view)
        return states.RETRY if row.get("retries") else states.PENDING
    if state == states.STARTED:
        if row["custom_state"]:
            return str(row["custom_state"])
        if not _tracks_started(row):
            return states.PENDING
    if state == states.IGNORED and row["custom_state"]:
        return str(row["custom_state"])
    return state


def _tracks_started(row: dict[str, Any]) -> bool:
    """The job's ``track_started``: its option, then annotations, the task, the setting."""
    task = tasks.get(row["name"]) if row["name"] in tasks else None
    return bool(resolve_options(task, row.get("options") or {})["track_started"])


def _result_of(row: dict[str, Any] | None) -> Any:
    if row is None:
        return None
    state, value = row["state"], row["result"]
    if state == states.RESERVED:  # shown as PENDING (no result) or RETRY (its exception)
        if not row.get("retries"):
            return None
        state = states.RETRY
    if state == states.STARTED:
        return row["meta"]
    if state in states.EXCEPTION_STATES and isinstance(value, dict) and "exc_type" in value:
        return dict_to_exception(value)
    if state == states.REVOKED:
        return TaskRevokedError("revoked")
    if state == states.IGNORED:
        return row["meta"]
    return value


def wait_for_rows(
    results: list[AsyncResult],
    timeout: float | None,
    interval: float | None,
    using: str | None,
) -> dict[str, dict[str, Any]]:
    """Wait until every result is ready; return their rows by id (TimeoutError past timeout)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    interval = interval or settings.RESULT_POLL_INTERVAL

    pending = {r.id: r for r in results}
    rows: dict[str, dict[str, Any]] = {}
    jobs = Job.objects.using(using or settings.DATABASE)
    with _listener(using, list(pending)) as listener:
        while True:
            listener.mark(pending)  # (before the read: a completion after it NOTIFYs)
            ready = jobs.filter(id__in=list(pending), state__in=sorted(states.READY_STATES))
            for row in ready.values(*_FIELDS):  # one query for all that are still pending
                job_id = str(row["id"])
                pending.pop(job_id)._cache = row
                rows[job_id] = row
            if not pending:
                return rows
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(
                    f"The operation timed out ({timeout} s) waiting for "
                    f"{', '.join(sorted(pending))}"
                )
            wait = interval if remaining is None else min(interval, remaining)
            listener.wait(wait)


class _Poller:
    def __enter__(self) -> _Poller:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        return False

    def mark(self, ids: Iterable[str]) -> None:
        pass

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)


class _SafeListener:
    """LISTEN for ``get()`` on the channels of ``ids``, then flag their rows as waited on (on the
    listening connection: autocommitted, whatever transaction the caller is in, so a completion
    never waits for the caller); when the connection fails (a database restart), poll instead."""

    def __init__(self, listener: Listener, ids: list[str]) -> None:
        self.listener = listener
        self.ids = set(ids)
        self.marked: set[str] = set()
        self.broken = False

    def __enter__(self) -> _SafeListener:
        try:
            self.listener.connect()
        except Exception:
            self.broken = True
        return self

    def mark(self, ids: Iterable[str]) -> None:
        """Flag the rows of ``ids`` not flagged yet (a row not inserted yet: at the next look)."""
        todo = sorted(set(ids) - self.marked)
        if self.broken or not todo:
            return
        try:
            conn = self.listener.conn
            if conn is None:  # (closed: poll instead, as for a failed connection)
                raise ConnectionError("the LISTEN connection is closed")
            found = conn.execute(MARK_WAITED, [todo, todo]).fetchall()
        except Exception:
            self.broken = True
            self.listener.close()
            return
        self.marked.update(row[0] for row in found)

    def __exit__(self, *exc: object) -> Literal[False]:
        self.listener.close()
        return False

    def wait(self, seconds: float) -> None:
        """Until one of our results is announced, or ``seconds`` (the safety-net poll)."""
        deadline = time.monotonic() + seconds
        while not self.broken:
            try:
                notes = self.listener.wait(deadline - time.monotonic())
            except Exception:
                self.broken = True
                self.listener.close()
                break
            # (others' results on a shared channel are ignored; so is the end of the wait)
            if not notes or any(payload in self.ids for _, payload in notes):
                return
        time.sleep(max(0.0, deadline - time.monotonic()))


def _listener(using: str | None, ids: list[str]) -> _Poller | _SafeListener:
    connection = connections[using or settings.DATABASE]
    if connection.vendor != "postgresql" or not settings.LISTEN:
        return _Poller()

    channels = sorted({done_channel(job_id) for job_id in ids})
    return _SafeListener(Listener(using, channels), ids)


class EagerResult(ResultBase):
    """The result of ``Task.apply``: already known, nothing stored."""

    def __init__(self, id: Any, outcome: dict[str, Any], task_name: str | None = None) -> None:
        self.id = self.task_id = str(id)
        self.name = task_name
        self._state: str = outcome["state"]
        raw = outcome.get("result")
        self._result: Any = decode(_loads(raw))
        if self._state in states.EXCEPTION_STATES and isinstance(self._result, dict):
            # the task's own exception object when the run kept it (Task.apply does)
            self._result = outcome.get("exception") or dict_to_exception(self._result)
        self.traceback = outcome.get("traceback")
        self.parent = None
        self.children: list[Any] = []

    @property
    def state(self) -> str:
        return self._state

    @property
    def result(self) -> Any:
        return self._result

    def get(self, timeout: float | None = None, propagate: bool = True, **kwargs: Any) -> Any:
        if propagate and self._state in states.PROPAGATE_STATES:
            raise self._result
        return self._result

    wait = get

    def revoke(self, *args: Any, **kwargs: Any) -> None:
        pass

    def forget(self) -> None:
        pass

    def exists(self) -> bool:
        return True


def _loads(raw: str | bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


class GroupResult(ResultBase):
    """The results of a group's jobs, in the group's order."""

    def __init__(
        self,
        id: Any,
        results: Iterable[Any] | None = None,
        parent: Any = None,
        using: str | None = None,
    ) -> None:
        self.id = str(id)
        self.results: list[Any] = list(results or [])
        self.parent = parent
        self._using = using

    @property
    def children(self) -> list[Any]:
        return self.results

    def __iter__(self) -> Iterator[Any]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: Any) -> Any:
        return self.results[index]

    def _leaves(self) -> list[AsyncResult]:
        return [r for r in self.results if isinstance(r, AsyncResult)]

    @property
    def state(self) -> str:  # pragma: no cover - a group has no single state
        return states.SUCCESS if self.successful() else states.PENDING

    def ready(self) -> bool:
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        return not self.ready()

    def completed_count(self) -> int:
        return sum(1 for r in self.results if r.successful())

    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float | None = None,
        **kw: Any,
    ) -> list[Any]:
        """Wait for every job; return their results in order (raising the first failure)."""
        leaves = self._leaves()
        rows = wait_for_rows(leaves, timeout, interval, self._using) if leaves else {}
        values = []
        for r in self.results:
            if isinstance(r, AsyncResult):
                values.append(r._value(rows[r.id], propagate))
            else:
                values.append(r.get(timeout=timeout, propagate=propagate))
        return values

    join = get

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM", **kwargs: Any) -> None:
        store.revoke(
            [r.id for r in self.results], terminate=terminate, signal=signal, using=self._using
        )

    def forget(self) -> None:
        for r in self.results:
            r.forget()

    def save(self) -> GroupResult:
        store.save_group(self.id, [r.id for r in self.results], using=self._using)
        return self

    @classmethod
    def restore(cls, id: Any, using: str | None = None) -> GroupResult | None:
        row = Group.objects.using(using or settings.DATABASE).filter(id=id).first()
        if row is None:
            return None
        return cls(id, [AsyncResult(c, using=using) for c in row.children], using=using)
