"""Work-flows coordinated in the database (issue 3), run in-process: claim → execute → complete.

Each example is the seed documents' (Celery's) with its printed result; failures and nesting
compare with the same work-flow computed inline (``.apply()``).
"""

from __future__ import annotations

import pytest

from djq import AsyncResult, GroupResult, chain, chord, group, states
from djq.exceptions import ChordError
from djq.models import Job
from testproject.demo.tasks import add, fail, mul, on_error, xsum
from tests.inprocess import drain

pytestmark = pytest.mark.django_db


def test_group_of_signatures():
    result = group(add.s(i, i) for i in range(10))()
    assert isinstance(result, GroupResult)
    drain()
    assert result.get(timeout=5) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert result.ready() and result.successful() and result.completed_count() == 10


def test_partial_group():
    result = group(add.s(i) for i in range(10))(10)
    drain()
    assert result.get(timeout=5) == list(range(10, 20))


def test_group_is_one_bulk_insert_and_restorable():
    result = group(add.s(i, 1) for i in range(3))()
    assert Job.objects.filter(group_id=result.id).count() == 3
    result.save()
    drain()
    restored = GroupResult.restore(result.id)
    assert [r.id for r in restored.results] == [r.id for r in result.results]
    assert restored.get(timeout=5) == [1, 2, 3]


def test_chain():
    result = chain(add.s(4, 4) | mul.s(8))()
    drain()
    assert result.get(timeout=5) == 64
    assert result.parent.get(timeout=5) == 8
    assert AsyncResult(result.id).parent.id == result.parent.id  # walked from the database


def test_immutable_step_in_a_chain():
    result = (add.si(1, 2) | add.s(3))()
    drain()
    assert result.get(timeout=5) == 6


def test_partial_chain():
    result = chain(add.s(4) | mul.s(8))(4)
    drain()
    assert result.get(timeout=5) == 64


def test_chord():
    result = chord((add.s(i, i) for i in range(10)), xsum.s())()
    drain()
    assert result.get(timeout=5) == 90
    assert result.parent.get(timeout=5) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]


def test_group_piped_into_a_task_is_a_chord():
    workflow = group(add.s(i, i) for i in range(10)) | xsum.s()
    assert isinstance(workflow, chord)
    result = workflow()
    drain()
    assert result.get(timeout=5) == 90


def test_link_gets_the_parent_result():
    parent = add.apply_async((2, 2), link=mul.s(10))
    drain()
    [child] = parent.children
    assert child.get(timeout=5) == 40
    assert child.parent.id == parent.id


def test_failing_chain_step_stops_the_chain_and_marks_the_rest():
    result = chain(add.s(1, 1), fail.si("broken"), add.s(1), mul.s(2))()
    drain()
    with pytest.raises(ValueError, match="broken"):
        result.get(timeout=5)
    not_run = result.parent  # add.s(1): never ran, recorded as failed by the same error
    assert not_run.state == states.FAILURE
    assert Job.objects.filter(name=add.name, args=[2, 1]).count() == 0  # add(2, 1) never ran


def test_chain_errback_receives_the_failed_job_id():
    failing = fail.si("x")
    failing.link_error(on_error.s())
    result = chain(add.s(1, 1), failing)()
    drain()
    failed_id = result.id
    errback = Job.objects.get(name=on_error.name)
    assert errback.args == [failed_id] and errback.state == states.SUCCESS


def test_failing_header_job_fails_the_chord_and_the_body_never_runs():
    body = xsum.s()
    body.link_error(on_error.s())
    result = chord([add.s(1, 1), fail.si("header broke"), add.s(2, 2)], body)()
    drain()
    with pytest.raises(ChordError, match="fail"):
        result.get(timeout=5)
    body_job = Job.objects.get(id=result.id)
    assert body_job.state == states.FAILURE and body_job.started_at is None  # never ran
    assert Job.objects.get(name=on_error.name).args == [result.id]


def test_chain_through_a_group_and_a_chord_and_a_chain():
    # chain → group (→ chord with the next step) → chord → chain
    workflow = chain(
        add.s(1, 1),  # 2
        group(mul.s(2), mul.s(3)),  # [4, 6]
        xsum.s(),  # 10
        chord([add.s(1), add.s(2)], xsum.s()),  # 11 + 12 = 23
        chain(mul.s(2), add.s(1)),  # 47
    )
    expected = workflow.apply().get()
    result = workflow.apply_async()
    drain()
    assert result.get(timeout=5) == expected == 47


def test_group_of_chains_and_chord_of_chains():
    members = [chain(add.s(1, 1), mul.s(2)), chain(add.s(2, 2), mul.s(3))]
    result = group(members)()
    drain()
    assert result.get(timeout=5) == [4, 12]
    body = chord([chain(add.s(1, 1), mul.s(2)), add.s(5, 5)], xsum.s())()
    drain()
    assert body.get(timeout=5) == 14


def test_chain_ending_in_a_group_returns_the_group_result():
    result = chain(add.s(1, 1), group(mul.s(2), mul.s(5)))()
    drain()
    assert isinstance(result, GroupResult)
    assert result.get(timeout=5) == [4, 10]


def test_map_starmap_and_chunks():
    assert_map = add.starmap([(1, 2), (3, 4)]).delay()
    chunked = add.chunks(zip(range(10), range(10)), 3).apply_async()
    drain()
    assert assert_map.get(timeout=5) == [3, 7]
    assert chunked.get(timeout=5) == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]
    mapped = xsum.map([[1, 2], [3, 4]]).delay()
    drain()
    assert mapped.get(timeout=5) == [3, 7]


def test_empty_chord_calls_the_body_with_no_results():
    result = chord([], xsum.s())()
    drain()
    assert result.get(timeout=5) == 0


def test_eager_mode_runs_the_same_workflows(settings):
    settings.DJQ_TASK_ALWAYS_EAGER = True
    assert chain(add.s(4, 4) | mul.s(8))().get() == 64
    assert group(add.s(i, i) for i in range(3))().get() == [0, 2, 4]
    assert chord((add.s(i, i) for i in range(10)), xsum.s())().get() == 90
    assert Job.objects.count() == 0


def test_signatures_round_trip_through_json_as_task_arguments():
    from djq.serialization import dumps, loads

    workflow = chord([add.s(1, 1), add.s(2, 2)], chain(xsum.s(), add.s(1)))
    again = chord(loads(dumps(workflow)))
    result = again()
    drain()
    assert result.get(timeout=5) == 7


def test_new_style_errback_gets_request_exception_and_traceback():
    from testproject.demo.tasks import on_error_full

    failed = fail.apply_async(("kaput",), link_error=on_error_full.s())
    drain()
    errback = Job.objects.get(name=on_error_full.name)
    assert errback.state == states.SUCCESS, errback.traceback
    assert errback.result == {
        "id": failed.id,
        "task": fail.name,
        "exc": "ValueError",
        "message": "kaput",
        "has_traceback": True,
    }


def test_a_chord_member_chain_that_fails_early_still_completes_the_chord():
    result = chord([fail.si("early") | add.s(1), add.s(2, 2)], xsum.s())()
    drain()
    with pytest.raises(ChordError):
        result.get(timeout=5)


def test_a_chain_step_whose_arguments_do_not_fit_fails_instead_of_hanging():
    from testproject.demo.tasks import noop

    result = chain(add.s(1, 1), noop.s(), add.s(5))()  # noop takes no argument
    drain()
    with pytest.raises(TypeError, match="noop"):
        result.get(timeout=5)


def test_link_error_given_as_a_task_name_or_garbage():
    failed = fail.apply_async(("x",), link_error=on_error.name)  # a name: its signature
    drain()
    assert Job.objects.get(name=on_error.name).args == [failed.id]
    with pytest.raises(TypeError, match="link/link_error"):
        fail.apply_async(("x",), link_error=[42])
