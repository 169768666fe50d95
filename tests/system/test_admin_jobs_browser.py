"""The job list in Chromium (issue 14): search by an argument's value finds its job, and a bulk
retry of every failed job matching a filter (more than a page of them) through "Select all",
a preview count and a confirmation. Screenshots go to artifacts/."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from djq import enqueue_many, states
from djq.models import Job
from testproject.demo.tasks import add, echo, fail
from tests.helpers import REPO_ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ARTIFACTS = REPO_ROOT / "artifacts"
PASSWORD = "pw-for-tests"


@pytest.fixture
def page(admin_browser, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    page = admin_browser.login("admin", PASSWORD)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.base = admin_browser.url
    return page


def test_search_by_an_argument_finds_its_job(page):
    wanted = echo.delay(4242, "x", user_id=7)
    others = [echo.delay(i, "y") for i in range(5)] + [add.delay(42, 42)]
    page.goto(page.base + reverse("admin:djq_job_changelist"))
    for term in ("arg:4242", "user_id=7", wanted.id[:8]):
        page.fill("#searchbar", term)
        page.press("#searchbar", "Enter")
        page.wait_for_selector("#result_list")
        ids = page.eval_on_selector_all(
            "input[name=_selected_action]", "cs => cs.map(c => c.value)"
        )
        assert ids == [wanted.id], term
        assert "4242" in page.locator("#result_list").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-job-search.png"), full_page=True)
    assert all(Job.objects.filter(id=o.id).exists() for o in others)


def test_bulk_retry_of_every_failed_job_of_a_filter(page, start_worker):
    start_worker("-Q", "bulk,default", "-c", "4")
    enqueue_many([fail.s(f"bulk {i}").set(queue="bulk") for i in range(57)])
    outside = [fail.delay("not in the filter") for _ in range(2)]
    failed = Job.objects.filter(state=states.FAILURE)
    wait_for(lambda: failed.count() == 59, timeout=60)
    page.goto(page.base + reverse("admin:djq_job_changelist") + "?state=FAILURE&queue=bulk")
    assert page.locator("input[name=_selected_action]").count() == 50  # one page of 57
    page.check("#action-toggle")
    page.click(".actions .question a")  # "Select all 57 jobs"
    page.select_option("select[name=action]", "retry")
    page.click("button[name=index]")
    assert page.locator("#djq-confirm-total").inner_text() == "57"  # the preview count
    page.screenshot(path=str(ARTIFACTS / "admin-bulk-confirm.png"), full_page=True)
    assert not Job.objects.filter(options__has_key="retry_of").exists()  # nothing done yet
    page.click("#djq-confirm-yes")
    page.wait_for_selector(".messagelist .success")
    assert "Retried 57 job(s)" in page.locator(".messagelist").inner_text()
    retried = Job.objects.filter(options__has_key="retry_of")
    assert retried.count() == 57
    assert set(retried.values_list("queue", flat=True)) == {"bulk"}
    assert not retried.filter(parent_id__in=[o.id for o in outside]).exists()
    assert LogEntry.objects.filter(change_message__startswith="Retried as job").count() == 57


def test_a_running_jobs_page_moves_to_success_without_a_reload(page, start_worker):
    from testproject.demo.tasks import progress

    start_worker()
    r = progress.delay(steps=5, delay=1.0)
    wait_for(lambda: Job.objects.get(id=r.id).custom_state == "PROGRESS", timeout=20)
    page.goto(page.base + reverse("admin:djq_job_change", args=[r.id]))
    page.evaluate("window.djqNoReload = true")
    assert "PROGRESS" in page.locator(".djq-title").inner_text()
    page.locator("#djq-progress progress").wait_for(timeout=10_000)  # meta {"current", "total"}
    page.locator(".djq-title .djq-state-SUCCESS").wait_for(timeout=30_000)
    assert page.evaluate("window.djqNoReload") is True  # the same page: swapped, not reloaded
    assert "Finished" in page.locator("#djq-live-text").inner_text()
    assert "djq-state-SUCCESS" in page.locator("#djq-timeline").inner_html()
    # the list pages are live too, and pausable
    page.goto(page.base + reverse("admin:djq_job_changelist"))
    page.click("#djq-live-toggle")
    assert page.locator("#djq-live-text").inner_text() == "Paused"
