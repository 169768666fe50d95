"""The control room in a real browser (Playwright driving Debian's Chromium) against the live
test server and a real worker process: the dashboard following a job to SUCCESS, revoke and retry
from the job list, pausing and resuming a queue under a running worker, a chord's tree, a user
without permissions, and the screenshots of the docs (saved under artifacts/)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from djq import chord, states
from djq.models import Job
from testproject.demo.tasks import add, demo_work, fail, fail_once, sleep, xsum
from tests.helpers import REPO_ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ARTIFACTS = REPO_ROOT / "artifacts"
PASSWORD = "pw-for-tests"


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)


def state_of(task_id) -> str:
    return Job.objects.get(id=task_id).state


def run_action(page, task_id: str, action: str) -> None:
    """Tick one job in the list (found by its id) and run an action on it."""
    page.goto(f"{page.base}{reverse('admin:djq_job_changelist')}?q={task_id}")
    page.check(f"input[name=_selected_action][value='{task_id}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success, .messagelist .warning")


@pytest.fixture
def page(admin_browser, admin_user):
    page = admin_browser.login("admin", PASSWORD)
    page.base = admin_browser.url
    return page


def test_dashboard_follows_a_running_job_to_success(page, start_worker):
    start_worker("-c", "2")
    r = sleep.delay(3)
    wait_for(lambda: state_of(r.id) == states.STARTED, timeout=15)
    page.goto(f"{page.base}{reverse('admin:djq_dashboard_changelist')}?refresh=1")
    running = page.locator(f"#djq-running tr[data-job='{r.id}']")
    assert "STARTED" in running.inner_text()
    # no reload: the page refreshes itself until the job shows up finished
    finished = page.locator(f"#djq-recent tr[data-job='{r.id}'] .djq-state-SUCCESS")
    finished.wait_for(timeout=20_000)
    assert page.locator(f"#djq-running tr[data-job='{r.id}']").count() == 0
    assert page.locator("#djq-workers").inner_text().count("w1@") == 1


def test_revoke_a_waiting_job_from_the_job_list(page, start_worker):
    start_worker()
    r = add.apply_async((1, 1), countdown=3600)
    run_action(page, r.id, "revoke")
    assert "1 waiting job(s) will not run" in page.locator(".messagelist").inner_text()
    row = page.locator(f"tr:has(input[value='{r.id}'])")
    assert "REVOKED" in row.inner_text()
    assert state_of(r.id) == states.REVOKED


def test_retry_a_failed_job(page, start_worker, tmp_path):
    start_worker()
    r = fail_once.delay(str(tmp_path / "marker"))
    wait_for(lambda: state_of(r.id) == states.FAILURE, timeout=15)
    page.goto(f"{page.base}{reverse('admin:djq_job_change', args=[r.id])}")
    assert "first attempt fails" in page.locator("#djq-payload").inner_text()
    page.click("input[value='Retry as a new job']")
    page.wait_for_selector(".messagelist .success")
    new = Job.objects.get(parent_id=r.id)
    assert page.url.endswith(f"/{new.id}/change/")  # on to the new job, linked to the old one
    page.locator("#djq-retry-of").click()
    wait_for(lambda: state_of(new.id) == states.SUCCESS, timeout=15)
    assert page.locator("input[value='Retry as a new job']").count() == 0  # retried once
    child = page.locator(f"#djq-summary a[href$='/{new.id}/change/']").first
    child.click()
    page.wait_for_selector("#djq-summary")
    assert "SUCCESS" in page.locator(".djq-title").inner_text()
    assert "second time lucky" in page.locator("#djq-payload").inner_text()


def test_pause_a_queue_and_its_jobs_wait_resume_it_and_they_run(page, start_worker):
    start_worker("-Q", "default,reports")
    page.goto(f"{page.base}{reverse('admin:djq_queue_changelist')}")  # lists the worker's queues
    page.check("input[name=_selected_action][value='reports']")
    page.select_option("select[name=action]", "pause")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    assert "paused" in page.locator("tr:has(input[value='reports'])").inner_text()
    held = add.apply_async((1, 1), queue="reports")
    later = add.apply_async((2, 2), queue="default")
    # the worker runs a job of another queue enqueued after it: it has looked at "reports" too
    wait_for(lambda: state_of(later.id) == states.SUCCESS, timeout=15)
    assert state_of(held.id) == states.PENDING
    page.reload()
    assert re.search(
        r"reports\s+paused\s+1", page.locator("tr:has(input[value='reports'])").inner_text()
    )
    page.check("input[name=_selected_action][value='reports']")
    page.select_option("select[name=action]", "resume")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    wait_for(lambda: state_of(held.id) == states.SUCCESS, timeout=15)


def test_a_chords_page_shows_its_tree(page, start_worker):
    start_worker("-c", "2")
    body = chord([add.s(1, 1), add.s(2, 2), add.s(3, 3)], xsum.s())()
    assert body.get(timeout=20) == 12
    page.goto(f"{page.base}{reverse('admin:djq_job_change', args=[body.id])}")
    tree = page.locator("#djq-workflow")
    text = tree.inner_text()
    assert "CHORD" in text.upper() and "3 members" in text and "3 done" in text
    assert tree.locator(".djq-state-SUCCESS").count() == 4
    assert tree.locator(".djq-node.current").inner_text().startswith("body")
    member = Job.objects.filter(group_id__isnull=False).first()
    tree.locator(f"a[href$='/{member.id}/change/']").click()
    page.wait_for_selector("#djq-workflow")
    assert page.locator("#djq-workflow .djq-node.current a").inner_text() == member.name


def test_a_user_without_permissions_gets_403_on_every_djq_page_and_action(
    admin_browser, django_user_model, admin_user
):
    django_user_model.objects.create_user("nobody", password=PASSWORD, is_staff=True)
    r = add.apply_async((1, 1), countdown=3600)
    page = admin_browser.login("nobody", PASSWORD)
    assert "Dashboard" not in page.locator("#content-main").inner_text()  # nothing of djq
    pages = [
        reverse("admin:djq_dashboard_changelist"),
        reverse("admin:djq_job_changelist"),
        reverse("admin:djq_job_change", args=[r.id]),
        reverse("admin:djq_queue_changelist"),
        reverse("admin:djq_worker_changelist"),
        reverse("admin:djq_periodictask_changelist"),
        reverse("djq:metrics"),
    ]
    for url in pages:
        response = page.goto(admin_browser.url + url)
        assert response.status == 403, url
    # an action posted by hand (with a valid CSRF token from a page this user may see)
    page.goto(admin_browser.url + reverse("admin:password_change"))
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    for url, data in (
        (reverse("admin:djq_job_action", args=[r.id, "revoke"]), {}),
        (
            reverse("admin:djq_job_changelist"),
            {"action": "revoke", "_selected_action": r.id, "index": "0"},
        ),
    ):
        response = page.request.post(
            admin_browser.url + url,
            form={"csrfmiddlewaretoken": token, **data},
            headers={"Referer": admin_browser.url + url},
        )
        assert response.status == 403, url
    assert state_of(r.id) == states.PENDING


def test_screenshots_of_the_dashboard_and_a_job_page(admin_browser, admin_user, start_worker):
    """The docs' pictures: a busy dashboard and a chord body's page, light and dark."""
    worker = start_worker("-c", "4")
    for i in range(40):
        demo_work.delay(i)
    fail.delay("the payment provider said no")
    body = chord([add.s(i, i) for i in range(4)], xsum.s())()
    body.get(timeout=30)
    wait_for(
        lambda: (
            not Job.objects.filter(name=demo_work.name)
            .exclude(state__in=states.READY_STATES)
            .exists()
        ),
        timeout=60,
    )
    sleep.delay(30)
    sleep.delay(20)
    wait_for(lambda: Job.objects.filter(state=states.STARTED).count() == 2, timeout=15)
    ARTIFACTS.mkdir(exist_ok=True)
    for scheme in ("light", "dark"):
        page = admin_browser.login("admin", PASSWORD, color_scheme=scheme)
        page.goto(admin_browser.url + reverse("admin:djq_dashboard_changelist"))
        page.screenshot(path=str(ARTIFACTS / f"admin-dashboard-{scheme}.png"), full_page=True)
        page.goto(admin_browser.url + reverse("admin:djq_job_change", args=[body.id]))
        page.screenshot(path=str(ARTIFACTS / f"admin-job-{scheme}.png"), full_page=True)
    for name in ("dashboard", "job"):
        assert (ARTIFACTS / f"admin-{name}-light.png").stat().st_size > 10_000
    worker.kill_group()  # the two long sleepers only posed for the pictures
