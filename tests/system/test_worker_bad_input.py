"""Acceptance: bad input and a database outage do not stop a real worker (issue 2).

A job naming an unregistered task ends FAILURE with NotRegistered; a job whose stored arguments
are malformed ends FAILURE; the worker goes on with the next job. PostgreSQL restarted under a
running worker: the worker logs it, reconnects with backoff and finishes the queue, each job
exactly once.
"""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from djq import enqueue_many, send_task, states
from djq.exceptions import NotRegistered
from djq.models import Job
from testproject.demo import tasks as demo
from tests.helpers import pg_restart, pg_server_start, pg_server_stop, requires_pg_control, wait_for
from tests.worker_support import job, lines, tokens

pytestmark = pytest.mark.django_db(transaction=True)


def test_bad_jobs_fail_and_the_worker_goes_on(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    # Written before any worker runs, in the order the worker will claim them.
    unknown = send_task("no.such.task", args=[1, 2], priority=9)
    not_a_list = demo.record.apply_async((str(path), "a"), priority=8)
    not_a_dict = demo.record.apply_async((str(path), "b"), priority=7)
    wrong_arity = demo.record.apply_async((str(path), "c"), priority=6)
    string_args = demo.record.apply_async((str(path), "d"), priority=5)
    good = demo.record.apply_async((str(path), "good"), priority=0)
    Job.objects.filter(id=not_a_list.id).update(args={"not": "a list"})
    Job.objects.filter(id=not_a_dict.id).update(kwargs=["not", "a", "dict"])
    Job.objects.filter(id=wrong_arity.id).update(args=[str(path)])  # record() needs a token
    Job.objects.filter(id=string_args.id).update(args="just a string")

    w = start_worker("-c", "1")
    assert good.get(timeout=20) == "good"
    with pytest.raises(NotRegistered, match="no.such.task"):
        unknown.get(timeout=5)
    for bad in (not_a_list, not_a_dict, wrong_arity, string_args):
        row = job(bad)
        assert row.state == states.FAILURE, (row, row.result)
        with pytest.raises(TypeError):
            bad.get(timeout=5)
        assert bad.traceback
    assert lines(path) == ["good"]
    assert w.is_alive()
    assert not Job.objects.filter(state=states.STARTED).exists()


@pytest.mark.postgres_only
@requires_pg_control
def test_postgres_restart_under_a_running_worker(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    n = 200
    w = start_worker("-c", "2", name="survivor")
    results = enqueue_many(demo.record_after.s(str(path), str(i), 0.02) for i in range(n))
    # Mid-drain: some done, most not.
    wait_for(lambda: len(lines(path)) >= 20, timeout=30, message="the drain to get going")
    assert len(lines(path)) < n
    pg_restart()
    restarted = time.monotonic()
    w.wait_for_log(r"Database unavailable", timeout=30)

    def drained():
        return Job.objects.filter(state=states.SUCCESS).count() == n

    wait_for(drained, timeout=90, interval=0.25, message=f"all {n} jobs to succeed")
    # Back to work soon after the server is: a short outage costs a short backoff.
    assert time.monotonic() - restarted < 10, "the worker took too long to come back"
    # Backoff: each retry waits (at least most of) the delay it announced.
    attempts = [
        (_log_time(m.group(1)), float(m.group(2)))
        for m in re.finditer(
            r"^\[([^\]]+?): WARNING/\S+\] [\w.]+: Database unavailable .*?"
            r"retrying in ([\d.]+)s",
            w.log_text(),
            re.M | re.S,
        )
    ]
    assert attempts
    for (at, delay), (next_at, _) in zip(attempts, attempts[1:]):
        assert (next_at - at).total_seconds() >= 0.7 * delay, attempts
    counts = tokens(path)
    assert set(counts) == {str(i) for i in range(n)}
    assert max(counts.values()) == 1, {t: c for t, c in counts.items() if c > 1}
    assert all(job(r).attempt == 1 for r in results)
    assert w.is_alive()
    # And it still answers new work after the outage (LISTEN reconnected or polling).
    assert demo.add.delay(1, 1).get(timeout=20) == 2


def _log_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")


@pytest.mark.postgres_only
@requires_pg_control
def test_warm_shutdown_during_an_outage_records_the_result_once_back(start_worker, tmp_path):
    marker = tmp_path / "pid.txt"
    w = start_worker("-c", "1")
    result = demo.sleep.apply_async((1.5, str(marker)))
    wait_for(marker.exists, timeout=20, message="the job to start")
    pg_server_stop()
    try:
        w.terminate()
        # The job finishes while the database is down; the worker must keep its outcome.
        w.wait_for_log(r"Database unavailable", timeout=20)
    finally:
        pg_server_start()
    assert w.wait(timeout=60) == 0
    row = job(result)
    assert row.state == states.SUCCESS and row.result == 1.5
    assert row.attempt == 1
