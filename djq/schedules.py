"""Schedules: ``crontab`` as in Celery, and the pure cron maths the beat uses."""

from __future__ import annotations

import datetime as dt

from croniter import croniter


class crontab:  # noqa: N801 - Celery's name
    """``crontab(minute="*/15", hour="*", day_of_week="*", day_of_month="*", month_of_year="*")``.

    Validated at once with croniter, so a bad expression fails where it is written.
    """

    def __init__(
        self,
        minute="*",
        hour="*",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        tz: str | None = None,
    ):
        self.minute, self.hour = str(minute), str(hour)
        self.day_of_week, self.day_of_month = str(day_of_week), str(day_of_month)
        self.month_of_year = str(month_of_year)
        self.tz = tz
        if not croniter.is_valid(self.expression):
            raise ValueError(f"invalid crontab: {self.expression!r}")

    @classmethod
    def from_string(cls, expression: str, tz: str | None = None) -> crontab:
        parts = expression.split()
        if len(parts) != 5:
            raise ValueError(f"a cron expression has 5 fields, got {expression!r}")
        minute, hour, dom, month, dow = parts
        return cls(minute, hour, dow, dom, month, tz=tz)

    @property
    def expression(self) -> str:
        return (
            f"{self.minute} {self.hour} {self.day_of_month} {self.month_of_year} "
            f"{self.day_of_week}"
        )

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first tick strictly after ``moment`` (an aware datetime), in ``moment``'s zone."""
        return croniter(self.expression, moment).get_next(dt.datetime)

    def __repr__(self) -> str:
        return f"<crontab: {self.expression}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, crontab) and other.expression == self.expression

    def __hash__(self) -> int:
        return hash(self.expression)
