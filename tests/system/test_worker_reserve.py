"""Acceptance: reserved is not started (issue 11).

A worker claims ahead of demand into a reserve; reserved jobs are RESERVED (leased, not started)
until a pool child takes them. So:

- kill -9 of a worker holding a full reserve: every reserved, never-started job runs exactly once
  elsewhere (counted by a side effect), the started plain job ends FAILURE WorkerLostError, the
  started acks_late job runs again, and nothing stays RESERVED or STARTED;
- a long job never delays a short one claimed behind it while another worker is idle: the reserve
  is capped by time (``--reserve-wait``), after which the short job is handed back and runs there.
"""

from __future__ import annotations

import signal
import time

import pytest

from djq import enqueue_many, states
from djq.exceptions import WorkerLostError
from djq.models import Job
from testproject.demo import tasks as demo
from tests.helpers import wait_for
from tests.worker_support import history_states, job, lines, tokens, wait_lines, wait_state

pytestmark = pytest.mark.django_db(transaction=True)

SHORT = 6


def _started(path, token):
    return [line for line in lines(path) if line.startswith(f"{token} start")]


def test_kill_9_with_a_full_reserve(start_worker, tmp_path):
    path, counts = tmp_path / "ran.txt", tmp_path / "count.txt"
    # -c 2 x prefetch 4 = 8: the two long jobs (first: priority) and six short ones, one claim
    late, plain, *short = enqueue_many(
        [
            demo.record_slowly.s(str(path), "late", 3.0).set(priority=10),
            demo.record_start.s(str(path), "plain", 3.0).set(priority=10),
        ]
        + [demo.record.s(str(counts), f"short{i}") for i in range(SHORT)]
    )
    victim = start_worker(
        "-c",
        "2",
        "--prefetch-multiplier",
        "4",
        "--lease",
        "2",
        "--reserve-wait",
        "60",
        name="victim",
    )
    wait_lines(
        path,
        lambda ls: _started(path, "late") and _started(path, "plain"),
        message="both long jobs to start on the victim",
    )

    def reserved():
        ids = [r.id for r in short]
        return Job.objects.filter(id__in=ids, state=states.RESERVED, worker=victim.nodename).count()

    wait_for(lambda: reserved() == SHORT, timeout=10, message="the victim to reserve the rest")
    wait_for(
        lambda: job(late).state == job(plain).state == states.STARTED,
        timeout=10,
        message="the long jobs to be recorded STARTED",
    )
    victim.kill_group(signal.SIGKILL)
    victim.wait(timeout=10)
    assert not counts.exists()  # no reserved job ran on the victim

    rescuer = start_worker("-c", "2", "--lease", "2", name="rescuer")
    for result in short:
        row = wait_state(result, states.SUCCESS, timeout=30)
        assert row.worker == rescuer.nodename and row.attempt == 2
        assert history_states(result) == [
            "PENDING",
            "RESERVED",
            "PENDING",
            "RESERVED",
            "STARTED",
            "SUCCESS",
        ]
    wait_state(plain, states.FAILURE, timeout=30)
    with pytest.raises(WorkerLostError):
        plain.get(timeout=1)
    assert history_states(plain) == ["PENDING", "RESERVED", "STARTED", "FAILURE"]
    assert len(_started(path, "plain")) == 1
    late_row = wait_state(late, states.SUCCESS, timeout=30)
    assert late_row.worker == rescuer.nodename and len(_started(path, "late")) == 2
    # every reserved job ran exactly once, elsewhere
    assert tokens(counts) == {f"short{i}": 1 for i in range(SHORT)}
    assert not Job.objects.filter(state__in=states.HELD_STATES).exists()
    rescuer.wait_for_log(r"Rescued testproject\.demo\.tasks\.record\[.*requeued")


def test_a_long_job_never_delays_a_short_one_while_another_worker_is_idle(start_worker, tmp_path):
    marker, counts = tmp_path / "pid.txt", tmp_path / "count.txt"
    long, short = enqueue_many(
        [demo.sleep.s(10.0, str(marker)).set(priority=10), demo.record.s(str(counts), "short")]
    )
    busy = start_worker(
        "-c", "1", "--prefetch-multiplier", "4", "--reserve-wait", "0.5", name="busy"
    )
    wait_lines(marker, bool, message="the long job to start")
    assert job(short).worker == busy.nodename  # claimed behind the long job
    started = time.monotonic()
    idle = start_worker("-c", "1", name="idle")
    row = wait_state(short, states.SUCCESS, timeout=8)
    assert row.worker == idle.nodename
    assert time.monotonic() - started < 8
    assert job(long).state == states.STARTED  # still running: the short one did not wait for it
    assert tokens(counts) == {"short": 1}
    busy.wait_for_log(r"Handed 1 reserved job\(s\) back to the queue")
