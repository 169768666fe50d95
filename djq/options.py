"""Checking the values of a call's options and of a task's attributes (a leaf: no database).

One set of checks serves both ends of the queue: ``djq.enqueue`` runs them at the call, so a bad
value is a ``TypeError``/``ValueError`` naming the task, the option and the value before anything
is written; the worker runs them again on what it reads from a job row (rows can be written by
anything), so a value that would make it crash ends the job FAILURE instead (``djq.job_guard``).
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from djq.conf import settings
from djq.limits import parse_rate

if TYPE_CHECKING:
    from djq.task import Task

#: job priorities: higher runs first (the column's check constraint)
PRIORITY_MIN, PRIORITY_MAX = -100, 255
#: longest task name, queue name and task id (the columns' sizes)
NAME_MAX, QUEUE_MAX, ID_MAX = 255, 200, 255
#: longest countdown/expires/time limit: a century keeps every ETA a valid timestamp
SECONDS_MAX = 100 * 365 * 86400.0
#: the retries/max_retries columns are 32-bit integers
INT_MAX = 2**31 - 1
#: options holding seconds (or a timedelta), and whether a negative value is allowed
_SECONDS = {"countdown": True, "expires": True, "unique_for": False}
_LIMITS = ("time_limit", "soft_time_limit")
_FLAGS = ("ignore_result", "acks_late", "track_started", "unique", "errback", "atomic")
_TEXTS = ("shadow", "routing_key", "exchange", "serializer", "compression", "unique_key")
#: ``unique_mode``: what a call does while a job holds its unique key (djq.store._taken)
UNIQUE_MODES = ("keep", "replace", "debounce", "cancel_running")


def unique_mode(task: str, value: Any) -> str:
    """One of ``UNIQUE_MODES``; anything else is a ValueError naming the task and the value."""
    if value not in UNIQUE_MODES:
        raise ValueError(
            f"{task}: unique_mode={value!r} is not a unique mode: use one of "
            + ", ".join(repr(m) for m in UNIQUE_MODES)
        )
    return value


def concurrency_key(task: str, value: Any) -> None:
    """An argument name (a non-empty string) or a callable over (args, kwargs)."""
    if callable(value):
        return
    if not isinstance(value, str) or not value.isidentifier():
        raise TypeError(
            f"{task}: concurrency_key={value!r} must be an argument name or a callable "
            "over (args, kwargs)"
        )


def text(task: str, what: str, value: Any, most: int, wrong_type: type = TypeError) -> str:
    """A non-empty string of at most ``most`` characters that any database stores."""
    if not isinstance(value, str):
        raise wrong_type(f"{task}: {what} must be a string, got {value!r}")
    if not value:
        raise ValueError(f"{task}: {what} must not be empty")
    if len(value) > most:
        raise ValueError(
            f"{task}: {what} is too long ({len(value)} > {most} characters): {value[:40]!r}..."
        )
    if "\x00" in value:
        raise ValueError(f"{task}: {what} must not contain NUL (\\x00), got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{task}: {what} is not valid Unicode (a lone surrogate): {value!r}"
        ) from None
    return value


def task_name(name: Any, call: str = "send_task") -> str:
    """A task name as ``send_task``/``signature``/``@task(name=)`` take it."""
    return text(call, "task name", name, NAME_MAX)


def seconds(task: str, what: str, value: Any, negative: bool = True) -> float:
    """Seconds (a real number or a ``timedelta``), finite and at most a century."""
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{task}: {what} must be seconds or a timedelta, got {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int past float's range
        value = math.inf
    if not math.isfinite(value) or abs(value) > SECONDS_MAX:
        raise ValueError(
            f"{task}: {what} must be a finite number of seconds up to "
            f"{SECONDS_MAX:.0f} (a century), got {value!r}"
        )
    if not negative and value < 0:
        raise ValueError(f"{task}: {what} must not be negative, got {value!r}")
    return value


def limit(task: str, what: str, value: Any) -> float | None:
    """A time limit: None (no limit) or positive seconds."""
    if value is None:
        return None
    value = seconds(task, what, value)
    if value <= 0:
        raise ValueError(f"{task}: {what} must be a positive number of seconds, got {value!r}")
    return value


def integer(task: str, what: str, value: Any, least: int = 0, most: int = INT_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{task}: {what} must be an integer, got {value!r}")
    if not least <= int(value) <= most:
        raise ValueError(f"{task}: {what} must be within {least}..{most}, got {value!r}")
    return int(value)


def priority(task: str, value: Any) -> int:
    value = integer(task, "priority", value, -(2**63), 2**63)
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise ValueError(f"{task}: priority {value} is outside {PRIORITY_MIN}..{PRIORITY_MAX}")
    return value


def moment(task: str, what: str, value: Any) -> dt.datetime:
    """A datetime, or an ISO 8601 string of one."""
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"{task}: {what} must be a datetime or an ISO 8601 string, got {value!r}"
            ) from None
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{task}: {what} must be a datetime, got {value!r}")
    return value


def flag(task: str, what: str, value: Any) -> bool:
    if not isinstance(value, bool) and value not in (0, 1):
        raise TypeError(f"{task}: {what} must be True or False, got {value!r}")
    return bool(value)


def headers(task: str, value: Any) -> dict:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"{task}: headers must be a dict with string keys, got {value!r}")
    return dict(value)


def signatures(task: str, what: str, value: Any) -> list:
    """``link``/``link_error``/``chain``: a signature (a dict naming its task), a task name,
    or a list of them."""
    if isinstance(value, (Mapping, str)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(
            f"{task}: {what}= takes signatures or task names (link/link_error), got {value!r}"
        )
    for item in value:
        name = (
            item
            if isinstance(item, str)
            else (item.get("task") if isinstance(item, Mapping) else None)
        )
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"{task}: {what}= takes signatures or task names (link/link_error), got {item!r}"
            )
    return list(value)


#: the longest ``related=`` key ("app_label.model:pk") and how many one job may name
RELATED_MAX, RELATED_COUNT = 255, 100


def related_key(obj: Any) -> str:
    """The key that names a model instance in ``related=``: ``"app_label.model:pk"`` (e.g.
    ``"billing.invoice:42"``), as ``JobsForObjectMixin`` looks it up."""
    return f"{obj._meta.label_lower}:{obj.pk}"


def related(task: str, value: Any) -> list[str]:
    """``related=``: a saved model instance, a key string ``"app_label.model:pk"``, or a list of
    them → the list of keys stored with the job."""
    items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    if len(items) > RELATED_COUNT:
        raise ValueError(f"{task}: related= names {len(items)} objects (at most {RELATED_COUNT})")
    keys = []
    for item in items:
        if hasattr(item, "_meta") and hasattr(item, "pk"):
            if item.pk is None:
                raise ValueError(f"{task}: related= takes saved objects; {item!r} has no pk yet")
            item = related_key(item)
        elif not isinstance(item, str) or ":" not in item or "." not in item.partition(":")[0]:
            raise TypeError(
                f"{task}: related= takes model instances or 'app_label.model:pk' "
                f"strings, got {item!r}"
            )
        keys.append(text(task, "related", item, RELATED_MAX))
    return list(dict.fromkeys(keys))


def check(task: str, options: Mapping) -> None:
    """Check the values of the options present (None means "not given" and passes)."""
    for key, value in options.items():
        if value is not None:
            _check_one(task, key, value)


def _check_one(task: str, key: str, value: Any) -> None:
    if key in _SECONDS:
        if key == "expires" and not isinstance(value, (numbers.Real, dt.timedelta)):
            moment(task, key, value)
        else:
            seconds(task, key, value, negative=_SECONDS[key])
    elif key in _LIMITS:
        limit(task, key, value)
    elif key == "eta":
        moment(task, key, value)
    elif key in ("retries", "max_retries", "group_index"):
        integer(task, key, value)
    elif key == "priority":
        priority(task, value)
    elif key == "queue":  # (ValueError for a non-string too, as djq always raised)
        text(task, key, value, QUEUE_MAX, wrong_type=ValueError)
    elif key in (
        "task_id",
        "parent_id",
        "root_id",
        "group_id",
        "batch",
    ):  # (ValueError, as for queue)
        value = str(value) if isinstance(value, uuid.UUID) else value
        text(task, key, value, ID_MAX, wrong_type=ValueError)
    elif key in ("link", "link_error", "chain"):
        signatures(task, key, value)
    elif key == "headers":
        headers(task, value)
    elif key == "related":
        related(task, value)
    elif key in _FLAGS:
        flag(task, key, value)
    elif key == "unique_mode":
        unique_mode(task, value)
    elif key in _TEXTS and not isinstance(value, str):
        raise TypeError(f"{task}: {key} must be a string, got {value!r}")


def task_attributes(name: str, attrs: Mapping) -> None:
    """``@task(...)`` options, checked when the function is decorated (import time)."""
    for key, value in attrs.items():
        if value is None:
            continue
        if key == "rate_limit":
            try:
                parse_rate(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: rate_limit {value!r} is not a rate: {exc}") from None
        elif key in ("time_limit", "soft_time_limit"):
            limit(name, key, value)
        elif key in ("default_retry_delay", "retry_backoff_max"):
            seconds(name, key, value, negative=False)
        elif key == "concurrency_limit":
            integer(name, key, value, least=1)
        elif key == "concurrency_key":
            concurrency_key(name, value)
        elif key == "unique_mode":
            unique_mode(name, value)
        elif key in (
            "queue",
            "priority",
            "max_retries",
            "expires",
            "acks_late",
            "track_started",
            "ignore_result",
            "atomic",
        ):
            _check_one(name, key, value)


# --- per-job execution options (read by the worker, the executor and results) ---------------
def resolve_options(
    task: Task | None,
    options: dict,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
) -> dict[str, Any]:
    """Per-job execution options: job options, DJQ_TASK_ANNOTATIONS, task attributes, then the
    worker's ``--time-limit``/``--soft-time-limit`` (given here), then settings."""
    name = task.name if task else ""
    annotations = settings.TASK_ANNOTATIONS or {}
    annotated = {**annotations.get("*", {}), **annotations.get(name, {})}

    def pick(key, default=None):
        for source in (options.get(key), annotated.get(key), getattr(task, key, None)):
            if source is not None:
                return source
        return default

    return {
        "time_limit": pick("time_limit", _first(time_limit, settings.TASK_TIME_LIMIT)),
        "soft_time_limit": pick(
            "soft_time_limit", _first(soft_time_limit, settings.TASK_SOFT_TIME_LIMIT)
        ),
        "ignore_result": bool(pick("ignore_result", False)),
        "track_started": bool(pick("track_started", settings.TASK_TRACK_STARTED)),
        "atomic": bool(pick("atomic", False)),
    }


def _first(*values):
    return next((v for v in values if v is not None), None)


def may_continue(options_json: str | None) -> bool:
    """Whether a job with these (JSON) options can have a continuation: a cheap test so that
    batches without any are recorded in a single autocommitted statement."""
    return isinstance(options_json, str) and any(
        key in options_json for key in ('"link', '"chain"', '"chord"', '"unique_key"', '"batch"')
    )
