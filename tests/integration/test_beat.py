"""Beat in-process: settings sync, firing ticks exactly once, missed ticks, the lease, housekeeping,
the admin for schedules. (Real beat processes: tests/system/test_beat_processes.py.)"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.checks import run_checks
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from djq import beat, beat_sync, crontab, states, store
from djq.housekeeping import purge_results
from djq.models import Job, Lease, PeriodicTask, PeriodicTick

pytestmark = pytest.mark.django_db

ADD = "testproject.demo.tasks.add"
SCHEDULE = {
    "add-every-30": {"task": ADD, "schedule": 30.0, "args": (1, 2)},
    "nightly": {
        "task": ADD,
        "schedule": crontab(hour=3, minute=0, tz="Europe/Oslo"),
        "args": (2, 2),
        "options": {"queue": "nightly", "priority": 5, "expires": 60},
    },
    "cron-string": {"task": ADD, "schedule": "*/10 * * * *", "kwargs": {"x": 1, "y": 1}},
}


def now() -> dt.datetime:
    return store.db_now()


def make(name: str = "s", **fields) -> PeriodicTask:
    fields.setdefault("task", ADD)
    fields.setdefault("args", [1, 1])
    if not {"crontab", "interval_every", "clocked_time"} & set(fields):
        fields.update(interval_every=1, interval_period="seconds")
    return PeriodicTask.objects.create(name=name, **fields)


# --- settings sync --------------------------------------------------------------------------------
@override_settings(DJQ_BEAT_SCHEDULE=SCHEDULE)
def test_sync_creates_rows_and_is_idempotent():
    first = beat_sync.sync_schedule()
    assert sorted(first["created"]) == sorted([*SCHEDULE, beat_sync.PURGE_TASK])
    second = beat_sync.sync_schedule()
    assert second["created"] == second["updated"] == second["disabled"] == []
    assert sorted(second["unchanged"]) == sorted(first["created"])
    nightly = PeriodicTask.objects.get(name="nightly")
    assert (nightly.crontab, nightly.timezone, nightly.queue, nightly.priority) == (
        "0 3 * * *",
        "Europe/Oslo",
        "nightly",
        5,
    )
    assert nightly.expire_seconds == 60 and nightly.args == [2, 2] and nightly.settings_hash
    every = PeriodicTask.objects.get(name="add-every-30")
    assert (every.interval_every, every.interval_period) == (30, "seconds")
    assert PeriodicTask.objects.get(name="cron-string").kwargs == {"x": 1, "y": 1}


@override_settings(DJQ_BEAT_SCHEDULE=SCHEDULE)
def test_sync_keeps_admin_edits_until_the_settings_entry_changes():
    beat_sync.sync_schedule()
    PeriodicTask.objects.filter(name="add-every-30").update(args=[40, 2], description="edited")
    beat_sync.sync_schedule()
    assert PeriodicTask.objects.get(name="add-every-30").args == [40, 2]
    changed = {**SCHEDULE, "add-every-30": {**SCHEDULE["add-every-30"], "schedule": 60}}
    PeriodicTask.objects.filter(name="add-every-30").update(next_run_at=now())
    report = beat_sync.sync_schedule(changed)
    assert report["updated"] == ["add-every-30"]
    row = PeriodicTask.objects.get(name="add-every-30")
    assert (row.args, row.interval_every, row.interval_period) == ([1, 2], 1, "minutes")
    assert row.next_run_at is None  # the schedule changed: beat recomputes it


@override_settings(DJQ_BEAT_SCHEDULE=SCHEDULE)
def test_sync_disables_removed_entries_and_re_enables_them_when_back():
    beat_sync.sync_schedule()
    fewer = {k: v for k, v in SCHEDULE.items() if k != "nightly"}
    assert beat_sync.sync_schedule(fewer)["disabled"] == ["nightly"]
    row = PeriodicTask.objects.get(name="nightly")  # kept, not deleted
    assert not row.enabled and row.settings_hash == ""
    assert beat_sync.sync_schedule(fewer)["disabled"] == []
    assert beat_sync.sync_schedule()["updated"] == ["nightly"]
    assert PeriodicTask.objects.get(name="nightly").enabled


def test_sync_never_touches_rows_made_in_the_admin():
    make("mine")
    report = beat_sync.sync_schedule({})
    assert "mine" not in report["disabled"]
    assert PeriodicTask.objects.get(name="mine").enabled


def test_sync_skips_invalid_entries_and_the_system_check_reports_them(caplog):
    bad = {
        "bad-cron": {"task": ADD, "schedule": "61 * * * *"},
        "no-task": {"schedule": 5},
        "typo": {"task": ADD, "schedule": 5, "kwarg": {}},
        "good": {"task": ADD, "schedule": 5},
    }
    report = beat_sync.sync_schedule(bad)
    assert "good" in report["created"]
    assert not PeriodicTask.objects.filter(name__in=["bad-cron", "no-task", "typo"]).exists()
    assert "bad-cron" in caplog.text
    with override_settings(DJQ_BEAT_SCHEDULE=bad):
        errors = [e for e in run_checks() if e.id == "djq.E011"]
    assert sorted(e.msg.split("]")[0] for e in errors) == [
        "DJQ_BEAT_SCHEDULE['bad-cron'",
        "DJQ_BEAT_SCHEDULE['no-task'",
        "DJQ_BEAT_SCHEDULE['typo'",
    ]


def test_housekeeping_is_scheduled_without_configuration_and_can_be_switched_off():
    beat_sync.sync_schedule({})
    row = PeriodicTask.objects.get(name=beat_sync.PURGE_TASK)
    assert row.task == "djq.purge_results" and row.enabled and row.interval_every == 1
    with override_settings(DJQ_RESULT_EXPIRES=None):
        assert beat_sync.sync_schedule({})["disabled"] == [beat_sync.PURGE_TASK]
    off = {beat_sync.PURGE_TASK: {"task": "djq.purge_results", "schedule": 3600, "enabled": False}}
    beat_sync.sync_schedule(off)
    assert not PeriodicTask.objects.get(name=beat_sync.PURGE_TASK).enabled


@override_settings(DJQ_RESULT_EXPIRES=3600)
def test_purge_results_removes_expired_results_and_old_ticks():
    old, recent = store.db_now() - dt.timedelta(hours=2), store.db_now()
    ids = [str(r.id) for r in (beat_send(), beat_send())]
    Job.objects.filter(id=ids[0]).update(state=states.SUCCESS, finished_at=old)
    Job.objects.filter(id=ids[1]).update(state=states.SUCCESS, finished_at=recent)
    pt = make("p")
    PeriodicTick.objects.create(periodic_task=pt, tick=old, job_id=ids[0], created_at=old)
    PeriodicTick.objects.create(periodic_task=pt, tick=recent, job_id=ids[1], created_at=recent)
    assert purge_results() == {"jobs": 1, "ticks": 1}
    assert list(Job.objects.values_list("id", flat=True)) == [Job.objects.get(id=ids[1]).id]


def beat_send():
    from djq import send_task

    return send_task(ADD, (1, 1))


# --- firing ticks ---------------------------------------------------------------------------------
def test_a_tick_fires_once_even_when_two_beats_read_the_same_row():
    pt = make(next_run_at=now() - dt.timedelta(seconds=1))
    stale = PeriodicTask.objects.get(pk=pt.pk)
    assert beat.fire(pt, now(), "default") is not None
    assert beat.fire(stale, now(), "default") is None  # moved on: the conditional UPDATE misses
    assert Job.objects.count() == 1 and PeriodicTick.objects.count() == 1


def test_the_tick_guard_stops_a_second_enqueue_of_the_same_tick():
    tick = now() - dt.timedelta(seconds=1)
    pt = make(next_run_at=tick)
    assert beat.fire(pt, now(), "default")
    PeriodicTask.objects.filter(pk=pt.pk).update(next_run_at=tick)  # e.g. a confused second leader
    pt.refresh_from_db()
    assert beat.fire(pt, now(), "default") is None
    assert Job.objects.count() == 1


def test_a_fired_tick_is_a_job_with_the_rows_options():
    tick = now() - dt.timedelta(seconds=1)
    pt = make(
        args=[2, 3],
        queue="beatq",
        priority=7,
        expire_seconds=30.0,
        options={"headers": {"h": 1}},
        next_run_at=tick,
    )
    job_id = beat.fire(pt, now(), "default")
    job = Job.objects.get(id=job_id)
    assert (job.name, job.args, job.queue, job.priority) == (ADD, [2, 3], "beatq", 7)
    assert job.expires == tick + dt.timedelta(seconds=30)
    assert job.options["headers"] == {"h": 1, "periodic_task_name": "s"}
    pt.refresh_from_db()
    assert pt.total_run_count == 1 and pt.last_run_at is not None
    assert pt.next_run_at > tick and PeriodicTick.objects.get().job_id == job.id


def test_missed_ticks_run_once_on_return():
    an_hour_ago = now() - dt.timedelta(hours=1)
    pt = make(interval_every=1, interval_period="minutes", next_run_at=an_hour_ago)
    assert beat.fire_due(now(), "default") == 1
    assert beat.fire_due(now(), "default") == 0
    pt.refresh_from_db()
    assert pt.next_run_at > now() - dt.timedelta(seconds=1)


def test_catch_up_runs_every_missed_tick():
    make(
        interval_every=1,
        interval_period="minutes",
        catch_up="all",
        next_run_at=now() - dt.timedelta(minutes=10, seconds=30),
    )
    while beat.fire_due(now(), "default"):
        pass
    assert Job.objects.count() == 11


def test_skip_drops_missed_ticks_and_waits_for_the_next_one():
    pt = make(
        interval_every=1,
        interval_period="minutes",
        catch_up="skip",
        next_run_at=now() - dt.timedelta(minutes=10, seconds=30),
    )
    assert beat.fire_due(now(), "default") == 0
    assert Job.objects.count() == 0 and PeriodicTick.objects.count() == 0
    pt.refresh_from_db()
    assert now() < pt.next_run_at <= now() + dt.timedelta(minutes=1)


def test_all_is_bounded_by_the_backfill_limit_keeping_the_latest_ticks():
    late = now() - dt.timedelta(minutes=10, seconds=30)
    pt = make(interval_every=1, interval_period="minutes", catch_up="all", next_run_at=late)
    with override_settings(DJQ_BEAT_BACKFILL_LIMIT=4):
        while beat.fire_due(now(), "default"):
            pass
    fired = sorted(PeriodicTick.objects.filter(periodic_task=pt).values_list("tick", flat=True))
    assert fired == [late + dt.timedelta(minutes=m) for m in (7, 8, 9, 10)]
    PeriodicTask.objects.filter(pk=pt.pk).update(backfill_limit=2, next_run_at=late)
    PeriodicTick.objects.all().delete()
    while beat.fire_due(now(), "default"):  # the row's own limit wins over the setting
        pass
    assert PeriodicTick.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_beats_backfilling_at_once_enqueue_each_missed_tick_once():
    """Two beats (a paused leader whose lease ran out, say) walk the same backfill at once."""
    late = now() - dt.timedelta(minutes=30, seconds=30)
    pt = make(interval_every=1, interval_period="minutes", catch_up="all", next_run_at=late)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run_beat() -> None:
        try:
            barrier.wait(timeout=10)
            while beat.fire_due(now(), "default"):
                pass
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run_beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    while beat.fire_due(now(), "default"):  # a beat that lost a race leaves the rest to the next
        pass
    assert not errors, errors
    fired = list(PeriodicTick.objects.filter(periodic_task=pt).values_list("tick", flat=True))
    assert len(fired) == len(set(fired)) == 31
    assert Job.objects.count() == 31


def test_the_old_boolean_catch_up_setting_still_works_and_bad_values_are_refused():
    assert (
        beat_sync.entry_fields("a", {"task": ADD, "schedule": 5, "catch_up": True})["catch_up"]
        == "all"
    )
    fields = beat_sync.entry_fields("b", {"task": ADD, "schedule": 5, "catch_up": "skip"})
    assert fields["catch_up"] == "skip" and fields["backfill_limit"] is None
    with pytest.raises(ValueError, match=r"DJQ_BEAT_SCHEDULE\['c'\]: catch_up='each'"):
        beat_sync.entry_fields("c", {"task": ADD, "schedule": 5, "catch_up": "each"})
    with pytest.raises(ValueError, match=r"backfill_limit=0"):
        beat_sync.entry_fields("d", {"task": ADD, "schedule": 5, "backfill_limit": 0})


def test_one_off_and_clocked_disable_themselves():
    make("once", one_off=True, next_run_at=now() - dt.timedelta(seconds=1))
    make(
        "clocked",
        clocked_time=now() - dt.timedelta(seconds=1),
        interval_every=None,
        interval_period="",
    )
    beat.schedule_new_rows(now(), "default")
    assert beat.fire_due(now(), "default") == 2
    assert not PeriodicTask.objects.filter(enabled=True).exists()


def test_a_row_whose_job_cannot_be_built_is_skipped_not_stuck(caplog):
    pt = make(
        task="testproject.demo.tasks.add",
        args=[1, 2, 3, 4],
        next_run_at=now() - dt.timedelta(seconds=1),
    )
    assert beat.fire_due(now(), "default") == 0
    pt.refresh_from_db()
    assert pt.next_run_at > now() - dt.timedelta(seconds=1) and not Job.objects.exists()
    assert "cannot enqueue" in caplog.text


def test_new_rows_get_their_first_tick_and_unusable_ones_are_disabled(caplog):
    make("new")
    PeriodicTask.objects.create(name="broken", task=ADD, crontab="99 * * * *")  # bypasses clean
    beat.schedule_new_rows(now(), "default")
    assert PeriodicTask.objects.get(name="new").next_run_at is not None
    assert not PeriodicTask.objects.get(name="broken").enabled
    assert "broken" in caplog.text


def test_run_now_enqueues_without_moving_the_schedule():
    pt = make(next_run_at=now() + dt.timedelta(hours=1))
    job_id = beat.run_now(pt)
    pt.refresh_from_db()
    assert Job.objects.get(id=job_id).name == ADD
    assert pt.next_run_at > now() + dt.timedelta(minutes=59) and pt.total_run_count == 1
    assert PeriodicTick.objects.get().manual


def test_preview_lists_the_next_runs():
    pt = make(
        crontab="*/15 * * * *", interval_every=None, interval_period="", timezone="Europe/Oslo"
    )
    times = beat.preview(pt, dt.datetime(2024, 10, 27, 0, 40, tzinfo=dt.UTC))
    assert [t.strftime("%H:%M") for t in times] == ["00:45", "01:00", "01:15", "01:30", "01:45"]


# --- the lease ------------------------------------------------------------------------------------
def test_one_holder_at_a_time_and_takeover_after_expiry():
    assert beat.acquire("a", 5, "default")
    assert not beat.acquire("b", 5, "default")
    assert beat.acquire("a", 5, "default")  # renewal
    Lease.objects.filter(name="beat").update(expires_at=now() - dt.timedelta(seconds=1))
    assert beat.acquire("b", 5, "default")
    assert not beat.acquire("a", 5, "default")
    assert not beat.release("a", "default")
    assert beat.release("b", "default")
    assert beat.acquire("a", 5, "default")  # released: free at once


def test_only_the_leader_fires():
    make(next_run_at=now() - dt.timedelta(seconds=1))
    leader = beat.Beat(beat.BeatConfig(name="leader", sync=False))
    other = beat.Beat(beat.BeatConfig(name="other", sync=False))
    leader.step()
    other.step()
    assert leader.leading and not other.leading
    assert Job.objects.count() == 1


def test_step_sleeps_until_the_next_due_time_at_most_a_renewal():
    b = beat.Beat(beat.BeatConfig(name="x", sync=False, lease=5))
    assert b.step() == pytest.approx(1.0)  # nothing scheduled: look again in a renewal interval
    make(next_run_at=now() + dt.timedelta(seconds=0.3))
    assert 0 < b.step() <= 0.3


# --- the admin ------------------------------------------------------------------------------------
def form_data(**overrides) -> dict:
    data = {
        "name": "from-admin",
        "task": ADD,
        "enabled": "on",
        "description": "",
        "args": "[1, 2]",
        "kwargs": "{}",
        "queue": "",
        "priority": "",
        "expire_seconds": "",
        "options": "{}",
        "crontab": "",
        "interval_every": "",
        "interval_period": "",
        "clocked_time_0": "",
        "clocked_time_1": "",
        "timezone": "",
        "start_time_0": "",
        "start_time_1": "",
        "catch_up": "once",
    }
    data.update(overrides)
    return data


ADD_URL = "admin:djq_periodictask_add"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"crontab": "61 * * * *"}, "Invalid cron expression"),
        ({"crontab": "* * *"}, "Invalid cron expression"),
        ({}, "Give a schedule"),
        (
            {"crontab": "* * * * *", "interval_every": "5", "interval_period": "seconds"},
            "Give only one schedule",
        ),
        ({"interval_every": "5"}, "Choose the interval"),
    ],
)
def test_admin_form_errors_save_nothing(admin_client, overrides, message):
    response = admin_client.post(reverse(ADD_URL), form_data(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PeriodicTask.objects.exists()


def test_admin_rejects_duplicate_names_and_identical_schedules(admin_client):
    make("taken", crontab="*/5 * * * *", interval_every=None, interval_period="", args=[1, 2])
    dup_name = admin_client.post(reverse(ADD_URL), form_data(name="taken", crontab="0 * * * *"))
    assert "already exists" in dup_name.content.decode()
    same = admin_client.post(reverse(ADD_URL), form_data(crontab="*/5 * * * *"))
    assert "An identical schedule already exists" in same.content.decode()
    assert PeriodicTask.objects.count() == 1


def test_admin_creates_a_schedule_and_shows_the_next_5_runs(admin_client):
    response = admin_client.post(
        reverse(ADD_URL), form_data(crontab="*/15 * * * *", timezone="Europe/Oslo")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    pt = PeriodicTask.objects.get(name="from-admin")
    assert pt.crontab == "*/15 * * * *" and pt.next_run_at is None and pt.settings_hash == ""
    page = admin_client.get(reverse("admin:djq_periodictask_change", args=[pt.pk])).content
    field = page.decode().split("Next 5 runs")[1]
    upcoming = field.split('class="readonly">')[1].split("</div>")[0]
    assert upcoming.count("UTC)") == 5


def test_admin_shows_and_edits_the_missed_run_policy(admin_client):
    data = form_data(crontab="*/15 * * * *", catch_up="all", backfill_limit="24")
    assert admin_client.post(reverse(ADD_URL), data).status_code == 302
    pt = PeriodicTask.objects.get(name="from-admin")
    assert (pt.catch_up, pt.backfill_limit) == ("all", 24)
    page = admin_client.get(reverse("admin:djq_periodictask_change", args=[pt.pk])).content
    assert '<option value="skip">' in page.decode() and 'name="backfill_limit"' in page.decode()
    change = reverse("admin:djq_periodictask_change", args=[pt.pk])
    edited = admin_client.post(change, form_data(crontab="*/15 * * * *", catch_up="skip"))
    assert edited.status_code == 302
    pt.refresh_from_db()
    assert (pt.catch_up, pt.backfill_limit) == ("skip", None)
    bad = admin_client.post(change, form_data(crontab="*/15 * * * *", catch_up="each"))
    assert "Select a valid choice" in bad.content.decode()
    listing = admin_client.get(reverse("admin:djq_periodictask_changelist") + "?catch_up=skip")
    assert "from-admin" in listing.content.decode()


def test_admin_schedule_edit_resets_next_run_but_keeps_counters(admin_client):
    pt = make("edit", next_run_at=now(), total_run_count=3)
    data = form_data(name="edit", interval_every="10", interval_period="seconds", args="[1, 1]")
    response = admin_client.post(reverse("admin:djq_periodictask_change", args=[pt.pk]), data)
    assert response.status_code == 302
    pt.refresh_from_db()
    assert pt.interval_every == 10 and pt.next_run_at is None and pt.total_run_count == 3


def test_admin_actions_enable_disable_and_run_now(admin_client):
    pt = make("act", next_run_at=now() + dt.timedelta(hours=1))
    url = reverse("admin:djq_periodictask_changelist")

    def act(action):
        return admin_client.post(url, {"action": action, "_selected_action": [pt.pk]}, follow=True)

    act("disable")
    pt.refresh_from_db()
    assert not pt.enabled and pt.next_run_at is None
    act("enable")
    pt.refresh_from_db()
    assert pt.enabled
    response = act("run_now")
    assert "Enqueued 1 job(s)" in response.content.decode()
    assert Job.objects.filter(name=ADD).count() == 1
