"""Acceptance: ``async def`` tasks through real workers (issue 15, point 8).

In the default pools (prefork, threads) a coroutine task runs to completion in the child or
thread; ``--pool asyncio`` runs up to ``-c`` of them at once on one event loop. Soft limits cancel
the coroutine (SoftTimeLimitExceeded), hard limits kill the child (prefork) or cancel it
(asyncio), ``revoke(terminate=True)`` ends it; the async ORM writes from inside.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from djq import enqueue_many, states
from djq.exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded
from testproject.demo import async_tasks as at
from testproject.demo import tasks as demo
from tests.worker_support import job, wait_state

pytestmark = pytest.mark.django_db(transaction=True)

POOLS = [("-P", "prefork", "-c", "1"), ("-P", "threads", "-c", "2"), ("-P", "asyncio", "-c", "4")]


@pytest.mark.parametrize("pool", POOLS, ids=lambda p: p[1])
def test_async_task_result_orm_write_and_failure(start_worker, pool):
    w = start_worker(*pool)
    assert at.async_add.delay(2, 3).get(timeout=30) == 5
    whoami = at.async_whoami.delay()
    assert whoami.get(timeout=30) == {"id": whoami.id, "hostname": w.nodename}
    written = at.async_orm_write.delay(f"async-{pool[1]}").get(timeout=30)
    assert written["count"] == 1
    assert Group.objects.get(pk=written["pk"]).name == f"async-{pool[1]}"
    failed = at.async_fail.delay("no luck")
    with pytest.raises(ValueError, match="no luck"):
        failed.get(timeout=30)
    assert "async_fail" in (failed.traceback or "")
    # a plain task runs in every pool (in the asyncio pool: in one of its threads)
    assert demo.add.delay(1, 2).get(timeout=30) == 3


@pytest.mark.parametrize("pool", POOLS, ids=lambda p: p[1])
def test_async_soft_time_limit(start_worker, pool):
    start_worker(*pool)
    caught = at.async_soft_caught.apply_async((30,), soft_time_limit=0.5)
    uncaught = at.async_soft_limited.apply_async((30,), soft_time_limit=0.5)
    assert caught.get(timeout=30) == "soft limit caught"
    with pytest.raises(SoftTimeLimitExceeded):
        uncaught.get(timeout=30)
    row = job(uncaught)
    assert (row.finished_at - row.started_at).total_seconds() < 20


@pytest.mark.parametrize("pool", [POOLS[0], POOLS[2]], ids=lambda p: p[1])
def test_async_hard_time_limit(start_worker, pool):
    w = start_worker(*pool)
    # a coroutine that awaits (asyncio pool: cancelled), one that blocks its loop (prefork: killed)
    sleeper = at.async_sleep.apply_async((30,), time_limit=1)
    results = [sleeper]
    if pool[1] == "prefork":
        results.append(at.async_blocking.apply_async((30,), time_limit=1))
    for result in results:
        with pytest.raises(TimeLimitExceeded):
            result.get(timeout=30)
        row = job(result)
        assert row.state == states.FAILURE
        assert (row.finished_at - row.started_at).total_seconds() < 20
    w.wait_for_log(r"Hard time limit \(1(\.0)?s\) exceeded for testproject\.demo\.async_tasks")
    assert at.async_add.delay(1, 1).get(timeout=30) == 2  # the worker goes on


@pytest.mark.parametrize("pool", [POOLS[0], POOLS[2]], ids=lambda p: p[1])
def test_async_revoke_terminate(start_worker, pool):
    w = start_worker(*pool)
    result = at.async_sleep.delay(120, "victim")
    wait_state(result, states.STARTED, timeout=30)
    result.revoke(terminate=True)
    row = wait_state(result, {states.REVOKED, states.FAILURE, states.SUCCESS}, timeout=30)
    assert row.state == states.REVOKED, row.result
    with pytest.raises(TaskRevokedError):
        result.get(timeout=1)
    assert at.async_add.delay(2, 2).get(timeout=30) == 4
    assert w.is_alive()


def test_asyncio_pool_runs_ten_coroutines_at_once(start_worker):
    start_worker("-P", "asyncio", "-c", "10", "--prefetch-multiplier", "1")
    results = enqueue_many(at.async_sleep.s(2.0, str(i)) for i in range(10))
    runs = [r.get(timeout=60) for r in results]
    # every run overlaps every other: the last start is before the first end
    assert max(r["start"] for r in runs) < min(r["end"] for r in runs), runs
    assert sorted(r["token"] for r in runs) == [str(i) for i in range(10)]
