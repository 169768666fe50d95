"""Dead letters in the admin, in Chromium (issue 15, point 6): the "Dead jobs" filter lists the
jobs a real worker left dead (shown DEAD, with their reason), "requeue all matching" requeues
every dead job of the filter (more than a page) after a preview count, and a dead job's page has
a "Requeue" button. Screenshots go to artifacts/."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from djq import enqueue_many, states
from djq.models import Job
from testproject.demo.tasks import exhaust_retries, fail, reject_me
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


def test_dead_jobs_list_requeue_all_matching_and_requeue_one(page, start_worker):
    start_worker("-c", "4")
    rejected = enqueue_many([reject_me.s(False) for _ in range(53)])
    exhausted = exhaust_retries.delay()
    plain = fail.delay("not dead")
    finished = Job.objects.filter(state=states.FAILURE)
    wait_for(lambda: finished.count() == 55, timeout=90, message="55 failures")

    changelist = page.base + reverse("admin:djq_job_changelist")
    page.goto(changelist + "?dead=any")
    assert page.locator("#changelist-filter").get_by_text("All dead jobs").count() == 1
    assert page.locator("input[name=_selected_action]").count() == 50  # a page of 54
    assert page.locator("#result_list .djq-state-DEAD").count() == 50
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-dead-jobs.png"), full_page=True)
    listed = set(
        page.eval_on_selector_all("input[name=_selected_action]", "cs => cs.map(c => c.value)")
    )
    assert plain.id not in listed

    # "Requeue all matching": every rejected dead job (53, more than a page), not the others.
    page.goto(changelist + "?dead=rejected")
    page.check("#action-toggle")
    page.click(".actions .question a")  # "Select all 53 jobs"
    page.select_option("select[name=action]", "requeue_dead")
    page.click("button[name=index]")
    assert page.locator("#djq-confirm-total").inner_text() == "53"
    assert Job.objects.filter(id__in=[r.id for r in rejected], attempt=1).count() == 53
    page.click("#djq-confirm-yes")
    page.wait_for_selector(".messagelist .success")
    assert "Requeued 53 dead job(s)" in page.locator(".messagelist").inner_text()
    assert LogEntry.objects.filter(change_message="Requeued (was dead)").count() == 53
    # they ran again (and were rejected again: dead again, on their second attempt)
    again = Job.objects.filter(
        id__in=[r.id for r in rejected], attempt=2, dead_reason=states.DEAD_REJECTED
    )
    wait_for(lambda: again.count() == 53, timeout=90, message="the requeued jobs to run again")
    assert Job.objects.get(id=exhausted.id).attempt == 2  # not in the filter: untouched
    assert Job.objects.get(id=plain.id).attempt == 1

    # One dead job from its page.
    page.goto(page.base + reverse("admin:djq_job_change", args=[exhausted.id]))
    assert page.locator(".djq-state-DEAD").count() >= 1
    page.click("input[value=Requeue]")
    page.wait_for_selector(".messagelist .success")
    rerun = Job.objects.filter(id=exhausted.id, attempt__gte=3)
    wait_for(rerun.exists, timeout=60, message="the requeued job to run again")
    # a plain failure's page has no Requeue button
    page.goto(page.base + reverse("admin:djq_job_change", args=[plain.id]))
    assert page.locator("input[value=Requeue]").count() == 0
