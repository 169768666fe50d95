"""Acceptance: atomic tasks (issue 15, point 1) through real worker processes.

``@task(atomic=True)`` runs the body in the transaction that records its SUCCESS: its rows exist
exactly when the job is SUCCESS. Proven here by killing the worker's whole process group (kill
-9) again and again while atomic acks_late jobs that each insert a row drain: at the end every job
is SUCCESS and has exactly one row. An exception after the write and a hard time limit leave no
row. (The full 200 kills x 1,000 jobs run is the ``atomic`` scenario of ``make chaos``.)
"""

from __future__ import annotations

import random
import signal

import pytest
from django.db import connection

from djq import enqueue_many, states
from djq.models import Job
from testproject.demo import tasks as demo
from tests.helpers import wait_for
from tests.worker_support import wait_all_ready, wait_state

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = demo.ATOMIC_TABLE
#: workers killed mid-drain, over JOBS jobs (scaled to stay within ~2 minutes here)
KILLS, JOBS = 12, 150


@pytest.fixture
def atomic_table():
    """The side table the atomic task writes to (created and dropped outside any job)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cursor.execute(f"CREATE TABLE {TABLE} (token varchar(64), attempt integer, pid integer)")
    yield TABLE
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")


def rows(token: str | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        if token is None:
            cursor.execute(f"SELECT token, attempt FROM {TABLE}")
        else:
            cursor.execute(f"SELECT token, attempt FROM {TABLE} WHERE token = %s", [token])
        return cursor.fetchall()


def test_exception_after_the_write_leaves_no_row(start_worker, atomic_table):
    start_worker("-c", "1")
    failed = demo.atomic_insert.delay("boom", fail=True)
    ok = demo.atomic_insert.delay("fine")
    wait_state(failed, states.FAILURE, timeout=30)
    wait_state(ok, states.SUCCESS, timeout=30)
    assert rows("boom") == []  # the body's insert was rolled back with the attempt
    assert rows("fine") == [("fine", 1)]
    with pytest.raises(RuntimeError, match="failed after the write of boom"):
        failed.get(timeout=1)


#: SQLite has one writer: an atomic body that has written holds the write lock until it ends, and
#: the worker's own writes wait for it (up to the busy timeout) instead of killing it on time, so
#: the hard time limit and terminate are PostgreSQL guarantees (docs/tasks.md).
@pytest.mark.postgres_only
def test_hard_time_limit_leaves_no_row(start_worker, atomic_table):
    start_worker("-c", "1")
    killed = demo.atomic_insert.apply_async(("slow", 30.0), time_limit=1)
    row = wait_state(killed, states.FAILURE, timeout=30)
    assert row.result["exc_type"] == "TimeLimitExceeded"
    assert rows("slow") == []  # the child died inside the transaction: nothing committed


def test_apply_async_atomic_false_commits_the_write_of_a_failing_run(start_worker, atomic_table):
    """The option can be turned off per call: the write is then the body's own business."""
    start_worker("-c", "1")
    result = demo.atomic_insert.apply_async(("plain",), {"fail": True}, atomic=False)
    wait_state(result, states.FAILURE, timeout=30)
    assert rows("plain") == [("plain", 1)]


@pytest.mark.postgres_only  # (see the hard time limit above)
def test_terminate_rolls_back(start_worker, atomic_table):
    start_worker("-c", "1")
    result = demo.atomic_insert.delay("terminated", 30.0)
    wait_state(result, states.STARTED, timeout=30)
    result.revoke(terminate=True, signal="SIGKILL")
    wait_state(result, states.REVOKED, timeout=30)
    assert rows("terminated") == []


@pytest.mark.timeout(300)
def test_kill_9_mid_drain_again_and_again_exactly_one_row_per_job(start_worker, atomic_table):
    tokens = [f"t{i}" for i in range(JOBS)]
    results = enqueue_many([demo.atomic_insert.s(t, 0.02) for t in tokens])
    # One node name for every incarnation: a restarted worker rescues its dead self's jobs at once
    # (a job lost this often would otherwise end dead: DJQ_MAX_WORKER_LOST=0 keeps requeueing).
    env = {"DJQ_MAX_WORKER_LOST": "0"}
    args = ("-c", "3", "--lease", "5", "-n", "victim@%h")
    rng = random.Random(15)
    lost_mid_run = 0
    for i in range(KILLS):
        victim = start_worker(*args, name=f"victim{i}", env_extra=env)
        before = Job.objects.filter(state=states.SUCCESS).count()
        wanted = before + rng.randint(1, 6)
        wait_for(
            lambda w=wanted: (
                Job.objects.filter(state=states.SUCCESS).count() >= w
                or not Job.objects.exclude(state=states.SUCCESS).exists()
            ),
            timeout=60,
            message=f"progress before kill {i}",
        )
        lost_mid_run += Job.objects.filter(state=states.STARTED).count()
        victim.kill_group(signal.SIGKILL)
        victim.wait(timeout=10)
    start_worker(*args, name="survivor", env_extra=env)
    wait_all_ready(results, timeout=120)

    assert set(
        Job.objects.filter(id__in=[r.id for r in results]).values_list("state", flat=True)
    ) == {states.SUCCESS}
    found = rows()
    assert sorted(t for t, _ in found) == sorted(tokens)  # exactly one row per job
    assert lost_mid_run > 0  # the kills did land while jobs were running
    # the row is the one of the run that succeeded (its attempt), never of a killed one
    attempts = dict(Job.objects.filter(id__in=[r.id for r in results]).values_list("id", "attempt"))
    by_token = {r.id: t for r, t in zip(results, tokens, strict=True)}
    recorded = {by_token[i]: a for i, a in attempts.items()}
    assert all(recorded[t] == a for t, a in found)
