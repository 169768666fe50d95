"""Acceptance: logs per attempt (issue 14). A task's log records are kept with each attempt by a
real worker process, capped at DJQ_TASK_LOG_MAX_BYTES with a marker, prints kept when asked,
and deleted with their job."""

from __future__ import annotations

import pytest

from djq import store
from djq.models import Job, JobLog
from testproject.demo import tasks as demo

pytestmark = pytest.mark.django_db(transaction=True)


def logs(result) -> list[JobLog]:
    return list(JobLog.objects.filter(job_id=result.id).order_by("attempt"))


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_each_attempt_keeps_its_own_log_records(start_worker, pool):
    start_worker("-c", "2", "--pool", pool)
    retried = demo.chatty.delay(lines=2, retries=1)
    quiet = demo.chatty.delay(lines=1, width=3)  # its records must not land in the other's log
    assert retried.get(timeout=30) == 2 and quiet.get(timeout=30) == 1
    first, second = logs(retried)
    assert (first.attempt, second.attempt) == (1, 2) == (1, Job.objects.get(id=retried.id).attempt)
    assert "attempt 1 line 0" in first.text and "attempt 1 line 1" in first.text
    assert "WARNING testproject.demo.tasks: retrying (attempt 1)" in first.text
    assert "attempt 2 line 1" in second.text and "attempt 1" not in second.text
    assert "debug record" not in first.text + second.text  # below DJQ_TASK_LOG_LEVEL (INFO)
    assert not first.truncated and not second.truncated
    (only,) = logs(quiet)
    assert "attempt 1 line 0 xxx\n" in only.text and only.text.count("\n") == 1


def test_a_log_over_the_cap_is_truncated_with_a_marker(start_worker):
    start_worker("-c", "1", env_extra={"DJQ_TASK_LOG_MAX_BYTES": "500"})
    result = demo.chatty.delay(lines=40, width=50)
    result.get(timeout=30)
    (log,) = logs(result)
    assert log.truncated
    kept, marker = log.text.split("\n… log truncated at 500 bytes: ")
    assert len(kept.encode()) == 500 and "attempt 1 line 0" in kept
    assert "line 39" not in log.text
    assert marker.split(" ")[0].isdigit()  # "N more record(s), M byte(s) dropped"
    assert "more record(s)" in marker and "byte(s) dropped" in marker


def test_prints_are_kept_only_when_asked(start_worker):
    plain_worker = start_worker("-c", "1", name="plain")
    plain = demo.chatty.delay(lines=1, say="hello from print")
    plain.get(timeout=30)
    assert "hello from print" not in logs(plain)[0].text
    plain_worker.terminate()
    plain_worker.wait(timeout=30)
    start_worker("-c", "1", name="printing", env_extra={"DJQ_TASK_LOG_PRINT": "1"})
    printed = demo.chatty.delay(lines=1, say="hello from print")
    printed.get(timeout=30)
    assert Job.objects.get(id=printed.id).worker.startswith("printing@")
    assert "hello from print\n" in logs(printed)[0].text


def test_logs_go_with_their_job(start_worker):
    start_worker("-c", "1")
    result = demo.chatty.delay(lines=1)
    result.get(timeout=30)
    assert logs(result)
    assert store.forget(result.id) == 1  # the job only: the database deletes its logs
    assert not JobLog.objects.filter(job_id=result.id).exists()
