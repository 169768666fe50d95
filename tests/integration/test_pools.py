"""djq.pools, djq.pool and djq.threads: the pools behind --pool, driven as the worker drives
them (submit, wait on waitables, collect), with real claimed jobs."""

from __future__ import annotations

import datetime as dt
import json
import select

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
