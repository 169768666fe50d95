"""Example tasks for the demo (``make run``) and the test suite."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import time
from pathlib import Path

from django.db import DatabaseError, connection, transaction

from djq import task
from djq.exceptions import Ignore, Reject
from testproject.demo import async_tasks, versioned_tasks  # noqa: F401 - discovered with these

logger = logging.getLogger(__name__)


@task
def add(x, y):
    return x + y


@task
def mul(x, y):
    return x * y


@task
def xsum(numbers):
    return sum(numbers)


@task
def noop():
    return None


@task
def echo(*args, **kwargs):
    """Return what it was given (to check that arguments round-trip)."""
    return {"args": list(args), "kwargs": kwargs}


@task
def sleep(seconds: float, marker: str | None = None):
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return seconds


@task
def fail(message: str = "boom"):
    raise ValueError(message)


class DemoError(Exception):
    """An exception type of the demo app, re-raised by ``AsyncResult.get`` as itself."""


@task
def fail_custom(message: str = "custom"):
    raise DemoError(message)


@task(bind=True, max_retries=5, default_retry_delay=0)
def retry_twice(self, marker_dir: str | None = None):
    """Fails twice, then succeeds: PENDING → STARTED → RETRY → … → SUCCESS."""
    if self.request.retries < 2:
        raise self.retry(exc=RuntimeError(f"attempt {self.request.retries}"), countdown=0.1)
    return self.request.retries


@task(bind=True, max_retries=1, default_retry_delay=0)
def retry_forever(self):
    raise self.retry(exc=KeyError("always"), countdown=0)


@task(autoretry_for=(ZeroDivisionError,), retry_backoff=0.05, retry_jitter=False, max_retries=3)
def divide(x, y):
    return x / y


@task
def ignore_me():
    raise Ignore()


@task
def reject_me(requeue: bool = False):
    raise Reject("not for me", requeue=requeue)


@task(bind=True)
def progress(self, steps: int = 3, delay: float = 0.2):
    for i in range(steps):
        self.update_state(state="PROGRESS", meta={"current": i, "total": steps})
        time.sleep(delay)
    return steps


@task(bind=True)
def whoami(self):
    req = self.request
    return {
        "id": req.id,
        "retries": req.retries,
        "hostname": req.hostname,
        "queue": req.delivery_info.get("queue"),
        "parent_id": req.parent_id,
    }


@task
def record(path: str, token: str):
    """Append ``token`` to a file: a side effect that counts how often a job ran."""
    with open(path, "a") as fh:
        fh.write(f"{token}\n")
    return token


def _record_around(path: str, token: str, seconds: float) -> int:
    """Record "<token> start <pid>", sleep, record "<token> done <pid>": a job that can be
    caught in the middle (killed, stopped) and whose runs can be counted."""
    with open(path, "a") as fh:
        fh.write(f"{token} start {os.getpid()}\n")
    time.sleep(seconds)
    with open(path, "a") as fh:
        fh.write(f"{token} done {os.getpid()}\n")
    return os.getpid()


@task(acks_late=True)
def record_slowly(path: str, token: str, seconds: float = 2.0):
    return _record_around(path, token, seconds)


@task
def soft_limited(seconds: float = 5.0):
    """Catches its soft time limit and says so."""
    from djq.exceptions import SoftTimeLimitExceeded

    try:
        time.sleep(seconds)
    except SoftTimeLimitExceeded:
        return "soft limit caught"
    return "finished"


@task
def crash():
    """Kill the process running the task (as an OOM kill would)."""
    os._exit(13)


@task(ignore_result=True)
def forgetful():
    return "nobody stores me"


@task
def spawn_child(x):
    return add.delay(x, 1).id


@task
def demo_work(n: int):
    """The demo's stream: mostly quick successes, a few slow ones, some failures."""
    time.sleep(random.uniform(0.05, 0.6))
    if random.random() < 0.1:
        raise ValueError(f"demo failure for {n}")
    return n * n


# --- used by the worker acceptance tests (tests/test_worker_*.py) ----------------------------
@task
def getpid():
    """The pid of the process running the job (a prefork child, or the worker itself)."""
    return os.getpid()


@task
def record_after(path: str, token: str, seconds: float = 0.05):
    """Sleep, then append ``token``: a slow-ish job whose run is counted by a side effect."""
    time.sleep(seconds)
    with open(path, "a") as fh:
        fh.write(f"{token}\n")
    return token


@task
def record_start(path: str, token: str, seconds: float = 2.0):
    """Like ``record_slowly`` but not ``acks_late``: a plain job that records start and end."""
    return _record_around(path, token, seconds)


@task
def soft_limited_loop(seconds: float = 5.0):
    """Like ``soft_limited``, in short steps: the threads pool raises the soft limit between
    bytecodes (asynchronously), so it cannot interrupt one long blocking call."""
    from djq.exceptions import SoftTimeLimitExceeded

    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except SoftTimeLimitExceeded:
        return "soft limit caught"
    return "finished"


@task
def tally(results, path: str):
    """A chord body that counts how often it ran (one line per run)."""
    with open(path, "a") as fh:
        fh.write(f"{len(results)} {sum(results)}\n")
    return sum(results)


@task(acks_late=True)
def slow_add(x, y, marker: str | None = None, seconds: float = 0.0):
    """An acks_late header job that announces its start and takes a while."""
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return x + y


@task
def on_error(job_id):
    """An errback: the failed job's id."""
    return job_id


@task(rate_limit="10/s")
def limited(path: str, token: str):
    """Rate-limited across the cluster: records when it ran."""
    with open(path, "a") as fh:
        fh.write(f"{token} {time.time():.4f}\n")
    return token


@task(concurrency_limit=2)
def exclusive(path: str, token: str, seconds: float = 0.3):
    """At most two running at once across the cluster: records start and end times."""
    with open(path, "a") as fh:
        fh.write(f"{token} start {time.time():.4f}\n")
    time.sleep(seconds)
    with open(path, "a") as fh:
        fh.write(f"{token} end {time.time():.4f}\n")
    return token


@task(concurrency_key="tenant", concurrency_limit=2)
def tenant_exclusive(tenant: str, path: str, token: str, seconds: float = 0.3):
    """At most two running at once per tenant, across the cluster: records start and end."""
    with open(path, "a") as fh:
        fh.write(f"{tenant} {token} start {time.time():.4f}\n")
    time.sleep(seconds)
    with open(path, "a") as fh:
        fh.write(f"{tenant} {token} end {time.time():.4f}\n")
    return token


@task(concurrency_key="tenant", rate_limit="2/s")
def tenant_paced(tenant: str, path: str):
    """Two starts a second per tenant (not per task): records the tenant and its start time."""
    with open(path, "a") as fh:
        fh.write(f"{tenant} {time.time():.4f}\n")
    return tenant


@task(concurrency_key="tenant")
def keyed_noop(tenant: str):
    """A no-op with a key: the fair-claim drain of make bench (benchmarks/run.py)."""


@task(concurrency_key=lambda args, kwargs: kwargs.get("tenant", args[0] if args else None))
def tenant_record(tenant: str, path: str):
    """Keyed by a callable: appends the tenant when it runs (the order the jobs ran in)."""
    with open(path, "a") as fh:
        fh.write(f"{tenant}\n")
    return tenant


@task
def fail_once(marker: str):
    """Fails the first time (and leaves ``marker``), succeeds after: a job worth retrying."""
    if not os.path.exists(marker):
        Path(marker).write_text("failed once")
        raise RuntimeError("first attempt fails; retry me")
    return "second time lucky"


@task
def on_error_full(request, exc, traceback):
    """A new-style errback: the failed job's request, its exception and traceback."""
    return {
        "id": request.id,
        "task": request.task,
        "exc": type(exc).__name__,
        "message": str(exc),
        "has_traceback": "Traceback" in traceback,
    }


@task(serializer="json", throws=(KeyError,))
def lookup(key: str):
    """Celery's task options: JSON is accepted, and a KeyError is an expected error (logged
    without a traceback, the job still ends FAILURE)."""
    return {"a": 1}[key]


# --- the fault campaign (chaos/, make chaos) -----------------------------------------------------
#: the campaign's side table: one row per execution of ``chaos_run`` (created by chaos.harness)
CHAOS_TABLE = "chaos_run"


@task(
    bind=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=0.2,
    retry_backoff_max=2,
    retry_jitter=False,
    max_retries=50,
)
def chaos_run(self, seconds: float = 0.0, durable: bool = True):
    """Record this execution in the side table, then sleep: runs per job are counted by rows.

    The row is written in its own transaction, outside djq's recording of the
    outcome, so a run that the queue later rescues or discards is still counted. A database
    outage makes the insert fail and the job retry; since a crash can also lose the answer to an
    insert that was committed, runs are counted per delivery: (job id, retries).
    ``durable=False``: the insert does not wait for its WAL flush (scenarios that do not crash the
    server lose nothing by it, and the side table stops being the bottleneck of a drain).
    """
    req = self.request
    with transaction.atomic(), connection.cursor() as cursor:
        if not durable:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(
            f"INSERT INTO {CHAOS_TABLE} (job_id, retries, attempt, hostname, pid) "
            "VALUES (%s, %s, %s, %s, %s)",
            [req.id, req.retries, req.attempt, req.hostname or "", os.getpid()],
        )
    if seconds:
        time.sleep(seconds)
    return self.request.id


# --- the demo's long job and reports (make run; see djq_demo_stream) ------------------------------
@task(bind=True)
def demo_long(self, seconds: int = 40):
    """A long job that reports its progress (``update_state``): the dashboard's "Running now"."""
    for done in range(seconds):
        self.update_state(state="PROGRESS", meta={"current": done, "total": seconds})
        time.sleep(1)
    return seconds


@task(queue="reports")
def demo_report(kind: str = "daily"):
    """A job of the second queue, run by the demo's "reports" worker."""
    time.sleep(random.uniform(0.5, 2.0))
    return {"report": kind, "rows": random.randint(10, 500)}


# --- logs per attempt (docs/admin.md) ---------------------------------------------------------
@task(bind=True, max_retries=3, default_retry_delay=0)
def chatty(self, lines: int = 2, width: int = 10, retries: int = 0, say: str = ""):
    """Logs ``lines`` records of ``width`` characters per attempt (and prints ``say``); the
    first ``retries`` attempts end in a retry. Its job page shows a log per attempt."""
    for number in range(lines):
        logger.info("attempt %d line %d %s", self.request.retries + 1, number, "x" * width)
    logger.debug("a debug record, below DJQ_TASK_LOG_LEVEL")
    if say:
        print(say)
    if self.request.retries < retries:
        logger.warning("retrying (attempt %d)", self.request.retries + 1)
        raise self.retry()
    return lines


@task
def batch_report(summary, path: str):
    """A batch callback that appends the summary it got to ``path`` (one JSON line per run)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(summary, sort_keys=True) + "\n")
    return summary["failed"]


# --- atomic tasks, snooze and dead letters (docs/tasks.md) --------------------------------------
#: the side table of ``atomic_insert``: one row per committed run (created by the tests and chaos)
ATOMIC_TABLE = "atomic_row"


@task(atomic=True, acks_late=True, bind=True)
def atomic_insert(self, token: str, seconds: float = 0.0, fail: bool = False):
    """Insert a row for ``token``, sleep, then fail if asked: an atomic task, so the row exists
    exactly when the job's SUCCESS was recorded (however often it was killed mid-run)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ATOMIC_TABLE} (token, attempt, pid) VALUES (%s, %s, %s)",
            [token, self.request.attempt, os.getpid()],
        )
    if seconds:
        time.sleep(seconds)
    if fail:
        raise RuntimeError(f"failed after the write of {token}")
    return token


@task(bind=True, max_retries=0)
def snooze_twice(self, path: str, seconds: float = 0.3):
    """Snoozes on its first two runs, then succeeds; records each run's retries and attempt.
    ``max_retries=0``: a snooze that spent a retry would fail it."""
    with open(path, "a") as fh:
        fh.write(f"{self.request.retries} {self.request.attempt}\n")
    if len(Path(path).read_text().splitlines()) <= 2:
        raise self.snooze(seconds)
    return self.request.retries


@task(bind=True)
def snooze_by(self, seconds):
    """``raise self.snooze(seconds)`` with whatever it is given (bad values are refused;
    "nan" stands for NaN, which JSON cannot carry)."""
    raise self.snooze(float("nan") if seconds == "nan" else seconds)


@task(bind=True, max_retries=1, default_retry_delay=0)
def exhaust_retries(self, with_exc: bool = True):
    """Retries once, then its retries are exhausted: a dead letter (retries_exhausted); the
    job fails with ``exc``, or MaxRetriesExceededError without one."""
    raise self.retry(exc=ValueError("still broken") if with_exc else None)


@task(acks_late=True)
def kill_my_worker(seconds: float = 0.5):
    """Kill this worker's whole process group (as an OOM kill of the worker would) once it is
    recorded STARTED: an acks_late job that would loop forever without DJQ_MAX_WORKER_LOST."""
    time.sleep(seconds)
    os.killpg(os.getpgid(0), signal.SIGKILL)
