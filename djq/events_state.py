"""The cluster as seen from its events (Celery's ``celery.events.state.State``, in small).

``State.event(event)`` folds one event in: workers (alive while their heartbeats come, as in
Celery: within twice their ``freq``), tasks (the latest state each event implies, with the
fields they carried), per-task-name counts and the recent events. Pure: no database, no I/O.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

#: the task state each task event implies (Celery's names)
TASK_STATES = {
    "task-sent": "PENDING",
    "task-received": "RECEIVED",
    "task-started": "STARTED",
    "task-succeeded": "SUCCESS",
    "task-failed": "FAILURE",
    "task-retried": "RETRY",
    "task-revoked": "REVOKED",
    "task-rejected": "REJECTED",
}
READY = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
#: a worker is alive while its last heartbeat is younger than freq × this (Celery: 200 %)
HEARTBEAT_WINDOW = 2.0


@dataclass
class WorkerState:
    hostname: str
    freq: float = 2.0
    last_heartbeat: float = 0.0
    offline: bool = False
    active: int = 0
    processed: int = 0
    pid: int | None = None
    sw_ident: str = ""
    sw_ver: str = ""

    def alive(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return not self.offline and now - self.last_heartbeat < self.freq * HEARTBEAT_WINDOW


@dataclass
class TaskState:
    uuid: str
    name: str = ""
    state: str = "PENDING"
    worker: str = ""
    args: str = ""
    kwargs: str = ""
    retries: int = 0
    received: float | None = None
    started: float | None = None
    finished: float | None = None
    runtime: float | None = None
    result: str | None = None
    exception: str | None = None
    traceback: str | None = None
    fields: dict = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state in READY


class State:
    """What a monitor knows: ``workers``, ``tasks`` (the newest ``max_tasks``), ``counts``
    (task name → event type → count), ``recent`` events and totals."""

    def __init__(self, max_tasks: int = 10_000, max_recent: int = 200):
        self.workers: dict[str, WorkerState] = {}
        self.tasks: OrderedDict[str, TaskState] = OrderedDict()
        self.counts: dict[str, Counter] = {}
        self.recent: deque[dict] = deque(maxlen=max_recent)
        self.max_tasks = max_tasks
        self.event_count = 0
        self.task_count = 0

    def event(self, event: dict) -> None:
        self.event_count += 1
        self.recent.append(event)
        kind = event.get("type", "")
        if kind.startswith("worker-"):
            self._worker_event(kind, event)
        elif kind in TASK_STATES:
            self._task_event(kind, event)

    def _worker_event(self, kind: str, event: dict) -> None:
        worker = self._worker(event.get("hostname", ""))
        worker.freq = float(event.get("freq") or worker.freq)
        worker.last_heartbeat = float(event.get("timestamp") or time.time())
        worker.offline = kind == "worker-offline"
        worker.pid = event.get("pid", worker.pid)
        worker.sw_ident = event.get("sw_ident", worker.sw_ident)
        worker.sw_ver = event.get("sw_ver", worker.sw_ver)
        if kind == "worker-heartbeat":
            worker.active = int(event.get("active") or 0)
            worker.processed = int(event.get("processed") or 0)

    def _worker(self, hostname: str) -> WorkerState:
        if hostname not in self.workers:
            self.workers[hostname] = WorkerState(hostname)
        return self.workers[hostname]

    def _task_event(self, kind: str, event: dict) -> None:
        task = self._task(str(event.get("uuid", "")))
        if kind != "task-sent" or task.state == "PENDING":  # (a late task-sent: keep the state)
            task.state = TASK_STATES[kind]
        task.fields.update(event)
        stamp = event.get("timestamp")
        if kind in ("task-sent", "task-received"):
            task.name = event.get("name") or task.name
            task.args, task.kwargs = event.get("args") or "", event.get("kwargs") or ""
            task.retries = int(event.get("retries") or 0)
        if kind == "task-received":
            task.received, task.worker = stamp, event.get("hostname", "")
        elif kind == "task-started":
            task.started, task.worker = stamp, event.get("hostname", task.worker)
        elif kind in ("task-succeeded", "task-failed", "task-revoked"):
            task.finished = stamp
        task.runtime = event.get("runtime", task.runtime)
        task.result = event.get("result", task.result)
        task.exception = event.get("exception", task.exception)
        task.traceback = event.get("traceback", task.traceback)
        if task.name:
            self.counts.setdefault(task.name, Counter())[kind] += 1

    def _task(self, uuid: str) -> TaskState:
        task = self.tasks.get(uuid)
        if task is None:
            task = self.tasks[uuid] = TaskState(uuid)
            self.task_count += 1
            while len(self.tasks) > self.max_tasks:
                self.tasks.popitem(last=False)
        else:
            self.tasks.move_to_end(uuid)
        return task

    # --- views ------------------------------------------------------------------------------
    def alive_workers(self, now: float | None = None) -> list[WorkerState]:
        return [w for w in self.workers.values() if w.alive(now)]

    def tasks_by_time(self, limit: int | None = None) -> list[TaskState]:
        """Unfinished tasks first (the running ones), then the most recent; newest first."""
        tasks = list(reversed(self.tasks.values()))
        ordered = [t for t in tasks if not t.ready] + [t for t in tasks if t.ready]
        return ordered if limit is None else ordered[:limit]
