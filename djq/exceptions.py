"""Exceptions of the public API; names and meanings follow Celery's ``celery.exceptions``."""

from __future__ import annotations

import datetime as dt
from typing import Any


class DjqError(Exception):
    """Base class of djq's own errors."""


class Retry(DjqError):  # noqa: N818 - Celery's name
    """Raised by ``Task.retry``: the job is to run again at ``when`` (seconds or a datetime)."""

    #: the next run's arguments as JSON, when ``Task.retry(args=, kwargs=)`` gave new ones
    args_json: str | None = None
    kwargs_json: str | None = None
    new_args: list[Any] | None = None
    new_kwargs: dict[str, Any] | None = None

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | dt.datetime | None = None,
        **kwargs,
    ):
        self.message = message
        self.exc = exc
        self.when = when
        super().__init__(message, exc, when)

    def humanize(self) -> str:
        if isinstance(self.when, (int, float)):
            return f"in {self.when}s"
        return f"at {self.when}"

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.exc is not None:
            return f"Retry {self.humanize()}: {self.exc!r}"
        return f"Retry {self.humanize()}"


class Snooze(Retry):
    """Raised by ``Task.snooze``: the job waits ``seconds`` (by the database clock) and runs
    again without spending a retry (``request.retries`` and ``max_retries`` are untouched).

    A subclass of ``Retry``: code that lets ``Retry`` propagate lets a snooze through too."""

    def __init__(self, seconds: float, message: str | None = None):
        self.seconds = seconds
        super().__init__(message, None, seconds)

    def __str__(self) -> str:
        return self.message or f"Snoozed for {self.seconds}s"


class Ignore(DjqError):  # noqa: N818
    """Raised by a task to end without recording success or failure."""


class Reject(DjqError):  # noqa: N818
    """Raised by a task to reject its job: requeued when ``requeue`` is true, failed otherwise."""

    def __init__(self, reason=None, requeue: bool = False):
        self.reason = reason
        self.requeue = requeue
        super().__init__(reason, requeue)


class MaxRetriesExceededError(DjqError):
    """The task asked for a retry past its ``max_retries``."""


class SoftTimeLimitExceeded(Exception):  # noqa: N818
    """Raised inside a running task when its soft time limit passes; it may be caught."""


class TimeLimitExceeded(Exception):  # noqa: N818
    """The hard time limit passed: the process running the task was killed."""


class TaskRevokedError(DjqError):
    """The job was revoked (by request or because it expired) and did not finish."""


class NotRegistered(DjqError, KeyError):  # noqa: N818
    """No task of that name is registered in the worker."""

    def __str__(self) -> str:
        return f"Task of kind {self.args[0]!r} is not registered" if self.args else "NotRegistered"


class TimeoutError(DjqError):  # noqa: A001 - Celery's name
    """``AsyncResult.get`` waited longer than its timeout."""


class WorkerLostError(DjqError):
    """The worker (or its child process) running the job died before recording an outcome."""


class ChordError(DjqError):
    """A header job of a chord failed, so its body cannot run."""


class QueueNotFound(DjqError, KeyError):  # noqa: N818
    """A queue named in an operation does not exist."""
