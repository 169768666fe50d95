"""Acceptance: deploy-safe queued jobs (issue 15, point 9).

Jobs written by older code (an old version's arguments, a task since renamed, arguments that no
longer fit) are found by ``manage.py djq_check_pending`` and by ``check --deploy``; a worker
upgrades an old version's arguments before running the job and fails, with the reason, a job it
cannot upgrade — never crashing.
"""

from __future__ import annotations

import json

import pytest

from djq import send_task, states
from djq.models import Job
from testproject.demo import tasks as demo
from testproject.demo.versioned_tasks import greet
from tests.helpers import run_manage
from tests.worker_support import job

pytestmark = pytest.mark.django_db(transaction=True)


def old_job(version: int, args: list, kwargs: dict | None = None, countdown: float = 3600):
    """A greet job as an older deploy wrote it: its version and its arguments then (waiting
    ``countdown`` seconds, so that a worker leaves it alone)."""
    result = greet.apply_async(("x", "y"), countdown=countdown)
    row = job(result)
    assert row.options["version"] == 3  # stored at enqueue
    Job.objects.filter(id=result.id).update(
        args=args, kwargs=kwargs or {}, options={**row.options, "version": version}
    )
    return result


def make_trouble():
    """One of each problem, among jobs that are fine."""
    fine = [greet.apply_async(("Ada", "Lovelace"), countdown=3600) for _ in range(3)]
    fine.append(old_job(1, ["Grace Hopper"]))
    fine += [demo.add.apply_async((i, i), countdown=3600) for i in range(50)]
    gone = [send_task("testproject.demo.tasks.renamed_long_ago", (1,), countdown=3600)]
    unfit = demo.add.apply_async((1, 2), countdown=3600)
    Job.objects.filter(id=unfit.id).update(args=[1, 2, 3])
    newer = old_job(4, ["a", "b"])
    broken = old_job(2, ["a", "b"], {"shout": True})
    return fine, gone, unfit, newer, broken


def test_djq_check_pending_lists_the_jobs_that_would_fail():
    fine, gone, unfit, newer, broken = make_trouble()
    proc = run_manage("djq_check_pending", "--json", check=False)
    assert proc.returncode == 1, proc.stderr
    assert "4 of 58 waiting job(s) would fail" in proc.stderr
    report = json.loads(proc.stdout)
    assert report["checked"] == 58 and report["failing"] == 4
    found = {p["ids"][0]: p for p in report["problems"]}
    assert set(found) == {gone[0].id, unfit.id, newer.id, broken.id}
    assert "unknown task" in found[gone[0].id]["reason"]
    assert "arguments do not fit testproject.demo.tasks.add(x, y)" in found[unfit.id]["reason"]
    assert "newer than this code's version 3" in found[newer.id]["reason"]
    assert "upgrade from version 2 to 3 raised ValueError" in found[broken.id]["reason"]
    # text output, one queue, a limit
    text = run_manage("djq_check_pending", check=False)
    assert text.returncode == 1
    assert "testproject.demo.tasks.renamed_long_ago: 1 job(s): unknown task" in text.stdout
    other = run_manage("djq_check_pending", "-Q", "nowhere")
    assert "0 waiting job(s) checked: all fit the code." in other.stdout
    assert run_manage("djq_check_pending", "--limit", "-1", check=False).returncode == 2


def test_check_deploy_warns_of_waiting_jobs_that_would_fail():
    make_trouble()
    proc = run_manage("check", "--deploy", check=False)
    out = proc.stdout + proc.stderr
    assert "djq.W150" in out and "renamed_long_ago" in out
    assert out.count("djq.W151") == 3, out  # add's unfit arguments, greet's two upgrades
    assert "djq.W150" not in run_manage("check", check=False).stderr  # deploy only


def test_the_worker_upgrades_old_jobs_and_fails_those_it_cannot(start_worker):
    v1 = old_job(1, ["Grace Hopper"], countdown=0)
    v2 = old_job(2, ["Alan", "Turing"], {"greeting": "hey"}, countdown=0)
    newer = old_job(4, ["a", "b"], countdown=0)
    broken = old_job(2, ["a", "b"], {"shout": True}, countdown=0)
    current = greet.delay("Ada", "Lovelace")
    w = start_worker("-c", "1")
    assert v1.get(timeout=30) == "hello Grace Hopper"
    assert v2.get(timeout=30) == "hey Alan Turing"
    assert current.get(timeout=30) == "hi Ada Lovelace"
    for result, reason in ((newer, "newer than this code's version 3"), (broken, "raised")):
        with pytest.raises(Exception, match=reason) as caught:
            result.get(timeout=30)
        assert type(caught.value).__name__ == "UpgradeError"
        assert job(result).state == states.FAILURE
    assert demo.add.delay(1, 1).get(timeout=30) == 2  # the worker goes on
    assert w.is_alive()
