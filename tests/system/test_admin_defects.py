"""The control room's defects of issue 14, each seen the way a user sees it: a real worker runs
the jobs, the pages are fetched with Django's test client as a logged-in superuser."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from djq import chain, chord, control, states
from djq.models import Job
from testproject.demo.tasks import add, fail, progress, xsum
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    return client


def job_page(client, job_id) -> str:
    response = client.get(reverse("admin:djq_job_change", args=[str(job_id)]))
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, section_id: str) -> str:
    """The HTML of ``<section id=...>`` of a job's page ('' when absent)."""
    found = re.search(rf'<section[^>]*id="{section_id}".*?</section>', html, re.S)
    return found.group(0) if found else ""


def test_a_job_revoked_in_a_custom_state_shows_revoked(admin_client, start_worker):
    start_worker()
    r = progress.delay(steps=6, delay=0.5)
    wait_for(lambda: Job.objects.get(id=r.id).custom_state == "PROGRESS", timeout=20)
    control.revoke([r.id], terminate=True)
    wait_for(lambda: Job.objects.get(id=r.id).state == states.REVOKED, timeout=20)
    summary = section(job_page(admin_client, r.id), "djq-summary")
    assert "djq-state-REVOKED" in summary
    assert "PROGRESS</span>" not in summary and "(running; set by update_state)" not in summary
    listed = admin_client.get(reverse("admin:djq_job_changelist") + "?state=REVOKED")
    row = re.search(
        rf"<tr[^>]*>(?:(?!</tr>).)*{r.id}(?:(?!</tr>).)*</tr>", listed.content.decode(), re.S
    ).group(0)
    assert "djq-state-REVOKED" in row and "PROGRESS" not in row


def test_a_failed_chord_body_keeps_its_parent_tree_and_timeline(admin_client, start_worker):
    start_worker("-c", "2")
    body = chord([add.s(1, 1), fail.si("no"), add.s(2, 2)], xsum.s())()
    wait_for(lambda: Job.objects.filter(id=body.id, state=states.FAILURE).exists(), timeout=30)
    html = job_page(admin_client, body.id)
    assert section(html, "djq-workflow"), "no work-flow tree on a failed chord body"
    tree = section(html, "djq-workflow")
    assert "chord" in tree and tree.count("djq-state-") == 4
    summary = section(html, "djq-summary")
    parent = Job.objects.get(id=body.id).parent_id
    assert parent is not None and str(parent) in summary
    assert "djq-state-FAILURE" in section(html, "djq-timeline")


def test_chain_steps_stopped_by_a_failure_keep_their_tree(admin_client, start_worker):
    start_worker()
    c = chain(add.si(1, 1), fail.si("stop"), add.si(2, 2), add.si(3, 3)).apply_async()
    wait_for(lambda: Job.objects.filter(id=c.id, state=states.FAILURE).exists(), timeout=30)
    failing = Job.objects.get(name=fail.name)
    second = Job.objects.get(id=c.parent.id)
    assert str(second.parent_id) == str(failing.id)
    html = job_page(admin_client, second.id)
    assert str(failing.id) in section(html, "djq-summary")
    tree = section(job_page(admin_client, failing.id), "djq-workflow")
    for step in (c.id, second.id, failing.id):
        assert f'data-node="{step}"' in tree, f"step {step} missing from the failing step's tree"
    assert "djq-state-FAILURE" in section(job_page(admin_client, c.id), "djq-timeline")
