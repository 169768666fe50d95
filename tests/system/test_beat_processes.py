"""Beat as real processes (``manage.py djq_beat`` and ``djq_worker --beat``) against the test
database: one leader among many, fail-over after kill -9, exactly one job per tick, settings sync
across restarts, schedules created while beat runs."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from pathlib import Path

import pytest

from djq import store
from djq.models import Job, Lease, PeriodicTask, PeriodicTick
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ADD = "testproject.demo.tasks.add"


def leader() -> str:
    row = Lease.objects.filter(name="beat").first()
    alive = row is not None and row.holder and row.expires_at > store.db_now()
    return row.holder if alive else ""


def leader_pid() -> int:
    return int(wait_for(leader, timeout=15, message="a beat to lead").split(":")[1])


def every_second(name: str = "tick") -> PeriodicTask:
    return PeriodicTask.objects.create(
        name=name, task=ADD, args=[1, 1], interval_every=1, interval_period="seconds"
    )


def ticks(pt: PeriodicTask) -> list[dt.datetime]:
    return sorted(PeriodicTick.objects.filter(periodic_task=pt).values_list("tick", flat=True))


def assert_one_job_per_tick(pt: PeriodicTask) -> list[dt.datetime]:
    found = ticks(pt)
    assert len(found) == len(set(found))
    jobs = set(Job.objects.filter(name=ADD).values_list("id", flat=True))
    guarded = set(PeriodicTick.objects.filter(periodic_task=pt).values_list("job_id", flat=True))
    assert jobs == guarded, "every job belongs to exactly one tick and every tick to one job"
    return found


def test_three_beats_fire_a_one_second_schedule_once_per_tick(start_beat):
    beats = [start_beat(name=f"beat{i}") for i in range(3)]
    leader_pid()
    pt = every_second()  # created while beat runs: picked up without a restart
    wait_for(lambda: ticks(pt), timeout=5, message="the first tick")
    time.sleep(10)  # the window being measured
    PeriodicTask.objects.filter(pk=pt.pk).update(enabled=False)
    found = assert_one_job_per_tick(pt)
    assert 9 <= len(found) - 1 <= 11, found
    assert all(b - a == dt.timedelta(seconds=1) for a, b in zip(found, found[1:])), found
    assert all(b.is_alive() for b in beats)
    senders = [b for b in beats if "Sending due task tick" in b.log_text()]
    assert len(senders) == 1, "one leader did all the enqueueing"


def test_kill_9_of_the_leader_fails_over_within_seconds_without_doubling(start_beat):
    beats = [start_beat(name=f"beat{i}") for i in range(3)]
    pt = every_second()
    wait_for(lambda: len(ticks(pt)) >= 3, timeout=10, message="three ticks")
    old = leader_pid()
    victim = next(b for b in beats if b.pid == old)
    victim.kill()
    killed_at = time.monotonic()
    new = wait_for(
        lambda: (h := leader()) and int(h.split(":")[1]) != old and h,
        timeout=12,
        message="another beat to take over",
    )
    took = time.monotonic() - killed_at
    assert took < 8, f"fail-over took {took:.1f}s"
    assert int(new.split(":")[1]) in {b.pid for b in beats if b is not victim}
    before = len(ticks(pt))
    wait_for(lambda: len(ticks(pt)) >= before + 3, timeout=10, message="ticks after fail-over")
    PeriodicTask.objects.filter(pk=pt.pk).update(enabled=False)
    found = assert_one_job_per_tick(pt)
    gaps = [(b - a).total_seconds() for a, b in zip(found, found[1:])]
    assert all(g >= 1 and g == int(g) for g in gaps), gaps  # on the grid, never doubled
    assert max(gaps) <= 9, gaps  # only the fail-over gap is lost (missed ticks run once)


def test_sigterm_releases_the_lease_and_a_standby_takes_over_at_once(start_beat):
    first = start_beat(name="first")
    wait_for(lambda: leader().split(":")[1:2] == [str(first.pid)], timeout=10)
    second = start_beat(name="second")
    first.terminate()
    assert first.wait(timeout=10) == 0
    assert "lease released" in first.log_text()
    released = time.monotonic()
    wait_for(
        lambda: leader().split(":")[1:2] == [str(second.pid)],
        timeout=4,
        message="the standby to lead",
    )
    assert time.monotonic() - released < 3


def test_settings_sync_is_idempotent_across_restarts_and_respects_admin_edits(start_beat):
    entry = {"hourly-add": {"task": ADD, "schedule": 3600, "args": [1, 2]}}
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.beat_settings",
        "DJQ_TEST_BEAT_SCHEDULE": json.dumps(entry),
    }

    def run_once(name: str, env_extra: dict) -> str:
        b = start_beat(name=name, env_extra=env_extra)
        b.wait_for_log("schedule synced", timeout=15)
        b.terminate()
        assert b.wait(timeout=10) == 0
        return b.log_text()

    run_once("first", env)
    row = PeriodicTask.objects.get(name="hourly-add")
    assert (row.args, row.interval_every, row.interval_period) == ([1, 2], 1, "hours")
    PeriodicTask.objects.filter(pk=row.pk).update(args=[5, 5], queue="edited")  # the admin
    log = run_once("second", env)
    assert "'created'" not in log and "'updated'" not in log
    row.refresh_from_db()
    assert (row.args, row.queue) == ([5, 5], "edited")
    entry["hourly-add"]["args"] = [3, 4]
    run_once("third", {**env, "DJQ_TEST_BEAT_SCHEDULE": json.dumps(entry)})
    row.refresh_from_db()
    assert (row.args, row.queue) == ([3, 4], "")
    run_once("fourth", {**env, "DJQ_TEST_BEAT_SCHEDULE": "{}"})
    row.refresh_from_db()
    assert not row.enabled and PeriodicTask.objects.filter(name="hourly-add").count() == 1


def test_worker_with_beat_runs_schedules_and_releases_the_lease(start_worker, tmp_path: Path):
    out = tmp_path / "ticks.txt"
    PeriodicTask.objects.create(
        name="record",
        task="testproject.demo.tasks.record",
        args=[str(out), "tick"],
        interval_every=1,
        interval_period="seconds",
    )
    worker = start_worker("--beat", "-c", "2")
    wait_for(
        lambda: out.exists() and len(out.read_text().split()) >= 3,
        timeout=20,
        message="the worker's beat to enqueue and the worker to run three ticks",
    )
    assert leader().split(":")[1] == str(worker.pid)
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    assert leader() == ""


def test_missed_run_policies_after_beat_was_down(start_beat):
    """Stop beat, let ticks pass, restart it: per policy, the missed ticks run once, not at
    all, or each (up to the backfill limit) — with one job per tick throughout."""
    rows = {
        policy: PeriodicTask.objects.create(
            name=policy,
            task=ADD,
            args=[1, 1],
            interval_every=1,
            interval_period="seconds",
            catch_up=policy.split("-")[0],
            backfill_limit=2 if policy == "all-limited" else None,
        )
        for policy in ("once", "skip", "all", "all-limited")
    }
    first = start_beat(name="before")
    wait_for(lambda: all(len(ticks(pt)) >= 2 for pt in rows.values()), timeout=15, message="ticks")
    first.terminate()
    assert first.wait(timeout=15) == 0
    last = {policy: ticks(pt)[-1] for policy, pt in rows.items()}
    time.sleep(6)  # the downtime being measured: about six ticks missed
    restart = store.db_now()
    second = start_beat(name="after")
    later = restart + dt.timedelta(seconds=2)
    wait_for(
        lambda: all(ticks(pt)[-1] >= later for pt in rows.values()), timeout=20, message="resume"
    )
    second.terminate()
    assert second.wait(timeout=15) == 0

    def missed(policy: str, until: dt.datetime) -> list[dt.datetime]:
        return [t for t in ticks(rows[policy]) if last[policy] < t < until]

    # ticks over a second before the restart are late by more than a period when beat returns
    assert len(missed("once", restart)) == 1
    assert missed("skip", restart - dt.timedelta(seconds=1)) == []
    backfilled = missed("all", restart)
    assert len(backfilled) >= 5  # every missed tick, one second apart
    assert all(b - a == dt.timedelta(seconds=1) for a, b in zip(backfilled, backfilled[1:]))
    assert backfilled[0] == last["all"] + dt.timedelta(seconds=1)
    limited = ticks(rows["all-limited"])
    assert limited[limited.index(last["all-limited"]) + 1] - last["all-limited"] >= dt.timedelta(
        seconds=4
    ), "older missed ticks beyond the limit of 2 were dropped"
    assert "dropped beyond the backfill limit" in second.log_text()
    assert "skipped (catch_up=skip)" in second.log_text()
    for pt in rows.values():
        found = ticks(pt)
        assert len(found) == len(set(found))
    jobs = set(Job.objects.filter(name=ADD).values_list("id", flat=True))
    assert jobs == set(PeriodicTick.objects.values_list("job_id", flat=True))
