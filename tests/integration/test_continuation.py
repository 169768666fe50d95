"""djq.continuation: the store's completion hook that continues work-flows (links, chains,
chords), called with the rows a batch recorded; the worker loop does not know work-flows."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db.models import F

from djq import continuation, options, states, store
from djq.models import Job
from djq.running.execute import execute
from testproject.demo.tasks import add, mul

pytestmark = pytest.mark.django_db


def _run_due() -> list[dict]:
    Job.objects.waiting().update(run_after=F("run_after") - dt.timedelta(minutes=1))
    jobs = store.claim("cont@test", ["default"], 10, 30.0)
    store.mark_started(jobs)
    return store.complete([execute(job) for job in jobs])


def test_continuation_is_the_store_completion_hook():
    assert continuation.after_complete in store._completion_hooks


def test_a_link_is_enqueued_by_the_batch_that_records_its_parent():
    parent = add.apply_async((2, 3), link=mul.s(10))
    [recorded] = _run_due()
    assert recorded["id"] == parent.id and recorded["state"] == states.SUCCESS
    [child] = Job.objects.filter(parent_id=parent.id)
    assert child.name == mul.name and child.args == [5, 10]
    [done] = _run_due()
    assert Job.objects.get(id=done["id"]).result == 50


def test_rows_that_are_not_finished_continue_nothing():
    parent = add.apply_async((1, 1), link=mul.s(2))
    row = {
        "id": parent.id,
        "state": states.STARTED,
        "name": add.name,
        "options": Job.objects.get(id=parent.id).options,
        "result": None,
        "parent_id": None,
        "root_id": parent.id,
        "group_id": None,
    }
    continuation.after_complete([row])
    assert not Job.objects.filter(parent_id=parent.id).exists()


def test_may_continue_reads_the_options():
    assert not options.may_continue(None)
    assert options.may_continue(json.dumps({"link": [dict(mul.s(2))]}))
