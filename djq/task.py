"""Defining tasks: the ``Task`` class and the ``@task`` decorator (``send_task`` and
``enqueue_many`` live in ``djq.enqueue`` and are re-exported here).

A task is a singleton instance of a ``Task`` subclass, registered by name. Calling methods
(``delay``, ``apply_async`` …) build a job row through ``djq.enqueue`` and insert it in the
caller's transaction; ``apply`` runs it inline through the same execute path as a worker.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import threading
import types
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction

from djq import options as checks
from djq import states, store, versioning
from djq.calling import request as request_context
from djq.calling.enqueue import (  # re-exported: djq.task.send_task
    build_row,
    enqueue_many,
    send_task,
)
from djq.calling.registry import tasks
from djq.calling.result import AsyncResult
from djq.canvas import Signature, chunks, xmap, xstarmap
from djq.conf import settings
from djq.exceptions import MaxRetriesExceededError, Retry, Snooze
from djq.running.eager import run_eagerly
from djq.serialization import check_arguments

logger = logging.getLogger("djq.task")


class Task:
    """Base class of every task; subclass it (``base=``) to share hooks and defaults."""

    name: str = ""
    bind = False
    typing = True
    queue: str | None = None
    priority: int | None = None
    max_retries: int | None = 3
    default_retry_delay: float = 180
    autoretry_for: tuple = ()
    retry_kwargs: dict = {}
    retry_backoff: bool | float = False
    retry_backoff_max: float | None = 600
    retry_jitter: bool = True
    time_limit: float | None = None
    soft_time_limit: float | None = None
    rate_limit: str | None = None
    concurrency_limit: int | None = None
    #: an argument name, or a callable over (args, kwargs): its value is the job's key, and the
    #: task's concurrency_limit and rate_limit then hold per key (djq.calling.keys)
    concurrency_key: str | Callable | None = None
    #: what a call does while a job holds its unique key: keep, replace, debounce,
    #: cancel_running (djq.options.UNIQUE_MODES)
    unique_mode: str | None = None
    ignore_result = False
    acks_late: bool | None = None
    track_started: bool | None = None
    expires: float | dt.datetime | None = None
    #: run the body in the transaction that records its SUCCESS (djq.running.execute): its
    #: writes to DJQ_DATABASE commit with the completion, or not at all
    atomic: bool = False
    #: expected errors (Celery's ``throws``): they fail the job, logged without a traceback
    throws: tuple = ()
    serializer: str = "json"
    #: the version of the task's arguments, and upgrades of older jobs' (djq.versioning)
    version: int = 1
    upgrade: dict = {}

    _local: threading.local

    def __init__(self):
        self._local = threading.local()

    # --- the function -----------------------------------------------------------------
    # (replaced by the decorated function)
    def run(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise TypeError(f"task {self.name!r} defines no run()")

    def __call__(self, *args, **kwargs):
        """Run inline in this process, as a plain function call (no job, no result)."""
        return self.run(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<@task: {self.name}>"

    @property
    def is_async(self) -> bool:
        """Whether ``run`` is a coroutine function (``async def``): the worker awaits it."""
        cached = self.__dict__.get("_is_async")
        if cached is None:
            cached = self.__dict__["_is_async"] = inspect.iscoroutinefunction(self.run)
        return cached

    # --- request context ---------------------------------------------------------------
    @property
    def request(self) -> request_context.Request:
        current = request_context.current()
        if current is not None and current.task == self.name:
            return current
        return request_context.Request(task=self.name)

    # --- calling -----------------------------------------------------------------------
    def delay(self, *args, **kwargs):
        """Star-argument shortcut for ``apply_async``."""
        return self.apply_async(args, kwargs)

    def apply_async(self, args=None, kwargs=None, **options):
        """Enqueue a job: in the current transaction of ``DJQ_DATABASE`` when there is one."""
        if settings.TASK_ALWAYS_EAGER:
            options.pop("countdown", None), options.pop("eta", None)
            return self.apply(args, kwargs, **options)
        return send_task(self.name, args, kwargs, **options)

    def delay_on_commit(self, *args, **kwargs) -> None:
        """Enqueue once the current transaction commits (never, if it rolls back)."""
        self.apply_async_on_commit(args, kwargs)

    def apply_async_on_commit(self, args=None, kwargs=None, using: str | None = None, **options):
        """``apply_async`` deferred with ``transaction.on_commit`` (for data in another database
        than djq's). Returns nothing: the job does not exist until the commit.

        The call is validated now, so that a bad call fails here and not inside the commit."""
        if not settings.TASK_ALWAYS_EAGER:
            build_row(self.name, args, kwargs, dict(options))
        transaction.on_commit(lambda: self.apply_async(args, kwargs, **options), using=using)

    def apply(self, args=None, kwargs=None, task_id=None, **options):
        """Run the task inline, now, and return an ``EagerResult`` (retries run inline too)."""
        return run_eagerly(self, args or (), kwargs or {}, task_id=task_id, **options)

    def AsyncResult(self, task_id: str):  # noqa: N802 - Celery's name

        return AsyncResult(task_id, task_name=self.name)

    # --- signatures --------------------------------------------------------------------
    def signature(self, args=None, kwargs=None, **options):
        return Signature(self.name, args, kwargs, options)

    subtask = signature

    def s(self, *args, **kwargs):
        return self.signature(args, kwargs)

    def si(self, *args, **kwargs):
        return self.signature(args, kwargs, immutable=True)

    def map(self, it: Iterable):
        return xmap(self.s(), it)

    def starmap(self, it: Iterable):
        return xstarmap(self.s(), it)

    def chunks(self, it: Iterable, n: int):
        return chunks(self.s(), it, n)

    # --- inside a running task ---------------------------------------------------------
    def retry(
        self,
        args=None,
        kwargs=None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: dt.datetime | None = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Retry:
        """Ask for this job to run again later; raises ``Retry`` (catch-free: let it propagate).

        Past ``max_retries`` the original ``exc`` is re-raised, or ``MaxRetriesExceededError``.
        """
        req = self.request
        checks.check(self.name, {"eta": eta, "countdown": countdown, "max_retries": max_retries})
        limit = max_retries
        if limit is None:  # apply_async(max_retries=) travels in the job, else the task's
            limit = getattr(req, "max_retries", None)
        if limit is None:
            limit = self.max_retries
        if req.called_directly:
            raise exc or Retry("Task can be retried", None)
        if limit is not None and req.retries >= limit:
            if exc is not None:
                _mark_exhausted(exc)
                raise exc
            raise MaxRetriesExceededError(
                f"Can't retry {self.name}[{req.id}] args:{req.args} kwargs:{req.kwargs}"
            )
        if eta is None and countdown is None:
            countdown = self.default_retry_delay
        when = eta if eta is not None else countdown
        retry = Retry(exc=exc, when=when)
        # new arguments for the next run (Celery's retry(args=, kwargs=)); checked now
        if args is not None or kwargs is not None:
            new_args = list(req.args if args is None else args)
            new_kwargs = dict(req.kwargs if kwargs is None else kwargs)
            self.check_arguments(new_args, new_kwargs)
            retry.args_json, retry.kwargs_json = check_arguments(self.name, new_args, new_kwargs)
            retry.new_args, retry.new_kwargs = new_args, new_kwargs
        if throw:
            raise retry
        return retry

    def snooze(self, seconds: float | dt.timedelta) -> Snooze:
        """``raise self.snooze(30)``: run this job again ``seconds`` from now (by the database
        clock) without spending a retry — for waiting on an external system. The job waits as
        RETRY; ``request.retries`` and ``max_retries`` are untouched (``request.attempt``
        counts the runs). A bad value is a TypeError/ValueError naming the task."""
        return Snooze(checks.seconds(self.name, "snooze", seconds, negative=False))

    def update_state(self, task_id: str | None = None, state: str | None = None, meta=None):
        """Record a custom state (e.g. "PROGRESS") and its meta for the running job."""
        job_id = task_id or self.request.id
        if job_id is None or self.request.is_eager:
            return
        # our own job: fenced by this run's attempt, so a run that lost its lease cannot write
        attempt = self.request.attempt if job_id == self.request.id else None
        store.set_progress(job_id, state or states.STARTED, meta, attempt=attempt)

    # --- hooks (override in a base class) ----------------------------------------------
    def before_start(self, task_id: str | None, args: Any, kwargs: Any) -> None:
        pass

    def on_success(self, retval: Any, task_id: str | None, args: Any, kwargs: Any) -> None:
        pass

    def on_failure(
        self, exc: BaseException, task_id: str | None, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        pass

    def on_retry(
        self, exc: BaseException, task_id: str | None, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        pass

    def after_return(
        self, status: str, retval: Any, task_id: str | None, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        pass

    # --- checks ------------------------------------------------------------------------
    def check_arguments(self, args, kwargs) -> None:
        """Raise ``TypeError`` now if the arguments do not fit the task's signature."""
        if not self.typing:
            return
        sig = self._signature()
        if sig is None:
            return
        try:
            sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}: arguments do not fit {self.name}{sig}: {exc}") from None

    def _signature(self) -> inspect.Signature | None:
        cached = self.__dict__.get("_sig", False)
        if cached is False:
            try:
                cached = inspect.signature(self._run_function())
            except (TypeError, ValueError):
                cached = None
            self.__dict__["_sig"] = cached
        return cached

    def _run_function(self) -> Callable:
        fun = getattr(self, "__wrapped__", None)
        if fun is None:
            return self.run
        return types.MethodType(fun, self) if self.bind else fun


def _mark_exhausted(exc: BaseException) -> None:
    """Mark the exception ``retry`` re-raises past max_retries: its FAILURE is a dead letter
    (djq.running.execute). An exception that takes no attributes stays a plain FAILURE."""
    try:
        exc._djq_retries_exhausted = True  # type: ignore[attr-defined]
    except (AttributeError, TypeError):
        pass


def _make_task(fun: Callable, base: type[Task] | None = None, **options) -> Task:
    base = base or Task
    name = options.pop("name", None) or f"{fun.__module__}.{fun.__qualname__}"
    bind = options.pop("bind", False)
    checks.task_name(name, call="@task")
    options = _celery_options(name, options)
    for key in options:
        if not hasattr(base, key):
            raise TypeError(f"@task({key}=...) is not a task option (task {name})")
    checks.task_attributes(name, options)  # at decoration: a bad value fails at import time
    versioning.check(name, options.get("version", 1), options.get("upgrade", {}))
    run = fun if bind else staticmethod(fun)
    attrs = {
        "name": name,
        "bind": bind,
        "run": run,
        "__doc__": fun.__doc__,
        "__module__": fun.__module__,
        "__qualname__": fun.__qualname__,
        **options,
    }
    cls = type(fun.__name__, (base,), attrs)
    instance = cls()
    instance.__wrapped__ = fun
    return tasks.register(instance)


#: Celery task options with no meaning in djq: accepted, with a warning (once per option)
IGNORED_OPTIONS = {
    "compression": "arguments are stored as JSON columns, not compressed messages",
    "acks_on_failure_or_timeout": "a failed or timed-out job always ends FAILURE",
    "reject_on_worker_lost": "a dead worker's acks_late jobs are requeued when its lease expires",
    "store_errors_even_if_ignored": "a failure is always stored",
    "store_eager_result": "eager runs (apply) write nothing",
    "send_events": "events are a worker option (-E)",
    "trail": "children are found by parent_id in the database",
    "shared": "a task is registered once, by name",
    "lazy": "tasks are registered when their module is imported",
    "abstract": "subclass Task and pass base= instead",
    "backend": "results are stored in the job row",
    "resultrepr_maxsize": "the worker log shortens results itself",
    "routing_key": "there are no exchanges or routing keys: a job is routed by its queue",
    "exchange": "there are no exchanges: a job is routed by its queue",
    "exchange_type": "there are no exchanges: a job is routed by its queue",
    "delivery_mode": "jobs are rows: always persistent",
    "dont_autoretry_for": "list only the errors to retry in autoretry_for",
    "pydantic": "arguments are JSON; validate them in the task",
}
_warned: set[str] = set()


def _celery_options(name: str, options: dict) -> dict:
    """Celery's options: ``serializer`` must be JSON, ``throws`` a tuple of exception classes;
    those without a meaning here are dropped with a one-time warning each."""
    serializer = options.get("serializer", "json")
    if serializer != "json":
        raise TypeError(
            f"@task(serializer={serializer!r}) (task {name}): djq sends arguments and results "
            "as JSON only; pickle and other serializers are refused"
        )
    throws = options.get("throws", ())
    throws = throws if isinstance(throws, tuple | list) else (throws,)
    if not all(isinstance(t, type) and issubclass(t, BaseException) for t in throws):
        raise TypeError(f"@task(throws=...) (task {name}) takes exception classes, got {throws!r}")
    if "throws" in options:
        options = {**options, "throws": tuple(throws)}
    for key in [k for k in options if k in IGNORED_OPTIONS]:
        if key not in _warned:
            _warned.add(key)
            logger.warning(
                "@task(%s=...) is accepted and ignored (task %s): %s",
                key,
                name,
                IGNORED_OPTIONS[key],
            )
        options = {k: v for k, v in options.items() if k != key}
    return options


def task(*args, **options):
    """``@task`` or ``@task(name=, bind=, queue=, …)``: register a function as a task."""
    if len(args) == 1 and callable(args[0]) and not options:
        return _make_task(args[0])
    if args:
        raise TypeError("@task takes keyword options only")
    return lambda fun: _make_task(fun, **options)


shared_task = task


__all__ = ["Task", "enqueue_many", "send_task", "shared_task", "task"]
