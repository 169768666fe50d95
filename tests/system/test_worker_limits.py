"""Acceptance: time limits in a real prefork worker (issue 2).

The soft limit raises SoftTimeLimitExceeded inside the task, which can catch it; the hard limit
kills the pool child, the job ends FAILURE with TimeLimitExceeded, and the worker goes on with a
fresh child.
"""

from __future__ import annotations

import pytest

from djq import enqueue_many, states
from djq.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from testproject.demo import tasks as demo
from tests.worker_support import job, lines, wait_lines

pytestmark = pytest.mark.django_db(transaction=True)


def test_soft_time_limit_is_catchable(start_worker):
    w = start_worker("-c", "1", "--soft-time-limit", "0.5")
    # The worker's --soft-time-limit ...
    caught = demo.soft_limited.delay(10)
    assert caught.get(timeout=20) == "soft limit caught"
    # ... and the per-call option (tighter than the worker's) both raise in the task.
    fast = demo.soft_limited.apply_async((10,), soft_time_limit=0.2)
    assert fast.get(timeout=20) == "soft limit caught"
    # Uncaught, the soft limit fails the job with SoftTimeLimitExceeded.
    uncaught = demo.sleep.apply_async((10,), soft_time_limit=0.3)
    with pytest.raises(SoftTimeLimitExceeded):
        uncaught.get(timeout=20)
    assert "time.sleep" in (uncaught.traceback or "")
    w.wait_for_log(rf"Task testproject\.demo\.tasks\.soft_limited\[{fast.id}\] succeeded")


def test_hard_time_limit_kills_the_child_and_the_worker_goes_on(start_worker, tmp_path):
    marker = tmp_path / "pid.txt"
    w = start_worker("-c", "1")
    before = demo.getpid.delay().get(timeout=20)
    killed = demo.sleep.apply_async((30, str(marker)), time_limit=1)
    with pytest.raises(TimeLimitExceeded):
        killed.get(timeout=20)
    row = job(killed)
    assert row.state == states.FAILURE
    assert [e[0] for e in row.history] == ["PENDING", "RESERVED", "STARTED", "FAILURE"]
    # The job ran in the child that was there before (and that child is gone now).
    assert lines(marker) == [str(before)]
    w.wait_for_log(r"Hard time limit \(1(\.0)?s\) exceeded for testproject\.demo\.tasks\.sleep")
    # The worker goes on, in a new child.
    after = demo.getpid.delay().get(timeout=20)
    assert after != before
    assert after != w.pid
    # And the killed run ended when the limit hit, not when the task would have.
    assert (row.finished_at - row.started_at).total_seconds() < 10


def test_hard_time_limit_from_the_worker_option(start_worker, tmp_path):
    marker = tmp_path / "pid.txt"
    start_worker("-c", "1", "--time-limit", "1")
    killed = demo.sleep.apply_async((30, str(marker)))
    wait_lines(marker, bool, message="the sleeper to start")
    with pytest.raises(TimeLimitExceeded):
        killed.get(timeout=20)
    assert demo.add.delay(2, 3).get(timeout=20) == 5


def test_hard_time_limit_with_jobs_queued_behind_it(start_worker, tmp_path):
    """Jobs prefetched into the killed child's queue are not lost with it: they run next."""
    marker = tmp_path / "pid.txt"
    start_worker("-c", "1", "--prefetch-multiplier", "4")
    killed, *behind = enqueue_many(
        [demo.sleep.s(30, str(marker)).set(priority=10, time_limit=1)]
        + [demo.getpid.s() for _ in range(3)]
    )
    with pytest.raises(TimeLimitExceeded):
        killed.get(timeout=20)
    # At once, not at the next poll.
    pids = [r.get(timeout=3) for r in behind]
    assert str(pids[0]) != lines(marker)[0]
    assert all(job(r).attempt == 1 for r in behind)
