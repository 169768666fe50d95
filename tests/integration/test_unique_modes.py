"""Re-enqueue policies of unique jobs (issue 15, point 3): unique_mode keep, replace, debounce,
cancel_running; a bad mode is refused; concurrent enqueuers of one key stay race-free."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from djq import states, store
from djq.models import Job
from testproject.demo.tasks import add
from tests.inprocess import in_thread

W = "unique@test"


def _row(result) -> Job:
    return Job.objects.get(id=result.id)


@pytest.mark.django_db
def test_keep_answers_with_the_waiting_job_unchanged():
    first = add.apply_async((1, 1), unique_key="k")
    again = add.apply_async((2, 2), unique_key="k", unique_mode="keep")
    assert again.id == first.id and _row(first).args == [1, 1]


@pytest.mark.django_db
def test_replace_gives_the_waiting_job_the_new_arguments():
    first = add.apply_async((1, 1), unique_key="k", countdown=60)
    before = _row(first).run_after
    again = add.apply_async((2, 3), unique_key="k", unique_mode="replace")
    row = _row(first)
    assert again.id == first.id and row.args == [2, 3] and row.run_after == before
    assert Job.objects.filter(name=add.name).count() == 1


@pytest.mark.django_db
def test_debounce_moves_the_run_time_on_and_replaces_the_arguments():
    first = add.apply_async((1, 1), unique_key="d", countdown=5)
    before = _row(first).run_after
    again = add.apply_async((4, 4), unique_key="d", unique_mode="debounce", countdown=120)
    row = _row(first)
    assert again.id == first.id and row.args == [4, 4]
    assert (row.run_after - before).total_seconds() > 100
    eta = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    add.apply_async((5, 5), unique_key="d", unique_mode="debounce", eta=eta)
    assert _row(first).run_after == eta and _row(first).kwargs == {}


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["replace", "debounce"])
def test_replace_of_a_running_holder_enqueues_the_call_as_the_new_holder(mode):
    first = add.apply_async((1, 1), unique_key="r")
    [claimed] = store.claim(W, ["default"], 10, 30)
    assert claimed.id == first.id
    again = add.apply_async((2, 2), unique_key="r", unique_mode=mode)
    assert again.id != first.id and _row(again).args == [2, 2]  # not lost
    assert _row(first).args == [1, 1]
    # the new job holds the key now
    assert add.apply_async((3, 3), unique_key="r").id == again.id


@pytest.mark.django_db
def test_cancel_running_terminates_the_running_holder_and_enqueues_the_call():
    first = add.apply_async((1, 1), unique_key="c")
    store.claim(W, ["default"], 10, 30)
    again = add.apply_async((2, 2), unique_key="c", unique_mode="cancel_running")
    assert again.id != first.id
    row = _row(first)
    assert row.revoked_at is not None and row.terminate_signal == "SIGTERM"
    assert _row(again).state == states.PENDING
    assert add.apply_async((3, 3), unique_key="c").id == again.id


@pytest.mark.django_db
def test_cancel_running_revokes_a_waiting_holder():
    first = add.apply_async((1, 1), unique_key="w")
    again = add.apply_async((2, 2), unique_key="w", unique_mode="cancel_running")
    assert again.id != first.id and _row(first).state == states.REVOKED


@pytest.mark.django_db
def test_unique_mode_is_a_task_attribute_too():
    from djq import task

    @task(name="tests.debounced", unique_mode="debounce")
    def debounced(x):
        return x

    first = debounced.apply_async((1,), unique_key="t")
    debounced.apply_async((2,), unique_key="t")
    assert _row(first).args == [2]


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["newest", "", 3, "KEEP"])
def test_a_bad_unique_mode_names_the_task_option_and_value(bad):
    with pytest.raises(ValueError, match=rf"demo\.tasks\.add: unique_mode={bad!r}"):
        add.apply_async((1, 1), unique_key="b", unique_mode=bad)
    assert not Job.objects.exists()


def test_a_bad_unique_mode_on_the_decorator_fails_at_import():
    from djq import task

    with pytest.raises(ValueError, match=r"tests\.bad_mode: unique_mode='later'"):
        task(name="tests.bad_mode", unique_mode="later")(lambda: None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["replace", "debounce", "cancel_running"])
def test_concurrent_enqueues_of_one_key_leave_one_live_job(mode):
    """Twenty threads enqueue the same key at once: one job is live at the end (the others
    were answered by it, or revoked by cancel_running), and it holds the key."""
    barrier = threading.Barrier(20)
    ids: list[str] = []

    def enqueue(i):
        barrier.wait(timeout=30)
        ids.append(add.apply_async((i, i), unique_key="race", unique_mode=mode, countdown=60).id)

    threads = [threading.Thread(target=lambda i=i: in_thread(enqueue, i)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(ids) == 20
    live = list(Job.objects.filter(name=add.name, state=states.PENDING))
    assert len(live) == 1, live
    assert add.apply_async((0, 0), unique_key="race").id == live[0].id
    if mode == "cancel_running":
        assert Job.objects.filter(name=add.name, state=states.REVOKED).count() == 19
    else:
        assert set(ids) == {live[0].id}
        assert Job.objects.filter(name=add.name).count() == 1
