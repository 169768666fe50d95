"""Defining tasks and running them inline: the decorator, hooks, apply()/EagerResult, retries,
autoretry, Ignore/Reject and the task signals."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test.utils import override_settings

from djq import EagerResult, Task, shared_task, signals, states, store, task
from djq.calling.registry import tasks
from djq.exceptions import Ignore, MaxRetriesExceededError, Reject, Retry
from djq.models import Job
from djq.running.execute import execute
from testproject.demo.tasks import (
    DemoError,
    add,
    divide,
    fail,
    fail_custom,
    ignore_me,
    reject_me,
    retry_forever,
    retry_twice,
    whoami,
)
from tests.inprocess import claim, drain

# --- the decorator ----------------------------------------------------------------------------


@task
def plain(x):
    """Doc of plain."""
    return x * 2


@task(name="custom.name", queue="q", priority=3, max_retries=7, default_retry_delay=1)
def named():
    return "named"


@shared_task(bind=True)
def bound(self, x):
    return {
        "self_is_task": self is bound,
        "x": x,
        "id": self.request.id,
        "eager": self.request.is_eager,
        "args": self.request.args,
    }


def test_default_name_is_module_and_function():
    assert plain.name == "tests.integration.test_task.plain"
    assert add.name == "testproject.demo.tasks.add"
    assert tasks["tests.integration.test_task.plain"] is plain
    assert plain.__doc__ == "Doc of plain."
    assert repr(plain) == "<@task: tests.integration.test_task.plain>"


def test_decorator_options_become_attributes():
    assert tasks["custom.name"] is named
    assert (named.queue, named.priority, named.max_retries, named.default_retry_delay) == (
        "q",
        3,
        7,
        1,
    )
    assert isinstance(named, Task)


def test_unknown_decorator_option_is_a_type_error():
    with pytest.raises(TypeError, match="bad_option"):

        @task(bad_option=1)
        def broken():
            pass

    assert "tests.integration.test_task.broken" not in tasks


def test_positional_decorator_arguments_are_refused():
    with pytest.raises(TypeError):
        task("name", "extra")


def test_calling_a_task_runs_it_inline():
    assert plain(21) == 42
    assert add(2, 3) == 5
    assert bound(1)["self_is_task"] is True


@pytest.mark.django_db
def test_calling_inline_writes_no_job():
    assert add(1, 1) == 2
    assert Job.objects.count() == 0


def test_bound_task_sees_its_request():
    result = bound.apply((5,), task_id="6a8f6c1e-0000-4000-8000-000000000001")
    value = result.get()
    assert value == {
        "self_is_task": True,
        "x": 5,
        "id": "6a8f6c1e-0000-4000-8000-000000000001",
        "eager": True,
        "args": [5],
    }


def test_request_of_a_direct_call():
    assert bound(3)["id"] is None
    assert bound.request.called_directly is True


# --- apply() ----------------------------------------------------------------------------------
def test_apply_returns_an_eager_result():
    result = add.apply((2, 2))
    assert isinstance(result, EagerResult)
    assert result.get() == 4 and result.result == 4
    assert result.state == states.SUCCESS and result.successful() and result.ready()
    assert result.name == add.name and result.exists()


def test_apply_of_a_failing_task():
    result = fail.apply(("eager boom",))
    assert result.state == states.FAILURE and result.failed()
    assert isinstance(result.result, ValueError)
    with pytest.raises(ValueError, match="eager boom"):
        result.get()
    assert isinstance(result.get(propagate=False), ValueError)
    assert "raise ValueError(message)" in result.traceback


def test_apply_checks_the_signature():
    with pytest.raises(TypeError, match="do not fit"):
        add.apply((1,))


class NeedsTwoArguments(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")
        self.a, self.b = a, b


@task
def raises_needs_two():
    raise NeedsTwoArguments(1, 2)


def test_eager_propagates_raises_the_original_exception():
    with override_settings(DJQ_TASK_EAGER_PROPAGATES=True):
        with pytest.raises(DemoError, match="x"):
            fail_custom.apply(("x",))
        with pytest.raises(NeedsTwoArguments) as info:
            raises_needs_two.apply()
    assert (info.value.a, info.value.b) == (1, 2)
    assert info.value.__traceback__ is not None
    # without the setting it is returned, not raised
    result = raises_needs_two.apply()
    assert isinstance(result.result, NeedsTwoArguments)
    with pytest.raises(NeedsTwoArguments):
        result.get()


def test_apply_throw_option():
    with pytest.raises(ValueError):
        fail.apply(("x",), throw=True)


def test_apply_runs_retries_inline():
    result = retry_twice.apply()
    assert result.get() == 2


def test_retry_past_max_retries_re_raises_the_exception():
    result = retry_forever.apply()  # max_retries=1, retries with exc=KeyError
    assert result.state == states.FAILURE
    assert isinstance(result.result, KeyError)


@task(bind=True, max_retries=2, default_retry_delay=0)
def retry_without_exc(self):
    raise self.retry()


@task(bind=True, max_retries=10, default_retry_delay=0)
def retry_with_own_limit(self):
    raise self.retry(max_retries=1, countdown=0)


def test_retry_past_max_retries_without_exc_raises_max_retries_exceeded():
    result = retry_without_exc.apply()
    assert result.state == states.FAILURE
    assert isinstance(result.result, MaxRetriesExceededError)
    assert "retry_without_exc" in str(result.result)
    assert isinstance(retry_with_own_limit.apply().result, MaxRetriesExceededError)


def test_retry_of_a_direct_call_raises_the_exception():
    with pytest.raises(KeyError):
        retry_forever()
    with pytest.raises(Retry):
        retry_without_exc()


@task(bind=True)
def returns_a_retry(self):
    retry = self.retry(countdown=5, throw=False)
    return {"type": type(retry).__name__, "when": retry.when}


def test_retry_without_throw_returns_the_retry():
    assert returns_a_retry.apply().get() == {"type": "Retry", "when": 5}


def test_ignore_and_reject_eagerly():
    assert ignore_me.apply().state == states.IGNORED
    rejected = reject_me.apply()
    assert rejected.state == states.FAILURE and isinstance(rejected.result, Reject)


# --- hooks ------------------------------------------------------------------------------------
CALLS: list[tuple] = []


class Recording(Task):
    def before_start(self, task_id, args, kwargs):
        CALLS.append(("before_start", task_id, args, kwargs))

    def on_success(self, retval, task_id, args, kwargs):
        CALLS.append(("on_success", retval, task_id, args, kwargs))

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        CALLS.append(("on_failure", exc, task_id, args, kwargs, einfo))

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        CALLS.append(("on_retry", exc, task_id, args, kwargs, einfo))

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        CALLS.append(("after_return", status, retval, task_id, args, kwargs, einfo))


@task(base=Recording, bind=True, max_retries=1, default_retry_delay=0)
def hooked(self, x, fail_with=None, retry=False):
    if retry and self.request.retries == 0:
        raise self.retry(exc=KeyError("again"))
    if fail_with:
        raise ValueError(fail_with)
    return x + 1


@pytest.fixture
def calls():
    CALLS.clear()
    yield CALLS
    CALLS.clear()


TID = "11111111-2222-4333-8444-555555555555"


def test_hooks_on_success(calls):
    assert isinstance(hooked, Recording)
    hooked.apply((1,), task_id=TID)
    assert calls == [
        ("before_start", TID, [1], {}),
        ("on_success", 2, TID, [1], {}),
        ("after_return", states.SUCCESS, 2, TID, [1], {}, None),
    ]


def test_hooks_on_failure(calls):
    hooked.apply((1,), {"fail_with": "bad"}, task_id=TID)
    names = [c[0] for c in calls]
    assert names == ["before_start", "on_failure", "after_return"]
    _, exc, task_id, args, kwargs, einfo = calls[1]
    assert isinstance(exc, ValueError) and str(exc) == "bad"
    assert (task_id, args, kwargs) == (TID, [1], {"fail_with": "bad"})
    assert einfo.exception is exc and einfo.type is ValueError
    assert "raise ValueError(fail_with)" in einfo.traceback
    status, retval = calls[2][1], calls[2][2]
    assert status == states.FAILURE
    assert retval is exc  # Celery: after_return gets the return value *or the exception*


def test_hooks_on_retry(calls):
    assert hooked.apply((1,), {"retry": True}, task_id=TID).get() == 2
    names = [c[0] for c in calls]
    assert names == [
        "before_start",
        "on_retry",
        "after_return",
        "before_start",
        "on_success",
        "after_return",
    ]
    _, exc, task_id, args, kwargs, einfo = calls[1]
    assert isinstance(exc, KeyError) and task_id == TID and args == [1]
    assert einfo.exception is exc
    assert calls[2][1] == states.RETRY


def test_a_subclass_hook_runs_in_the_worker_path_too(calls, db):
    result = hooked.delay(10)
    drain()
    assert result.get() == 11
    assert [c[0] for c in calls] == ["before_start", "on_success", "after_return"]
    assert calls[0][1] == result.id


# --- signals ----------------------------------------------------------------------------------
@pytest.fixture
def received():
    got: list[tuple[str, dict]] = []
    receivers = {}
    for name in ("task_prerun", "task_postrun", "task_success", "task_failure", "task_retry"):

        def receiver(signal=None, _name=name, **kwargs):
            got.append((_name, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver, weak=False)
    yield got
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def test_signals_of_a_success(received):
    add.apply((2, 3), task_id=TID)
    assert [name for name, _ in received] == ["task_prerun", "task_success", "task_postrun"]
    pre, success, post = (kwargs for _, kwargs in received)
    assert pre["sender"] is add and pre["task"] is add
    assert (pre["task_id"], pre["args"], pre["kwargs"]) == (TID, [2, 3], {})
    assert success["sender"] is add and success["result"] == 5
    assert post["sender"] is add and post["task_id"] == TID
    assert (post["retval"], post["state"]) == (5, states.SUCCESS)


def test_signals_of_a_failure(received):
    fail.apply(("sig",), task_id=TID)
    assert [name for name, _ in received] == ["task_prerun", "task_failure", "task_postrun"]
    failure = received[1][1]
    assert failure["sender"] is fail and failure["task_id"] == TID
    assert isinstance(failure["exception"], ValueError)
    assert (failure["args"], failure["kwargs"]) == (["sig"], {})
    assert failure["traceback"] is failure["exception"].__traceback__
    assert failure["einfo"].exception is failure["exception"]
    post = received[2][1]
    assert post["state"] == states.FAILURE
    assert post["retval"] is failure["exception"]


def test_signals_of_a_retry(received):
    retry_twice.apply(task_id=TID)
    names = [name for name, _ in received]
    assert names.count("task_retry") == 2 and names[-2:] == ["task_success", "task_postrun"]
    retry = next(kwargs for name, kwargs in received if name == "task_retry")
    assert retry["sender"] is retry_twice
    assert retry["request"].id == TID and retry["request"].retries == 0
    assert isinstance(retry["reason"], Retry)
    assert isinstance(retry["einfo"].exception, RuntimeError)


def test_signals_in_the_worker_path(received, db):
    result = add.delay(1, 1)
    drain()
    assert [name for name, _ in received] == ["task_prerun", "task_success", "task_postrun"]
    assert received[0][1]["task_id"] == result.id


# --- autoretry, Ignore, Reject in the worker path ---------------------------------------------
def _make_due(job_id):
    Job.objects.filter(id=job_id).update(run_after=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))


@pytest.mark.django_db
def test_autoretry_for_with_exponential_backoff():
    result = divide.delay(1, 0)  # ZeroDivisionError; retry_backoff=0.05, no jitter, max 3
    countdowns = []
    for attempt in range(1, 5):
        [job] = claim()
        assert job.attempt == attempt
        outcome = execute(job)
        if outcome.state == states.RETRY:
            countdowns.append(outcome.countdown)
        store.complete([outcome])
        _make_due(result.id)
    assert countdowns == pytest.approx([0.05, 0.1, 0.2])
    assert result.state == states.FAILURE
    assert result.retries == 3
    with pytest.raises(ZeroDivisionError):
        result.get()


@pytest.mark.django_db
def test_autoretry_does_not_catch_other_exceptions():
    result = divide.delay(1, "x")  # TypeError is not in autoretry_for
    drain()
    assert result.state == states.FAILURE and result.retries == 0
    assert isinstance(result.result, TypeError)


@pytest.mark.django_db
def test_autoretry_success_needs_no_retry():
    result = divide.delay(6, 3)
    drain()
    assert result.get() == 2.0


@pytest.mark.django_db
def test_ignore_in_the_worker_path():
    result = ignore_me.delay()
    drain()
    assert result.state == states.IGNORED and result.result is None


@pytest.mark.django_db
def test_reject_without_requeue_fails():
    result = reject_me.delay(False)
    drain()
    assert result.state == states.FAILURE
    exc = result.get(propagate=False)
    assert isinstance(exc, Reject) and exc.reason == "not for me"


@pytest.mark.django_db
def test_reject_with_requeue_puts_the_job_back():
    result = reject_me.delay(True)
    [job] = claim()
    store.complete([execute(job)])
    assert result.state == states.PENDING and result.exists()
    [again] = claim()
    assert (again.id, again.attempt) == (result.id, 2)


@pytest.mark.django_db
def test_the_request_in_the_worker_path():
    result = whoami.apply_async(queue="default", priority=2)
    [job] = claim()
    store.complete([execute(job, hostname="host-1")])
    assert result.get() == {
        "id": result.id,
        "retries": 0,
        "hostname": "host-1",
        "queue": "default",
        "parent_id": None,
    }


@pytest.mark.django_db
def test_a_return_value_that_is_not_json_fails_the_job():
    result = echo_object.delay()
    drain()
    assert result.state == states.FAILURE
    assert "cannot be stored as JSON" in str(result.result)


@task
def echo_object():
    return object()


@pytest.mark.django_db
def test_malformed_payload_fails_the_job():
    result = add.delay(1, 1)
    Job.objects.filter(id=result.id).update(args={"not": "a list"})
    drain()
    assert result.state == states.FAILURE
    assert "malformed" in str(result.result)


def test_ignore_and_reject_are_exceptions_of_the_api():
    assert issubclass(Ignore, Exception) and issubclass(Reject, Exception)


# --- retry with new arguments (Celery: self.retry(args=..., kwargs=...)) ----------------------
@task(bind=True, max_retries=3, default_retry_delay=0)
def count_up(self, n, step=1):
    if n < 2:
        raise self.retry(args=(n + step,), kwargs={"step": step}, countdown=0)
    return n


def test_retry_with_new_arguments_eagerly():
    assert count_up.apply((0,)).get() == 2


@pytest.mark.django_db
def test_retry_with_new_arguments_in_the_worker_path():
    result = count_up.delay(0)
    for _ in range(4):
        drain()
        _make_due(result.id)
    assert result.get(timeout=1) == 2
    assert result.args == [2] and result.kwargs == {"step": 1}
