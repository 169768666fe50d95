"""AsyncResult (and GroupResult) read from the job row; jobs are finished in-process by
claim → execute → complete, exactly as a worker does it."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from django.db import connections
from django.test.utils import override_settings

from djq import AsyncResult, GroupResult, states, store, task
from djq.exceptions import TaskRevokedError, TimeoutError
from djq.models import Job
from djq.running.execute import execute
from testproject.demo.tasks import (
    DemoError,
    add,
    echo,
    fail,
    fail_custom,
    forgetful,
    ignore_me,
    progress,
    retry_twice,
    spawn_child,
)
from tests.helpers import wait_for
from tests.inprocess import claim, drain, run

pytestmark = pytest.mark.django_db


@task(track_started=False)
def quiet():
    return "shh"


# --- unknown and waiting ----------------------------------------------------------------------
def test_an_unknown_id_is_pending_and_does_not_exist():
    result = AsyncResult(uuid.uuid4())
    assert result.state == result.status == states.PENDING
    assert result.exists() is False
    assert result.result is None and result.info is None and result.traceback is None
    assert not result.ready() and not result.successful() and not result.failed()
    assert result.date_done is None and result.args is None and result.retries is None
    assert result.parent is None and result.children == []


def test_a_waiting_job_is_pending_and_exists():
    result = add.delay(1, 2)
    assert result.state == states.PENDING
    assert result.exists() is True
    assert result.name == add.name and result.args == [1, 2] and result.kwargs == {}
    assert result.retries == 0 and result.date_done is None


def test_get_times_out_on_a_waiting_job():
    result = add.delay(1, 2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        result.get(timeout=0.2)
    assert time.monotonic() - started < 2
    with pytest.raises(TimeoutError):
        AsyncResult(uuid.uuid4()).get(timeout=0.1, interval=0.05)


def test_djq_timeout_error_is_not_the_builtin():
    # Celery users catch celery.exceptions.TimeoutError; ours must be djq's own class.
    assert TimeoutError is not __builtins__["TimeoutError"]


# --- success ----------------------------------------------------------------------------------
def test_get_returns_the_value():
    result = add.delay(4, 4)
    assert result.state == states.PENDING
    [job] = claim()
    assert result.state == states.STARTED
    run([job])
    assert result.get(timeout=5) == 8
    assert result.result == result.info == 8
    assert result.state == states.SUCCESS and result.ready() and result.successful()
    assert not result.failed()
    assert result.traceback is None


def test_metadata_of_a_finished_job():
    result = echo.apply_async((1, "a"), {"k": dt.date(2020, 1, 1)})
    drain()
    assert result.name == echo.name
    assert result.args == [1, "a"] and result.kwargs == {"k": dt.date(2020, 1, 1)}
    assert result.retries == 0
    done = result.date_done
    assert isinstance(done, dt.datetime) and done.tzinfo is not None
    assert abs((store.db_now() - done).total_seconds()) < 60
    assert result.get() == {"args": [1, "a"], "kwargs": {"k": dt.date(2020, 1, 1)}}


def test_typed_return_values_round_trip():
    value = [dt.datetime(2020, 1, 1, tzinfo=dt.UTC), uuid.UUID(int=9), {"d": dt.date(2021, 1, 1)}]
    result = echo.delay(*value)
    drain()
    assert result.get()["args"] == value


def test_retries_count_after_a_retried_run():
    result = retry_twice.delay()
    # each retry waits 0.1 s by countdown (by the database clock); move it along
    for _ in range(3):
        Job.objects.filter(id=result.id).update(run_after=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        drain()
    assert result.get(timeout=5) == 2
    assert result.retries == 2
    history = [e[0] for e in Job.objects.get(id=result.id).history]
    assert history == [
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


def test_results_are_equal_by_id_and_hashable():
    job_id = str(uuid.uuid4())
    assert AsyncResult(job_id) == AsyncResult(uuid.UUID(job_id)) == job_id
    assert len({AsyncResult(job_id), AsyncResult(job_id)}) == 1
    assert add.AsyncResult(job_id).id == job_id


# --- failure ----------------------------------------------------------------------------------
def test_a_failure_re_raises_its_own_type_with_the_traceback():
    result = fail.delay("went wrong")
    drain()
    assert result.state == states.FAILURE and result.failed() and result.ready()
    with pytest.raises(ValueError, match="went wrong"):
        result.get(timeout=5)
    exc = result.get(propagate=False)
    assert type(exc) is ValueError and exc.args == ("went wrong",)
    assert isinstance(result.result, ValueError)
    tb = result.traceback
    assert tb.startswith("Traceback (most recent call last):")
    assert 'tasks.py", line' in tb and "in fail" in tb
    assert "raise ValueError(message)" in tb
    assert tb.rstrip().endswith("ValueError: went wrong")


def test_a_failure_of_an_app_exception_type():
    result = fail_custom.delay("mine")
    drain()
    with pytest.raises(DemoError, match="mine"):
        result.get()
    assert type(result.get(propagate=False)) is DemoError
    assert "in fail_custom" in result.traceback


def test_a_job_of_an_unknown_task_fails_with_not_registered():
    from djq import send_task
    from djq.exceptions import NotRegistered

    result = send_task("nobody.knows.me", (1,))
    drain()
    with pytest.raises(NotRegistered, match="nobody.knows.me"):
        result.get()


# --- custom states ----------------------------------------------------------------------------
def test_update_state_shows_a_custom_state_and_its_meta():
    result = progress.delay(steps=1, delay=0)
    [job] = claim()
    outcome = execute(job)  # ran: update_state wrote PROGRESS; not recorded yet
    assert result.state == "PROGRESS"
    assert result.info == {"current": 0, "total": 1}
    assert not result.ready()
    store.complete([outcome])
    assert result.state == states.SUCCESS
    assert result.get() == 1


@pytest.mark.django_db(transaction=True)
def test_update_state_is_seen_by_another_connection_while_the_task_runs():
    result = progress.delay(steps=4, delay=0.25)
    [job] = claim()
    outcomes = []

    def run_job():
        try:
            outcomes.append(execute(job))
        finally:
            connections.close_all()

    thread = threading.Thread(target=run_job)
    thread.start()
    try:
        seen = wait_for(
            lambda: result.state == "PROGRESS" and result.info["current"] >= 1 and result.info,
            timeout=10,
            interval=0.01,
            message="a PROGRESS state with current >= 1",
        )
        assert seen["total"] == 4
    finally:
        thread.join(30)
    store.complete(outcomes)
    assert result.get(timeout=5) == 4 and result.state == states.SUCCESS


def test_track_started_off_shows_pending_while_running():
    by_option = add.apply_async((1, 1), track_started=False)
    by_task = quiet.delay()
    tracked = add.delay(1, 1)
    claim()
    assert by_option.state == states.PENDING
    assert by_task.state == states.PENDING
    assert tracked.state == states.STARTED
    with override_settings(DJQ_TASK_TRACK_STARTED=False):
        assert tracked.state == states.PENDING


# --- ignore, revoke, forget -------------------------------------------------------------------
def test_ignore_result_ends_success_without_a_result():
    result = forgetful.delay()
    explicit = add.apply_async((1, 1), ignore_result=True)
    drain()
    for r in (result, explicit):
        assert r.state == states.SUCCESS
        assert r.result is None and r.get(timeout=5) is None


def test_ignore_ends_the_job_without_success_or_failure():
    result = ignore_me.delay()
    drain()
    assert result.ready() and not result.successful() and not result.failed()
    assert result.state == states.IGNORED


def test_revoke_a_waiting_job():
    result = add.apply_async((1, 1), countdown=0)
    result.revoke()
    assert result.state == states.REVOKED and result.ready()
    assert claim() == []
    with pytest.raises(TaskRevokedError):
        result.get(timeout=1)
    assert isinstance(result.get(propagate=False), TaskRevokedError)


def test_forget_removes_the_result():
    result = add.delay(1, 1)
    drain()
    assert result.get() == 2
    result.forget()
    assert result.exists() is False
    assert result.state == states.PENDING and result.result is None


def test_forget_of_a_waiting_job_keeps_it():
    result = add.delay(1, 1)
    result.forget()
    assert result.exists()


# --- parent and children ----------------------------------------------------------------------
def test_a_job_enqueued_by_a_running_job_is_its_child():
    parent = spawn_child.delay(5)
    [job] = claim()
    run([job])
    child_id = parent.get()
    child = AsyncResult(child_id)
    assert child.parent == parent
    assert parent.children == [child]
    assert Job.objects.get(id=child_id).root_id == parent.id
    drain()
    assert child.get() == 6
    assert parent.parent is None


def test_children_in_order_of_creation():
    parent = add.delay(0, 0)
    ids = [add.apply_async((i, i), parent_id=parent.id).id for i in range(3)]
    assert [c.id for c in parent.children] == ids


# --- waiting across connections ---------------------------------------------------------------
def _listening(job_id: str) -> bool:
    """get() LISTENs, then flags the row it waits on: once flagged, it is listening."""
    return Job.objects.filter(id=job_id, waited=True).exists()


def _finish_when(condition, job):
    try:
        wait_for(condition, timeout=10, message="the waiter to listen")
        run([job])
    finally:
        connections.close_all()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_get_wakes_on_notify():
    result = add.delay(20, 22)
    [job] = claim()
    thread = threading.Thread(target=_finish_when, args=(lambda: _listening(result.id), job))
    thread.start()
    started = time.monotonic()
    try:
        # A 30 s poll interval: only the NOTIFY of the completion can end this wait in time.
        assert result.get(timeout=10, interval=30) == 42
    finally:
        thread.join(30)
    assert time.monotonic() - started < 5


@pytest.mark.django_db(transaction=True)
def test_get_waits_for_a_job_finished_by_another_connection():
    result = add.delay(1, 2)
    [job] = claim()
    thread = threading.Thread(target=_finish_when, args=(lambda: True, job))
    thread.start()
    try:
        assert result.get(timeout=10, interval=0.05) == 3
    finally:
        thread.join(30)


# --- groups -----------------------------------------------------------------------------------
def test_group_result_gets_in_order_and_propagates():
    results = [add.delay(i, i) for i in range(3)]
    group = GroupResult(uuid.uuid4(), results)
    assert not group.ready() and group.completed_count() == 0
    drain()
    assert group.ready() and group.successful()
    assert group.get(timeout=5) == [0, 2, 4]
    failing = GroupResult(uuid.uuid4(), [add.delay(1, 1), fail.delay("g")])
    drain()
    assert failing.failed()
    with pytest.raises(ValueError, match="g"):
        failing.get(timeout=5)
    assert failing.get(propagate=False)[0] == 2


def test_group_result_save_and_restore():
    results = [add.delay(i, 1) for i in range(2)]
    saved = GroupResult(str(uuid.uuid4()), results).save()
    restored = GroupResult.restore(saved.id)
    assert [r.id for r in restored] == [r.id for r in results]
    assert GroupResult.restore(uuid.uuid4()) is None
