"""Flow control maths (pure): rate strings, rate-limit slots, the effective limits of a task.

Rate limits are enforced across the cluster with GCRA-style slots kept in the database
(``TaskLimit.next_slot_at``): every job of a rate-limited task that a worker claims takes the next
free slot; a job whose slot is in the future goes back to the queue with ``run_after`` = its slot
(keeping its priority) and runs then, on whichever worker claims it. So N workers together keep
the rate, and a waiting job waits in the database, not in a worker's memory.
"""

from __future__ import annotations

import datetime as dt
import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*([smhd]))?\s*$")


def parse_rate(rate: str | float | int | None) -> float | None:
    """Celery's rate strings: "100/m", "10/s", "2/h", "5" (per second). None/""/0: no limit.

    Returns jobs per second; raises ValueError for anything else.
    """
    if rate is None or rate == "" or rate == 0:
        return None
    if isinstance(rate, (int, float)):
        return float(rate) if rate > 0 else None
    match = _RATE.match(str(rate))
    if not match:
        raise ValueError(f"invalid rate limit {rate!r}: use N/s, N/m, N/h or N/d")
    count = float(match.group(1))
    if count <= 0:
        return None
    return count / _UNITS[match.group(2) or "s"]


def slots(next_slot: dt.datetime | None, now: dt.datetime, count: int, per_second: float):
    """The start slots of ``count`` jobs taking turns after ``next_slot``, and the new
    ``next_slot``. The first slot is ``max(next_slot, now)``: an idle task may start at once."""
    interval = dt.timedelta(seconds=1.0 / per_second)
    first = now if next_slot is None or next_slot < now else next_slot
    taken = [first + interval * i for i in range(count)]
    return taken, first + interval * count


Limits = dict[str, tuple[float | None, int | None]]


def effective_limits(registry, annotations: dict, rows) -> Limits:
    """name → (jobs per second, max running) for every task with a limit.

    A task's own ``rate_limit``/``concurrency_limit``, overridden by ``DJQ_TASK_ANNOTATIONS``
    ("*" and the task's name), overridden by the database rows (name, rate, concurrency) that
    ``control.rate_limit``/``concurrency_limit`` write (a rate of "" means "not overridden").
    """
    found: dict[str, tuple[float | None, int | None]] = {}
    for name, task in registry.items():
        given = {**annotations.get("*", {}), **annotations.get(name, {})}
        rate = given.get("rate_limit", getattr(task, "rate_limit", None))
        most = given.get("concurrency_limit", getattr(task, "concurrency_limit", None))
        found[name] = (parse_rate(rate), most)
    for name, rate, most in rows:
        own_rate, own_most = found.get(name, (None, None))
        found[name] = (
            parse_rate(rate) if rate != "" else own_rate,
            most if most is not None else own_most,
        )
    return {name: limits for name, limits in found.items() if limits != (None, None)}


def fair_weights(setting) -> dict[str, float] | None:
    """``DJQ_FAIR_KEYS`` as the claim takes it: None (off), or {key: weight} (round robin: {}).

    A weight is a positive number: a key of weight 3 gets three jobs for another key's one.
    """
    if setting is False or setting is None:
        return None
    if setting is True:
        return {}
    if not isinstance(setting, dict):
        raise ValueError(
            f"DJQ_FAIR_KEYS={setting!r}: use True (round robin), False, or {{key: weight}}"
        )
    for key, weight in setting.items():
        if (
            not isinstance(key, str)
            or isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not weight > 0
        ):
            raise ValueError(
                f"DJQ_FAIR_KEYS: {key!r}: {weight!r} is not a weight (a key and a number > 0)"
            )
    return {key: float(weight) for key, weight in setting.items()}
