"""The schedules admin in a real browser (Playwright driving the system Chromium): a bad cron
expression is refused with a form error and saves nothing; a schedule created in the admin starts
firing in a running beat without a restart."""

from __future__ import annotations

import subprocess

import pytest
from django.db import connections

from djq.models import Job, PeriodicTask, PeriodicTick
from tests.helpers import REPO_ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def chromium_path() -> str:
    found = subprocess.run(
        [str(REPO_ROOT / "scripts" / "ensure-chromium")], capture_output=True, text=True
    )
    if found.returncode != 0:
        pytest.fail(f"no Chromium for the browser test: {found.stderr.strip()}")
    return found.stdout.strip()


@pytest.fixture
def page(live_server, django_user_model, chromium_path, monkeypatch):
    """A logged-in admin page. (Playwright's sync API runs an event loop in this thread, so the
    ORM calls of the test need DJANGO_ALLOW_ASYNC_UNSAFE.)"""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", "pw-for-tests")
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")
        try:
            yield page
        finally:
            browser.close()
            # The ORM calls made under Playwright's event loop opened their own connection
            # (connections follow the async context); close it so the test database can go.
            connections.close_all()


def test_admin_schedule_form_errors_and_a_new_schedule_fires_without_restarting_beat(
    page, live_server, start_beat
):
    start_beat(name="beat")
    page.goto(f"{live_server.url}/admin/djq/periodictask/add/")
    page.fill("#id_name", "browser-made")
    page.fill("#id_task", "testproject.demo.tasks.add")
    page.fill("#id_args", "[20, 22]")
    page.fill("#id_crontab", "61 * * * *")
    page.click("input[name=_save]")
    error = page.locator(".field-crontab .errorlist")
    assert "Invalid cron expression" in error.inner_text()
    assert not PeriodicTask.objects.filter(name="browser-made").exists()

    page.fill("#id_crontab", "")
    page.fill("#id_interval_every", "1")
    page.select_option("#id_interval_period", "seconds")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert PeriodicTask.objects.filter(name="browser-made").exists()
    ticks = PeriodicTick.objects.filter(periodic_task__name="browser-made")
    wait_for(
        lambda: ticks.count() >= 2, timeout=10, message="the running beat to fire the new schedule"
    )
    jobs = Job.objects.filter(id__in=ticks.values_list("job_id", flat=True))
    assert {tuple(job.args) for job in jobs} == {(20, 22)}

    page.goto(f"{live_server.url}/admin/djq/periodictask/")
    page.locator("input[name=_selected_action]").first.check()
    page.select_option("select[name=action]", "disable")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    assert not PeriodicTask.objects.get(name="browser-made").enabled
