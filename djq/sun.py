"""When the sun rises, sets, culminates or crosses a twilight line, at a place on a given day.

NOAA's solar calculations (the equations of its Solar Calculator spreadsheet, after Meeus'
*Astronomical Algorithms*): the sun's declination and the equation of time give solar noon and
the hour angle at which the sun's centre reaches an altitude. Each event is refined twice at its
own moment, which keeps it within about a minute of the almanacs between the polar circles
(within a few minutes nearer the poles). Pure maths: no clock, no dependency (Celery needs
``ephem`` for the same).
"""

from __future__ import annotations

import datetime as dt
import math

UTC = dt.UTC
#: the sun's centre altitude (degrees) at each event: sunrise and sunset are the upper limb on
#: the horizon with standard refraction (-0°34′ − 16′ of radius), the twilights the centre at
#: -6°, -12°, -18° (Celery's and django-celery-beat's definitions)
EVENTS: dict[str, tuple[str, float | None]] = {
    "dawn_astronomical": ("rise", -18.0),
    "dawn_nautical": ("rise", -12.0),
    "dawn_civil": ("rise", -6.0),
    "sunrise": ("rise", -50 / 60),
    "solar_noon": ("noon", None),
    "sunset": ("set", -50 / 60),
    "dusk_civil": ("set", -6.0),
    "dusk_nautical": ("set", -12.0),
    "dusk_astronomical": ("set", -18.0),
}
_J2000 = dt.datetime(2000, 1, 1, 12, tzinfo=UTC)


def _sun(moment: dt.datetime) -> tuple[float, float]:
    """(declination in degrees, equation of time in minutes) at ``moment``."""
    jc = (moment - _J2000).total_seconds() / 86400 / 36525  # Julian centuries since J2000
    mean_long = (280.46646 + jc * (36000.76983 + jc * 0.0003032)) % 360
    anomaly = math.radians(357.52911 + jc * (35999.05029 - 0.0001537 * jc))
    ecc = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    centre = (
        math.sin(anomaly) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + math.sin(2 * anomaly) * (0.019993 - 0.000101 * jc)
        + math.sin(3 * anomaly) * 0.000289
    )
    omega = math.radians(125.04 - 1934.136 * jc)
    apparent = math.radians(mean_long + centre - 0.00569 - 0.00478 * math.sin(omega))
    seconds = 21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))
    obliquity = math.radians(23 + (26 + seconds / 60) / 60 + 0.00256 * math.cos(omega))
    declination = math.asin(math.sin(obliquity) * math.sin(apparent))
    y = math.tan(obliquity / 2) ** 2
    l0 = math.radians(mean_long)
    eot = (
        y * math.sin(2 * l0)
        - 2 * ecc * math.sin(anomaly)
        + 4 * ecc * y * math.sin(anomaly) * math.cos(2 * l0)
        - 0.5 * y * y * math.sin(4 * l0)
        - 1.25 * ecc * ecc * math.sin(2 * anomaly)
    )
    return math.degrees(declination), 4 * math.degrees(eot)


def event_on(event: str, day: dt.date, latitude: float, longitude: float) -> dt.datetime | None:
    """The UTC moment of ``event`` in the solar day whose noon falls near ``day`` 12:00 local
    mean time at ``longitude``; ``None`` when the sun does not reach that altitude that day
    (polar day or night)."""
    kind, altitude = EVENTS[event]
    base = dt.datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    moment = base - dt.timedelta(minutes=4 * longitude)
    for _ in range(3):  # refine at the event's own moment
        declination, eot = _sun(moment)
        noon = base - dt.timedelta(minutes=4 * longitude + eot)
        if kind == "noon":
            moment = noon
            continue
        assert altitude is not None  # (only solar noon has none: EVENTS)
        hour_angle = _hour_angle(latitude, declination, altitude)
        if hour_angle is None:
            return None
        sign = -1 if kind == "rise" else 1
        moment = noon + dt.timedelta(minutes=sign * 4 * hour_angle)
    return moment


def _hour_angle(latitude: float, declination: float, altitude: float) -> float | None:
    phi, delta = math.radians(latitude), math.radians(declination)
    denominator = math.cos(phi) * math.cos(delta)
    if abs(denominator) < 1e-12:
        return None
    cos_h = (math.sin(math.radians(altitude)) - math.sin(phi) * math.sin(delta)) / denominator
    if not -1.0 <= cos_h <= 1.0:
        return None
    return math.degrees(math.acos(cos_h))


def next_event(
    event: str, latitude: float, longitude: float, after: dt.datetime, days: int = 400
) -> dt.datetime | None:
    """The first ``event`` strictly after ``after`` (aware), to the second, in UTC; ``None`` when
    it does not happen within ``days`` (e.g. dawn at the pole in summer... for a year)."""
    start = (after.astimezone(UTC) + dt.timedelta(minutes=4 * longitude)).date()
    for offset in range(-1, days):
        moment = event_on(event, start + dt.timedelta(days=offset), latitude, longitude)
        if moment is not None:
            moment = moment.replace(microsecond=0)
            if moment > after:
                return moment
    return None
