"""Acceptance: when jobs run, seen from a real worker (issue 2).

A countdown is respected by the database clock (not run before, run after); an expired job never
runs and ends REVOKED; a revoked waiting job never runs and ends REVOKED.
"""

from __future__ import annotations

import datetime as dt

import pytest

from djq import AsyncResult, states
from djq.exceptions import TaskRevokedError
from djq.models import Job
from testproject.demo import tasks as demo
from tests.helpers import wait_for
from tests.worker_support import history_states, job, lines, wait_state

pytestmark = pytest.mark.django_db(transaction=True)


def test_countdown_is_respected_by_the_database_clock(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    start_worker("-c", "1", "--poll-interval", "0.2")
    result = demo.record.apply_async((str(path), "later"), countdown=1.5)
    row = job(result)
    # run_after was computed by the database from its own clock at insert.
    assert 1.4 <= (row.run_after - row.created_at).total_seconds() <= 1.6
    seen = []

    def sample():
        at = dt.datetime.now(dt.UTC)
        state = AsyncResult(result.id).state
        seen.append((at, state, "later" in lines(path)))
        return state == states.SUCCESS

    wait_for(sample, timeout=20, interval=0.02, message="the countdown job to run")
    row = job(result)
    # Never claimed before its time, by the database's clock ...
    assert row.started_at >= row.run_after
    # ... and not long after it (the worker learns the ETA from the database and wakes for it).
    assert (row.started_at - row.run_after).total_seconds() < 1.5
    # While it waited it was PENDING and had not run. (Only samples taken before its ETA count:
    # once it is due, a job can have run before its STARTED mark is written, which is batched.)
    waiting = [s for s in seen if s[0] < row.run_after]
    assert waiting and all(state == states.PENDING and not ran for _, state, ran in waiting)
    assert lines(path) == ["later"]


def test_expired_jobs_never_run_and_end_revoked(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    expired_before = demo.record.apply_async((str(path), "past"), expires=past)
    # Due after it expires: it waits (countdown), then is found expired when claimed.
    expires_waiting = demo.record.apply_async((str(path), "short"), countdown=1.0, expires=0.3)
    start_worker("-c", "1", "--poll-interval", "0.2")
    fine = demo.record.apply_async((str(path), "fine"), expires=60)
    for result in (expired_before, expires_waiting):
        row = wait_state(result, states.REVOKED, timeout=20)
        assert row.finished_at is not None
        with pytest.raises(TaskRevokedError):
            result.get(timeout=1)
    assert wait_state(fine, states.SUCCESS).result == "fine"
    assert lines(path) == ["fine"]
    assert not Job.objects.filter(state=states.STARTED).exists()


def test_revoked_waiting_job_never_runs(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    marker = tmp_path / "pid.txt"
    start_worker("-c", "1", "--prefetch-multiplier", "1", "--poll-interval", "0.2")
    # Keep the only slot busy, queue jobs behind it, revoke them while they wait.
    busy = demo.sleep.apply_async((1.0, str(marker)))
    wait_for(lambda: marker.exists(), timeout=20, message="the busy job to start")
    victim = demo.record.apply_async((str(path), "revoked"))
    soon = demo.record.apply_async((str(path), "revoked-eta"), countdown=0.5)
    victim.revoke()
    soon.revoke()
    assert victim.state == states.REVOKED and soon.state == states.REVOKED
    # A job enqueued after them, due after them, runs: the worker has passed them by.
    probe = demo.record.apply_async((str(path), "probe"), countdown=1.0, priority=-5)
    assert probe.get(timeout=20) == "probe"
    assert busy.get(timeout=20) == 1.0
    for result in (victim, soon):
        assert job(result).state == states.REVOKED
        assert history_states(result) == ["PENDING", "REVOKED"]
        with pytest.raises(TaskRevokedError):
            result.get(timeout=1)
    assert lines(path) == ["probe"]


def test_revoked_prefetched_job_never_runs(start_worker, tmp_path):
    """A job the worker has claimed but not started (prefetch) is waiting for the user too:
    revoking it must stop it from running, whether or not a NOTIFY reaches the worker."""
    path = tmp_path / "ran.txt"
    marker = tmp_path / "pid.txt"
    w = start_worker("-c", "1", "--prefetch-multiplier", "4", "--poll-interval", "0.2")
    busy = demo.sleep.apply_async((1.5, str(marker)))
    wait_for(lambda: marker.exists(), timeout=20, message="the busy job to start")
    victim = demo.record.apply_async((str(path), "revoked"))

    def held():
        row = Job.objects.get(id=victim.id)
        return row.state == states.RESERVED and row.worker == w.nodename

    wait_for(held, timeout=20, message="the worker to prefetch the victim")
    victim.revoke()
    assert busy.get(timeout=20) == 1.5
    row = wait_state(victim, states.REVOKED, timeout=20)
    assert history_states(victim) == ["PENDING", "RESERVED", "REVOKED"]
    assert row.finished_at is not None
    assert lines(path) == []
    assert demo.record.delay(str(path), "after").get(timeout=20) == "after"
    assert lines(path) == ["after"]


def test_job_expiring_while_prefetched_never_runs(start_worker, tmp_path):
    """Expiry is checked when the job is about to run, not only when it is claimed: a job that
    expires while it waits in a worker's prefetch (behind a slow job) never runs."""
    path = tmp_path / "ran.txt"
    marker = tmp_path / "pid.txt"
    w = start_worker("-c", "1", "--prefetch-multiplier", "4", "--poll-interval", "0.2")
    busy = demo.sleep.apply_async((2.0, str(marker)))
    wait_for(lambda: marker.exists(), timeout=20, message="the busy job to start")
    doomed = demo.record.apply_async((str(path), "doomed"), expires=1.0)

    def held():
        row = Job.objects.get(id=doomed.id)
        return row.state == states.RESERVED and row.worker == w.nodename

    # Claimed (prefetched) before it expired ...
    wait_for(held, timeout=0.9, message="the worker to prefetch the job before it expires")
    assert busy.get(timeout=20) == 2.0
    # ... and due to run after it expired: it must not.
    row = wait_state(doomed, {states.REVOKED, states.SUCCESS}, timeout=20)
    assert row.state == states.REVOKED
    assert lines(path) == []
