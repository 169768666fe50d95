"""The control room without a browser (Django's test client): pages, permissions, actions and
their admin-log entries, the paginator, the work-flow tree, retry, and the metrics endpoint.
(In a real browser with a real worker: tests/system/test_admin_browser.py.)"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from djq import control, send_task, states, store
from djq.adminsite.charts import bar_chart, nice_ceiling
from djq.adminsite.support import EstimatedCountPaginator, duration
from djq.adminsite.workflow import tree
from djq.models import Job, Queue, Worker
from testproject.demo.tasks import add, fail, xsum

pytestmark = pytest.mark.django_db

ADD = "testproject.demo.tasks.add"
LATER = 3600  # a countdown that keeps a job waiting for the whole test


def job(task_id) -> Job:
    return Job.objects.get(id=task_id)


def claim(worker: str, queues: list[str], limit: int = 100) -> list[dict]:
    """``store.claim`` and the start in a child (STARTED), in the test's transaction. Jobs are
    due from the clock time they were enqueued at, and the claim compares with the
    transaction's start (``now()`` on PostgreSQL), which in a test is earlier: the test's own
    jobs are made due a minute earlier first."""
    from datetime import timedelta

    from django.db.models import F

    Job.objects.waiting().update(run_after=F("run_after") - timedelta(minutes=1))
    jobs = store.claim(worker, queues, limit, 30.0)
    store.mark_started(jobs)
    return jobs


def run(*job_ids, worker: str = "w1@test", fail_with: Exception | None = None) -> None:
    """Claim and record jobs in-process (the worker's store calls, without a worker)."""
    wanted = {str(i) for i in job_ids}
    claimed = claim(worker, ["default", "other"])
    store.release([j for j in claimed if wanted and j.id not in wanted])
    claimed = [j for j in claimed if not wanted or j.id in wanted]
    outcomes = []
    for j in claimed:
        state = states.FAILURE if fail_with else states.SUCCESS
        result = (
            {
                "exc_type": type(fail_with).__name__,
                "exc_message": [str(fail_with)],
                "exc_module": "builtins",
            }
            if fail_with
            else 2
        )
        outcomes.append(
            {
                "id": j.id,
                "attempt": j.attempt,
                "state": state,
                "result": __import__("json").dumps(result),
                "keep_result": True,
                "traceback": "Traceback: boom" if fail_with else None,
            }
        )
    store.complete(outcomes)


def user_with(django_user_model, name: str, *codenames: str, staff: bool = True):
    user = django_user_model.objects.create_user(name, password="pw", is_staff=staff)
    perms = Permission.objects.filter(content_type__app_label="djq", codename__in=codenames)
    user.user_permissions.set(perms)
    return user


@pytest.fixture
def staff(django_user_model, client):
    """A staff user with every djq permission on jobs, queues and workers (not a superuser)."""
    codes = [f"{a}_{m}" for a in ("view", "change", "delete") for m in ("job", "queue", "worker")]
    client.force_login(user_with(django_user_model, "staff", *codes))
    return client


def post_action(client, model: str, action: str, ids, **extra):
    url = reverse(f"admin:djq_{model}_changelist")
    data = {"action": action, "_selected_action": [str(i) for i in ids], "index": 0, **extra}
    return client.post(url, data, follow=True)


# --- pages ----------------------------------------------------------------------------------------
def test_every_page_renders_with_jobs_of_all_kinds(staff):
    waiting = add.apply_async((1, 1), countdown=LATER)
    done = add.delay(2, 2)
    failed = fail.delay("boom")
    run(done.id)
    run(failed.id, fail_with=ValueError("boom"))
    store.register_worker("w1@test", "host", 1, ["default"], 2, "prefork", 30.0)
    urls = [
        reverse("admin:index"),
        reverse("admin:app_list", args=["djq"]),
        reverse("admin:djq_dashboard_changelist"),
        reverse("admin:djq_job_changelist"),
        reverse("admin:djq_queue_changelist"),
        reverse("admin:djq_worker_changelist"),
        reverse("admin:djq_worker_change", args=[Worker.objects.get().pk]),
    ]
    urls += [reverse("admin:djq_job_change", args=[r.id]) for r in (waiting, done, failed)]
    for url in urls:
        assert staff.get(url).status_code == 200, url
    index = staff.get(reverse("admin:index")).content.decode()
    assert reverse("admin:djq_dashboard_changelist") in index  # the dashboard is in the index
    page = staff.get(reverse("admin:djq_job_change", args=[failed.id])).content.decode()
    assert "Traceback: boom" in page and "Retry as a new job" in page and "Timeline" in page


def test_job_list_columns_filters_and_search(staff):
    a = add.delay(1, 2)
    b = send_task("testproject.demo.tasks.mul", (2, 3), queue="other")
    url = reverse("admin:djq_job_changelist")
    page = staff.get(url).content.decode()
    assert "djq-state-PENDING" in page and ADD in page
    only_other = staff.get(url, {"queue": "other"}).context["cl"].result_list
    assert [str(j.id) for j in only_other] == [b.id]
    by_id = staff.get(url, {"q": a.id}).context["cl"].result_list
    assert [str(j.id) for j in by_id] == [a.id]
    by_name = staff.get(url, {"q": "demo.tasks.ad"}).context["cl"].result_list
    assert [str(j.id) for j in by_name] == [a.id]
    assert staff.get(url, {"state": "PENDING", "name": ADD}).context["cl"].result_count == 1


def test_job_list_makes_the_same_queries_for_5_or_50_jobs(staff, django_assert_max_num_queries):
    from djq import enqueue_many

    url = reverse("admin:djq_job_changelist")
    enqueue_many([add.s(i, i) for i in range(5)])
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(conn) as few:
        staff.get(url)
    enqueue_many([add.s(i, i) for i in range(45)])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = staff.get(url)
    assert len(response.context["cl"].result_list) == 50


def test_job_detail_is_read_only(staff):
    r = add.delay(1, 1)
    url = reverse("admin:djq_job_change", args=[r.id])
    page = staff.get(url).content.decode()
    assert 'name="_save"' not in page
    assert staff.post(url, {"name": "changed"}).status_code == 403
    assert job(r.id).name == ADD
    assert staff.get(reverse("admin:djq_job_changelist") + "add/").status_code == 403


def test_dashboard_figures(staff):
    for i in range(3):
        add.delay(i, i)
    run()
    failed = fail.delay("x")
    run(failed.id, fail_with=ValueError("x"))
    add.apply_async((9, 9), queue="other", countdown=LATER)
    running = add.delay(5, 5)
    claim("w1@test", ["default"], 1)
    store.register_worker("w1@test", "host", 1, ["default"], 4, "prefork", 30.0)
    context = staff.get(reverse("admin:djq_dashboard_changelist")).context
    table = {
        queue: dict(zip(context["table"].states, values))
        for queue, values, _ in context["table"].rows
    }
    assert table["default"][states.SUCCESS] == 3 and table["default"][states.FAILURE] == 1
    assert table["default"][states.STARTED] == 1 and table["other"][states.PENDING] == 1
    assert (context["done_total"], context["failed_total"], context["running_total"]) == (3, 1, 1)
    assert [str(j.id) for j, _, _ in context["running"]] == [running.id]
    assert [w.name for w, _, _ in context["workers"]] == ["w1@test"]
    assert context["workers"][0][1] == 1  # busy slots
    assert {row["name"] for row in context["slowest"]} == {ADD, "testproject.demo.tasks.fail"}
    body = staff.get(reverse("admin:djq_dashboard_changelist"), {"partial": "1"})
    assert b"<svg" in body.content and b"<html" not in body.content


def test_dashboard_refresh_interval_can_be_set():
    from djq.admin import DashboardAdmin

    class Request:
        GET = {"refresh": "2"}

    admin = DashboardAdmin.__new__(DashboardAdmin)
    assert admin._refresh(Request) == 2
    Request.GET = {"refresh": "0"}
    assert admin._refresh(Request) == 1
    Request.GET = {}
    assert admin._refresh(Request) == DashboardAdmin.refresh_seconds


# --- permissions ----------------------------------------------------------------------------------
def djq_pages(job_id: str, worker_pk: int, queue: str) -> list[str]:
    return [
        reverse("admin:djq_dashboard_changelist"),
        reverse("admin:djq_job_changelist"),
        reverse("admin:djq_job_change", args=[job_id]),
        reverse("admin:djq_job_history", args=[job_id]),
        reverse("admin:djq_job_delete", args=[job_id]),
        reverse("admin:djq_queue_changelist"),
        reverse("admin:djq_queue_change", args=[queue]),
        reverse("admin:djq_worker_changelist"),
        reverse("admin:djq_worker_change", args=[worker_pk]),
    ]


def test_staff_without_djq_permissions_get_403_everywhere(django_user_model, client):
    r = add.apply_async((1, 1), countdown=LATER)
    control.pause_queue("default")
    store.register_worker("w1@test", "host", 1, ["default"], 2, "prefork", 30.0)
    client.force_login(user_with(django_user_model, "nobody"))
    for url in djq_pages(r.id, Worker.objects.get().pk, "default"):
        assert client.get(url).status_code == 403, url
    # the app's index: the admin answers 404 for an app the user has no permission in
    assert client.get(reverse("admin:app_list", args=["djq"])).status_code == 404
    for model, action in (
        ("job", "revoke"),
        ("job", "retry"),
        ("queue", "resume"),
        ("queue", "purge"),
    ):
        ids = [r.id] if model == "job" else ["default"]
        assert post_action(client, model, action, ids).status_code == 403
    for name in ("revoke", "terminate", "retry"):
        url = reverse("admin:djq_job_action", args=[r.id, name])
        assert client.post(url).status_code == 403
    assert client.get(reverse("djq:metrics")).status_code == 403
    assert job(r.id).state == states.PENDING and Queue.objects.get(name="default").paused


def test_anonymous_and_non_staff_users_are_sent_to_the_login_page(django_user_model, client):
    r = add.apply_async((1, 1), countdown=LATER)
    store.register_worker("w1@test", "host", 1, ["default"], 2, "prefork", 30.0)
    pages = djq_pages(r.id, Worker.objects.get().pk, "default")
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    client.force_login(
        user_with(django_user_model, "outsider", "view_job", "change_job", staff=False)
    )
    for url in pages:
        assert "/admin/login/" in client.get(url).get("Location", ""), url
    assert client.get(reverse("djq:metrics")).status_code == 403


def test_view_permission_shows_pages_but_no_actions(django_user_model, client):
    r = add.apply_async((1, 1), countdown=LATER)
    client.force_login(
        user_with(django_user_model, "viewer", "view_job", "view_queue", "view_worker")
    )
    page = client.get(reverse("admin:djq_job_changelist"))
    assert page.status_code == 200
    form = page.context["action_form"]  # None: no action is offered at all
    assert form is None or "revoke" not in dict(form.fields["action"].choices)
    assert client.get(reverse("admin:djq_dashboard_changelist")).status_code == 200
    detail = client.get(reverse("admin:djq_job_change", args=[r.id])).content.decode()
    assert "djq_job_action" not in detail and "/do/revoke/" not in detail
    post_action(client, "job", "revoke", [r.id])
    assert client.post(reverse("admin:djq_job_action", args=[r.id, "revoke"])).status_code == 403
    assert job(r.id).state == states.PENDING
    assert not LogEntry.objects.exists()


def test_actions_need_the_csrf_token(django_user_model):
    r = add.apply_async((1, 1), countdown=LATER)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_with(django_user_model, "staff", "view_job", "change_job"))
    assert post_action(client, "job", "revoke", [r.id]).status_code == 403
    assert client.post(reverse("admin:djq_job_action", args=[r.id, "revoke"])).status_code == 403
    assert job(r.id).state == states.PENDING


# --- job actions ----------------------------------------------------------------------------------
def test_revoke_action_revokes_waiting_jobs_and_logs_them(staff):
    waiting = add.apply_async((1, 1), countdown=LATER)
    done = add.delay(2, 2)
    run(done.id)
    response = post_action(staff, "job", "revoke", [waiting.id, done.id], confirm="yes")
    assert "1 waiting job(s) will not run" in response.content.decode()
    assert "1 finished job(s) left as they were" in response.content.decode()
    assert job(waiting.id).state == states.REVOKED and job(done.id).state == states.SUCCESS
    entry = LogEntry.objects.get()
    assert entry.object_id == waiting.id and entry.change_message == "Revoked"


def test_revoke_and_terminate_marks_running_jobs_for_their_worker(staff):
    r = add.delay(1, 1)
    claim("w1@test", ["default"], 1)
    post_action(staff, "job", "revoke_and_terminate", [r.id], confirm="yes")
    running = job(r.id)
    assert running.state == states.STARTED and running.revoked_at is not None
    assert running.terminate_signal == "SIGTERM"


def test_retry_action_enqueues_new_jobs_linked_to_the_failed_ones(staff):
    failed = add.apply_async((3, 4), queue="other", priority=7)
    run(failed.id, fail_with=ValueError("nope"))
    pending = add.delay(1, 1)
    response = post_action(staff, "job", "retry", [failed.id, pending.id], confirm="yes")
    assert "Retried 1 job(s)" in response.content.decode()
    new = Job.objects.get(parent_id=failed.id)
    assert (new.name, new.args, new.queue, new.priority, new.state) == (
        ADD,
        [3, 4],
        "other",
        7,
        states.PENDING,
    )
    assert str(new.root_id) == failed.id
    assert LogEntry.objects.get().change_message == f"Retried as job {new.id}"


def test_buttons_on_the_job_page(staff):
    r = add.apply_async((1, 1), countdown=LATER)
    page = staff.get(reverse("admin:djq_job_change", args=[r.id])).content.decode()
    assert reverse("admin:djq_job_action", args=[r.id, "revoke"]) in page
    response = staff.post(reverse("admin:djq_job_action", args=[r.id, "revoke"]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:djq_job_change", args=[r.id])
    assert job(r.id).state == states.REVOKED
    staff.post(reverse("admin:djq_job_action", args=[r.id, "retry"]))
    assert Job.objects.filter(parent_id=r.id).count() == 1
    assert staff.post(reverse("admin:djq_job_action", args=[r.id, "nonsense"])).status_code == 403
    get = staff.get(reverse("admin:djq_job_action", args=[r.id, "revoke"]))
    assert get.status_code == 302  # a GET does nothing


def test_delete_action(staff):
    r = add.apply_async((1, 1), countdown=LATER)
    post_action(staff, "job", "delete_selected", [r.id], post="yes")
    assert not Job.objects.filter(id=r.id).exists()


def test_actions_refuse_huge_selections(staff, monkeypatch):
    from djq import admin as djq_admin
    from djq import enqueue_many

    monkeypatch.setattr(djq_admin, "MAX_ACTION_JOBS", 3)
    results = enqueue_many([add.s(i, i) for i in range(4)])
    response = post_action(staff, "job", "revoke", [r.id for r in results], confirm="yes")
    assert "Select at most 3 jobs" in response.content.decode()
    assert not Job.objects.filter(state=states.REVOKED).exists()


# --- retry_jobs -----------------------------------------------------------------------------------
def test_retry_jobs_keeps_the_call_and_drops_the_work_flow_links():
    failed = add.apply_async((1, 2), kwargs={}, headers={"h": 1}, time_limit=9, link=xsum.s())
    run(failed.id, fail_with=ValueError("x"))
    revoked = add.apply_async((5, 5), countdown=LATER)
    control.revoke(revoked.id)
    fine = add.apply_async((0, 0), countdown=LATER)
    results = control.retry_jobs([failed.id, fine.id, revoked.id, str(uuid.uuid4())])
    assert len(results) == 2
    first, second = job(results[0].id), job(results[1].id)
    assert (str(first.parent_id), first.args, str(second.parent_id)) == (
        failed.id,
        [1, 2],
        revoked.id,
    )
    # no link (it is not re-run); retry_of marks the job as retried once
    assert first.options == {"headers": {"h": 1}, "time_limit": 9, "retry_of": failed.id}
    assert job(fine.id).state == states.PENDING
    assert Job.objects.count() == 5


# --- queues ---------------------------------------------------------------------------------------
def test_queue_list_counts_and_registers_queues_seen_in_jobs(staff):
    add.apply_async((1, 1), queue="emails")
    add.apply_async((1, 1), queue="emails")
    add.apply_async((1, 1), queue="emails", countdown=LATER)
    r = add.apply_async((1, 1), queue="reports")
    claim("w1@test", ["reports"], 1)
    response = staff.get(reverse("admin:djq_queue_changelist"))
    rows = {q.name: q for q in response.context["cl"].result_list}
    assert (rows["emails"].stats.waiting, rows["emails"].stats.running) == (3, 0)
    assert (rows["reports"].stats.waiting, rows["reports"].stats.running) == (0, 1)
    assert rows["emails"].stats.oldest_due is not None and rows["reports"].stats.oldest_due is None
    assert job(r.id).state == states.STARTED


def test_pause_resume_and_purge_actions(staff):
    add.apply_async((1, 1), queue="emails")
    other = add.apply_async((1, 1), queue="reports")
    staff.get(reverse("admin:djq_queue_changelist"))  # registers the queues
    post_action(staff, "queue", "pause", ["emails"])
    assert Queue.objects.get(name="emails").paused
    assert claim("w1@test", ["emails"], 10) == []  # paused: nothing is claimed
    post_action(staff, "queue", "resume", ["emails"])
    assert not Queue.objects.get(name="emails").paused
    confirm = post_action(staff, "queue", "purge", ["emails"])
    assert b"Purge waiting jobs?" in confirm.content and b"1 waiting job" in confirm.content
    assert Job.objects.filter(queue="emails").count() == 1  # asked, not done
    done = post_action(staff, "queue", "purge", ["emails"], confirm="yes")
    assert b"Purged 1 waiting job(s)" in done.content
    assert not Job.objects.filter(queue="emails").exists() and job(other.id)
    messages = list(LogEntry.objects.order_by("pk").values_list("change_message", flat=True))
    assert messages == ["Paused", "Resumed", "Purged waiting jobs"]


def test_purge_needs_the_delete_job_permission(django_user_model, client):
    add.apply_async((1, 1), queue="emails")
    control.register_queues(["emails"])
    client.force_login(
        user_with(django_user_model, "ops", "view_queue", "change_queue", "view_job")
    )
    assert post_action(client, "queue", "purge", ["emails"], confirm="yes").status_code == 403
    assert Job.objects.filter(queue="emails").count() == 1


# --- workers --------------------------------------------------------------------------------------
def test_worker_list_online_offline_and_current_jobs(staff):
    store.register_worker("alive@h", "h", 1, ["default"], 2, "prefork", 30.0)
    store.register_worker("gone@h", "h", 2, ["default"], 2, "threads", 30.0)
    store.stop_worker("gone@h", 3, 1)
    r = add.delay(1, 1)
    claim("alive@h", ["default"], 1)
    url = reverse("admin:djq_worker_changelist")
    page = staff.get(url).content.decode()
    assert "djq-state-ONLINE" in page and "djq-state-OFFLINE" in page
    online = staff.get(url, {"status": "online"}).context["cl"].result_list
    assert [w.name for w in online] == ["alive@h"] and online[0].n_running == 1
    offline = staff.get(url, {"status": "offline"}).context["cl"].result_list
    assert [w.name for w in offline] == ["gone@h"]
    detail = staff.get(reverse("admin:djq_worker_change", args=[online[0].pk])).content.decode()
    assert r.id in detail


# --- the work-flow tree ---------------------------------------------------------------------------
def test_tree_of_a_chain_of_jobs():
    first = add.delay(1, 1)
    second = send_task(ADD, (2, 2), parent_id=first.id, root_id=first.id)
    third = send_task(ADD, (3, 3), parent_id=second.id, root_id=first.id)
    top = tree(job(third.id))
    assert top.id == first.id and top.children[0].id == second.id
    leaf = top.children[0].children[0]
    assert leaf.id == third.id and leaf.current and not top.current
    assert tree(job(add.delay(0, 0).id)) is None  # a job on its own has no tree


def test_tree_of_a_chord_from_a_member():
    from djq import chord

    body = chord([add.s(1, 1), add.s(2, 2)], xsum.s())()
    member = Job.objects.filter(group_id__isnull=False).order_by("created_at").first()
    top = tree(member)
    assert top.kind == "chord" and (top.size, top.done) == (2, 0)
    assert [c.name for c in top.children] == [ADD, ADD]
    assert any(c.current for c in top.children)
    assert not Job.objects.filter(id=body.id).exists()  # the body waits for its members


# --- the paginator --------------------------------------------------------------------------------
def test_paginator_counts_exactly_up_to_its_limit_then_estimates(monkeypatch):
    from djq import enqueue_many

    enqueue_many([add.s(i, i) for i in range(30)])
    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 10)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE djq_job")
    paginator = EstimatedCountPaginator(Job.objects.order_by("-created_at"), 5)
    if connection.vendor == "postgresql":
        assert paginator.count > 10 and paginator.estimated
    else:
        assert paginator.count == 30 and not paginator.estimated
    add.apply_async((1, 1), queue="other")
    small = EstimatedCountPaginator(Job.objects.filter(queue="other").order_by("-created_at"), 5)
    assert small.count == 1 and not small.estimated


@pytest.mark.postgres_only
def test_job_list_says_about_when_the_count_is_an_estimate(staff, monkeypatch):
    from djq import enqueue_many

    enqueue_many([add.s(i, i) for i in range(30)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE djq_job")
    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 10)
    page = staff.get(reverse("admin:djq_job_changelist")).content.decode()
    assert "about" in page


# --- metrics --------------------------------------------------------------------------------------
def test_metrics_for_staff_and_with_the_token(staff, client):
    add.apply_async((1, 1), queue="emails")
    done = add.delay(1, 1)
    run(done.id)
    store.register_worker("w1@test", "host", 1, ["default"], 2, "prefork", 30.0)
    text = staff.get(reverse("djq:metrics")).content.decode()
    assert 'djq_queue_waiting_jobs{queue="emails"} 1' in text
    assert 'djq_jobs{queue="emails",state="PENDING"} 1' in text
    assert (
        'djq_jobs_finished_recent{queue="default",state="SUCCESS",window_seconds="3600"} 1' in text
    )
    assert f'djq_job_runtime_seconds_count{{task="{ADD}"}} 1' in text
    assert 'djq_workers{status="online"} 1' in text
    anonymous = Client()
    assert anonymous.get(reverse("djq:metrics")).status_code == 403
    with override_settings(DJQ_METRICS_TOKEN="s3cret"):
        ok = anonymous.get(reverse("djq:metrics"), HTTP_AUTHORIZATION="Bearer s3cret")
        bad = anonymous.get(reverse("djq:metrics"), HTTP_AUTHORIZATION="Bearer nope")
    assert ok.status_code == 200 and ok["Content-Type"].startswith("text/plain; version=0.0.4")
    assert bad.status_code == 403
    assert (
        anonymous.get(reverse("djq:metrics"), HTTP_AUTHORIZATION="Bearer s3cret").status_code == 403
    )


# --- small pieces ---------------------------------------------------------------------------------
def test_duration_and_chart_helpers():
    import datetime as dt

    assert [duration(dt.timedelta(seconds=s)) for s in (0.004, 2.5, 42, 125, 7300, 200000)] == [
        "4 ms",
        "2.50 s",
        "42.0 s",
        "2 min 5 s",
        "2 h 1 min",
        "2 d 7 h",
    ]
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 12, 180, 999)] == [1, 1, 5, 10, 20, 200, 1000]
    t0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    chart = bar_chart([(t0 + dt.timedelta(minutes=i), i, 1) for i in range(60)])
    assert len(chart["bars"]) == 60 and chart["yticks"][-1]["label"] == "100"
    tallest = chart["bars"][-1]
    assert tallest["y_bad"] < tallest["y_ok"] and tallest["h_ok"] > tallest["h_bad"] > 0
    assert bar_chart([(t0, 0, 0)])["empty"]
