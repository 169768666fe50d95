"""Acceptance: snooze and dead letters (issue 15, points 4 and 6) through real workers.

- ``raise self.snooze(s)``: the job waits as RETRY ``s`` seconds (database clock) and runs again
  without spending a retry: a task with ``max_retries=0`` snoozes twice, then succeeds with
  ``request.retries`` still 0. Bad values fail the job with an error naming the task.
- Dead letters: retries exhausted, ``Reject(requeue=False)`` and a job lost with its worker
  ``DJQ_MAX_WORKER_LOST`` times end FAILURE (``.failed()``, ``.get()`` raises, as in Celery) with
  their ``dead_reason``; requeued through the store they run again.
"""

from __future__ import annotations

import datetime as dt

import pytest

from djq import states, store
from djq.exceptions import MaxRetriesExceededError, Reject, WorkerLostError
from djq.models import Job
from testproject.demo import tasks as demo
from tests.worker_support import history_states, job, lines, wait_state

pytestmark = pytest.mark.django_db(transaction=True)


def test_snooze_twice_then_succeed_without_spending_retries(start_worker, tmp_path):
    path = tmp_path / "runs.txt"
    start_worker("-c", "1")
    result = demo.snooze_twice.delay(str(path), 0.3)
    row = wait_state(result, states.SUCCESS, timeout=30)
    assert result.get(timeout=1) == 0  # request.retries on the third run
    assert row.retries == 0  # max_retries=0 was not consumed
    assert [line.split()[0] for line in lines(path)] == ["0", "0", "0"]
    assert [line.split()[1] for line in lines(path)] == ["1", "2", "3"]  # a new attempt each run
    assert history_states(result).count(states.RETRY) == 2
    # each snooze waited (by the database clock) before the next run
    events = row.history
    retry_at = [e[1] for e in events if e[0] == states.RETRY]
    started_at = [e[1] for e in events if e[0] == states.STARTED]
    assert len(started_at) == 3 and all(
        _seconds(started_at[i + 1]) - _seconds(retry_at[i]) >= 0.25 for i in range(2)
    )


def _seconds(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace(" ", "T").replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-1, "ValueError", "must not be negative"),
        (float("nan"), "ValueError", "finite"),
        ("soon", "TypeError", "must be seconds"),
    ],
)
def test_snooze_refuses_bad_values_naming_the_task(start_worker, value, error, message):
    start_worker("-c", "1")
    # (NaN cannot travel as JSON: the task turns "nan" into it)
    result = demo.snooze_by.delay("nan" if value != value else value)
    row = wait_state(result, states.FAILURE, timeout=30)
    assert row.result["exc_type"] == error
    text = str(row.result["exc_message"])
    assert "testproject.demo.tasks.snooze_by: snooze" in text and message in text
    assert row.dead_reason == ""


def test_retries_exhausted_is_dead_and_still_a_celery_failure(start_worker):
    start_worker("-c", "1")
    result = demo.exhaust_retries.delay()
    row = wait_state(result, states.FAILURE, timeout=30)
    assert row.dead_reason == states.DEAD_RETRIES_EXHAUSTED
    assert row.retries == 1
    assert result.failed() and result.state == states.FAILURE
    assert result.dead_reason == states.DEAD_RETRIES_EXHAUSTED
    with pytest.raises(ValueError, match="still broken"):
        result.get(timeout=1)


def test_max_retries_exceeded_error_is_dead(start_worker):
    start_worker("-c", "1")
    result = demo.exhaust_retries.delay(False)  # retry() without exc: MaxRetriesExceededError
    row = wait_state(result, states.FAILURE, timeout=30)
    assert row.dead_reason == states.DEAD_RETRIES_EXHAUSTED
    with pytest.raises(MaxRetriesExceededError):
        result.get(timeout=1)


def test_reject_without_requeue_is_dead_plain_failure_is_not(start_worker):
    start_worker("-c", "1")
    rejected = demo.reject_me.delay(False)
    failed = demo.fail.delay("plain")
    assert wait_state(rejected, states.FAILURE, timeout=30).dead_reason == states.DEAD_REJECTED
    assert wait_state(failed, states.FAILURE, timeout=30).dead_reason == ""
    with pytest.raises(Reject):
        rejected.get(timeout=1)


def test_job_that_kills_its_worker_stops_looping_then_requeue(start_worker):
    """DJQ_MAX_WORKER_LOST=2: lost once → requeued; lost twice → dead, no third run."""
    env = {"DJQ_MAX_WORKER_LOST": "2"}
    args = ("-c", "1", "--lease", "3", "-n", "crashy@%h")
    result = demo.kill_my_worker.delay(0.5)
    runs = 0
    for i in range(2):
        worker = start_worker(*args, name=f"crashy{i}", env_extra=env)
        worker.wait(timeout=60)  # the task killed it (kill -9 of its process group)
        runs += 1
    # the next incarnation rescues its dead self's job at start: dead, not requeued
    survivor = start_worker(*args, name="survivor", env_extra=env)
    row = wait_state(result, states.FAILURE, timeout=30)
    assert row.dead_reason == states.DEAD_WORKER_LOST
    assert row.lost_count == 2 and row.attempt == 2
    with pytest.raises(WorkerLostError, match="DJQ_MAX_WORKER_LOST"):
        result.get(timeout=1)
    assert survivor.is_alive()

    # Requeued (what the admin's action calls): a fresh run, which kills the worker again.
    assert store.requeue_dead([result.id]) == [result.id]
    assert store.requeue_dead([result.id]) == []  # not dead any more: left alone
    fresh = job(result)
    assert fresh.dead_reason == "" and fresh.lost_count == 0 and fresh.retries == 0
    survivor.wait(timeout=60)
    assert Job.objects.get(id=result.id).attempt == 3
