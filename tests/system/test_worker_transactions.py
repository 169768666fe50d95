"""Acceptance: enqueueing is part of the caller's transaction, seen from a real worker (issue 2).

A worker cannot claim a job before the enqueueing transaction commits; a job enqueued in a
transaction that rolls back never runs; ``delay_on_commit`` enqueues only on commit.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from djq import states
from djq.models import Job
from testproject.demo import tasks as demo
from tests.helpers import wait_for
from tests.worker_support import history_states, job, lines, wait_state

pytestmark = pytest.mark.django_db(transaction=True)


class OpenTransaction:
    """Enqueue in ``transaction.atomic()`` on another thread (its own connection) and keep the
    transaction open until told to commit or roll back."""

    def __init__(self, enqueue):
        self.enqueue = enqueue
        self.result = None
        self.error: BaseException | None = None
        self.enqueued = threading.Event()
        self.decision = threading.Event()
        self.commit = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            try:
                with transaction.atomic():
                    self.result = self.enqueue()
                    self.enqueued.set()
                    self.decision.wait(60)
                    if not self.commit:
                        transaction.set_rollback(True)
            finally:
                connections.close_all()  # this thread's connection
        except BaseException as exc:  # noqa: BLE001 - surfaced by finish()
            self.error = exc
            self.enqueued.set()

    def __enter__(self):
        self.thread.start()
        assert self.enqueued.wait(30), "the enqueueing thread did not enqueue"
        if self.error:
            raise self.error
        return self

    def finish(self, commit: bool) -> None:
        self.commit = commit
        self.decision.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error:
            raise self.error

    def __exit__(self, *exc):
        if self.thread.is_alive():
            self.finish(commit=False)
        return False


def _probe_after(path, token, **options):
    """A committed job enqueued after the hidden one, with a lower priority: once a worker has
    run it, the worker has claimed while the hidden job existed (uncommitted)."""
    return demo.record.apply_async((str(path), token), priority=-10, **options)


def test_worker_cannot_claim_before_commit(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    w = start_worker("-c", "1", "--prefetch-multiplier", "1", "--poll-interval", "0.1")
    with OpenTransaction(lambda: demo.record.apply_async((str(path), "hidden"), priority=10)) as tx:
        hidden = tx.result
        # From any other connection the job does not exist yet.
        assert not Job.objects.filter(id=hidden.id).exists()
        if connection.vendor == "postgresql":
            # Condition-based: two probes (committed after the hidden insert, lower priority)
            # run one after the other on a -c 1 worker. Had the hidden job been claimable, the
            # worker (priority order) would have run it before the second probe.
            for n in (1, 2):
                probe = _probe_after(path, f"probe{n}")
                assert probe.get(timeout=20) == f"probe{n}"
        else:
            # SQLite: the open write transaction holds the database's single write lock, so
            # the worker's claim waits on it (and so would a probe). Negative check: give the
            # polling worker (0.1 s) time to try, and see that nothing ran.
            time.sleep(1.5)
        assert "hidden" not in lines(path)
        tx.finish(commit=True)
    row = wait_state(hidden, states.SUCCESS)
    assert lines(path).count("hidden") == 1
    assert row.worker == w.nodename
    assert history_states(hidden) == ["PENDING", "RESERVED", "STARTED", "SUCCESS"]


def test_rolled_back_job_never_runs(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    start_worker("-c", "1", "--poll-interval", "0.1")
    with OpenTransaction(lambda: demo.record.apply_async((str(path), "ghost"), priority=10)) as tx:
        ghost = tx.result
        tx.finish(commit=False)
    # The next committed job runs: the worker has looked at the queue since the rollback.
    assert _probe_after(path, "probe").get(timeout=20) == "probe"
    assert not Job.objects.filter(id=ghost.id).exists()
    assert ghost.state == states.PENDING and not ghost.exists()
    assert lines(path) == ["probe"]


def test_rollback_in_the_test_thread(start_worker, tmp_path):
    """The same through the ordinary API in the caller's own thread: atomic() + exception."""
    path = tmp_path / "ran.txt"
    start_worker("-c", "1", "--poll-interval", "0.1")
    ids = []
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            ids.append(demo.record.delay(str(path), "rolled-back").id)
            demo.record.delay_on_commit(str(path), "on-commit-rolled-back")
            raise RuntimeError("roll back")
    assert not Job.objects.filter(id=ids[0]).exists()
    with transaction.atomic():
        demo.record.delay_on_commit(str(path), "on-commit")
        # Not enqueued until the commit (not even in this transaction).
        assert Job.objects.count() == 0
    wait_for(lambda: "on-commit" in lines(path), timeout=20, message="the on-commit job to run")
    assert _probe_after(path, "probe").get(timeout=20) == "probe"
    assert sorted(lines(path)) == ["on-commit", "probe"]
    assert Job.objects.filter(state=states.SUCCESS).count() == 2
    assert Job.objects.count() == 2
    assert all(job(j.id).state == states.SUCCESS for j in Job.objects.all())
