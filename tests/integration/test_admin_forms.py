"""The schedule form refuses what cannot work, retry happens once and links to the new job,
"Run now" links to the job it made, and the pages say what they mean (issue 14, defects 3, 4
and the wording of 5), through Django's test client. (Layout in Chromium:
tests/system/test_admin_layout_browser.py.)"""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from djq import control, store
from djq.models import Job, PeriodicTask, Worker
from djq.schedules import crontab
from testproject.demo.tasks import fail

pytestmark = pytest.mark.django_db
ADD = "testproject.demo.tasks.add"


@pytest.fixture
def root(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    return client


def add_schedule(client, **fields):
    data = {
        "name": "s",
        "task": ADD,
        "enabled": "on",
        "args": "[1, 2]",
        "kwargs": "{}",
        "options": "{}",
        "crontab": "",
        "interval_every": "",
        "interval_period": "",
        "clocked_time_0": "",
        "clocked_time_1": "",
        "timezone": "",
        "catch_up": "once",
        **fields,
    }
    return client.post(reverse("admin:djq_periodictask_add"), data)


def errors_of(response) -> str:
    assert response.status_code == 200, "the form was saved"
    return json.dumps(response.context["adminform"].form.errors)


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"task": "nope.unknown", "crontab": "* * * * *"}, "No task named 'nope.unknown'"),
        ({"task": "testproject.demo.tasks.ad", "crontab": "* * * * *"}, "Did you mean"),
        ({"crontab": "0 0 31 2 *"}, "never fires"),
        ({"crontab": "*/61 * * * *"}, "step '*/61' must be between 1 and 59"),
        ({"crontab": "0 */24 * * *"}, "hour step"),
    ],
)
def test_the_schedule_form_refuses_schedules_that_cannot_work(root, fields, expected):
    assert expected in errors_of(add_schedule(root, **fields))
    assert not PeriodicTask.objects.exists()


def test_two_schedules_at_once_get_a_plain_message(root):
    text = errors_of(
        add_schedule(root, crontab="* * * * *", interval_every="5", interval_period="minutes")
    )
    assert "Give only one schedule" in text
    assert "djq_periodic_one_schedule" not in text and "is violated" not in text


def test_a_working_schedule_is_saved(root):
    response = add_schedule(root, crontab="*/15 * * * *")
    assert response.status_code == 302
    assert PeriodicTask.objects.get(name="s").crontab == "*/15 * * * *"


def test_crontab_in_code_refuses_the_same_expressions():
    for expression in ("0 0 31 2 *", "*/61 * * * *", "0 0 30 2 *"):
        with pytest.raises(ValueError, match="never fires|step"):
            crontab.from_string(expression)
    assert crontab.from_string("0 0 31 2 1").expression == "0 0 31 2 1"  # or Mondays: fires


def finished_failure() -> str:
    """A FAILURE job, recorded through the store as a worker would."""
    r = fail.delay("boom")
    Job.objects.filter(id=r.id).update(run_after=store.db_now().replace(year=2000))
    [claimed] = store.claim("w@test", ["default"], 1, 30.0)
    store.complete(
        [
            {
                "id": claimed.id,
                "attempt": claimed.attempt,
                "state": "FAILURE",
                "result": json.dumps(
                    {"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}
                ),
                "keep_result": True,
                "traceback": "Traceback: boom",
            }
        ]
    )
    return r.id


def test_retry_from_the_job_page_goes_to_the_new_job_and_happens_once(root):
    old = finished_failure()
    url = reverse("admin:djq_job_action", args=[old, "retry"])
    response = root.post(url)
    new = Job.objects.get(parent_id=old)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:djq_job_change", args=[str(new.id)])
    page = root.get(response["Location"]).content.decode()
    assert reverse("admin:djq_job_change", args=[old]) in page  # "Retry of" links back
    old_page = root.get(reverse("admin:djq_job_change", args=[old])).content.decode()
    assert "Retry as a new job" not in old_page and f"/{new.id}/change/" in old_page
    again = root.post(url, follow=True)
    assert Job.objects.filter(parent_id=old).count() == 1
    assert "already retried" in again.content.decode()
    assert control.retry_jobs([old]) == []


def test_retry_action_and_run_now_link_to_the_new_jobs(root):
    old = finished_failure()
    data = {"action": "retry", "_selected_action": [old], "index": 0}
    page = root.post(reverse("admin:djq_job_changelist"), data, follow=True).content.decode()
    new = Job.objects.get(parent_id=old)
    assert f'href="{reverse("admin:djq_job_change", args=[str(new.id)])}"' in page
    pt = PeriodicTask.objects.create(name="p", task=ADD, args=[1, 2], crontab="0 0 * * *")
    data = {"action": "run_now", "_selected_action": [pt.pk], "index": 0}
    page = root.post(reverse("admin:djq_periodictask_changelist"), data, follow=True)
    made = Job.objects.get(name=ADD)
    assert f'href="{reverse("admin:djq_job_change", args=[str(made.id)])}"' in page.content.decode()


def test_pages_say_what_they_mean(root):
    old = finished_failure()
    page = root.get(reverse("admin:djq_job_change", args=[old])).content.decode()
    assert "ValueError: boom" in page and '"exc_type"' not in page  # not raw JSON
    listed = root.get(reverse("admin:djq_job_changelist")).content.decode()
    assert "ValueError: boom" in listed
    PeriodicTask.objects.create(
        name="h", task=ADD, interval_every=1, interval_period="hours", last_run_at=store.db_now()
    )
    PeriodicTask.objects.create(name="m", task=ADD, interval_every=5, interval_period="minutes")
    schedules = root.get(reverse("admin:djq_periodictask_changelist")).content.decode()
    assert "every hour" in schedules and "every 5 minutes" in schedules
    assert "every 1 hours" not in schedules
    control.pause_queue("reports")
    queue = root.get(reverse("admin:djq_queue_change", args=["reports"])).content.decode()
    assert "djq-state-PAUSED" in queue and "icon-yes.svg" not in queue
    queues = root.get(reverse("admin:djq_queue_changelist")).content.decode()
    assert "their jobs stay" in queues
    store.register_worker("w1@test", "host", 1, ["default"], 2, "prefork", 30.0)
    workers = root.get(reverse("admin:djq_worker_changelist")).content.decode()
    assert "a live worker is not stopped" in workers


def test_one_date_format_on_every_list(root):
    """The job, worker and schedule lists all write moments as 2026-12-03 10:31:28."""
    import re

    finished_failure()
    store.register_worker("w1@test", "host", 1, ["default"], 2, "prefork", 30.0)
    pk = quote(Worker.objects.get().pk)
    worker = root.get(reverse("admin:djq_worker_change", args=[pk]), follow=True).content.decode()
    PeriodicTask.objects.create(name="h", task=ADD, crontab="0 3 * * *", last_run_at=store.db_now())
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    for url in (reverse("admin:djq_job_changelist"), reverse("admin:djq_periodictask_changelist")):
        html = root.get(url).content.decode()
        assert stamp.search(html), url
        assert not re.search(r"[A-Z][a-z]{2}\. \d+, \d{4}", html), url  # "Dec. 3, 2026"
    assert stamp.search(worker) and not re.search(r"[A-Z][a-z]{2}\. \d+, \d{4}", worker)


def test_jobs_in_a_queue_no_worker_consumes_are_pointed_out(root):
    from testproject.demo.tasks import add

    store.register_worker("w1@test", "host", 1, ["default"], 2, "prefork", 30.0)
    add.delay(1, 1)
    dashboard = reverse("admin:djq_dashboard_changelist")
    assert "djq-unconsumed" not in root.get(dashboard).content.decode()
    add.apply_async((1, 2), queue="nobody")
    add.apply_async((1, 3), queue="nobody")
    for url in (dashboard, dashboard + "?partial=1", reverse("admin:djq_queue_changelist")):
        page = root.get(url).content.decode()
        assert "2 job(s) wait in queue <b>nobody</b>" in page, url
        assert "djq_worker -Q nobody" in page, url


def test_search_by_exception_text_and_by_an_unregistered_task_name(root):
    from djq import send_task

    failed = finished_failure()  # ValueError: boom
    ghost = send_task("gone.tasks.old_report", (1,))
    PeriodicTask.objects.create(name="g", task="other.tasks.nightly_ghost", crontab="0 3 * * *")
    nightly = send_task("other.tasks.nightly_ghost")
    url = reverse("admin:djq_job_changelist")

    def found(term):
        return [str(j.id) for j in root.get(url, {"q": term}).context["cl"].result_list]

    assert found("error:boom") == [failed] and found("error:valueerr") == [failed]
    assert found("error:nothing like it") == []
    assert found("gone.tasks.old_report") == [ghost.id]  # the exact name of no registered task
    assert found("nightly_ghost") == [nightly.id]  # a schedule's task, not registered
    assert found(failed[:6]) == [failed]
    assert found("zzzz-not-an-id") == []


def test_jobs_of_a_model_instance_in_any_model_admin(django_user_model):
    from django.contrib import admin

    from djq.admin_mixins import JobsForObjectMixin
    from testproject.demo.tasks import echo

    class UserAdmin(JobsForObjectMixin, admin.ModelAdmin):
        djq_job_kwargs = ("user_id",)

    user = django_user_model.objects.create_user("u1")
    by_arg, by_kwarg = echo.delay(user.pk), echo.delay(user_id=user.pk)
    other = echo.delay(user.pk + 1000)
    model_admin = UserAdmin(django_user_model, admin.site)
    html = model_admin.djq_jobs(user)
    for job in (by_arg, by_kwarg):
        assert reverse("admin:djq_job_change", args=[job.id]) in html
    assert other.id not in html and "djq-state-PENDING" in html
