"""Acceptance (issue 7): the test app testproject.djtasks — nothing but ``from django.tasks import
task`` — runs end to end on real ``djq_worker`` processes: enqueue, priority order, run_after, a
failing task, get_result's READY → RUNNING → SUCCESSFUL/FAILED, takes_context, async tasks,
queues, and Django's task signals sent in the worker.

Mirrors, for a backend whose tasks run in another process, django/django
``tests/tasks/test_immediate_backend.py`` (ImmediateBackendTestCase: test_enqueue_task,
test_catches_exception, test_complex_exception, test_complex_return_value, test_result,
test_takes_context, test_context, test_enqueue_logs / test_failed_logs for the signals).
"""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

pytest.importorskip("django.tasks")

from django.tasks import TaskResultStatus  # noqa: E402
from django.utils import timezone  # noqa: E402

from djq import AsyncResult  # noqa: E402
from testproject.djtasks import tasks as djt  # noqa: E402
from tests.helpers import wait_for  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

READY, RUNNING = TaskResultStatus.READY, TaskResultStatus.RUNNING
SUCCESSFUL, FAILED = TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED


def finished(result, timeout: float = 20.0):
    """Refresh the TaskResult until it is finished; return it."""

    def done():
        result.refresh()
        return result.is_finished

    wait_for(done, timeout=timeout, interval=0.05, message=f"{result.task.name} to finish")
    return result


def test_enqueue_run_and_read_the_result(start_worker):
    """ImmediateBackendTestCase.test_enqueue_task / test_result, with a worker in between."""
    w = start_worker("-c", "2", "-Q", "default,other", "--poll-interval", "0.1")
    result = djt.add.enqueue(2, 3)
    assert result.status == READY
    finished(result)
    assert result.status == SUCCESSFUL
    assert result.return_value == 5
    assert result.errors == []
    assert result.attempts == 1 and result.worker_ids == [w.nodename]
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert (result.args, result.kwargs) == ([2, 3], {})
    # the same result through djq's API
    assert AsyncResult(result.id).get(timeout=5) == 5
    assert djt.add.get_result(result.id) == result

    # return values are normalized to JSON as by Django's backends; async tasks run too
    assert finished(djt.returns_tuple.enqueue()).return_value == [1, ["two", 3]]
    assert finished(djt.async_add.enqueue(4, 5)).return_value == 9
    assert finished(djt.noop_task_async.enqueue()).status == SUCCESSFUL
    assert finished(djt.on_other_queue.enqueue()).return_value == "other"


def test_get_result_goes_ready_running_successful(start_worker, tmp_path):
    start_worker("-c", "1", "--poll-interval", "0.1")
    release = tmp_path / "release"
    result = djt.block_until.enqueue(str(release))
    seen = [result.status]

    def running():
        result.refresh()
        return result.status == RUNNING

    wait_for(running, timeout=20, message="the task to be RUNNING")
    seen.append(result.status)
    assert result.started_at is not None and result.finished_at is None
    assert result.attempts == 1
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    release.touch()
    finished(result)
    seen.append(result.status)
    assert seen == [READY, RUNNING, SUCCESSFUL]
    assert result.return_value == "released"


def test_get_result_goes_ready_running_failed(start_worker, tmp_path):
    start_worker("-c", "1", "--poll-interval", "0.1")
    result = djt.block_until.enqueue(str(tmp_path / "never"), 2.0)
    seen = [result.status]

    def running():
        result.refresh()
        return result.status == RUNNING

    wait_for(running, timeout=20, message="the task to be RUNNING")
    seen.append(result.status)
    finished(result)
    seen.append(result.status)
    assert seen == [READY, RUNNING, FAILED]
    assert result.errors[0].exception_class is TimeoutError


def test_failing_tasks(start_worker):
    """ImmediateBackendTestCase.test_catches_exception, test_complex_exception and
    test_complex_return_value: FAILED, the exception's class and traceback in ``errors``."""
    start_worker("-c", "2", "--poll-interval", "0.1")
    result = finished(djt.failing_task_value_error.enqueue())
    assert result.status == FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.is_finished is True
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert len(result.errors) == 1
    assert result.errors[0].exception_class is ValueError
    assert result.errors[0].traceback.endswith("ValueError: This Task failed due to ValueError\n")
    assert (result.args, result.kwargs) == ([], {})
    # djq's view of the same job
    with pytest.raises(ValueError, match="This Task failed due to ValueError"):
        AsyncResult(result.id).get(timeout=5)

    complex_exc = finished(djt.complex_exception.enqueue())
    assert complex_exc.status == FAILED
    assert complex_exc.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in complex_exc.errors[0].traceback

    complex_return = finished(djt.complex_return_value.enqueue())
    assert complex_return.status == FAILED
    assert complex_return.errors[0].exception_class is TypeError
    assert "Unsupported type" in complex_return.errors[0].traceback

    # SystemExit fails the task (the pool survives it), as in Django's ImmediateBackend
    system_exit = finished(djt.failing_task_system_exit.enqueue())
    assert system_exit.status == FAILED
    assert system_exit.errors[0].exception_class is SystemExit
    assert finished(djt.calculate_meaning_of_life.enqueue()).return_value == 42


def test_priority_order(start_worker, tmp_path):
    """Higher priority first; equal priorities in enqueue order (supports_priority)."""
    path = tmp_path / "order.txt"
    labels = [("low", -100), ("mid", 0), ("high", 100), ("mid2", 0), ("top", 99)]
    results = [djt.record.using(priority=p).enqueue(str(path), label) for label, p in labels]
    start_worker("-c", "1", "--prefetch-multiplier", "1", "-P", "solo")
    for result in results:
        finished(result)
    assert path.read_text().split() == ["high", "top", "mid", "mid2", "low"]


def test_run_after(start_worker, tmp_path):
    """supports_defer: a task with run_after is READY until then, and runs after it."""
    start_worker("-c", "1", "--poll-interval", "0.1")
    when = timezone.now() + dt.timedelta(seconds=2)
    later = djt.record.using(run_after=when).enqueue(str(tmp_path / "later"), "later")
    now = djt.record.enqueue(str(tmp_path / "now"), "now")
    finished(now)
    later.refresh()
    assert later.status == READY and later.task.run_after == when
    finished(later)
    assert later.status == SUCCESSFUL
    # (the claim compares run_after with the statement's time; started_at is its transaction's
    # start, which may be a few microseconds earlier)
    assert later.started_at >= when - dt.timedelta(milliseconds=50)
    assert later.started_at > now.finished_at


def test_takes_context(start_worker):
    """ImmediateBackendTestCase.test_takes_context and test_context: the TaskContext carries
    the result id and the attempt number."""
    w = start_worker("-c", "1", "-Q", "default,other", "--poll-interval", "0.1")
    result = finished(djt.get_task_id.enqueue())
    assert result.return_value == result.id
    assert finished(djt.test_context.enqueue(1)).status == SUCCESSFUL
    details = finished(djt.context_details.using(queue_name="other", priority=7).enqueue())
    assert details.return_value == {
        "id": details.id,
        "attempt": 1,
        "status": "RUNNING",
        "worker_ids": [w.nodename],
        "args": [],
        "queue_name": "other",
        "priority": 7,
    }


def test_signals_are_sent_in_the_worker(start_worker, tmp_path):
    """ImmediateBackendTestCase.test_enqueue_logs / test_failed_logs: task_enqueued (by the
    caller), task_started and task_finished (by the worker process that runs the task)."""
    log = tmp_path / "signals.jsonl"
    os.environ["DJTASKS_SIGNAL_LOG"] = str(log)
    try:
        start_worker(
            "-c", "1", "--poll-interval", "0.1", env_extra={"DJTASKS_SIGNAL_LOG": str(log)}
        )
        ok = finished(djt.add.enqueue(1, 1))
        bad = finished(djt.failing_task_value_error.enqueue())
    finally:
        del os.environ["DJTASKS_SIGNAL_LOG"]
    events = [json.loads(line) for line in log.read_text().splitlines()]
    by_id = {
        rid: [(e["signal"], e["status"], e["errors"]) for e in events if e["id"] == rid]
        for rid in (ok.id, bad.id)
    }
    assert by_id[ok.id] == [
        ("task_enqueued", "READY", []),
        ("task_started", "RUNNING", []),
        ("task_finished", "SUCCESSFUL", []),
    ]
    assert by_id[bad.id] == [
        ("task_enqueued", "READY", []),
        ("task_started", "RUNNING", []),
        ("task_finished", "FAILED", ["builtins.ValueError"]),
    ]
    assert {e["sender"] for e in events} == {"djq.backends.DjqBackend"}
    enqueued_pids = {e["pid"] for e in events if e["signal"] == "task_enqueued"}
    worker_pids = {e["pid"] for e in events if e["signal"] != "task_enqueued"}
    assert enqueued_pids == {os.getpid()}
    assert os.getpid() not in worker_pids
