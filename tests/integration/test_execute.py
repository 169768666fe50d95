"""djq.execute: from a claimed job to an outcome, without writing job state."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.test.utils import override_settings

from djq import send_task, states
from djq.exceptions import SoftTimeLimitExceeded
from djq.models import Job
from djq.running.execute import execute, soft_limit
from djq.serialization import loads
from testproject.demo.tasks import add, fail, soft_limited
from tests.inprocess import claim

pytestmark = pytest.mark.django_db


def test_execute_returns_an_outcome_and_writes_nothing():
    result = add.delay(2, 5)
    [job] = claim()
    before = Job.objects.values().get(id=result.id)
    outcome = execute(job, hostname="h")
    assert Job.objects.values().get(id=result.id) == before
    assert outcome.id == result.id and outcome.attempt == 1 and outcome.name == add.name
    assert outcome.state == states.SUCCESS and loads(outcome.result) == 7
    assert outcome.keep_result is True and outcome.repr == "7"
    assert outcome.runtime >= 0
    assert json.loads(json.dumps(outcome.to_message())) == outcome.to_message()  # it travels


def test_a_failure_outcome_carries_the_exception_and_traceback():
    fail.delay("bad")
    [job] = claim()
    outcome = execute(job)
    assert outcome.state == states.FAILURE
    assert loads(outcome.result)["exc_type"] == "ValueError"
    assert "raise ValueError(message)" in outcome.traceback
    assert outcome.repr == "ValueError('bad')"


def test_an_unregistered_task_fails_with_not_registered():
    send_task("no.such.task")
    [job] = claim()
    outcome = execute(job)
    assert outcome.state == states.FAILURE
    assert loads(outcome.result)["exc_type"] == "NotRegistered"


def test_soft_time_limit_from_the_call_options():
    result = soft_limited.apply_async((10,), soft_time_limit=0.2)
    [job] = claim()
    started = time.monotonic()
    outcome = execute(job)
    assert time.monotonic() - started < 5
    assert loads(outcome.result) == "soft limit caught"
    assert result.id == outcome.id


def test_soft_time_limit_given_by_the_worker():
    soft_limited.delay(10)
    [job] = claim()
    assert loads(execute(job, soft_time_limit=0.2).result) == "soft limit caught"


@override_settings(DJQ_TASK_SOFT_TIME_LIMIT=0.2)
def test_soft_time_limit_from_settings():
    soft_limited.delay(10)
    [job] = claim()
    assert loads(execute(job).result) == "soft limit caught"


def test_an_uncaught_soft_limit_fails_the_job():
    from testproject.demo.tasks import sleep

    sleep.apply_async((10,), soft_time_limit=0.2)
    [job] = claim()
    outcome = execute(job)
    assert outcome.state == states.FAILURE
    assert loads(outcome.result)["exc_type"] == "SoftTimeLimitExceeded"


def _busy_under_limit(box):
    # Python code (not one long blocking call): the asynchronous exception lands between two
    # bytecodes. A single blocking call (time.sleep(10)) is only interrupted once it returns:
    # in the threads pool, soft limits cannot cut a blocking call short.
    try:
        with soft_limit(0.2):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.005)
    except SoftTimeLimitExceeded:
        box.append("caught")


def test_soft_limit_in_a_pool_thread():
    box: list[str] = []
    thread = threading.Thread(target=_busy_under_limit, args=(box,))
    started = time.monotonic()
    thread.start()
    thread.join(15)
    assert box == ["caught"]
    assert time.monotonic() - started < 5


def test_soft_limit_leaves_no_timer_behind():
    import signal

    previous = signal.getsignal(signal.SIGALRM)
    with soft_limit(30):
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == previous
