"""Acceptance: a worker that dies or stalls mid-job (issue 2).

- kill -9 of a worker (its whole process group: parent and pool children, as a power loss or the
  OOM killer would) mid-job: once the lease runs out another worker rescues its jobs; an acks_late
  job runs again there and ends SUCCESS, a plain job ends FAILURE with WorkerLostError; nothing
  stays STARTED.
- Fencing: a worker SIGSTOPped mid-job past its lease loses the job to another worker; when it is
  SIGCONTed its late result is discarded (and logged); the recorded result is the second
  worker's; the job ran at most twice.
"""

from __future__ import annotations

import signal
import time

import pytest

from djq import enqueue_many, states
from djq.exceptions import WorkerLostError
from djq.models import Job
from testproject.demo import tasks as demo
from tests.worker_support import history_states, job, lines, wait_lines, wait_state

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = "2"


def _started(path, token):
    return [line for line in lines(path) if line.startswith(f"{token} start")]


def test_kill_9_mid_job_acks_late_reruns_plain_fails(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    victim = start_worker("-c", "2", "--lease", LEASE, name="victim")
    late = demo.record_slowly.apply_async((str(path), "late", 3.0))
    plain = demo.record_start.apply_async((str(path), "plain", 3.0))
    wait_lines(
        path,
        lambda ls: _started(path, "late") and _started(path, "plain"),
        message="both jobs to start on the victim",
    )
    assert job(late).worker == victim.nodename and job(plain).worker == victim.nodename
    # (STARTED is recorded in batches, a moment after the job starts)
    wait_state(plain, states.STARTED, timeout=10)
    wait_state(late, states.STARTED, timeout=10)
    victim.kill_group(signal.SIGKILL)
    victim.wait(timeout=10)

    rescuer = start_worker("-c", "2", "--lease", LEASE, name="rescuer")
    plain_row = wait_state(plain, states.FAILURE, timeout=30)
    late_row = wait_state(late, states.SUCCESS, timeout=30)

    # The plain job: lost, not retried, not silently dropped.
    with pytest.raises(WorkerLostError):
        plain.get(timeout=1)
    assert plain_row.worker == victim.nodename
    assert history_states(plain) == ["PENDING", "RESERVED", "STARTED", "FAILURE"]
    assert len(_started(path, "plain")) == 1

    # The acks_late job: run again, to the end, by the rescuer.
    assert late_row.worker == rescuer.nodename
    assert late_row.attempt == 2
    assert history_states(late) == [
        "PENDING",
        "RESERVED",
        "STARTED",
        "PENDING",
        "RESERVED",
        "STARTED",
        "SUCCESS",
    ]
    events = late_row.history
    assert events[2][2] == victim.nodename and events[5][2] == rescuer.nodename
    starts = _started(path, "late")
    dones = [line for line in lines(path) if line.startswith("late done")]
    assert len(starts) == 2 and len(dones) == 1
    assert dones[0].split()[-1] == starts[1].split()[-1] == str(late.get(timeout=1))
    # "Rescued ..." is logged by the worker that found the expired leases.
    rescuer.wait_for_log(r"Rescued testproject\.demo\.tasks\.record_slowly\[" + late.id)
    rescuer.wait_for_log(r"Rescued testproject\.demo\.tasks\.record_start\[" + plain.id)

    assert not Job.objects.filter(state=states.STARTED).exists()


def test_stopped_worker_is_fenced_off(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    first = start_worker("-c", "1", "--lease", LEASE, name="first")
    result = demo.record_slowly.apply_async((str(path), "job", 1.5))
    wait_lines(path, lambda ls: _started(path, "job"), message="the job to start on `first`")
    wait_state(result, states.STARTED, timeout=10)  # (recorded a moment after it starts)
    first_pid = _started(path, "job")[0].split()[-1]
    # Freeze the worker and its pool child: no heartbeats, no progress.
    first.kill_group(signal.SIGSTOP)
    try:
        second = start_worker("-c", "1", "--lease", LEASE, name="second")
        row = wait_state(result, states.SUCCESS, timeout=30)
        assert row.worker == second.nodename
    finally:
        first.kill_group(signal.SIGCONT)
    second_pid = str(result.get(timeout=1))
    assert second_pid != first_pid
    second.wait_for_log(r"Rescued testproject\.demo\.tasks\.record_slowly\[" + result.id)

    # The first worker wakes up, finishes its (stale) run, and its result is refused.
    first.wait_for_log(
        r"Discarded the late result of testproject\.demo\.tasks\.record_slowly\[" + result.id,
        timeout=20,
    )
    row = job(result)
    assert row.state == states.SUCCESS
    assert row.worker == second.nodename
    assert row.result == int(second_pid)
    assert row.attempt == 2
    assert history_states(result) == [
        "PENDING",
        "RESERVED",
        "STARTED",
        "PENDING",
        "RESERVED",
        "STARTED",
        "SUCCESS",
    ]
    starts = _started(path, "job")
    assert len(starts) <= 2, starts
    assert {s.split()[-1] for s in starts} == {first_pid, second_pid}
    # The first worker is healthy afterwards: alone, it runs new jobs.
    second.terminate()
    assert second.wait(timeout=15) == 0
    assert first.is_alive()
    again = demo.add.apply_async((20, 22))
    assert again.get(timeout=20) == 42
    assert job(again).worker == first.nodename


def test_kill_9_does_not_fail_jobs_that_never_started(start_worker, tmp_path):
    """With the default worker settings, jobs that a killed worker had claimed but not started
    (prefetched) must not end FAILURE: they never ran, so, as Celery redelivers unacknowledged
    messages, another worker runs them."""
    path = tmp_path / "ran.txt"
    victim = start_worker("-c", "1", "--lease", LEASE, name="victim")
    running, *waiting = enqueue_many(
        [demo.record_start.s(str(path), "running", 30.0).set(priority=10)]
        + [demo.record.s(str(path), f"w{i}") for i in range(3)]
    )
    wait_lines(path, lambda ls: _started(path, "running"), message="the first job to start")
    wait_state(running, states.STARTED, timeout=10)
    victim.kill_group(signal.SIGKILL)
    victim.wait(timeout=10)

    start_worker("-c", "1", "--lease", LEASE, name="rescuer")
    wait_state(running, states.FAILURE, timeout=30)  # it was running: lost
    for result in waiting:
        row = wait_state(result, {states.SUCCESS, states.FAILURE}, timeout=30)
        assert row.state == states.SUCCESS, (
            f"{result.id} never started on the killed worker, yet ended {row.state}: "
            f"{row.result} (history {[e[0] for e in row.history]})"
        )
    assert sorted(line for line in lines(path) if not line.startswith("running")) == [
        "w0",
        "w1",
        "w2",
    ]


def test_long_job_on_a_live_worker_is_never_rescued(start_worker, tmp_path):
    """Heartbeats extend the lease: a job running several leases long stays with its worker,
    while another worker keeps looking for expired leases."""
    path = tmp_path / "ran.txt"
    owner = start_worker("-c", "1", "--lease", "1.5", name="owner")
    result = demo.record_slowly.apply_async((str(path), "long", 5.0))
    wait_lines(path, lambda ls: _started(path, "long"), message="the job to start")
    start_worker("-c", "1", "--lease", "1.5", name="watcher")
    row = wait_state(result, states.SUCCESS, timeout=30)
    assert row.worker == owner.nodename and row.attempt == 1
    assert history_states(result) == ["PENDING", "RESERVED", "STARTED", "SUCCESS"]
    assert len(_started(path, "long")) == 1


def test_a_crashing_child_fails_its_job_and_the_worker_goes_on(start_worker):
    w = start_worker("-c", "1", "--prefetch-multiplier", "4")
    crashed, *behind = enqueue_many(
        [demo.crash.s().set(priority=10)] + [demo.getpid.s() for _ in range(3)]
    )
    with pytest.raises(WorkerLostError, match="exitcode 13"):
        crashed.get(timeout=20)
    # The jobs queued behind it in the dead child run at once in a new one.
    pids = [r.get(timeout=3) for r in behind]
    assert w.pid not in pids
    assert all(job(r).attempt == 1 for r in behind)


def test_restart_under_the_same_name_rescues_at_once(start_worker, tmp_path):
    """A worker restarted under the name of a dead one (same host, its pid gone) rescues that
    worker's jobs immediately, without waiting for the (default, 30 s) lease."""
    path = tmp_path / "ran.txt"
    first = start_worker("-c", "1", name="phoenix")
    result = demo.record_slowly.apply_async((str(path), "job", 1.0))
    wait_lines(path, lambda ls: _started(path, "job"), message="the job to start")
    wait_state(result, states.STARTED, timeout=10)  # (recorded a moment after it starts)
    first.kill_group(signal.SIGKILL)
    first.wait(timeout=10)
    started = time.monotonic()
    # The same node name (-n given last wins over the fixture's own -n).
    again = start_worker("-c", "1", "-n", "phoenix@%h", name="phoenix-again")
    assert again.is_alive()
    row = wait_state(result, states.SUCCESS, timeout=20)
    # Well within the 30 s lease that a stranger would have had to wait for.
    assert time.monotonic() - started < 15
    assert row.attempt == 2 and row.worker == first.nodename
    assert history_states(result) == [
        "PENDING",
        "RESERVED",
        "STARTED",
        "PENDING",
        "RESERVED",
        "STARTED",
        "SUCCESS",
    ]


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_kill_9_right_after_a_job_began_never_runs_it_again(start_worker, tmp_path, pool):
    """A job's body begins only once it is STARTED in the database (committed): a worker killed
    the instant a job's first side effect appears leaves that job STARTED, so the rescuer fails
    it (WorkerLostError, not acks_late) and never runs it a second time; the jobs that had not
    begun are RESERVED, go back to the queue and run once, elsewhere. (Before the go-ahead the
    STARTED marks were written up to 50 ms after a child began: a job killed in that window was
    found RESERVED and ran again.)"""
    path = tmp_path / "ran.txt"
    concurrency = "1" if pool == "solo" else "2"
    victim = start_worker("-c", concurrency, "--pool", pool, "--lease", LEASE, name="victim")
    tokens = [f"job{i}" for i in range(4)]
    results = enqueue_many([demo.record_start.s(str(path), t, 3.0) for t in tokens])
    # (a tight look, not a poll: the kill must land within a few milliseconds of the start)
    deadline = time.monotonic() + 30
    while not path.exists() or not path.stat().st_size:
        assert time.monotonic() < deadline, "no job began on the victim"
        time.sleep(0.001)
    victim.kill_group(signal.SIGKILL)
    victim.wait(timeout=10)
    began = {line.split()[0] for line in lines(path)}
    assert began, "the side effect vanished"

    rescuer = start_worker("-c", "4", "--lease", LEASE, name="rescuer")
    rows = {
        t: wait_state(r, set(states.READY_STATES), timeout=60)
        for t, r in zip(tokens, results, strict=True)
    }
    starts = [line.split()[0] for line in lines(path) if " start " in line]
    assert sorted(starts) == sorted(set(starts)), f"a job ran twice: {starts}"
    for token, row in rows.items():
        # begun on the victim (or STARTED there, killed before its first line): lost with it,
        # not run again; never begun: back to the queue, run once by the rescuer
        lost = token in began or row.state == states.FAILURE
        if lost:
            assert row.state == states.FAILURE, (token, row.state, row.history)
            assert row.result["exc_type"] == "WorkerLostError"
            assert row.worker == victim.nodename and row.attempt == 1
            assert history_states(row.id) == ["PENDING", "RESERVED", "STARTED", "FAILURE"]
        else:
            assert row.state == states.SUCCESS, (token, row.state, row.history)
            assert row.worker == rescuer.nodename
            assert starts.count(token) == 1
    assert not Job.objects.filter(state__in=[states.STARTED, states.RESERVED]).exists()
