"""Acceptance: worker options with real processes (issue 2), each kept short.

--burst exits 0 once no due job is left; --max-tasks-per-child 1 replaces the child after each
job; -P threads and -P solo run jobs in the worker process; --autoscale grows under load.
"""

from __future__ import annotations

import time

import pytest

from djq import enqueue_many, states
from djq.models import Job
from testproject.demo import tasks as demo
from tests.helpers import run_manage, wait_for
from tests.worker_support import job, lines, wait_all_ready

pytestmark = pytest.mark.django_db(transaction=True)


def test_burst_exits_when_no_due_job_is_left(tmp_path):
    path = tmp_path / "ran.txt"
    due = enqueue_many(demo.record.s(str(path), f"t{i}") for i in range(5))
    later = demo.record.apply_async((str(path), "later"), countdown=300)
    started = time.monotonic()
    proc = run_manage("djq_worker", "--burst", "-c", "1", "-n", "burst@%h", timeout=60)
    assert proc.returncode == 0
    assert time.monotonic() - started < 30
    assert "no due job left (--burst)" in proc.stderr + proc.stdout
    assert sorted(lines(path)) == [f"t{i}" for i in range(5)]
    assert all(job(r).state == states.SUCCESS for r in due)
    # A job that is not due yet does not keep a burst worker alive, and is left alone.
    assert job(later).state == states.PENDING
    # With nothing at all to do it exits at once, too.
    Job.objects.filter(id=later.id).delete()
    assert run_manage("djq_worker", "--burst", "-n", "burst@%h", timeout=60).returncode == 0


def test_max_tasks_per_child_replaces_the_child(start_worker):
    w = start_worker("-c", "1", "--max-tasks-per-child", "1")
    results = enqueue_many(demo.getpid.s() for _ in range(4))
    pids = [r.get(timeout=20) for r in results]
    assert len(set(pids)) == 4, pids
    assert w.pid not in pids


def test_without_max_tasks_per_child_the_child_is_reused(start_worker):
    start_worker("-c", "1")
    pids = [demo.getpid.delay().get(timeout=20) for _ in range(3)]
    assert len(set(pids)) == 1, pids


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_threads_and_solo_pools_run_jobs_in_the_worker_process(start_worker, pool):
    w = start_worker("-P", pool, "-c", "2")
    assert f"({pool})" in w.log_text()  # the banner names the pool
    assert demo.add.delay(2, 3).get(timeout=20) == 5
    assert demo.getpid.delay().get(timeout=20) == w.pid
    with pytest.raises(ValueError, match="boom"):
        demo.fail.delay().get(timeout=20)
    # Soft limits work in both (SIGALRM in solo; in a thread an asynchronous exception, which
    # is raised between bytecodes, so the task below sleeps in short steps).
    started = time.monotonic()
    soft = demo.soft_limited_loop.apply_async((10,), soft_time_limit=0.3)
    assert soft.get(timeout=20) == "soft limit caught"
    assert time.monotonic() - started < 5


def test_threads_pool_runs_jobs_concurrently(start_worker, tmp_path):
    start_worker("-P", "threads", "-c", "3")
    markers = [tmp_path / f"m{i}" for i in range(3)]
    results = enqueue_many(demo.sleep.s(3.0, str(m)) for m in markers)
    # All three are running at once (each writes its marker when it starts).
    wait_for(
        lambda: all(m.exists() for m in markers),
        timeout=2.5,
        message="three sleepers running at once",
    )
    wait_all_ready(results, timeout=20)


def test_autoscale_grows_under_load(start_worker, tmp_path):
    w = start_worker("--autoscale", "3,1", "--prefetch-multiplier", "1")
    assert "autoscale 3,1" in w.log_text()
    markers = [tmp_path / f"m{i}" for i in range(3)]
    results = enqueue_many(demo.sleep.s(3.0, str(m)) for m in markers)
    # Three at once on a pool that started with one child: it grew to three processes.
    wait_for(
        lambda: all(m.exists() for m in markers),
        timeout=2.5,
        message="three sleepers running at once",
    )
    pids = {int(m.read_text()) for m in markers}
    assert len(pids) == 3 and w.pid not in pids
    wait_all_ready(results, timeout=20)
    assert all(job(r).state == states.SUCCESS for r in results)


def test_max_memory_per_child_replaces_the_child(start_worker):
    # 1 KiB: every child is over the limit after its first job and exits.
    w = start_worker("-c", "1", "--max-memory-per-child", "1")
    results = enqueue_many(demo.getpid.s() for _ in range(4))
    pids = [r.get(timeout=20) for r in results]
    assert len(set(pids)) == 4, pids
    assert w.pid not in pids
