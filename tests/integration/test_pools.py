"""djq.pools, djq.pool and djq.threads: the pools behind --pool, driven as the worker drives
them (submit, wait on waitables, collect), with real claimed jobs."""

from __future__ import annotations

import datetime as dt
import json
import os
import select
import signal

import pytest
from django.db.models import F

from djq import records, states, store
from djq.exceptions import WorkerLostError
from djq.models import Job
from djq.running.pools import pool_class
from djq.running.pools.prefork import PreforkPool
from djq.running.pools.threads import SoloPool, ThreadPool
from testproject.demo.tasks import add

pytestmark = pytest.mark.django_db


def test_pool_class_names_the_three_pools():
    assert pool_class("prefork") is PreforkPool
    assert pool_class("threads") is ThreadPool
    assert pool_class("solo") is SoloPool
    with pytest.raises(KeyError):
        pool_class("gevent")


def test_lost_outcome_is_a_failure_naming_the_error():
    (job,) = _claimed(1)
    outcome = records.lost(job, WorkerLostError("child died"))
    assert outcome.id == job.id and outcome.attempt == job.attempt
    assert outcome.state == states.FAILURE and outcome.lost
    assert json.loads(outcome.result)["exc_type"] == "WorkerLostError"


def _claimed(n: int) -> list[records.Claim]:
    for i in range(n):
        add.delay(i, 10)
    Job.objects.waiting().update(run_after=F("run_after") - dt.timedelta(minutes=1))
    return store.claim("pool@test", ["default"], n, 30.0)


def _grant(pool, asked: list[records.Claim]) -> list[records.Claim]:
    """What the worker does with the jobs its pool asks to begin: mark them STARTED (committed),
    then let them run."""
    pool.grant(asked, set(store.mark_started(asked)))
    return asked


def _start_now(pool):
    """The solo pool's inline ask, granted (its job runs in this thread and closes this test's
    connection after it: the mark itself is the worker's, tests/system/test_worker_lost.py)."""
    return lambda job: pool.grant([job], {job.id})


def _collect(pool, n: int) -> list[records.Outcome]:
    outcomes: list[records.Outcome] = []
    for _ in range(100):
        ready, _, _ = select.select(pool.waitables(), [], [], 0.1)
        outcomes += pool.collect(ready)
        _grant(pool, pool.take_began())
        if len(outcomes) >= n:
            return outcomes
    raise AssertionError(f"{len(outcomes)} of {n} outcomes")


@pytest.mark.parametrize("pool_type", [ThreadPool, SoloPool])
def test_in_process_pools_run_jobs_and_report_outcomes(pool_type):
    jobs = _claimed(3)
    pool = pool_type(2, "pool@test")
    pool.start_now = _start_now(pool)
    pool.start()
    try:
        assert pool.free_slots() >= 1
        for job in jobs:
            pool.submit(job, None, None)
        outcomes = _collect(pool, 3)
    finally:
        pool.begin_stop()
        pool.stop(timeout=5)
    # stopped: no thread is left to wake the loop, so its socket pair is closed, and the
    # worker's last looks after the stop (collect, a wait through an outage) still work
    assert pool.wake_r.fileno() == -1 and pool.wake_w.fileno() == -1
    assert pool.waitables() == [] and pool.collect([]) == []
    assert sorted(json.loads(o.result) for o in outcomes) == [10, 11, 12]
    assert {o.state for o in outcomes} == {states.SUCCESS}
    assert pool.take_began() == []  # (every ask was answered)
    assert pool.busy() == 0
    if pool_type is SoloPool:
        return
    started = Job.objects.filter(state=states.STARTED).values_list("id", flat=True)
    assert {str(i) for i in started} == {j.id for j in jobs}


# --- prefork children that mark their own jobs (PostgreSQL: djq.running.pools.child_marks) ----
def _run_marked(pool: PreforkPool, jobs: list[records.Claim], n: int) -> list[records.Outcome]:
    """Drive the pool as the worker does, with children that mark their jobs themselves: the
    worker grants nothing (no ask reaches it)."""
    for job in jobs:
        pool.submit(job, None, None)
    outcomes: list[records.Outcome] = []
    for _ in range(100):
        ready, _, _ = select.select(pool.waitables(), [], [], 0.1)
        outcomes += pool.collect(ready)
        assert pool.take_began() == []  # (the children never asked)
        if len(outcomes) + len(pool.refused) >= n:
            return outcomes
    raise AssertionError(f"{len(outcomes)} outcomes, {len(pool.refused)} refused, of {n}")


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_prefork_children_mark_their_jobs_started_before_the_body(tmp_path):
    from testproject.demo.tasks import record

    path = tmp_path / "ran.txt"
    for i in range(4):
        record.delay(str(path), str(i))
    jobs = store.claim("pool@test", ["default"], 4, 30.0)
    pool = PreforkPool(2, "pool@test", depth=2, using="default")
    assert pool.child_marks
    pool.start()
    try:
        outcomes = _run_marked(pool, jobs, 4)
    finally:
        pool.stop()
    assert sorted(o.state for o in outcomes) == [states.SUCCESS] * 4
    assert sorted(path.read_text().split()) == ["0", "1", "2", "3"]
    for row in Job.objects.filter(id__in=[j.id for j in jobs]):
        # STARTED by the child, on its own connection (committed): the outcome is not recorded
        assert row.state == states.STARTED and row.started_at is not None
        assert [event[0] for event in row.history][-2:] == [states.RESERVED, states.STARTED]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_prefork_child_does_not_run_a_job_that_is_no_longer_reserved(tmp_path):
    """Rescued (or marked by a child that died) meanwhile: the child's strict mark is refused,
    the body never runs, and the pool hands the job to the worker as refused (to forget it)."""
    from testproject.demo.tasks import record

    path = tmp_path / "ran.txt"
    record.delay(str(path), "rescued")
    record.delay(str(path), "kept")
    claims = store.claim("pool@test", ["default"], 2, 30.0)
    (rescued,) = [j for j in claims if "rescued" in j.args]
    (kept,) = [j for j in claims if "kept" in j.args]
    Job.objects.filter(id=rescued.id).update(state=states.PENDING)  # written by anything else
    pool = PreforkPool(1, "pool@test", using="default")
    pool.start()
    try:
        outcomes = _run_marked(pool, [rescued, kept], 2)
    finally:
        pool.stop()
    assert [o.id for o in outcomes] == [kept.id]
    assert [j.id for j in pool.refused] == [rescued.id]
    assert path.read_text().split() == ["kept"]
    assert Job.objects.get(id=rescued.id).state == states.PENDING


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_dead_childs_unheard_mark_is_read_from_the_database(tmp_path):
    """A child killed after its mark committed but before the pool heard ``began``: the pool
    reads STARTED in the database, so the job is lost (not run again), never handed back."""
    (job,) = _claimed_committed(1)
    pool = PreforkPool(1, "pool@test", using="default")
    pool.start()
    try:
        (child,) = pool.children.values()
        child.jobs.append(job)  # as submit, without sending it: the child never hears of it
        assert store.start_reserved(_cursor(), job)  # ... and its mark, committed
        os.kill(child.pid, signal.SIGKILL)
        outcomes: list[records.Outcome] = []
        for _ in range(50):
            ready, _, _ = select.select(pool.waitables(), [], [], 0.1)
            outcomes += pool.collect(ready)
            if outcomes:
                break
    finally:
        pool.stop()
    assert [o.id for o in outcomes] == [job.id] and outcomes[0].lost
    assert json.loads(outcomes[0].result)["exc_type"] == "WorkerLostError"
    assert pool.unstarted == []


def _claimed_committed(n: int) -> list[records.Claim]:
    for i in range(n):
        add.delay(i, 10)
    return store.claim("pool@test", ["default"], n, 30.0)


def _cursor():
    from django.db import connection

    return connection.cursor()
