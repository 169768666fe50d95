"""Solar schedules (issue 14; Celery's ``solar(event, lat, lon)``): the sun maths against known
times, the schedule object, DJQ_BEAT_SCHEDULE sync, beat's next ticks and the admin's form.

Reference times: the almanac's London 2024 summer solstice (sunrise 04:43 BST, sunset 21:21
BST) and New York 2024 winter solstice (07:16 / 16:32 EST); the others are NOAA's algorithm as
published by the astral package (3.2) for those places and days, to the second. djq must agree
within 90 seconds (NOAA's own accuracy is about a minute between the polar circles).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.urls import reverse

from djq import beat, beat_sync, solar, sun
from djq.models import PeriodicTask
from djq.schedules import next_tick, to_schedule, upcoming

UTC = dt.UTC
LONDON, NEW_YORK = (51.5072, -0.1276), (40.7128, -74.0060)
SYDNEY, QUITO, TOKYO = (-33.8688, 151.2093), (-0.1807, -78.4678), (35.6762, 139.6503)
LONGYEARBYEN = (78.2232, 15.6267)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


KNOWN = [
    ("sunrise", LONDON, utc(2024, 6, 21), utc(2024, 6, 21, 3, 43, 0)),
    ("sunset", LONDON, utc(2024, 6, 21), utc(2024, 6, 21, 20, 21, 0)),
    ("solar_noon", LONDON, utc(2024, 6, 21), utc(2024, 6, 21, 12, 2, 19)),
    ("sunrise", NEW_YORK, utc(2024, 12, 21), utc(2024, 12, 21, 12, 16, 30)),
    ("sunset", NEW_YORK, utc(2024, 12, 21), utc(2024, 12, 21, 21, 32, 30)),
    ("sunrise", SYDNEY, utc(2026, 1, 15), utc(2026, 1, 15, 19, 0, 41)),  # 06:00 AEDT, the 16th
    ("sunset", SYDNEY, utc(2026, 1, 15), utc(2026, 1, 15, 9, 8, 46)),  # 20:08 AEDT
    ("sunrise", QUITO, utc(2026, 3, 20), utc(2026, 3, 20, 11, 18, 9)),
    ("sunset", QUITO, utc(2026, 3, 20), utc(2026, 3, 20, 23, 24, 19)),
    ("dawn_astronomical", QUITO, utc(2026, 3, 20), utc(2026, 3, 20, 10, 9, 15)),
    ("sunset", TOKYO, utc(2026, 10, 1), utc(2026, 10, 1, 8, 25, 41)),
    ("dusk_nautical", TOKYO, utc(2026, 10, 1), utc(2026, 10, 1, 9, 21, 1)),
    ("sunrise", TOKYO, utc(2026, 10, 1, 9), utc(2026, 10, 1, 20, 36, 58)),  # 05:37 JST, the 2nd
]


@pytest.mark.parametrize(("event", "place", "after", "expected"), KNOWN)
def test_the_next_event_is_within_90_seconds_of_the_known_time(event, place, after, expected):
    got = solar(event, *place).next_after(after)
    assert abs((got - expected).total_seconds()) <= 90, (event, place, got, expected)


def test_the_twilights_come_in_order_around_the_day():
    after = utc(2026, 4, 1)
    times = [solar(event, *LONDON).next_after(after) for event in solar.EVENTS]
    assert times == sorted(times)
    assert times[-1] - times[0] < dt.timedelta(hours=24)


def test_each_tick_is_the_next_day_s_and_ticks_never_repeat():
    schedule = solar("sunrise", *LONDON)
    ticks = upcoming(schedule, utc(2026, 3, 1), count=10)
    gaps = {round((b - a).total_seconds() / 3600) for a, b in zip(ticks, ticks[1:])}
    assert gaps == {24}  # one a day; March 29 (BST) changes nothing: solar times are UTC
    assert next_tick(schedule, ticks[3]) == ticks[4]  # from a tick: the next one, not itself


def test_polar_day_and_night_skip_to_the_next_event():
    # The midnight sun at Longyearbyen lasts from April 19 to August 23: no sunset in between.
    sunset = solar("sunset", *LONGYEARBYEN).next_after(utc(2026, 5, 1))
    assert utc(2026, 8, 22) < sunset < utc(2026, 8, 27)
    sunrise = solar("sunrise", *LONGYEARBYEN).next_after(utc(2026, 11, 20))  # polar night
    assert utc(2027, 2, 12) < sunrise < utc(2027, 2, 20)
    assert sun.event_on("sunset", dt.date(2026, 6, 21), *LONGYEARBYEN) is None


@pytest.mark.parametrize(
    ("args", "error", "text"),
    [
        (("sunup", 0, 0), ValueError, "'sunup' is not one of dawn_astronomical"),
        (("sunset", 91, 0), ValueError, "latitude must be between -90 and 90, got 91"),
        (("sunset", 0, -181), ValueError, "longitude must be between -180 and 180, got -181"),
        (("sunset", "51.5", 0), TypeError, "latitude must be a number of degrees, got '51.5'"),
    ],
)
def test_bad_arguments_are_named(args, error, text):
    with pytest.raises(error, match=text.replace("(", r"\(")):
        solar(*args)


def test_schedule_values_and_equality():
    assert to_schedule(solar("sunset", 1, 2)) == solar("sunset", 1.0, 2.0)
    assert solar("sunset", 1, 2) != solar("sunrise", 1, 2)
    assert repr(solar("dusk_civil", 51.5, -0.13)) == "<solar: dusk_civil at 51.5, -0.13>"


# --- stored, synced, fired, edited --------------------------------------------------------------
ADD = "testproject.demo.tasks.add"


@pytest.mark.django_db
@override_settings(
    DJQ_BEAT_SCHEDULE={
        "lights-on": {"task": ADD, "schedule": solar("sunset", *LONDON), "args": (1, 2)},
    }
)
def test_beat_schedule_entries_sync_and_beat_fires_at_sunset():
    beat_sync.sync_schedule()
    pt = PeriodicTask.objects.get(name="lights-on")
    assert (pt.solar_event, pt.solar_latitude, pt.solar_longitude) == ("sunset", *LONDON)
    assert pt.crontab == "" and pt.interval_every is None and pt.clocked_time is None
    assert pt.schedule == solar("sunset", *LONDON)
    assert pt.schedule_display() == "sunset at 51.5072, -0.1276"
    first = beat.first_run(pt, utc(2024, 6, 21, 12))
    assert abs((first - utc(2024, 6, 21, 20, 21)).total_seconds()) <= 90
    following = beat.following(pt, first, first)
    assert (
        dt.timedelta(hours=23, minutes=59) < following - first < dt.timedelta(hours=24, minutes=1)
    )
    assert beat_sync.sync_schedule()["unchanged"]  # the same entry: left alone


@pytest.fixture
def root(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    return client


def form(**fields) -> dict:
    return {
        "name": "dusk",
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
        "solar_event": "",
        "solar_latitude": "",
        "solar_longitude": "",
        "timezone": "",
        "start_time_0": "",
        "start_time_1": "",
        "catch_up": "once",
        **fields,
    }


@pytest.mark.django_db
def test_the_admin_creates_edits_and_previews_a_solar_schedule(root):
    response = root.post(
        reverse("admin:djq_periodictask_add"),
        form(solar_event="dusk_civil", solar_latitude="59.91", solar_longitude="10.75"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    pt = PeriodicTask.objects.get(name="dusk")
    assert pt.schedule == solar("dusk_civil", 59.91, 10.75)
    page = root.get(reverse("admin:djq_periodictask_change", args=[pt.pk])).content.decode()
    assert page.split("Next 5 runs")[1].count("UTC)") == 5
    listing = root.get(reverse("admin:djq_periodictask_changelist")).content.decode()
    assert "dusk civil at 59.91, 10.75" in listing
    edit = root.post(
        reverse("admin:djq_periodictask_change", args=[pt.pk]),
        form(solar_event="sunrise", solar_latitude="59.91", solar_longitude="10.75"),
    )
    assert edit.status_code == 302
    pt.refresh_from_db()
    assert pt.solar_event == "sunrise" and pt.next_run_at is None  # beat recomputes it


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"solar_event": "sunset"}, "A sunset schedule needs its latitude."),
        (
            {"solar_event": "sunset", "solar_latitude": "95", "solar_longitude": "0"},
            "The latitude must be between -90 and 90, not 95.",
        ),
        (
            {"solar_latitude": "10", "solar_longitude": "10", "crontab": "* * * * *"},
            "Give a solar event for this place, or leave it empty.",
        ),
        (
            {
                "solar_event": "sunset",
                "solar_latitude": "1",
                "solar_longitude": "1",
                "crontab": "* * * * *",
            },
            "Give only one schedule",
        ),
    ],
)
def test_the_admin_names_what_is_wrong_with_a_solar_schedule(root, fields, message):
    response = root.post(reverse("admin:djq_periodictask_add"), form(**fields))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PeriodicTask.objects.exists()
