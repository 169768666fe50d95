"""Finishing jobs without a worker process: what a worker does, in the test's own process.

    claim → execute → complete

``drain()`` runs every due job of some queues (and the jobs their completion enqueues) and
returns the rows ``store.complete`` recorded. The test keeps its transaction: inside a plain
``django_db`` test everything happens in the test's connection.
"""

from __future__ import annotations

from collections.abc import Sequence

from djq import store
from djq.running.execute import execute

WORKER = "inprocess@test"


def claim(
    queues: Sequence[str] = ("default",), limit: int = 100, lease: float = 30.0, worker=WORKER
) -> list[dict]:
    """Claim jobs and hand them to a (pretend) child: RESERVED, then STARTED, as a worker does."""
    jobs = store.claim(worker, list(queues), limit, lease)
    store.mark_started(jobs)
    return jobs


def run(jobs: list[dict], hostname: str = WORKER) -> list[dict]:
    """Execute claimed jobs and record their outcomes in one batch; returns the recorded rows."""
    outcomes = [execute(job, hostname=hostname) for job in jobs]
    return store.complete(outcomes)


def drain(queues: Sequence[str] = ("default",), rounds: int = 20) -> list[dict]:
    """Run due jobs until none is left (continuations included); returns every recorded row."""
    recorded: list[dict] = []
    for _ in range(rounds):
        jobs = claim(queues)
        if not jobs:
            return recorded
        recorded.extend(run(jobs))
    raise AssertionError(f"jobs still due after {rounds} rounds")


def in_thread(fn, *args, timeout: float = 30.0, **kwargs):
    """Call ``fn`` in another thread (so: on another database connection) and return its value.

    The thread's connections are closed before it ends; an exception in it is re-raised here.
    """
    import threading

    from django.db import connections

    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name="djq-test-other-connection")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"{fn!r} did not finish within {timeout}s")
    if "error" in box:
        raise box["error"]
    return box["value"]
