"""Jobs of a model instance (issue 14): ``apply_async(related=obj)`` names the object; any
ModelAdmin with ``JobsForObjectMixin`` lists its jobs (the demo's user admin does), with Retry and
Revoke there, in Chromium. Screenshot: artifacts/admin-object-jobs.png."""

from __future__ import annotations

import pytest
from django.urls import reverse

from djq import states
from djq.models import Job
from testproject.demo.tasks import echo, fail
from tests.helpers import REPO_ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ARTIFACTS = REPO_ROOT / "artifacts"
PASSWORD = "pw-for-tests"


def test_the_object_page_lists_its_jobs_with_retry_and_revoke(
    admin_browser, django_user_model, start_worker
):
    root = django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    alice = django_user_model.objects.create_user("alice")
    waiting = echo.apply_async(("hello",), related=alice, countdown=3600)
    by_key = echo.apply_async(("by key",), related=f"auth.user:{alice.pk}", countdown=3600)
    by_kwarg = echo.apply_async(kwargs={"user_id": alice.pk}, countdown=3600)
    start_worker("-c", "1")
    failed = fail.apply_async(("for alice",), related=[alice, root])
    wait_for(lambda: Job.objects.get(id=failed.id).state == states.FAILURE, timeout=30)
    not_hers = [
        echo.apply_async((alice.pk,), countdown=3600),  # a bare pk: not matched here
        echo.apply_async(related=root, countdown=3600),
    ]

    page = admin_browser.login("admin", PASSWORD)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(admin_browser.url + reverse("admin:auth_user_change", args=[alice.pk]))
    listed = page.locator("ul.djq-object-jobs li")
    links = page.eval_on_selector_all("ul.djq-object-jobs li a", "as => as.map(a => a.href)")
    for mine in (waiting, by_key, by_kwarg, failed):
        assert any(mine.id in href for href in links), mine
    assert not any(o.id in href for o in not_hers for href in links)
    assert listed.count() == 4
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("ul.djq-object-jobs").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "admin-object-jobs.png"), full_page=True)

    page.locator("li", has=page.locator(f"a[href*='{failed.id}']")).locator(
        ".djq-job-retry"
    ).click()
    page.wait_for_selector(".messagelist .success")
    assert "Retried 1 job(s)" in page.locator(".messagelist").inner_text()
    assert page.url.endswith(reverse("admin:auth_user_change", args=[alice.pk]))  # back here
    retry = Job.objects.get(options__retry_of=failed.id)
    assert retry.options["related"] == [f"auth.user:{alice.pk}", f"auth.user:{root.pk}"]
    assert page.locator(f"ul.djq-object-jobs a[href*='{retry.id}']").count() == 1

    page.locator("li", has=page.locator(f"a[href*='{waiting.id}']")).locator(
        ".djq-job-revoke"
    ).click()
    page.wait_for_selector(".messagelist .success")
    assert Job.objects.get(id=waiting.id).state == states.REVOKED
    assert page.url.endswith(reverse("admin:auth_user_change", args=[alice.pk]))
