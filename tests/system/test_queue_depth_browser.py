"""Queue depth history (issue 14): the elected worker samples waiting and running jobs per queue
once a minute (``djq_queue_depth``); the history page charts them per range in Chromium, all
queues first, then the deepest. Screenshot: artifacts/admin-queue-depth.png."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from djq import queue_depth, store
from djq.models import QueueDepth
from testproject.demo.tasks import add
from tests.helpers import REPO_ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ARTIFACTS = REPO_ROOT / "artifacts"
PASSWORD = "pw-for-tests"


def test_the_worker_samples_depth_and_the_history_page_charts_it(
    admin_browser, django_user_model, start_worker
):
    for i in range(7):
        add.apply_async((i, i), queue="deep")  # nobody consumes it: they wait
    start_worker("-Q", "default")  # elected: its first maintenance pass samples the depth
    wait_for(lambda: QueueDepth.objects.filter(queue="deep", waiting=7).exists(), timeout=30)
    sampled = QueueDepth.objects.get(queue="deep")
    assert QueueDepth.objects.get(bucket=sampled.bucket, queue="").waiting == 7  # all queues
    assert queue_depth.sample(store.db_now()) == 0  # once a minute
    for i in range(5):
        add.apply_async((i, i), queue="deep")
    three_hours_ago = store.db_now() - dt.timedelta(hours=3)
    assert queue_depth.sample(three_hours_ago) == 2  # (a sample of the past: "deep" and all)

    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    page = admin_browser.login("admin", PASSWORD)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(admin_browser.url + reverse("admin:djq_dashboard_history"))
    depth = page.locator("#djq-history-depth")
    assert depth.locator("h3").all_text_contents()[:2] == [
        "all queues · peak 7 waiting",
        "deep · peak 7 waiting",
    ]
    titles = depth.locator(".djq-chart-depth").nth(1).locator("title").all_text_contents()
    assert any(t.endswith("UTC: 7 waiting, 0 running") for t in titles), titles
    page.click("#djq-ranges a[data-range='24h']")
    page.wait_for_selector("#djq-history-chart[data-range='24h']")
    assert "last 24 h" in depth.locator("h2").inner_text()
    titles = depth.locator(".djq-chart-depth").nth(1).locator("title").all_text_contents()
    assert sum(t.endswith("12 waiting, 0 running") for t in titles) == 1  # 3 hours ago
    assert sum(t.endswith("7 waiting, 0 running") for t in titles) == 1  # this hour
    ARTIFACTS.mkdir(exist_ok=True)
    depth.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "admin-queue-depth.png"), full_page=True)
