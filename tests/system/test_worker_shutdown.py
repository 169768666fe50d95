"""Acceptance: warm shutdown and restart of a real worker (issue 2).

SIGTERM: the running job finishes (SUCCESS), claimed-but-unstarted jobs go back to the queue
(PENDING again, run later by another worker), the worker exits 0. SIGHUP restarts the worker in
place (same pid, execv) and it is ready again.
"""

from __future__ import annotations

import re
import signal

import pytest

from djq import enqueue_many, states
from djq.models import Job
from djq.models import Worker as WorkerRow
from testproject.demo import tasks as demo
from tests.helpers import wait_for
from tests.worker_support import job, lines, wait_all_ready, wait_lines

pytestmark = pytest.mark.django_db(transaction=True)


def test_sigterm_finishes_the_running_job_and_hands_back_the_rest(start_worker, tmp_path):
    marker, path = tmp_path / "pid.txt", tmp_path / "ran.txt"
    w = start_worker(
        "-c", "1", "--prefetch-multiplier", "4", "--reserve-wait", "60", name="leaving"
    )
    # One batch (one NOTIFY / one poll): the sleeper first (priority), three more held unstarted.
    running, *held = enqueue_many(
        [demo.sleep.s(2.0, str(marker)).set(priority=10)]
        + [demo.record.s(str(path), f"held{i}") for i in range(3)]
    )
    wait_lines(marker, bool, message="the sleeper to start")

    def all_claimed():
        held = Job.objects.filter(state__in=states.HELD_STATES, worker=w.nodename)
        return held.count() == 4

    wait_for(all_claimed, timeout=10, message="the worker to hold all four jobs")
    w.terminate()
    assert w.wait(timeout=20) == 0
    # (one message, or two when the signal came before all of them reached the child: the
    # reserve at once, then what the child hands back)
    handed = re.findall(r"Handed (\d+) unstarted job\(s\) back to the queue", w.log_text())
    assert sum(map(int, handed)) == 3, w.log_tail()

    # The running job finished; the held ones never ran and are waiting again.
    row = job(running)
    assert row.state == states.SUCCESS and row.result == 2.0
    assert lines(path) == []
    for result in held:
        held_row = job(result)
        assert held_row.state == states.PENDING, held_row
        assert held_row.lease_expires_at is None
        assert [e[0] for e in held_row.history] == ["PENDING", "RESERVED", "PENDING"]
    assert WorkerRow.objects.get(name=w.nodename).stopped_at is not None

    # A later worker runs them (once each).
    nxt = start_worker("-c", "1", name="next")
    wait_all_ready(held, timeout=20)
    assert sorted(lines(path)) == ["held0", "held1", "held2"]
    for result in held:
        assert job(result).state == states.SUCCESS and job(result).worker == nxt.nodename


def test_sigint_twice_is_a_cold_shutdown(start_worker, tmp_path):
    """A second SIGINT does not wait for the running job: a plain job ends WorkerLostError, an
    acks_late one goes back to the queue."""
    path = tmp_path / "ran.txt"
    w = start_worker("-c", "2")
    plain = demo.record_start.apply_async((str(path), "plain", 30))
    late = demo.record_slowly.apply_async((str(path), "late", 30))
    wait_lines(path, lambda ls: len(ls) == 2, message="both jobs to start")
    w.signal(signal.SIGINT)
    w.wait_for_log(r"warm shutdown")
    w.signal(signal.SIGINT)
    assert w.wait(timeout=20) == 0
    assert job(plain).state == states.FAILURE
    assert "WorkerLostError" in str(job(plain).result)
    assert job(late).state == states.PENDING
    assert not Job.objects.filter(state=states.STARTED).exists()


def test_sighup_restarts_in_place(start_worker):
    w = start_worker("-c", "1", name="hup")
    assert demo.add.delay(1, 1).get(timeout=20) == 2
    w.signal(signal.SIGHUP)
    w.wait_for_log(r"restarting \(SIGHUP\)")
    wait_for(
        lambda: w.log_text().count(f"{w.nodename} ready.") >= 2,
        timeout=30,
        message="the worker to be ready again",
    )
    assert w.is_alive()
    row = WorkerRow.objects.get(name=w.nodename)
    assert row.pid == w.pid and row.stopped_at is None  # the same process (execv)
    result = demo.add.delay(2, 2)
    assert result.get(timeout=20) == 4
    assert job(result).worker == w.nodename


def test_warm_shutdown_keeps_heartbeating_until_the_running_job_ends(start_worker, tmp_path):
    """A job longer than the lease, running when SIGTERM arrives, is not rescued by another
    worker while the first one finishes it."""
    from tests.worker_support import wait_state

    marker = tmp_path / "started"
    first = start_worker("-c", "1", "--lease", "1.5", name="stopping")
    long = demo.sleep.apply_async((4.0, str(marker)))
    wait_for(marker.exists, timeout=30, message="the job to start")
    start_worker("-c", "1", "--lease", "1.5", name="watcher")
    first.terminate()
    assert first.wait(timeout=30) == 0
    row = wait_state(long, {states.SUCCESS, states.FAILURE}, timeout=30)
    assert row.state == states.SUCCESS and row.worker == first.nodename and row.attempt == 1
