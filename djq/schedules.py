"""Schedules (``crontab``, ``interval``, ``clocked``, ``solar``) and the pure "next run after"
maths.

Nothing here reads a clock or the database: every function takes the moment it reasons about, so
beat, the admin's preview and the tests all get the same answer for the same input.

Time zones and DST (cron schedules only; intervals are durations and ignore wall clocks). A cron
expression describes *wall-clock* times in the schedule's zone; each wall time is mapped to an
instant with ``zoneinfo``:

- a wall time that does not exist (the hour skipped in spring) fires at the instant the clock
  jumps, i.e. late rather than never (as Vixie cron does);
- a wall time that exists twice (the hour repeated in autumn) fires at its first occurrence, and
  also at its second when the hour field is a wildcard (``*``, ``*/2`` ...): ``*/15 * * * *``
  keeps firing every 15 minutes of real time through the repeated hour, while ``30 2 * * *``
  still fires once that day.
"""

from __future__ import annotations

import datetime as dt
import numbers
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from djq import sun

UTC = dt.UTC
#: Longer than any real DST/offset change, so scans around a transition see both sides of it.
_FOLD_WINDOW = dt.timedelta(hours=3)
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: interval units, largest first (a duration is stored in the largest unit that divides it)
PERIODS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


def zone(name: str | None) -> dt.tzinfo:
    """The ``ZoneInfo`` called ``name`` (UTC when empty); ``ValueError`` for an unknown name."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"schedules need aware datetimes, got naive {moment!r}")
    return moment.astimezone(UTC)


#: (field name, values it spans, the longest month for each month number) of a cron expression
_CRON_FIELDS = (
    ("minute", 60),
    ("hour", 24),
    ("day of month", 31),
    ("month", 12),
    ("day of week", 7),
)
_MONTH_DAYS = {
    1: 31,
    2: 29,
    3: 31,
    4: 30,
    5: 31,
    6: 30,
    7: 31,
    8: 31,
    9: 30,
    10: 31,
    11: 30,
    12: 31,
}


def check_cron_fields(expression: str) -> None:
    """What croniter accepts but cannot mean what was written: a step as long as its field
    (``*/61`` would fire at minute 0 only, i.e. hourly) or days no listed month has
    (``0 0 31 2 *`` never fires). ``ValueError`` naming the field and the value."""
    for (name, span), field in zip(_CRON_FIELDS, expression.split(), strict=True):
        for part in field.split(","):
            step = part.partition("/")[2]
            if step.isdigit() and not 0 < int(step) < span:
                raise ValueError(
                    f"cron {name} step {part!r} must be between 1 and {span - 1} "
                    f"(in {expression!r})"
                )
    try:
        fields = croniter.expand(expression)[0]
    except (ValueError, KeyError, TypeError):  # valid for croniter.is_valid: its own forms
        return
    days, months, weekdays = fields[2], fields[3], fields[4]
    if "*" in days or "*" in months or weekdays != ["*"]:
        return  # a weekday list is OR-ed with the days, so some day matches
    numbers = [d for d in days if isinstance(d, int)]
    longest = max(_MONTH_DAYS[m] for m in months if isinstance(m, int))
    if numbers and len(numbers) == len(days) and min(numbers) > longest:
        raise ValueError(
            f"cron expression {expression!r} never fires: no month it lists has day {min(numbers)}"
        )


class crontab:  # noqa: N801 - Celery's name
    """``crontab(minute="*/15", hour="*", day_of_week="*", day_of_month="*", month_of_year="*")``.

    Validated at once with croniter, so a bad expression fails where it is written. ``tz`` names
    the zone the fields are read in (default: the periodic task's, i.e. ``DJQ_TIMEZONE``).
    """

    kind = "crontab"

    def __init__(
        self,
        minute: Any = "*",
        hour: Any = "*",
        day_of_week: Any = "*",
        day_of_month: Any = "*",
        month_of_year: Any = "*",
        tz: str | None = None,
    ):
        self.minute, self.hour = str(minute), str(hour)
        self.day_of_week, self.day_of_month = str(day_of_week), str(day_of_month)
        self.month_of_year = str(month_of_year)
        self.tz = tz
        fields = (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)
        if any(not f or f.split() != [f] for f in fields) or not croniter.is_valid(self.expression):
            raise ValueError(f"invalid crontab: {self.expression!r}")
        check_cron_fields(self.expression)
        if tz:
            zone(tz)

    @classmethod
    def from_string(cls, expression: str, tz: str | None = None) -> crontab:
        """Parse a 5-field cron expression (``"*/15 * * * *"``) or an alias (``"@hourly"``)."""
        expression = ALIASES.get(expression.strip().lower(), expression)
        parts = expression.split()
        if len(parts) != 5:
            raise ValueError(f"a cron expression has 5 fields, got {expression!r}")
        minute, hour, dom, month, dow = parts
        return cls(minute, hour, dow, dom, month, tz=tz)

    @property
    def expression(self) -> str:
        return (
            f"{self.minute} {self.hour} {self.day_of_month} {self.month_of_year} {self.day_of_week}"
        )

    def next_after(self, moment: dt.datetime, tz: str | None = None) -> dt.datetime:
        """The first tick strictly after ``moment`` (aware), as a UTC datetime.

        The fields are read in ``self.tz``, else ``tz``, else UTC; see the module docstring for
        what happens to ticks in the hour that DST skips or repeats.
        """
        return cron_next(self.expression, zone(self.tz or tz), _aware(moment))

    def __repr__(self) -> str:
        return f"<crontab: {self.expression}{f' ({self.tz})' if self.tz else ''}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, crontab)
            and other.expression == self.expression
            and other.tz == self.tz
        )

    def __hash__(self) -> int:
        return hash((self.expression, self.tz))


class interval:  # noqa: N801 - reads like Celery's ``schedule(run_every=...)``
    """Every N seconds/minutes/hours/days, on a grid anchored at ``anchor``.

    A duration, not a wall-clock rule: "every hour" stays 3600 s apart across DST changes. The
    grid (rather than "N after the last run") is what lets several beats agree on a tick.
    """

    kind = "interval"

    def __init__(self, every: dt.timedelta | float | int, period: str = "seconds"):
        if period not in PERIODS:
            raise ValueError(f"interval period must be one of {list(PERIODS)}, got {period!r}")
        if isinstance(every, dt.timedelta):
            seconds = every.total_seconds()
        elif isinstance(every, numbers.Real) and not isinstance(every, bool):
            seconds = float(every) * PERIODS[period]
        else:
            raise TypeError(f"interval takes a timedelta or a number, got {every!r}")
        if seconds <= 0 or seconds != int(seconds):
            raise ValueError(
                f"an interval must be a positive whole number of seconds, got {seconds:g}s"
            )
        self.seconds = int(seconds)
        # Stored as the largest unit that divides it: 3600 s is "1 hours", 90 s "90 seconds".
        self.period = next(p for p, n in PERIODS.items() if self.seconds % n == 0)
        self.every = self.seconds // PERIODS[self.period]

    @property
    def run_every(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.seconds)

    def next_after(self, moment: dt.datetime, anchor: dt.datetime | None = None) -> dt.datetime:
        """The first grid point ``anchor + k * every`` strictly after ``moment``.

        Without an anchor the grid starts at ``moment`` (the first run is one interval away).
        """
        moment = _aware(moment)
        anchor = moment if anchor is None else _aware(anchor)
        if anchor > moment:
            return anchor
        steps = (moment - anchor) // self.run_every + 1
        return anchor + steps * self.run_every

    def __repr__(self) -> str:
        return f"<interval: every {self.every} {self.period}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, interval) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(("interval", self.seconds))


class clocked:  # noqa: N801 - django-celery-beat's name
    """Once, at ``at`` (an aware datetime)."""

    kind = "clocked"

    def __init__(self, at: dt.datetime):
        if not isinstance(at, dt.datetime):
            raise TypeError(f"clocked takes a datetime, got {at!r}")
        self.at = _aware(at)

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        return self.at if self.at > _aware(moment) else None

    def __repr__(self) -> str:
        return f"<clocked: {self.at.isoformat()}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, clocked) and other.at == self.at

    def __hash__(self) -> int:
        return hash(("clocked", self.at))


class solar:  # noqa: N801 - Celery's name
    """``solar(event, lat, lon)``: at each sunrise, sunset, solar noon, dawn or dusk at a place
    (Celery's and django-celery-beat's events: ``dawn_astronomical``, ``dawn_nautical``,
    ``dawn_civil``, ``sunrise``, ``solar_noon``, ``sunset``, ``dusk_civil``, ``dusk_nautical``,
    ``dusk_astronomical``). Latitude is north positive, longitude east positive, in degrees.
    A day on which the event does not happen (polar day or night) is skipped."""

    kind = "solar"
    EVENTS = tuple(sun.EVENTS)

    def __init__(self, event: str, lat: float, lon: float):
        if event not in sun.EVENTS:
            raise ValueError(f"solar event {event!r} is not one of {', '.join(self.EVENTS)}")
        for name, value, bound in (("latitude", lat, 90), ("longitude", lon, 180)):
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise TypeError(f"solar {name} must be a number of degrees, got {value!r}")
            if not -bound <= value <= bound:
                raise ValueError(
                    f"solar {name} must be between -{bound} and {bound}, got {value!r}"
                )
        self.event, self.lat, self.lon = event, float(lat), float(lon)

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first event strictly after ``moment``, to the second (None: not within a year)."""
        return sun.next_event(self.event, self.lat, self.lon, _aware(moment))

    def __repr__(self) -> str:
        return f"<solar: {self.event} at {self.lat:g}, {self.lon:g}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, solar) and (other.event, other.lat, other.lon) == (
            self.event,
            self.lat,
            self.lon,
        )

    def __hash__(self) -> int:
        return hash(("solar", self.event, self.lat, self.lon))


Schedule = crontab | interval | clocked | solar


def to_schedule(value: Any) -> Schedule:
    """A ``DJQ_BEAT_SCHEDULE`` ``"schedule"`` value as a schedule object.

    Accepts ``crontab(...)``, a cron string (``"*/10 * * * *"``, ``"@hourly"``), a ``timedelta``
    or a number of seconds (an interval), ``interval``/``clocked`` objects, or an aware
    ``datetime`` (clocked), or ``solar(event, lat, lon)``.
    """
    if isinstance(value, (crontab, interval, clocked, solar)):
        return value
    if isinstance(value, str):
        return crontab.from_string(value)
    if isinstance(value, dt.datetime):
        return clocked(value)
    if isinstance(value, (dt.timedelta, numbers.Real)) and not isinstance(value, bool):
        return interval(value)
    raise TypeError(
        f"not a schedule: {value!r} (crontab, cron string, timedelta, seconds or solar)"
    )


# --- cron maths -----------------------------------------------------------------------------------
def cron_next(expression: str, tz: dt.tzinfo, after: dt.datetime) -> dt.datetime:
    """The first instant (UTC) strictly after ``after`` at which ``expression`` fires in ``tz``.

    Candidates come from croniter in naive wall-clock time, where there is no DST; each is
    mapped to its instants (none, one or two). Wall-clock order is real-time order except
    within a few hours of an offset change, where the scan widens to see both sides of it.
    """
    repeat_hour = expression.split()[1].startswith("*")
    shift = _offset_shift(tz, after - _FOLD_WINDOW, after + _FOLD_WINDOW)
    start = _wall(after, tz) - shift
    candidates = croniter(expression, start - dt.timedelta(microseconds=1)).all_next(dt.datetime)
    best = horizon = None
    for wall in candidates:
        if horizon is not None and wall > horizon:
            return best
        for instant in instants(wall, tz, repeat_hour):
            if instant > after and (best is None or instant < best):
                best = instant
        if best is not None and horizon is None:
            shift = _offset_shift(tz, best - _FOLD_WINDOW, best + _FOLD_WINDOW)
            if not shift:
                return best
            horizon = _wall(best, tz) + shift
    raise AssertionError("unreachable: croniter iterates forever")  # pragma: no cover


def instants(wall: dt.datetime, tz: dt.tzinfo, repeat_hour: bool = True) -> list[dt.datetime]:
    """The UTC instants at which the naive wall-clock time ``wall`` happens in ``tz``.

    One normally; for a time in the hour skipped by DST, the instant of the jump; for a time in
    the repeated hour, the first occurrence (and the second too when ``repeat_hour``).
    """
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return [first.astimezone(UTC)]
    if first.utcoffset() > second.utcoffset():  # exists twice (autumn)
        both = [first.astimezone(UTC), second.astimezone(UTC)]
        return both if repeat_hour else both[:1]
    return [_jump(second.astimezone(UTC), first.astimezone(UTC), tz)]  # does not exist (spring)


def _jump(low: dt.datetime, high: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The instant in (low, high] at which ``tz``'s offset changes (to the second)."""
    before = low.astimezone(tz).utcoffset()
    while high - low > dt.timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).utcoffset() == before:
            low = mid
        else:
            high = mid
    return high.replace(microsecond=0) if high.microsecond else high


def _wall(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _offset_shift(tz: dt.tzinfo, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """How far ``tz``'s UTC offset moves within [start, end] (probed hourly); usually zero."""
    offset = start.astimezone(tz).utcoffset()
    shift, moment = dt.timedelta(0), start
    while moment < end:
        moment = min(moment + dt.timedelta(hours=1), end)
        shift = max(shift, abs(moment.astimezone(tz).utcoffset() - offset))
    return shift


def upcoming(
    schedule: Schedule,
    after: dt.datetime,
    count: int = 5,
    tz: str | None = None,
    anchor: dt.datetime | None = None,
) -> list[dt.datetime]:
    """The next ``count`` ticks after ``after`` (for the admin's preview and ``djq_beat``'s log)."""
    found: list[dt.datetime] = []
    moment: dt.datetime | None = after
    while len(found) < count:
        moment = next_tick(schedule, moment, tz=tz, anchor=anchor)
        if moment is None:
            break
        found.append(moment)
    return found


def next_tick(
    schedule: Schedule,
    after: dt.datetime,
    tz: str | None = None,
    anchor: dt.datetime | None = None,
) -> dt.datetime | None:
    """The first tick of ``schedule`` strictly after ``after``; ``None`` when there is none.

    ``tz`` is the zone cron fields are read in (unless the crontab names its own); ``anchor``
    is where an interval's grid starts (default ``after``).
    """
    if isinstance(schedule, crontab):
        return schedule.next_after(after, tz=tz)
    if isinstance(schedule, interval):
        return schedule.next_after(after, anchor=anchor)
    return schedule.next_after(after)
