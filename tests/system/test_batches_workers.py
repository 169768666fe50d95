"""Batches through real worker processes (issue 15, point 5), on PostgreSQL and SQLite.

A batch's callbacks run once every member has ended, whatever each outcome: ``on_finish``
always, ``on_success`` if all succeeded, ``on_failure`` if any did not — exactly once, even when
the last members end at the same instant on several workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from djq import batch, group
from djq.models import Batch, Job
from testproject.demo.tasks import add, batch_report, crash, fail, retry_twice
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def reports(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def callbacks(tmp_path: Path, tag: str = "") -> dict:
    return {
        name: batch_report.s(str(tmp_path / f"{tag}{name}.jsonl"))
        for name in ("on_finish", "on_success", "on_failure")
    }


def test_callbacks_fire_once_whatever_the_members_outcomes(start_worker, tmp_path):
    members = [
        add.s(1, 1),
        fail.si("no"),
        retry_twice.s(),  # retries twice: not ended until it succeeds
        add.s(2, 2).set(countdown=3600),  # revoked below, before it runs
        crash.si(),  # kills its child: ends FAILURE (WorkerLostError)
    ]
    result = batch(members, **callbacks(tmp_path)).apply_async()
    assert [r.id for r in result.results] == Batch.objects.get(id=result.id).children
    result.results[3].revoke()
    assert not result.ready()
    start_worker("-c", "2", name="batch")
    finish = tmp_path / "on_finish.jsonl"
    wait_for(lambda: reports(finish), timeout=60, message="on_finish")
    assert result.callbacks["on_finish"].get(timeout=30) == 3
    failure = result.callbacks["on_failure"].get(timeout=30)
    assert failure == 3
    (summary,) = reports(finish)
    ids = [r.id for r in result.results]
    assert summary == {
        "batch_id": result.id,
        "total": 5,
        "succeeded": 2,
        "failed": 3,
        "counts": {"SUCCESS": 2, "FAILURE": 2, "REVOKED": 1},
        "failed_ids": [ids[1], ids[3], ids[4]],
    }
    assert reports(tmp_path / "on_failure.jsonl") == [summary]
    assert not (tmp_path / "on_success.jsonl").exists()
    assert result.callbacks["on_success"].state == "PENDING"  # never enqueued
    assert Job.objects.get(id=ids[2]).retries == 2
    assert result.ready() and result.progress() == {
        "total": 5,
        "ended": 5,
        "failed": 3,
        "closed": True,
        "finished": True,
    }


def test_an_open_batch_takes_members_until_closed_and_only_then_ends(start_worker, tmp_path):
    start_worker("-c", "2", name="open")
    result = batch([add.s(1, 2)], **callbacks(tmp_path), open=True).apply_async()
    result.results[0].get(timeout=30)
    more = result.add(add.s(3, 4), add.s(5, 6))
    assert [r.get(timeout=30) for r in more] == [7, 11]
    assert wait_for(lambda: result.progress()["ended"] == 3, timeout=30, message="3 ended")
    assert not result.ready() and not (tmp_path / "on_finish.jsonl").exists()
    assert result.close() is True
    assert result.close() is False  # closed once
    wait_for(lambda: reports(tmp_path / "on_success.jsonl"), timeout=30, message="on_success")
    (summary,) = reports(tmp_path / "on_finish.jsonl")
    assert summary["total"] == 3 and summary["counts"] == {"SUCCESS": 3}
    assert summary["failed_ids"] == [] and not (tmp_path / "on_failure.jsonl").exists()
    with pytest.raises(ValueError, match=f"batch {result.id} is closed"):
        result.add(add.s(0, 0))
    assert Job.objects.filter(name=add.name).count() == 3  # nothing written by the refusal


def test_three_workers_ending_many_tiny_members_fire_the_callbacks_exactly_once(
    start_worker, tmp_path
):
    for i in range(3):
        start_worker("-c", "2", "--prefetch-multiplier", "4", name=f"tiny{i}")
    results = [
        batch([add.s(i, r) for i in range(200)], **callbacks(tmp_path, f"r{r}-")).apply_async()
        for r in range(5)
    ]
    for r, result in enumerate(results):
        assert result.callbacks["on_finish"].get(timeout=180) == 0
        assert result.callbacks["on_success"].get(timeout=60) == 0
        assert len(reports(tmp_path / f"r{r}-on_finish.jsonl")) == 1
        assert len(reports(tmp_path / f"r{r}-on_success.jsonl")) == 1
    workers = set(Job.objects.filter(name=add.name).values_list("worker", flat=True))
    assert len(workers) == 3  # the last members really ended on several workers
    for r in range(5):  # no late second firing
        assert len(reports(tmp_path / f"r{r}-on_finish.jsonl")) == 1


def test_an_empty_closed_batch_ends_at_once(start_worker, tmp_path):
    start_worker("-c", "1", name="empty")
    result = batch([], **callbacks(tmp_path)).apply_async()
    assert result.ready()
    assert result.callbacks["on_finish"].get(timeout=30) == 0
    assert reports(tmp_path / "on_success.jsonl")[0]["total"] == 0


def test_bad_members_and_callbacks_are_refused_before_anything_is_written():
    with pytest.raises(TypeError, match="batch: on_finish=.*cannot take the batch summary"):
        batch([add.s(1, 1)], on_finish=add.s(1, 2))  # add(summary, 1, 2): too many arguments
    with pytest.raises(TypeError, match="is a group"):
        batch([group(add.s(1, 1))])
    with pytest.raises(TypeError, match="must be a task signature"):
        batch([add])
    assert not Batch.objects.exists() and not Job.objects.exists()
