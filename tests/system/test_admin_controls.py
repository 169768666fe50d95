"""The control room's controls (issue 14): task limits, a queue's page (its jobs, pause/resume,
concurrency limit), a worker's page (pool, autoscale, consumers) — each through ``djq.control``,
in the admin log, bad values refused by name. The worker controls with a real worker."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.urls import reverse

from djq import control, states
from djq.models import Job, Queue, TaskLimit, Worker
from testproject.demo.tasks import add, limited
from tests.helpers import wait_for

ADD = "testproject.demo.tasks.add"


@pytest.fixture
def root(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    return client


def messages_of(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


@pytest.mark.django_db
def test_task_limits_page_sets_rate_and_concurrency_and_refuses_bad_values(root):
    url = reverse("admin:djq_job_limits")
    page = root.get(url).content.decode()
    assert ADD in page and limited.name in page and "10/s" in page  # limited's own rate
    done = root.post(url, {"task": ADD, "rate_limit": "5/m", "concurrency_limit": "3"}, follow=True)
    assert "rate limit 5/m" in messages_of(done)
    row = TaskLimit.objects.get(name=ADD)
    assert (row.rate_limit, row.concurrency_limit) == ("5/m", 3)
    assert LogEntry.objects.filter(object_id=ADD).exists()
    for data, text in (
        ({"rate_limit": "fast"}, "fast"),
        ({"concurrency_limit": "0"}, "'0'"),
        ({"time_limit": "-3"}, "'-3'"),
    ):
        bad = root.post(url, {"task": ADD, **data}, follow=True)
        assert ADD in messages_of(bad) and text in messages_of(bad), data
    assert TaskLimit.objects.get(name=ADD).rate_limit == "5/m"  # unchanged by the bad posts
    unknown = root.post(url, {"task": "nope.x", "rate_limit": "1/s"}, follow=True)
    assert "No task named 'nope.x'" in messages_of(unknown)


@pytest.mark.django_db
def test_a_queue_page_lists_its_jobs_pauses_resumes_and_limits(root):
    waiting = add.apply_async((1, 1), queue="emails", countdown=3600)
    control.register_queues(["emails"])
    page_url = reverse("admin:djq_queue_change", args=["emails"])
    page = root.get(page_url).content.decode()
    assert f"/{waiting.id}/change/" in page and 'id="djq-pause"' in page
    assert "no online worker consumes it" in page
    root.post(reverse("admin:djq_queue_action", args=["emails", "pause"]))
    assert Queue.objects.get(name="emails").paused
    assert 'id="djq-resume"' in root.get(page_url).content.decode()
    root.post(reverse("admin:djq_queue_action", args=["emails", "resume"]))
    assert not Queue.objects.get(name="emails").paused
    root.post(
        reverse("admin:djq_queue_action", args=["emails", "limit"]), {"concurrency_limit": "2"}
    )
    assert Queue.objects.get(name="emails").concurrency_limit == 2
    bad = root.post(
        reverse("admin:djq_queue_action", args=["emails", "limit"]),
        {"concurrency_limit": "many"},
        follow=True,
    )
    assert "emails" in messages_of(bad) and "'many'" in messages_of(bad)
    assert Queue.objects.get(name="emails").concurrency_limit == 2
    root.post(
        reverse("admin:djq_queue_action", args=["emails", "limit"]), {"concurrency_limit": ""}
    )
    assert Queue.objects.get(name="emails").concurrency_limit is None
    assert LogEntry.objects.filter(object_id="emails").count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_workers_page_adds_a_consumer_and_grows_its_pool(root, start_worker):
    worker = start_worker("-Q", "default", "-c", "1")
    row = Worker.objects.get()
    url = reverse("admin:djq_worker_change", args=[quote(row.pk)])
    assert 'id="djq-add-consumer"' in root.get(url).content.decode()

    def act(action, **data):
        target = reverse("admin:djq_worker_action", args=[quote(row.pk), action])
        return messages_of(root.post(target, data, follow=True))

    job = add.apply_async((2, 3), queue="extra")
    assert "add consumer extra" in act("add_consumer", queue="extra")
    wait_for(lambda: Job.objects.get(id=job.id).state == states.SUCCESS, timeout=20)
    assert "pool grow by 1" in act("grow", n="1")
    assert "'zero'" in act("grow", n="zero")
    assert "min (5) must not exceed max (2)" in act("autoscale", max="2", min="5")
    assert "does not consume queue 'nope'" in act("cancel_consumer", queue="nope")
    assert "cancel consumer extra" in act("cancel_consumer", queue="extra")
    assert worker.is_alive()
