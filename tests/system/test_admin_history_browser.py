"""Charts with history (issue 14): finished jobs are rolled up per minute into ``JobStat`` by
the elected worker; the history page switches between 1 h, 24 h, 7 d and 30 d in Chromium, and
the metrics endpoint exposes the same totals. The jobs are recorded through the store (as a
worker records them) and dated a few minutes back, so that the rollup has finished minutes."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db.models import F
from django.urls import reverse

from djq import states, stats, store
from djq.models import Job, JobStat
from testproject.demo.tasks import add, fail
from tests.helpers import REPO_ROOT, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ARTIFACTS = REPO_ROOT / "artifacts"
PASSWORD = "pw-for-tests"


def finished_jobs(ok: int, failed: int, minutes_ago: int = 5) -> None:
    """``ok`` successes and ``failed`` failures, finished ``minutes_ago`` minutes ago."""
    ids = [add.delay(i, i).id for i in range(ok)] + [fail.delay("x").id for _ in range(failed)]
    back = dt.timedelta(minutes=minutes_ago)
    Job.objects.filter(id__in=ids).update(run_after=F("run_after") - back - dt.timedelta(seconds=2))
    claimed = store.claim("w@test", ["default"], len(ids), 30.0)
    outcomes = [
        {
            "id": j.id,
            "attempt": j.attempt,
            "keep_result": True,
            "state": states.SUCCESS if j.name == add.name else states.FAILURE,
            "result": json.dumps(
                2
                if j.name == add.name
                else {"exc_type": "ValueError", "exc_message": ["x"], "exc_module": "builtins"}
            ),
            "traceback": None,
        }
        for j in claimed
    ]
    store.complete(outcomes)
    Job.objects.filter(id__in=ids).update(
        started_at=F("started_at") - back, finished_at=F("finished_at") - back
    )


def test_the_elected_worker_rolls_up_once_and_the_range_switches(
    admin_browser, django_user_model, start_worker
):
    finished_jobs(ok=6, failed=2)
    start_worker()  # its first maintenance pass rolls up the last hour
    counted = JobStat.objects.filter(name__gt="")
    wait_for(lambda: sum(counted.values_list("count", flat=True)) == 8, timeout=30)
    assert stats.rollup("another@test", "default") == 0  # not elected: the worker holds it
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    page = admin_browser.login("admin", PASSWORD)
    page.goto(admin_browser.url + reverse("admin:djq_dashboard_changelist"))
    page.click("text=History")
    chart = page.locator("#djq-history-chart")
    assert chart.get_attribute("data-range") == "1h"
    assert page.locator("#djq-history-chart .djq-bar-ok").count() >= 1
    assert "6 succeeded · 2 failed" in chart.inner_text()
    assert add.name in page.locator("#djq-history-tasks").inner_text()
    for key, label in (("24h", "24 h"), ("7d", "7 d"), ("30d", "30 d")):
        page.click(f"#djq-ranges a[data-range='{key}']")
        page.wait_for_selector(f"#djq-history-chart[data-range='{key}']")
        assert f"last {label}" in page.locator("#djq-history-chart h2").inner_text()
        assert "6 succeeded · 2 failed" in page.locator("#djq-history-chart").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-history.png"), full_page=True)
    metrics = page.request.get(admin_browser.url + reverse("djq:metrics")).text()
    assert 'djq_jobs_finished_total{queue="default",state="SUCCESS"} 6' in metrics
    assert 'djq_jobs_finished_total{queue="default",state="FAILURE"} 2' in metrics


def test_the_dashboard_chart_reads_rolled_up_minutes_and_the_live_tail():
    from djq.admin import dashboard_context

    finished_jobs(ok=3, failed=1, minutes_ago=6)
    assert stats.rollup("t@test", "default") > 0
    Job.objects.all().delete()  # pruned: the rolled-up minutes keep their counts
    finished_jobs(ok=2, failed=0, minutes_ago=0)  # not rolled up yet: read live
    context = dashboard_context()
    assert (context["done_total"], context["failed_total"]) == (5, 1)


def test_the_last_hour_s_counts_come_from_the_rollup_and_the_live_tail():
    """The dashboard's counts by queue and state, its slowest tasks, the queue list's failures
    and the metrics read the rolled-up minutes, then the jobs finished since (issue 14: fast at
    a million jobs); jobs pruned after the rollup still count."""
    from djq.adminsite import monitor, views

    finished_jobs(ok=3, failed=1, minutes_ago=6)
    assert stats.rollup("t@test", "default") > 0
    Job.objects.all().delete()  # pruned: the rolled-up minutes keep their figures
    finished_jobs(ok=2, failed=0, minutes_ago=0)  # not rolled up yet: read live
    now = store.db_now()
    counts = monitor.state_counts(now)
    assert (counts[("default", states.SUCCESS)], counts[("default", states.FAILURE)]) == (5, 1)
    slowest = {row["name"]: row for row in monitor.slowest_tasks(now)}
    assert (slowest[add.name]["n"], slowest[fail.name]["n"]) == (5, 1)
    assert slowest[add.name]["max"] >= slowest[add.name]["avg"] >= dt.timedelta(0)
    assert monitor.queue_stats(now)["default"].failed == 1
    text = views.render()
    assert f'djq_job_runtime_seconds_count{{task="{add.name}"}} 5' in text
    recent = 'djq_jobs_finished_recent{queue="default",state="SUCCESS",window_seconds="3600"}'
    assert f"{recent} 5" in text
