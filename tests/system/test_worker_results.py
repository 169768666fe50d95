"""Acceptance: results through a real worker process (issue 2).

delay(4, 4).get() == 8; an unknown id is PENDING; a failing task re-raises its own exception type
and keeps its traceback; a task retried twice goes PENDING → STARTED → RETRY → … → SUCCESS.
"""

from __future__ import annotations

import uuid

import pytest

from djq import AsyncResult, states
from djq.exceptions import NotRegistered
from testproject.demo import tasks as demo
from testproject.demo.tasks import DemoError
from tests.helpers import wait_for
from tests.worker_support import history_states, job

pytestmark = pytest.mark.django_db(transaction=True)


def test_delay_get_through_a_worker(start_worker):
    w = start_worker("-c", "1")
    result = demo.add.delay(4, 4)
    assert result.get(timeout=20) == 8
    assert result.state == states.SUCCESS and result.successful() and result.ready()
    row = job(result)
    assert row.worker == w.nodename
    assert row.finished_at is not None and row.lease_expires_at is None
    # The Celery-style log line, with the result.
    w.wait_for_log(rf"Task testproject\.demo\.tasks\.add\[{result.id}\] succeeded in \d+\.\d+s: 8")
    # An id nobody enqueued is PENDING, as in Celery; exists() tells them apart.
    unknown = AsyncResult(str(uuid.uuid4()))
    assert unknown.state == states.PENDING and not unknown.exists()
    assert result.exists()


def test_failing_task_reraises_its_own_type_with_traceback(start_worker):
    start_worker("-c", "1")
    result = demo.fail_custom.delay("it broke")
    with pytest.raises(DemoError, match="it broke"):
        result.get(timeout=20)
    assert result.state == states.FAILURE and result.failed()
    value = result.get(timeout=1, propagate=False)
    assert isinstance(value, DemoError) and str(value) == "it broke"
    assert isinstance(result.result, DemoError)
    tb = result.traceback
    assert tb and "Traceback (most recent call last)" in tb
    # The frame of the task itself, not just the exception line.
    assert "in fail_custom" in tb and "raise DemoError(message)" in tb
    # A builtin exception type too.
    with pytest.raises(ValueError, match="boom"):
        demo.fail.delay().get(timeout=20)


def test_retried_twice_history_and_live_states(start_worker):
    start_worker("-c", "1")
    result = demo.retry_twice.delay()
    seen: list[str] = []

    def sample():
        state = AsyncResult(result.id).state
        if not seen or seen[-1] != state:
            seen.append(state)
        return state in states.READY_STATES

    wait_for(sample, timeout=20, interval=0.005, message="retry_twice to finish")
    assert result.get(timeout=1) == 2
    assert history_states(result) == [
        "PENDING",
        "RESERVED",
        "STARTED",
        "RETRY",
        "RESERVED",
        "STARTED",
        "RETRY",
        "RESERVED",
        "STARTED",
        "SUCCESS",
    ]
    row = job(result)
    assert row.retries == 2 and row.attempt == 3
    # Live: what we sampled is the same walk, seen with gaps (each state lasts milliseconds).
    expected = [
        "PENDING",
        "RESERVED",
        "STARTED",
        "RETRY",
        "RESERVED",
        "STARTED",
        "RETRY",
        "RESERVED",
        "STARTED",
        "SUCCESS",
    ]
    # (AsyncResult shows a reserved job as it was before the claim: PENDING, then RETRY)
    live = [s for s in expected if s != "RESERVED"]
    it = iter(live)
    assert all(s in it for s in seen), f"sampled {seen} is not a sub-walk of {live}"
    assert "RETRY" in seen, f"never saw RETRY live (sampled {seen})"
    # Each event names the worker that made it.
    assert all(event[2] for event in row.history[1:]), row.history


def test_unregistered_task_fails_and_the_worker_goes_on(start_worker):
    start_worker("-c", "1")
    from djq import send_task

    unknown = send_task("no.such.task", args=[1])
    after = demo.add.delay(1, 2)
    with pytest.raises(NotRegistered):
        unknown.get(timeout=20)
    assert unknown.state == states.FAILURE
    assert after.get(timeout=20) == 3


def test_autoretry_backoff_then_failure_through_a_worker(start_worker):
    start_worker("-c", "1")
    result = demo.divide.delay(1, 0)
    with pytest.raises(ZeroDivisionError):
        result.get(timeout=30)
    row = job(result)
    assert row.retries == 3 and row.attempt == 4
    assert history_states(result) == ["PENDING"] + ["RESERVED", "STARTED", "RETRY"] * 3 + [
        "RESERVED",
        "STARTED",
        "FAILURE",
    ]
    # retry_backoff=0.05, no jitter: each retry waited at least 0.05 * 2**n by the DB clock.
    events = row.history
    for n, i in enumerate(i for i, e in enumerate(events) if e[0] == "RETRY"):
        retried, restarted = (_ts(events[i][1]), _ts(events[i + 1][1]))
        assert (restarted - retried).total_seconds() >= 0.05 * 2**n * 0.9, events


def test_progress_is_visible_while_the_job_runs(start_worker):
    start_worker("-c", "1")
    result = demo.progress.delay(steps=3, delay=0.3)
    seen = wait_for(lambda: result.state == "PROGRESS" and result.info, timeout=20, interval=0.02)
    assert seen["total"] == 3
    assert result.get(timeout=20) == 3
    assert result.state == states.SUCCESS


def _ts(value):
    import datetime as dt

    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value
