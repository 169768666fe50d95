"""djq.flow: a worker's view of the cluster-wide limits (task and queue), read from the rows
control writes, and claiming through them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import F

from djq import control, store
from djq.models import Job
from djq.roles.flow import FlowControl
from testproject.demo.tasks import add

pytestmark = pytest.mark.django_db


def test_refresh_reads_task_and_queue_limits():
    flow = FlowControl(store.alias())
    flow.refresh(["default"])
    assert flow.queue_limits == {}
    control.concurrency_limit(add.name, 2)
    control.queue_concurrency_limit("default", 3)
    control.queue_concurrency_limit("elsewhere", 9)
    flow.refresh(["default"])
    assert flow.task_limits[add.name][1] == 2
    assert flow.queue_limits == {"default": 3}  # only the worker's queues


def test_claim_respects_a_queue_concurrency_limit():
    for i in range(5):
        add.delay(i, i)
    Job.objects.waiting().update(run_after=F("run_after") - dt.timedelta(minutes=1))
    control.queue_concurrency_limit("default", 2)
    flow = FlowControl(store.alias())
    flow.refresh(["default"])
    assert len(flow.claim("flow@test", ["default"], 5, 30.0)) == 2
    assert flow.claim("flow@test", ["default"], 5, 30.0) == []  # full: backs off a moment
