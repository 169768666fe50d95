"""A job's page in Chromium shows the logs of each of its attempts (issue 14), kept by a real
worker process. Screenshot: artifacts/admin-job-logs.png."""

from __future__ import annotations

import pytest
from django.urls import reverse

from testproject.demo.tasks import chatty
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.django_db(transaction=True)
ARTIFACTS = REPO_ROOT / "artifacts"
PASSWORD = "pw-for-tests"


def test_the_job_page_shows_a_log_per_attempt(admin_browser, django_user_model, start_worker):
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    start_worker("-c", "1")
    result = chatty.delay(lines=3, width=20, retries=1)
    assert result.get(timeout=30) == 3
    page = admin_browser.login("admin", PASSWORD)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(admin_browser.url + reverse("admin:djq_job_change", args=[result.id]))
    section = page.locator("#djq-logs")
    assert section.locator("h3").all_text_contents()[0].startswith("Attempt 1")
    assert section.locator("h3").all_text_contents()[1].startswith("Attempt 2")
    first, second = section.locator("pre.djq-log").all_inner_texts()
    assert "attempt 1 line 2" in first and "retrying (attempt 1)" in first
    assert "attempt 2 line 0" in second and "retrying" not in second
    assert section.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "admin-job-logs.png"), full_page=True)
