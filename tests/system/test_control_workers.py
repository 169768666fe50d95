"""Remote control and flow control with real workers on PostgreSQL (issue 6 acceptance)."""

from __future__ import annotations

import signal
import time

import pytest

from djq import control, enqueue_many, states
from djq.models import Job
from testproject.demo import tasks as demo
from tests.helpers import wait_for
from tests.worker_support import lines, wait_state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def test_revoke_terminate_ends_a_running_job_quickly_and_the_worker_goes_on(start_worker, tmp_path):
    marker = tmp_path / "started"
    start_worker("-c", "1", name="term")
    long = demo.sleep.apply_async((60, str(marker)))
    wait_for(marker.exists, timeout=30, message="the sleeping job to start")
    began = time.monotonic()
    long.revoke(terminate=True)
    row = wait_state(long, states.REVOKED, timeout=10)
    assert time.monotonic() - began < 3, "revoke(terminate=True) took too long"
    assert "terminated" in str(row.result)
    assert demo.add.delay(2, 3).get(timeout=30) == 5  # the worker goes on with a fresh child


def test_a_revoke_is_stored_and_survives_worker_restarts(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    waiting = demo.record.apply_async((str(path), "revoked"), countdown=2)
    waiting.revoke()
    first = start_worker("-c", "1", name="before")
    first.terminate()
    first.wait(timeout=30)
    start_worker("-c", "1", name="after")
    assert demo.record.delay(str(path), "ran").get(timeout=30) == "ran"
    assert lines(path) == ["ran"] and waiting.state == states.REVOKED


def test_inspect_ping_active_and_destination(start_worker, tmp_path):
    marker = tmp_path / "started"
    one = start_worker("-c", "1", name="one")
    two = start_worker("-c", "1", name="two")
    three = start_worker("-c", "1", name="three")
    running = demo.sleep.apply_async((5, str(marker)), queue="default")
    wait_for(marker.exists, timeout=30, message="the job to start")
    owner = wait_state(running, states.STARTED).worker
    active = control.inspect(timeout=2).active()
    assert [job["id"] for job in active[owner]] == [running.id]
    assert all(jobs == [] for name, jobs in active.items() if name != owner)
    answered = {name for reply in control.ping(timeout=2) for name in reply}
    assert answered == {one.nodename, two.nodename, three.nodename}
    three.kill_group(signal.SIGKILL)
    three.wait(timeout=10)
    answered = {name for reply in control.ping(timeout=2) for name in reply}
    assert answered == {one.nodename, two.nodename}
    only = control.inspect(destination=[two.nodename], timeout=2).ping()
    assert only == {two.nodename: {"ok": "pong"}}
    stats = control.inspect(destination=[one.nodename], timeout=2).stats()[one.nodename]
    assert stats["pool"]["implementation"] == "prefork"
    registered = control.inspect(destination=[one.nodename], timeout=2).registered()
    assert demo.add.name in registered[one.nodename]


def test_rate_limit_holds_across_four_workers(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    for i in range(4):
        start_worker("-c", "2", name=f"rate{i}")
    results = enqueue_many([demo.limited.s(str(path), str(i)) for i in range(100)])
    started = time.monotonic()
    wait_for(lambda: len(lines(path)) == 100, timeout=40, interval=0.1, message="100 jobs")
    elapsed = time.monotonic() - started
    assert 9.0 <= elapsed <= 14.0, f"100 jobs at 10/s took {elapsed:.1f}s"
    stamps = sorted(float(line.split()[1]) for line in lines(path))
    # each job starts at its own slot (0.1 s apart); on a loaded machine one may start a little
    # late, so look at windows: any 21 consecutive starts span about 2 s (a per-worker limit
    # would start them within 0.5 s)
    spans = [stamps[i + 20] - stamps[i] for i in range(len(stamps) - 20)]
    assert min(spans) >= 1.6, f"21 jobs started within {min(spans):.2f}s"
    assert {r.state for r in results} == {states.SUCCESS}


def test_concurrency_limit_across_three_workers(start_worker, tmp_path):
    path = tmp_path / "ran.txt"
    for i in range(3):
        start_worker("-c", "4", name=f"conc{i}")
    results = enqueue_many([demo.exclusive.s(str(path), str(i), 0.2) for i in range(24)])
    wait_for(
        lambda: sum(1 for line in lines(path) if " end " in line) == 24,
        timeout=60,
        interval=0.1,
        message="all jobs done",
    )
    events = []
    for line in lines(path):
        _, kind, stamp = line.split()
        events.append((float(stamp), 0 if kind == "end" else 1))
    running = peak = 0
    for _, starts in sorted(events):
        running += 1 if starts else -1
        peak = max(peak, running)
    assert peak <= 2, f"{peak} jobs ran at once"
    assert peak == 2  # and the limit was used
    assert {r.state for r in results} == {states.SUCCESS}


def test_add_and_cancel_consumer_without_restart(start_worker, tmp_path):
    worker = start_worker("-Q", "default", "-c", "1", name="consumer")
    other = demo.add.apply_async((1, 1), queue="other")
    control.add_consumer("other", destination=[worker.nodename], reply=True, timeout=2)
    assert other.get(timeout=30) == 2
    replies = control.cancel_consumer("other", destination=[worker.nodename], reply=True, timeout=2)
    assert replies == [{worker.nodename: {"ok": "no longer consuming from other"}}]
    later = demo.add.apply_async((2, 2), queue="other")
    assert demo.add.delay(3, 3).get(timeout=30) == 6  # the worker is alive and polling
    assert Job.objects.get(id=later.id).state == states.PENDING
    queues = control.inspect(destination=[worker.nodename], timeout=2).active_queues()
    assert [q["name"] for q in queues[worker.nodename]] == ["default"]


def test_worker_admin_actions_ping_and_shut_down(start_worker, client, django_user_model):
    from django.urls import reverse

    from djq.models import Worker

    worker = start_worker("-c", "1", name="admined")
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    row = Worker.objects.get(name=worker.nodename)
    url = reverse("admin:djq_worker_changelist")
    page = client.post(url, {"action": "ping", "_selected_action": [row.pk]}, follow=True)
    assert f"pong from {worker.nodename}" in page.content.decode().lower()
    client.post(url, {"action": "shutdown", "_selected_action": [row.pk]})
    assert worker.wait(timeout=30) == 0  # a warm shutdown
    row.refresh_from_db()
    assert row.stopped_at is not None
