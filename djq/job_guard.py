"""The worker's guard around each claimed job: a row it cannot use ends FAILURE, saying why.

Job rows can be written by anything (raw SQL, another program, an old djq), so the worker checks
what it reads before it acts on it (``validate_row``), with the same checks the call applies
(``djq.options``), and wraps each job's handling in ``guard``: whatever goes wrong with one job
(bad options, a time limit that is not a number, a hook that raises) becomes that job's FAILURE
outcome. One bad row never kills, stalls or crash-loops the worker, and the other jobs of its
batch go on. Database errors are not the job's fault: they pass through (an outage).
"""

from __future__ import annotations

import datetime as dt
import logging
import numbers
from collections.abc import Callable
from contextlib import contextmanager

from django.db import DatabaseError, InterfaceError

from djq import options as checks
from djq.records import Claim, Outcome, failed
from djq.serialization import loads, safe_text

logger = logging.getLogger("djq.worker")


class MalformedJob(ValueError):
    """A job row the worker cannot use as it is (recorded as the job's FAILURE)."""


def validate_row(job: Claim) -> dict:
    """Check the fields the worker itself acts on; return the job's options (a dict).

    The arguments are checked where they are decoded, in the pool (``djq.execute``)."""
    for key in ("id", "name"):
        if not isinstance(getattr(job, key), str) or not getattr(job, key):
            raise MalformedJob(
                f"malformed job row: {key} must be a non-empty string, got {getattr(job, key)!r}"
            )
    name = job.name
    for key in ("retries", "attempt", "priority"):
        _integer(name, key, getattr(job, key))
    if job.max_retries is not None:
        _integer(name, "max_retries", job.max_retries)
    for key in ("eta", "expires"):
        value = getattr(job, key)
        if value is not None and not isinstance(value, dt.datetime):
            raise MalformedJob(
                f"{name}: malformed job row: {key} must be a timestamp, got {value!r}"
            )
    return _options(name, job.options)


def _integer(name: str, key: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise MalformedJob(f"{name}: malformed job row: {key} must be an integer, got {value!r}")


def _options(name: str, text) -> dict:
    if text is None:
        return {}
    try:
        options = loads(text)
    except (TypeError, ValueError) as exc:
        raise MalformedJob(f"{name}: malformed job row: options are not JSON ({exc})") from None
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise MalformedJob(
            f"{name}: malformed job row: options must be a JSON object, got "
            f"{type(options).__name__} {_short(options)}"
        )
    try:
        checks.check(name, options)
    except (TypeError, ValueError) as exc:
        raise MalformedJob(f"malformed job row: {exc}") from None
    return options


def checked_limits(name: str, soft, hard) -> tuple[float | None, float | None]:
    """The (soft, hard) time limits a job runs with: None or positive seconds, wherever they
    came from (the row, DJQ_TASK_ANNOTATIONS, the task, the settings, ``--time-limit``)."""
    try:
        return checks.limit(name, "soft_time_limit", soft), checks.limit(name, "time_limit", hard)
    except (TypeError, ValueError) as exc:
        raise MalformedJob(str(exc)) from None


def failed_outcome(job: Claim, exc: BaseException) -> Outcome:
    """The FAILURE recorded for a job the worker could not handle. It has no continuation (its
    options may be what is wrong) and its task's hooks are not run (its data is not trusted)."""
    traceback, text = safe_text(f"{type(exc).__name__}: {exc}\n"), safe_text(repr(exc))
    assert traceback is not None and text is not None  # (safe_text of a text is a text)
    return failed(job, exc, traceback, text)


@contextmanager
def guard(job: Claim, outcomes: list[Outcome]):
    """Whatever goes wrong while handling ``job`` ends it FAILURE (appended to ``outcomes``)."""
    try:
        yield
    except (DatabaseError, InterfaceError):
        raise
    except Exception as exc:
        logger.error("Task %s[%s] cannot be run: %s", job.name, job.id, exc)
        outcomes.append(failed_outcome(job, exc))


def safely(action: Callable[..., object], job: Claim, *args) -> None:
    """An after-the-fact step of one job (its failure hooks): its error is logged, not raised."""
    try:
        action(job, *args)
    except (DatabaseError, InterfaceError):
        raise
    except Exception:
        logger.exception("%s of %s[%s] failed", action.__name__, job.name, job.id)


def claim_order(job: Claim) -> tuple:
    """The sort key of claimed jobs (highest priority, oldest ETA first) that a row with a bad
    priority or ETA cannot break (it is failed at dispatch)."""
    priority, eta = job.priority, job.eta
    return (
        -priority if isinstance(priority, int) else 0,
        eta if isinstance(eta, dt.datetime) else dt.datetime.min.replace(tzinfo=dt.UTC),
    )


def _short(value, most: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= most else text[: most - 3] + "..."
