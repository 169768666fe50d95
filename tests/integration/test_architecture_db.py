"""Architecture rules that need a database: the admin never deletes a job a worker holds (in
bulk or from its page), and control messages are swept whichever workers run."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.db.models import F
from django.urls import reverse

from djq import admin as djq_admin
from djq import states, store
from djq.models import ControlMessage, ControlReply, Job
from djq.roles.remote import Mailbox
from djq.store import rows as store_rows
from testproject.demo.tasks import add
from tests.integration.test_admin import post_action, staff  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db
LATER = 3600


def _claim_and_start(n: int) -> list[dict]:
    for i in range(n):
        add.delay(i, i)
    Job.objects.waiting().update(run_after=F("run_after") - dt.timedelta(minutes=1))
    jobs = store.claim("w1@test", ["default"], n, 30.0)
    store.mark_started(jobs[1:])  # the first stays RESERVED, the others are STARTED
    return jobs


def test_the_job_admin_has_no_stock_bulk_delete():
    action = djq_admin.JobAdmin.delete_selected
    assert action is not django_delete_selected
    assert "delete_selected" in djq_admin.JobAdmin.actions


def test_the_admin_never_deletes_a_held_job(staff):  # noqa: F811
    held = [j.id for j in _claim_and_start(2)]
    assert {Job.objects.get(id=i).state for i in held} == {states.RESERVED, states.STARTED}
    waiting = add.apply_async((1, 1), countdown=LATER).id
    done = add.delay(2, 2).id
    Job.objects.filter(id=done).update(state=states.SUCCESS, finished_at=F("created_at"))
    ids = [*held, waiting, done]
    response = post_action(staff, "job", "delete_selected", ids, confirm="yes")
    assert "Deleted 2 job(s); 2 job(s) held by a worker" in response.content.decode()
    assert sorted(Job.objects.values_list("id", flat=True)) == sorted(held)
    # nor from the job's own page: no delete permission there, and the view refuses
    page = reverse("admin:djq_job_delete", args=[held[1]])
    assert staff.post(page, {"post": "yes"}).status_code in (302, 403)
    assert Job.objects.filter(id=held[1]).exists()


def test_delete_jobs_keeps_held_jobs():
    held = [j.id for j in _claim_and_start(2)]
    waiting = add.apply_async((1, 1), countdown=LATER).id
    assert store_rows.delete_jobs([*held, waiting, "no-such-job"]) == [waiting]
    assert Job.objects.count() == 2


# --- the control-message sweep ------------------------------------------------------------------
def _expired(n: int) -> None:
    for _ in range(n):
        message = store_rows.add_control_message("ping", {}, None, True, -60)
        store_rows.add_control_reply(message, "w@h", {"ok": "pong"}, store.db_now())


def test_the_sweep_deletes_expired_messages_and_their_replies():
    _expired(3)
    live = store_rows.add_control_message("ping", {}, None, False, 60)
    assert store_rows.sweep_control_messages(store.db_now(), chance=1.0) == 3
    assert list(ControlMessage.objects.values_list("id", flat=True)) == [live.id]
    assert not ControlReply.objects.exists()


def test_the_sweep_is_a_draw_with_a_backlog_guarantee():
    _expired(store_rows.SWEEP_BACKLOG)
    assert store_rows.sweep_control_messages(store.db_now(), chance=0.0) == 0  # lost the draw
    _expired(1)  # past the backlog: swept whatever the draw
    assert store_rows.sweep_control_messages(store.db_now(), chance=0.0) == 101
    assert not ControlMessage.objects.exists()


class _Worker:
    name = "w1@test"


def test_every_worker_sweeps_not_only_some_pids(monkeypatch):
    """The mailbox of any worker (whatever its pid) sweeps once the backlog is reached."""
    monkeypatch.setattr("os.getpid", lambda: 7 * 1000 + 1)
    mailbox = Mailbox(_Worker(), store.alias())
    _expired(store_rows.SWEEP_BACKLOG + 1)
    store_rows.add_control_message("ping", {}, None, False, 60)
    assert mailbox.poll() == 1
    assert ControlMessage.objects.count() == 1
