"""Atomic tasks, snooze and dead letters at the store and API level (issue 15, points 1, 4, 6):
option checks, eager runs, the rescuer's lost count, requeue and the fenced completion of an
atomic child. The worker-level acceptance is in tests/system/test_worker_atomic.py and
test_worker_snooze_dead.py."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings

from djq import states, store, task
from djq.exceptions import WorkerLostError
from djq.models import Job
from djq.records import Outcome
from djq.running.execute import _commit
from djq.serialization import dumps
from testproject.demo.tasks import add, record_slowly

pytestmark = pytest.mark.django_db

W = "w1@test"


@task(name="tests.atomic_group", atomic=True)
def atomic_group(name: str, fail: bool = False):
    Group.objects.create(name=name)
    if fail:
        raise RuntimeError("after the write")
    return name


@task(name="tests.snooze_once", bind=True, max_retries=0)
def snooze_once(self):
    if self.request.retries == 0 and not getattr(self, "_snoozed", False):
        self._snoozed = True
        raise self.snooze(5)
    return self.request.retries


def test_atomic_must_be_a_flag_naming_the_task():
    with pytest.raises(TypeError, match=r"tests\.bad_atomic: atomic must be True or False"):

        @task(name="tests.bad_atomic", atomic="yes")
        def bad():
            pass

    with pytest.raises(TypeError, match=r"add: atomic must be True or False, got 'x'"):
        add.apply_async((1, 2), atomic="x")
    assert not Job.objects.exists()


def test_apply_async_atomic_is_stored_for_the_worker():
    result = add.apply_async((1, 2), atomic=True)
    assert Job.objects.get(id=result.id).options == {"atomic": True}


def test_eager_atomic_keeps_the_writes_of_a_success_only():
    assert atomic_group.apply(("kept",)).get() == "kept"
    failed = atomic_group.apply(("dropped", True))
    assert failed.state == states.FAILURE
    assert list(Group.objects.values_list("name", flat=True)) == ["kept"]
    # apply(atomic=False) turns it off for one call
    atomic_group.apply(("plain", True), atomic=False)
    assert Group.objects.filter(name="plain").exists()


def test_eager_snooze_runs_again_without_spending_a_retry():
    result = snooze_once.apply()
    assert result.state == states.SUCCESS and result.get() == 0


def test_snooze_value_errors_name_the_task():
    for value, error in ((-1, ValueError), (float("nan"), ValueError), ("1", TypeError)):
        with pytest.raises(error, match=r"tests\.snooze_once: snooze"):
            snooze_once.snooze(value)
    assert snooze_once.snooze(0).seconds == 0.0


def _started(limit: int = 1, lease: float = -5):
    jobs = store.claim(W, ["default"], limit, lease)
    store.mark_started(jobs)
    return jobs


@override_settings(DJQ_MAX_WORKER_LOST=2)
def test_a_job_lost_with_its_worker_max_times_ends_dead():
    late = record_slowly.delay("/dev/null", "x")  # acks_late
    _started()
    [first] = store.rescue()
    assert first["state"] == states.PENDING
    assert Job.objects.get(id=late.id).lost_count == 1
    _started()
    [second] = store.rescue()
    assert second["state"] == states.FAILURE
    row = Job.objects.get(id=late.id)
    assert (row.dead_reason, row.lost_count, row.attempt) == (states.DEAD_WORKER_LOST, 2, 2)
    with pytest.raises(WorkerLostError, match="lost with its worker 2 times"):
        late.get(timeout=1)
    assert late.failed() and late.dead_reason == states.DEAD_WORKER_LOST
    assert list(Job.objects.dead().values_list("id", flat=True)) == [late.id]


@override_settings(DJQ_MAX_WORKER_LOST=1)
def test_reserved_jobs_are_not_counted_lost():
    late = record_slowly.delay("/dev/null", "x")
    store.claim(W, ["default"], 1, -5)  # reserved, never started
    [rescued] = store.rescue()
    assert rescued["state"] == states.PENDING
    assert Job.objects.get(id=late.id).lost_count == 0


@override_settings(DJQ_MAX_WORKER_LOST=0)
def test_max_worker_lost_0_requeues_for_ever():
    late = record_slowly.delay("/dev/null", "x")
    for _ in range(5):
        _started()
        [rescued] = store.rescue()
        assert rescued["state"] == states.PENDING
    assert Job.objects.get(id=late.id).lost_count == 5


def test_requeue_dead_only_touches_dead_jobs():
    dead, plain = add.delay(1, 1), add.delay(2, 2)
    jobs = {j.id: j for j in _started(2, 600)}
    store.complete(
        [
            Outcome(
                id=dead.id,
                attempt=1,
                state=states.FAILURE,
                result=dumps(None),
                dead_reason=states.DEAD_REJECTED,
            ),
            Outcome(id=plain.id, attempt=1, state=states.FAILURE, result=dumps(None)),
        ]
    )
    assert set(jobs) == {dead.id, plain.id}
    assert store.requeue_dead([dead.id, plain.id, "nope"]) == [dead.id]
    row = Job.objects.get(id=dead.id)
    assert (row.state, row.dead_reason, row.finished_at, row.result) == (
        states.PENDING,
        "",
        None,
        None,
    )
    assert [e[0] for e in row.history][-2:] == [states.FAILURE, states.PENDING]
    assert Job.objects.get(id=plain.id).state == states.FAILURE
    [again] = store.claim(W, ["default"], 5, 600)
    assert (again.id, again.attempt) == (dead.id, 2)


def test_snoozed_outcome_does_not_spend_a_retry_but_a_retry_does():
    snoozed, retried = add.delay(1, 1), add.delay(2, 2)
    _started(2, 600)
    rows = store.complete(
        [
            Outcome(id=snoozed.id, attempt=1, state=states.RETRY, countdown=0, snoozed=True),
            Outcome(id=retried.id, attempt=1, state=states.RETRY, countdown=0),
        ]
    )
    assert len(rows) == 2
    assert Job.objects.get(id=snoozed.id).retries == 0
    assert Job.objects.get(id=retried.id).retries == 1


def test_an_atomic_commit_is_fenced_like_any_completion():
    """The child's own completion (djq.running.execute._commit) records nothing for a job that
    is no longer its own: rescued, then claimed again by another worker."""
    job = record_slowly.delay("/dev/null", "x")  # acks_late: rescued back to the queue
    [first] = _started(1, -5)
    store.rescue()
    _started(1, 600)  # attempt 2, elsewhere
    late = Outcome(id=first.id, attempt=first.attempt, state=states.SUCCESS, result=dumps(2))
    assert _commit(late, "default") is False
    assert Job.objects.get(id=job.id).state == states.STARTED
