"""More behaviour of real workers: queues (-Q), priorities, revoke(terminate=True), warm
shutdown of the threads and solo pools."""

from __future__ import annotations

import pytest

from djq import enqueue_many, states
from djq.exceptions import TaskRevokedError
from djq.models import Job
from testproject.demo import tasks as demo
from tests.helpers import run_manage, wait_for
from tests.worker_support import job, lines, wait_lines, wait_state

pytestmark = pytest.mark.django_db(transaction=True)


def test_workers_take_only_their_queues(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    a = start_worker("-Q", "alpha", "-c", "1", name="a")
    b = start_worker("-Q", "beta,gamma", "-c", "1", name="b")
    ra = demo.record.apply_async((str(path), "a"), queue="alpha")
    rb = demo.record.apply_async((str(path), "b"), queue="beta")
    rg = demo.record.apply_async((str(path), "g"), queue="gamma")
    nobody = demo.record.apply_async((str(path), "nobody"), queue="delta")
    for r in (ra, rb, rg):
        r.get(timeout=20)
    assert job(ra).worker == a.nodename
    assert job(rb).worker == b.nodename and job(rg).worker == b.nodename
    assert job(nobody).state == states.PENDING
    assert sorted(lines(path)) == ["a", "b", "g"]


def test_higher_priority_runs_first(tmp_path):
    path = tmp_path / "ran.txt"
    results = enqueue_many(
        demo.record.s(str(path), f"p{p}").set(priority=p) for p in (0, 5, -3, 9, 1)
    )
    run_manage("djq_worker", "--burst", "-c", "1", "--prefetch-multiplier", "1", "-n", "prio@%h")
    assert lines(path) == ["p9", "p5", "p1", "p0", "p-3"]
    assert all(job(r).state == states.SUCCESS for r in results)


def test_revoke_terminate_kills_the_running_job(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    w = start_worker("-c", "1")
    result = demo.record_start.apply_async((str(path), "victim", 30.0))
    wait_lines(path, bool, message="the job to start")
    result.revoke(terminate=True, signal="SIGKILL")
    row = wait_state(result, {states.REVOKED, states.FAILURE}, timeout=20)
    assert row.state == states.REVOKED, row.result
    with pytest.raises(TaskRevokedError):
        result.get(timeout=1)
    assert not any("done" in line for line in lines(path))
    # The worker goes on with a new child.
    assert demo.add.delay(1, 2).get(timeout=20) == 3
    assert w.is_alive()


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_warm_shutdown_of_threads_and_solo_pools(start_worker, tmp_path, pool):
    marker = tmp_path / "pid.txt"
    w = start_worker("-P", pool, "-c", "1", "--prefetch-multiplier", "3", "--reserve-wait", "60")
    running, *held = enqueue_many(
        [demo.sleep.s(1.5, str(marker)).set(priority=10)] + [demo.add.s(i, i) for i in range(2)]
    )
    wait_for(marker.exists, timeout=20, message="the sleeper to start")

    def holding():
        held = Job.objects.filter(state__in=states.HELD_STATES, worker=w.nodename)
        return held.count() == 3

    wait_for(holding, timeout=10, message="the worker to hold all three jobs")
    w.terminate()
    assert w.wait(timeout=20) == 0
    assert job(running).state == states.SUCCESS
    assert [job(r).state for r in held] == [states.PENDING, states.PENDING]
