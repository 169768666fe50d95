"""Malformed job rows, written with plain SQL, through real workers (issue 12, defects 1-2).

Rows can be written by anything, so the worker checks what it reads: each row of tests/faults.py's
BAD_ROWS ends in its expected state (FAILURE with a reason for what is unusable), mixed into the
same claim batches as good jobs, which all run exactly once; the workers stay alive, never hit
their loop's last-resort handler, leave nothing STARTED and shut down cleanly — with and without
acks_late. Rows the schema refuses never reach a worker.
"""

from __future__ import annotations

import json

import pytest
from django.db import DataError, IntegrityError, connection, transaction

from djq import states
from djq.models import Job
from tests.faults import bad_row_columns, good_columns, insert_raw, rows_for
from tests.helpers import wait_for
from tests.worker_support import tokens

pytestmark = pytest.mark.django_db(transaction=True)


def _finished(ids: list[str]) -> dict[str, tuple]:
    """id → (state, result, traceback) once every job is finished (read without the timestamp
    columns: a row may hold one Python cannot load)."""
    rows = Job.objects.filter(id__in=ids).values_list("id", "state", "result", "traceback")
    found = {str(i): (s, r, t) for i, s, r, t in rows}
    done = len(found) == len(ids) and all(s in states.READY_STATES for s, _, _ in found.values())
    return found if done else {}


@pytest.mark.parametrize("acks_late", [False, True], ids=["plain", "acks_late"])
def test_bad_rows_end_with_a_reason_and_the_workers_drain_the_good_jobs(
    start_worker, tmp_path, acks_late
):
    path = str(tmp_path / "ran.txt")
    bad: dict[str, object] = {}
    good: list[str] = []
    for i, row in enumerate(r for r in rows_for(connection.vendor) if not r.refused):
        good.append(insert_raw(good_columns(path, f"good{i}", acks_late)))
        bad[insert_raw(bad_row_columns(row, path, f"bad{i}", acks_late))] = row
    # two workers, one prefetching: bad and good rows share claim batches
    workers = [
        start_worker("-c", "2", "--prefetch-multiplier", "4", name="fault1"),
        start_worker("-c", "1", name="fault2"),
    ]
    found = wait_for(
        lambda: _finished([*good, *bad]),
        timeout=90,
        interval=0.2,
        message="every good and bad job to finish",
    )
    for job_id, row in bad.items():
        state, result, traceback = found[job_id]
        assert state == row.state, (row.id, state, result)
        if row.reason:
            assert row.reason in json.dumps(result) + traceback, (row.id, result, traceback)
    assert all(found[job_id][0] == states.SUCCESS for job_id in good)
    ran = tokens(path)
    assert all(ran[f"good{i}"] == 1 for i in range(len(good))), ran
    assert not Job.objects.filter(state=states.STARTED).exists()
    for w in workers:
        assert w.is_alive()
        assert "Unexpected error in the worker loop" not in w.log_text()
        w.terminate()
        assert w.wait(timeout=30) == 0


def test_rows_the_schema_refuses(tmp_path):
    refused = [row for row in rows_for(connection.vendor) if row.refused]
    assert refused
    for row in refused:
        with pytest.raises((IntegrityError, DataError)), transaction.atomic():
            insert_raw(bad_row_columns(row, str(tmp_path / "x"), "x"))
        assert not Job.objects.exists(), row.id


def test_a_bad_time_limit_does_not_crash_loop_the_queue(start_worker, tmp_path):
    """Defect 1: a job whose time limit is not a number killed every worker that claimed it."""
    path = str(tmp_path / "ran.txt")
    bad = insert_raw(
        {
            **good_columns(path, "bad", acks_late=True, priority=9),
            "options": json.dumps({"time_limit": "abc"}),
        }
    )
    good = [insert_raw(good_columns(path, f"g{i}", acks_late=True)) for i in range(5)]
    w = start_worker("-c", "2")
    found = wait_for(lambda: _finished([bad, *good]), timeout=30, message="the jobs to finish")
    assert found[bad][0] == states.FAILURE and "time_limit" in json.dumps(found[bad][1])
    assert Job.objects.get(id=bad).attempt == 1  # claimed once: no crash, no hand-back
    assert all(found[g][0] == states.SUCCESS for g in good)
    assert w.is_alive()


def test_options_not_an_object_fail_instead_of_staying_started(start_worker, tmp_path):
    """Defect 2: such a job stayed STARTED for ever, even after a warm shutdown."""
    path = str(tmp_path / "ran.txt")
    bad = insert_raw({**good_columns(path, "bad"), "options": '"not an object"'})
    w = start_worker("-c", "1")
    found = wait_for(lambda: _finished([bad]), timeout=30, message="the bad job to finish")
    assert found[bad][0] == states.FAILURE
    w.terminate()
    assert w.wait(timeout=30) == 0
    assert Job.objects.get(id=bad).state == states.FAILURE
