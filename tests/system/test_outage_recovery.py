"""Acceptance: after a database outage the queue is drained within 2 × the lease of the
database's return (issue 12), through real workers and a real server stop/start.

Two causes made the recovery take minutes: a reconnection backoff that grew to 10 s whatever
the lease (a worker sat out its backoff while the queue waited), and the first worker back
rescuing the expired leases of live workers that had not reconnected yet (their plain jobs
ended WorkerLostError although they were finishing them). Now the backoff is capped at a sixth
of the lease, and no lease is rescued during the first half-lease of a restarted server's life.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from django.db import connection

from djq import enqueue_many, states
from djq.models import Worker
from testproject.demo import tasks as demo
from tests.helpers import pg_server_start, pg_server_stop, requires_pg_control, wait_for
from tests.worker_support import job, lines, tokens, wait_state

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres_only,
    requires_pg_control,
]

LEASE = 3.0


def _db_now():
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def test_the_queue_drains_within_two_leases_of_the_return(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    w = start_worker("-c", "2", "--lease", str(LEASE), "--poll-interval", "0.5", name="back")
    n = 200
    enqueue_many(demo.record_after.s(str(path), str(i), 0.01) for i in range(n))
    wait_for(lambda: len(lines(path)) >= 20, timeout=30, message="the drain to get going")
    pg_server_stop()
    try:
        # a long enough outage for an uncapped backoff to grow past the lease
        w.wait_for_log(r"(?s)(Database unavailable.*){6}", timeout=60)
    finally:
        pg_server_start()
    returned = time.monotonic()

    wait_for(lambda: len(tokens(path)) == n, timeout=60, message=f"all {n} jobs to run")
    took = time.monotonic() - returned
    delays = [float(d) for d in re.findall(r"retrying in ([\d.]+)s", w.log_text())]
    assert max(delays) <= LEASE / 6 * 1.2 + 0.05, f"backoff beyond lease/6: {delays}"
    assert took <= 2 * LEASE, f"drained {took:.1f}s after the database came back"
    assert max(tokens(path).values()) == 1
    assert demo.add.delay(2, 3).get(timeout=10) == 5


def test_a_live_workers_job_is_not_rescued_before_it_reconnects(start_worker, tmp_path):
    """The outage outlasts the lease; worker B is back first and must not fail A's running job
    as lost: A reconnects (within its capped backoff) and records it."""
    lease = 6.0
    path = tmp_path / "ran.txt"
    args = ("-c", "1", "--lease", str(lease), "--poll-interval", "0.5")
    a = start_worker(*args, name="slow")
    result = demo.record_start.apply_async((str(path), "t", 14.0))
    wait_for(lambda: lines(path), timeout=30, message="the job to start on A")
    b = start_worker(*args, name="fast")
    pg_server_stop()
    try:
        time.sleep(lease + 1)  # the scenario: an outage longer than the lease (not a wait)
        os.kill(a.pid, signal.SIGSTOP)  # A is slower to come back than B (its main loop only)
    finally:
        pg_server_start()
    try:
        back = _db_now()
        wait_for(
            lambda: Worker.objects.filter(name=b.nodename, last_heartbeat__gt=back).exists(),
            timeout=30,
            message="B to reconnect and heartbeat",
        )
    finally:
        os.kill(a.pid, signal.SIGCONT)
    row = wait_state(result, {states.SUCCESS, states.FAILURE}, timeout=30)
    assert row.state == states.SUCCESS, (row.state, row.result)
    assert job(result).attempt == 1
    assert lines(path) == [f"t start {row.result}", f"t done {row.result}"]
