"""Batches in the admin, in Chromium: the list shows each batch's progress (ended/total, failed),
a batch's page lists its members and callbacks, and a member job's page links to its batch.
Screenshot: artifacts/admin-batch.png."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from djq import batch
from djq.models import Batch
from testproject.demo.tasks import add, echo, fail
from tests.helpers import REPO_ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ARTIFACTS = REPO_ROOT / "artifacts"
PASSWORD = "pw-for-tests"


def test_batch_list_page_and_member_link(admin_browser, django_user_model, start_worker):
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    done = batch([add.s(1, 1), fail.si("no"), add.s(2, 2)], on_finish=echo.s()).apply_async()
    waiting = batch([add.s(3, 3).set(countdown=3600)], open=True).apply_async()
    start_worker("-c", "2")
    done.callbacks["on_finish"].get(timeout=60)

    page = admin_browser.login("admin", PASSWORD)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(admin_browser.url + reverse("admin:djq_batch_changelist"))
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    finished = rows.filter(has_text=done.id)
    assert re.search(r"finished\s+3/3\s+1", finished.inner_text()), finished.inner_text()
    assert "open (takes members)" in rows.filter(has_text=waiting.id).inner_text()
    assert "0/1" in rows.filter(has_text=waiting.id).inner_text()

    finished.locator("a").first.click()
    page.wait_for_selector("ol.djq-batch-members")
    members = page.locator("ol.djq-batch-members li")
    assert members.count() == 3
    assert "FAILURE" in members.nth(1).inner_text()
    assert "on_finish" in page.locator(".field-callbacks").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-batch.png"), full_page=True)

    members.nth(1).locator("a").click()  # the member's job page links back to its batch
    link = page.locator("#djq-batch-link")
    link.wait_for()
    assert link.inner_text() == done.id
    link.click()
    wait_for(lambda: done.id in page.url, timeout=10, message="the batch page")
    assert Batch.objects.get(id=done.id).finished_at is not None
