"""Pure unit tests of the schedule maths (djq.schedules, beat's first_run/following): no database,
no sleeping; the clock is an argument."""

from __future__ import annotations

import datetime as dt

import pytest

from djq.beat import first_run, following, tick_to_fire
from djq.models import PeriodicTask
from djq.schedules import (
    clocked,
    crontab,
    instants,
    interval,
    next_tick,
    to_schedule,
    upcoming,
    zone,
)

UTC = dt.UTC
OSLO = "Europe/Oslo"


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def hm(moments: list[dt.datetime]) -> list[str]:
    return [m.astimezone(UTC).strftime("%H:%M") for m in moments]


# --- crontab across DST in Europe/Oslo (2024: spring 31 March 02:00 CET → 03:00 CEST;
# autumn 27 October 03:00 CEST → 02:00 CET) -------------------------------------------------------
def test_every_15_minutes_in_oslo_across_spring_forward_keeps_real_time_spacing():
    cron = crontab(minute="*/15", tz=OSLO)
    ticks = upcoming(cron, utc(2024, 3, 31, 0, 0), 8)
    # 01:45 CET is 00:45Z; the next wall time that exists is 03:00 CEST = 01:00Z.
    assert hm(ticks) == ["00:15", "00:30", "00:45", "01:00", "01:15", "01:30", "01:45", "02:00"]
    local = [t.astimezone(zone(OSLO)).strftime("%H:%M %Z") for t in ticks[2:5]]
    assert local == ["01:45 CET", "03:00 CEST", "03:15 CEST"]


def test_every_15_minutes_in_oslo_across_fall_back_fires_in_both_repeated_hours():
    cron = crontab.from_string("*/15 * * * *", tz=OSLO)
    ticks = upcoming(cron, utc(2024, 10, 26, 23, 50), 13)
    assert hm(ticks) == [
        "00:00",
        "00:15",
        "00:30",
        "00:45",
        "01:00",
        "01:15",
        "01:30",
        "01:45",
        "02:00",
        "02:15",
        "02:30",
        "02:45",
        "03:00",
    ]
    local = [t.astimezone(zone(OSLO)).strftime("%H:%M %Z") for t in ticks[3:6]]
    assert local == ["02:45 CEST", "02:00 CET", "02:15 CET"]


@pytest.mark.parametrize(
    "after, expected",
    [
        (utc(2024, 10, 27, 0, 40), utc(2024, 10, 27, 0, 45)),  # 02:40 CEST → 02:45 CEST
        (utc(2024, 10, 27, 0, 50), utc(2024, 10, 27, 1, 0)),  # 02:50 CEST → 02:00 CET
        (utc(2024, 10, 27, 1, 0), utc(2024, 10, 27, 1, 15)),  # 02:00 CET → 02:15 CET
        (utc(2024, 10, 27, 1, 50), utc(2024, 10, 27, 2, 0)),  # 02:50 CET → 03:00 CET
        (utc(2024, 3, 31, 0, 59, 59), utc(2024, 3, 31, 1, 0)),  # 01:59:59 CET → 03:00 CEST
    ],
)
def test_next_tick_from_inside_the_dst_hours(after, expected):
    assert crontab(minute="*/15", tz=OSLO).next_after(after) == expected


def test_a_fixed_hour_in_the_skipped_hour_fires_when_the_clock_jumps():
    daily = crontab(minute=30, hour=2, tz=OSLO)
    ticks = upcoming(daily, utc(2024, 3, 30, 12, 0), 2)
    # 31 March has no 02:30: it fires at 03:00 CEST (01:00Z), never twice, never skipped.
    assert ticks == [utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)]


def test_a_fixed_hour_in_the_repeated_hour_fires_once():
    daily = crontab(minute=30, hour=2, tz=OSLO)
    ticks = upcoming(daily, utc(2024, 10, 26, 12, 0), 2)
    assert ticks == [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]  # 02:30 CEST, then CET


def test_hourly_in_oslo_counts_the_repeated_hour_but_not_the_skipped_one():
    hourly = crontab(minute=0, tz=OSLO)
    autumn = upcoming(hourly, utc(2024, 10, 26, 21, 30), 26)  # from 23:30 CEST on the 26th
    spring = upcoming(hourly, utc(2024, 3, 30, 22, 30), 24)  # from 23:30 CET on the 30th
    assert sum(t.astimezone(zone(OSLO)).day == 27 for t in autumn) == 25  # a 25-hour day
    assert sum(t.astimezone(zone(OSLO)).day == 31 for t in spring) == 23  # a 23-hour day
    for ticks in (autumn, spring):
        assert all(b - a == dt.timedelta(hours=1) for a, b in zip(ticks, ticks[1:]))


def test_crontab_without_a_zone_uses_the_zone_it_is_given_and_utc_by_default():
    daily = crontab(minute=0, hour=9)
    assert daily.next_after(utc(2024, 7, 1, 0, 0)) == utc(2024, 7, 1, 9, 0)
    assert daily.next_after(utc(2024, 7, 1, 0, 0), tz=OSLO) == utc(2024, 7, 1, 7, 0)
    assert next_tick(daily, utc(2024, 1, 1, 0, 0), tz=OSLO) == utc(2024, 1, 1, 8, 0)


def test_next_after_is_strictly_after():
    assert crontab(minute="*/15").next_after(utc(2024, 1, 1, 10, 15)) == utc(2024, 1, 1, 10, 30)
    assert crontab(minute="*/15").next_after(utc(2024, 1, 1, 10, 14, 59, 999999)) == utc(
        2024, 1, 1, 10, 15
    )


def test_instants_of_a_wall_time():
    tz = zone(OSLO)
    assert instants(dt.datetime(2024, 10, 27, 2, 30), tz) == [
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 27, 1, 30),
    ]
    assert instants(dt.datetime(2024, 10, 27, 2, 30), tz, repeat_hour=False) == [
        utc(2024, 10, 27, 0, 30)
    ]
    assert instants(dt.datetime(2024, 3, 31, 2, 30), tz) == [utc(2024, 3, 31, 1, 0)]
    assert instants(dt.datetime(2024, 7, 1, 12, 0), tz) == [utc(2024, 7, 1, 10, 0)]


# --- beat's view with a controllable clock --------------------------------------------------------
def simulate(pt: PeriodicTask, start: dt.datetime, end: dt.datetime, step: dt.timedelta):
    """Run beat's maths with a fake clock that advances by ``step``: the ticks it would fire."""
    fired, now = [], start
    pt.next_run_at = first_run(pt, now)
    while now <= end and pt.next_run_at is not None:
        while pt.next_run_at is not None and pt.next_run_at <= now:
            fired.append(pt.next_run_at)
            pt.next_run_at = following(pt, pt.next_run_at, now)
        now += step
    return fired


def test_beat_fires_oslo_quarter_hours_at_the_expected_utc_instants_across_autumn_dst():
    pt = PeriodicTask(name="q", task="t", crontab="*/15 * * * *", timezone=OSLO)
    fired = simulate(
        pt, utc(2024, 10, 26, 23, 50), utc(2024, 10, 27, 3, 0), dt.timedelta(seconds=20)
    )
    assert len(fired) == 13 and len(set(fired)) == 13
    assert all(b - a == dt.timedelta(minutes=15) for a, b in zip(fired, fired[1:]))
    assert fired[0] == utc(2024, 10, 27, 0, 0) and fired[-1] == utc(2024, 10, 27, 3, 0)


def test_beat_fires_oslo_quarter_hours_at_the_expected_utc_instants_across_spring_dst():
    pt = PeriodicTask(name="q", task="t", crontab="*/15 * * * *", timezone=OSLO)
    fired = simulate(pt, utc(2024, 3, 30, 23, 50), utc(2024, 3, 31, 2, 0), dt.timedelta(seconds=20))
    assert hm(fired) == [
        "00:00",
        "00:15",
        "00:30",
        "00:45",
        "01:00",
        "01:15",
        "01:30",
        "01:45",
        "02:00",
    ]


def test_missed_ticks_run_once_then_the_schedule_resumes():
    pt = PeriodicTask(name="m", task="t", interval_every=1, interval_period="minutes")
    pt.next_run_at = utc(2024, 1, 1, 10, 0)
    now = utc(2024, 1, 1, 11, 0, 30)  # beat was down for an hour
    assert following(pt, pt.next_run_at, now) == utc(2024, 1, 1, 11, 1)  # on the same grid


def test_catch_up_walks_through_every_missed_tick():
    pt = PeriodicTask(
        name="m", task="t", interval_every=1, interval_period="minutes", catch_up="all"
    )
    fired = simulate(pt, utc(2024, 1, 1, 10, 0), utc(2024, 1, 1, 10, 0), dt.timedelta(hours=1))
    assert fired == []
    pt.next_run_at = utc(2024, 1, 1, 10, 0)
    now, fired = utc(2024, 1, 1, 10, 59, 30), []
    while pt.next_run_at <= now:
        fired.append(pt.next_run_at)
        pt.next_run_at = following(pt, pt.next_run_at, now)
    assert len(fired) == 60


def test_first_run_honours_start_time_and_interval_anchor():
    now = utc(2024, 1, 1, 10, 0, 0)
    pt = PeriodicTask(name="i", task="t", interval_every=10, interval_period="seconds")
    assert first_run(pt, now) == utc(2024, 1, 1, 10, 0, 10)
    pt.start_time = utc(2024, 1, 1, 12, 0)
    assert first_run(pt, now) == utc(2024, 1, 1, 12, 0)
    pt.start_time = utc(2024, 1, 1, 9, 59, 55)  # the grid of a past start: 10:00:05, 10:00:15 …
    assert first_run(pt, now) == utc(2024, 1, 1, 10, 0, 5)
    cron = PeriodicTask(name="c", task="t", crontab="0 * * * *", start_time=utc(2024, 1, 2, 5, 0))
    assert first_run(cron, now) == utc(2024, 1, 2, 5, 0)


def test_clocked_and_one_off_run_once():
    at = utc(2024, 1, 1, 12, 0)
    pt = PeriodicTask(name="c", task="t", clocked_time=at)
    assert first_run(pt, utc(2024, 1, 1, 13, 0)) == at  # past but never run: runs now
    assert following(pt, at, utc(2024, 1, 1, 13, 0)) is None
    one = PeriodicTask(
        name="o", task="t", interval_every=5, interval_period="seconds", one_off=True
    )
    assert following(one, at, at) is None
    assert clocked(at).next_after(at) is None
    assert clocked(at).next_after(at - dt.timedelta(seconds=1)) == at


# --- intervals and parsing ------------------------------------------------------------------------
def test_interval_grid_is_anchored():
    every = interval(dt.timedelta(seconds=30))
    anchor = utc(2024, 1, 1, 0, 0, 0)
    assert every.next_after(utc(2024, 1, 1, 0, 0, 45), anchor=anchor) == utc(2024, 1, 1, 0, 1, 0)
    assert every.next_after(utc(2024, 1, 1, 0, 1, 0), anchor=anchor) == utc(2024, 1, 1, 0, 1, 30)
    assert every.next_after(anchor - dt.timedelta(hours=1), anchor=anchor) == anchor


def test_interval_is_a_duration_across_dst():
    hourly = interval(1, "hours")
    ticks = upcoming(hourly, utc(2024, 10, 26, 23, 0), 4, anchor=utc(2024, 10, 26, 23, 0))
    assert all(b - a == dt.timedelta(hours=1) for a, b in zip(ticks, ticks[1:]))


@pytest.mark.parametrize(
    "value, every, period",
    [
        (30, 30, "seconds"),
        (30.0, 30, "seconds"),
        (dt.timedelta(minutes=5), 5, "minutes"),
        (dt.timedelta(hours=2), 2, "hours"),
        (dt.timedelta(days=1), 1, "days"),
        (90, 90, "seconds"),
    ],
)
def test_interval_units(value, every, period):
    schedule = to_schedule(value)
    assert (schedule.every, schedule.period) == (every, period)


@pytest.mark.parametrize("bad", [0, -1, 0.5, dt.timedelta(milliseconds=1500)])
def test_interval_rejects_non_positive_or_fractional_seconds(bad):
    with pytest.raises(ValueError):
        interval(bad)


def test_to_schedule_variants():
    assert to_schedule("*/10 * * * *") == crontab(minute="*/10")
    assert to_schedule("@hourly") == crontab(minute=0)
    assert to_schedule(crontab(hour=7, minute=30, day_of_week=1)).expression == "30 7 * * 1"
    at = utc(2030, 1, 1)
    assert to_schedule(at) == clocked(at)
    with pytest.raises(TypeError):
        to_schedule(True)
    with pytest.raises(TypeError):
        to_schedule(["* * * * *"])


@pytest.mark.parametrize(
    "expression", ["61 * * * *", "* * * *", "* * * * * *", "a b c d e", "*/0 * * * *", ""]
)
def test_bad_cron_expressions_fail_where_written(expression):
    with pytest.raises(ValueError):
        crontab.from_string(expression)


def test_bad_fields_and_zones_fail():
    with pytest.raises(ValueError):
        crontab(minute="* *")
    with pytest.raises(ValueError):
        crontab(minute=0, tz="Mars/Olympus")
    with pytest.raises(ValueError):
        crontab().next_after(dt.datetime(2024, 1, 1))  # naive


def test_schedule_equality():
    assert crontab(minute=5) == crontab.from_string("5 * * * *")
    assert crontab(minute=5, tz=OSLO) != crontab(minute=5)
    assert interval(60) == interval(1, "minutes")
    assert len({interval(60), interval(1, "minutes"), crontab(minute=5)}) == 2


def _walk(pt, now):
    """The ticks beat fires for ``pt`` at ``now`` (one after the other, as its turns do)."""
    fired = []
    while pt.next_run_at is not None and pt.next_run_at <= now:
        tick = tick_to_fire(pt, pt.next_run_at, now)
        if tick is None:  # skip: next_run_at goes to the next future tick
            pt.next_run_at = next_tick(pt.schedule, now, anchor=pt.next_run_at)
            continue
        fired.append(tick)
        pt.next_run_at = following(pt, tick, now)
    return fired


@pytest.mark.parametrize(
    ("policy", "limit", "expected"),
    [("once", None, 1), ("skip", None, 0), ("all", None, 60), ("all", 5, 5), ("all", 0, 1)],
)
def test_missed_run_policies_after_an_hour_of_downtime(policy, limit, expected):
    pt = PeriodicTask(
        name="m",
        task="t",
        interval_every=1,
        interval_period="minutes",
        catch_up=policy,
        backfill_limit=limit,
    )
    pt.next_run_at = utc(2024, 1, 1, 10, 0)
    now = utc(2024, 1, 1, 10, 59, 30)
    fired = _walk(pt, now)
    assert len(fired) == expected
    if policy == "all":
        assert fired[-1] == utc(2024, 1, 1, 10, 59)  # the latest missed ticks are the ones kept
    assert pt.next_run_at == utc(2024, 1, 1, 11, 0)  # then the schedule goes on, on its grid


def test_skip_fires_a_tick_that_is_only_a_little_late():
    pt = PeriodicTask(
        name="m", task="t", interval_every=1, interval_period="minutes", catch_up="skip"
    )
    tick = utc(2024, 1, 1, 10, 0)
    assert tick_to_fire(pt, tick, tick + dt.timedelta(seconds=2)) == tick
    assert tick_to_fire(pt, tick, tick + dt.timedelta(seconds=61)) is None  # the next one is due
