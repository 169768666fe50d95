"""Signatures (the basics; work-flows are issue 3): partials, JSON, and link= through a real
in-process run."""

from __future__ import annotations

import json
import uuid

import pytest

from djq import AsyncResult, Signature, signature, states
from djq.models import Job
from djq.serialization import dumps, loads
from testproject.demo.tasks import add, fail, mul, xsum
from tests.inprocess import claim, drain, run

ADD = "testproject.demo.tasks.add"


def test_a_signature_is_a_dict_of_task_args_kwargs_options():
    sig = add.s(2, y=3)
    assert isinstance(sig, Signature) and isinstance(sig, dict)
    assert (sig.task, sig.args, sig.kwargs, sig.options) == (ADD, (2,), {"y": 3}, {})
    assert sig.immutable is False
    assert repr(sig) == f"{ADD}(2, y=3)"
    assert add.signature((1, 2), {"z": 1}, countdown=5).options == {"countdown": 5}
    assert add.si(1, 2).immutable is True


def test_partials_prepend_args_and_merge_kwargs():
    sig = echo_sig = signature("testproject.demo.tasks.echo", args=(3, 4), kwargs={"a": 1, "b": 2})
    clone = sig.clone((1, 2), {"b": 20, "c": 30})
    assert clone.args == (1, 2, 3, 4)
    assert clone.kwargs == {"a": 1, "b": 20, "c": 30}
    assert sig.args == (3, 4) and sig.kwargs == {"a": 1, "b": 2}  # the original is unchanged
    assert echo_sig.s(0).args == (0, 3, 4)


def test_immutable_signatures_ignore_partial_arguments():
    sig = add.si(1, 2)
    assert sig.clone((100,), {"y": 5}).args == (1, 2)
    assert sig(100) == 3


def test_calling_a_signature_runs_the_task_inline():
    assert add.s(1)(2) == 3
    assert add.s(y=10)(5) == 15
    assert xsum.s()([1, 2, 3]) == 6


def test_options_merge_and_set():
    sig = add.s(1, 2).set(queue="q", priority=3)
    assert sig.options == {"queue": "q", "priority": 3}
    clone = sig.clone(priority=9)
    assert clone.options == {"queue": "q", "priority": 9}


def test_json_round_trip_of_a_signature():
    sig = add.s(2).set(countdown=3, queue="q")
    sig.link(mul.s(10))
    sig.link_error(fail.si("oops"))
    text = dumps(sig)
    back = signature(loads(text))
    assert back == sig and isinstance(back, Signature)
    assert (back.task, back.args, back.options["queue"]) == (ADD, (2,), "q")
    assert back.options["link"] == [mul.s(10)]
    assert json.loads(text)["task"] == ADD  # plain JSON on the wire


def test_signature_by_name_without_the_task():
    sig = signature("elsewhere.task", args=(1,), kwargs={"k": 2}, countdown=1)
    assert (sig.task, sig.args, sig.kwargs, sig.options) == (
        "elsewhere.task",
        (1,),
        {"k": 2},
        {"countdown": 1},
    )


def test_signature_needs_a_task():
    with pytest.raises(TypeError):
        Signature(None)


@pytest.mark.django_db
def test_signature_apply_async_and_delay():
    first = add.s(1).apply_async((2,))
    second = add.s(y=5).delay(1)
    third = signature("not.here", args=(1,)).apply_async(queue="q")
    rows = {str(j.id): j for j in Job.objects.all()}
    assert rows[first.id].args == [2, 1]
    assert (rows[second.id].args, rows[second.id].kwargs) == ([1], {"y": 5})
    assert (rows[third.id].name, rows[third.id].queue) == ("not.here", "q")


@pytest.mark.django_db
def test_freeze_fixes_the_task_id():
    sig = add.s(1, 2)
    frozen = sig.freeze()
    result = sig.apply_async()
    assert result.id == frozen.id == sig.id
    uuid.UUID(result.id)


# --- link= through a real run -------------------------------------------------------------------
@pytest.mark.django_db
def test_link_runs_the_callback_with_the_result():
    first = add.apply_async((2, 2), link=mul.s(10))
    [job] = claim()
    [recorded] = run([job])
    assert recorded["state"] == states.SUCCESS
    children = first.children
    assert len(children) == 1, "the link was not enqueued by the completion"
    child = children[0]
    assert child.state == states.PENDING and child.args == [4, 10]
    [job] = claim()
    run([job])
    assert child.get(timeout=5) == 40
    assert child.parent == first
    assert child.name == mul.name
    row = Job.objects.get(id=child.id)
    assert row.root_id == first.id


@pytest.mark.django_db
def test_several_links_and_immutable_links():
    first = add.apply_async((1, 1), link=[mul.s(3), add.si(100, 1)])
    drain()
    assert first.get() == 2
    assert sorted(c.get() for c in first.children) == [6, 101]


@pytest.mark.django_db
def test_link_is_not_followed_on_failure_and_link_error_is():
    first = fail.apply_async(("x",), link=mul.s(2), link_error=add.si(0, 7))
    drain()
    assert first.state == states.FAILURE
    [errback] = first.children
    assert errback.name == add.name and errback.get() == 7


@pytest.mark.django_db
def test_link_error_receives_the_failed_job_id():
    from testproject.demo.tasks import echo

    first = fail.apply_async(("x",), link_error=echo.s())
    drain()
    [errback] = first.children
    assert errback.get() == {"args": [first.id], "kwargs": {}}


@pytest.mark.django_db
def test_a_fenced_off_completion_enqueues_no_link():
    # The link is enqueued in the transaction that records the outcome: a fenced-off
    # outcome records nothing and so enqueues nothing.
    from djq import store
    from djq.running.execute import execute

    first = add.apply_async((2, 2), link=mul.s(10))
    [job] = claim()
    outcome = execute(job)
    store.release([job])
    assert store.complete([outcome]) == []
    assert first.children == []
    assert AsyncResult(first.id).state == states.PENDING


def test_eager_apply_follows_links():
    from django.test.utils import override_settings

    seen = []

    from djq import signals

    def receiver(sender=None, result=None, **kwargs):
        seen.append((sender.name, result))

    signals.task_success.connect(receiver, weak=False)
    try:
        with override_settings(DJQ_TASK_ALWAYS_EAGER=True):
            assert add.apply_async((2, 2), link=mul.s(10)).get() == 4
    finally:
        signals.task_success.disconnect(receiver)
    assert seen == [(ADD, 4), (mul.name, 40)]
