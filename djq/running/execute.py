"""Running one job: a few small named steps from a claimed row to an outcome.

Running and recording are separate: ``execute`` never writes job state (the task itself may, via
``update_state``); it returns an ``Outcome`` (djq.records) that the worker records in a batch with
``store.complete``. ``djq.eager`` runs the same steps inline for ``Task.apply``.
"""

from __future__ import annotations

import asyncio
import ctypes
import datetime as dt
import logging
import signal
import threading
import time
import traceback as traceback_module
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from django.db import close_old_connections, transaction

from djq import signals, states, store
from djq.calling import request as request_context
from djq.calling.registry import tasks
from djq.exceptions import (
    Ignore,
    MaxRetriesExceededError,
    NotRegistered,
    Reject,
    Retry,
    Snooze,
    SoftTimeLimitExceeded,
    TaskRevokedError,
)
from djq.options import may_continue, resolve_options
from djq.records import Claim, Outcome
from djq.running import task_log
from djq.running.retry import autoretry_countdown
from djq.serialization import dict_to_exception, dumps, exception_to_dict, loads, safe_text
from djq.store import job_logs
from djq.versioning import UpgradeError, upgrade_arguments

if TYPE_CHECKING:
    from djq.task import Task


class ExceptionInfo:
    """What hooks receive as ``einfo`` (Celery's attributes)."""

    def __init__(self, exc: BaseException) -> None:
        self.exception = exc
        self.type = type(exc)
        self.tb = exc.__traceback__
        self.traceback = "".join(traceback_module.format_exception(exc))

    def __str__(self) -> str:
        return self.traceback


def execute(job: Claim, hostname: str = "", soft_time_limit: float | None = None) -> Outcome:
    """Run a claimed job (from ``store.claim``) and return its outcome."""
    started = time.monotonic()
    prepared = _prepare(job, hostname, soft_time_limit)
    if isinstance(prepared, Outcome):
        return prepared
    task, req, soft, limits = prepared
    if limits["atomic"]:
        return _run_atomic(job, task, req, soft, limits, started)
    return _run(job, task, req, soft, limits, started)


def _run(
    job: Claim,
    task: Task,
    req: request_context.Request,
    soft: float | None,
    limits: dict[str, Any],
    started: float,
) -> Outcome:
    kept: dict[str, Any] = {}
    with task_log.capture(kept):  # the attempt's log records travel with its outcome
        outcome = run_task(task, req, soft_time_limit=soft)
    return _finished(job, outcome, kept, limits, started)


async def aexecute(job: Claim, hostname: str = "", soft_time_limit: float | None = None) -> Outcome:
    """``execute`` on an event loop (the asyncio pool): a coroutine task is awaited here, among
    the others the loop runs; a plain task runs in a thread, so it never blocks the loop."""
    started = time.monotonic()
    prepared = _prepare(job, hostname, soft_time_limit)
    if isinstance(prepared, Outcome):
        return prepared
    task, req, soft, limits = prepared
    if not task.is_async or limits["atomic"]:
        # an atomic body's transaction lives on one thread's connection: the thread runs it
        return await asyncio.to_thread(_execute_in_thread, job, hostname, soft_time_limit)
    kept: dict[str, Any] = {}
    with task_log.capture(kept):
        outcome = await arun_task(task, req, soft_time_limit=soft)
    return _finished(job, outcome, kept, limits, started)


def _execute_in_thread(job: Claim, hostname: str, soft_time_limit: float | None) -> Outcome:
    try:
        return execute(job, hostname, soft_time_limit)
    finally:
        close_old_connections()  # (the loop's executor threads live on between jobs)


def _prepare(
    job: Claim, hostname: str, soft_time_limit: float | None
) -> Outcome | tuple[Task, request_context.Request, float | None, dict[str, Any]]:
    """The task, its request, its soft limit and options, or the outcome of a job that cannot
    run (expired, unknown task, bad payload, an upgrade that failed)."""
    base = {"id": job.id, "attempt": job.attempt, "name": job.name}
    if _expired(job):  # checked again here: a prefetched job may expire while it waits
        exc = TaskRevokedError("expired")
        return Outcome(
            **base, state=states.REVOKED, result=dumps(exception_to_dict(exc)), repr=repr(exc)
        )
    try:
        task = tasks[job.name]
        args, kwargs, options = _decode_payload(job)
        args, kwargs = upgrade_arguments(task, options.get("version"), args, kwargs)
    except (NotRegistered, TypeError, ValueError, UpgradeError) as exc:
        return Outcome.of({**base, **_failed(exc, ExceptionInfo(exc))})
    req = request_context.Request(
        id=job.id,
        task=task.name,
        args=args,
        kwargs=kwargs,
        retries=job.retries,
        max_retries=job.max_retries,
        attempt=job.attempt,
        eta=job.eta,
        expires=job.expires,
        hostname=hostname,
        delivery_info={"queue": job.queue, "priority": job.priority},
        parent_id=job.parent_id,
        root_id=job.root_id,
        group=job.group_id,
        headers=options.get("headers") or {},
        options=options,
        called_directly=False,
    )
    limits = resolve_options(task, options)
    soft = limits["soft_time_limit"] if soft_time_limit is None else soft_time_limit
    return task, req, soft, limits


def _finished(
    job: Claim,
    outcome: dict[str, Any],
    kept: dict[str, Any],
    limits: dict[str, Any],
    started: float,
) -> Outcome:
    outcome.update(kept)
    if limits["ignore_result"] and outcome["state"] == states.SUCCESS:
        outcome["keep_result"] = False
    base = {"id": job.id, "attempt": job.attempt, "name": job.name}
    return Outcome.of({**base, **outcome, "runtime": time.monotonic() - started})


def _run_atomic(
    job: Claim,
    task: Task,
    req: request_context.Request,
    soft: float | None,
    limits: dict[str, Any],
    started: float,
) -> Outcome:
    """An atomic task (``@task(atomic=True)``): its body runs in a transaction of
    ``DJQ_DATABASE`` that also records its SUCCESS, so its writes and its completion commit
    together or not at all (River's JobCompleteTx, without the user writing the completion).

    The completion is fenced like the completer's (same id and attempt, still held by a
    worker): a run whose lease was lost and whose job was rescued commits nothing. Any other
    outcome (an exception, a retry, a snooze, Ignore, Reject) rolls the body's writes back and
    is recorded by the completer as usual; a process killed mid-run (kill -9, hard time limit,
    terminate) never commits, so an acks_late rerun starts from a clean state.
    """
    db = store.alias()
    with transaction.atomic(using=db):
        outcome = _run(job, task, req, soft, limits, started)
        # (as the completer decides: a job without continuations needs no savepoint for them)
        outcome.continues = may_continue(job.options)
        if outcome.state == states.SUCCESS and _commit(outcome, db):
            outcome.committed = True
        else:
            transaction.set_rollback(True, using=db)
    return outcome


def _commit(outcome: Outcome, db: str) -> bool:
    """Record the outcome in the running transaction; False when the job is no longer ours."""
    rows = store.complete([outcome], using=db)
    if not rows:
        return False
    job_logs.write([outcome], {outcome.id}, using=db)
    return True


def _expired(job: Claim) -> bool:
    """Whether the job's ``expires`` has passed (by this machine's clock)."""
    expires = job.expires
    if not expires:
        return False
    if isinstance(expires, str):  # a prefork child gets the claimed row as JSON
        expires = dt.datetime.fromisoformat(expires)
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    return expires <= dt.datetime.now(dt.UTC)


def _decode_payload(job: Claim) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    args, kwargs = loads(job.args), loads(job.kwargs)
    options = loads(job.options) or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise TypeError(
            f"malformed job payload: args must be a JSON array and kwargs a JSON object, got "
            f"{type(args).__name__} and {type(kwargs).__name__}"
        )
    if options.get("errback") and len(args) >= 3:
        args = _errback_arguments(args)
    return args, kwargs, options


def _errback_arguments(args: list[Any]) -> list[Any]:
    """A new-style errback (``def on_error(request, exc, traceback)``) gets, as in Celery, the
    failed job's request and its exception (they travel as JSON: rebuilt here)."""
    request, exc, traceback = args[0], args[1], args[2]
    if isinstance(request, dict):
        request = request_context.Request(**request, called_directly=False)
    if isinstance(exc, dict) and "exc_type" in exc:
        exc = dict_to_exception(exc)
    return [request, exc, traceback, *args[3:]]


def run_task(
    task: Task,
    req: request_context.Request,
    soft_time_limit: float | None = None,
    keep_exception: bool = False,
) -> dict[str, Any]:
    """The execute pipeline: prerun → before_start → call → outcome → hooks → postrun.

    ``after_return`` and ``task_postrun`` get the return value, or the exception (as in Celery).
    With ``keep_exception`` (eager runs) a failure's outcome carries the exception object itself.
    A coroutine task runs here to completion on an event loop of its own (prefork, threads, solo,
    eager): its soft limit is a cancellation on that loop (a SIGALRM would hit the loop instead).
    """
    _begin(task, req)
    try:
        try:
            task.before_start(req.id, req.args, req.kwargs)
            if task.is_async:
                retval = _call(task, req, lambda: run_coroutine(task, req, soft_time_limit))
            else:
                with soft_limit(soft_time_limit):
                    retval = _call(task, req, lambda: task.run(*req.args, **req.kwargs))
            outcome = _succeeded(task, req, retval)
        except Exception as exc:
            retval, outcome = _caught(task, req, exc)
    finally:
        request_context.pop()
    return _end(task, req, retval, outcome, keep_exception)


async def arun_task(
    task: Task, req: request_context.Request, soft_time_limit: float | None = None
) -> dict[str, Any]:
    """``run_task`` for a coroutine task on a running loop (the asyncio pool): the same steps,
    the call awaited."""
    _begin(task, req)
    try:
        try:
            task.before_start(req.id, req.args, req.kwargs)
            try:
                retval = await guarded(task, req, soft_time_limit)
            except (Retry, Ignore, Reject):
                raise
            except Exception as exc:
                if not task.autoretry_for or not isinstance(exc, task.autoretry_for):
                    raise
                raise _autoretry(task, req, exc) from exc
            outcome = _succeeded(task, req, retval)
        except Exception as exc:
            retval, outcome = _caught(task, req, exc)
    finally:
        request_context.pop()
    return _end(task, req, retval, outcome, False)


def run_coroutine(
    task: Task, req: request_context.Request, soft_time_limit: float | None = None
) -> Any:
    """Run a coroutine task to completion from synchronous code, the Django way: the loop runs
    in a thread of asgiref's, and ``sync_to_async`` calls inside come back to this thread (so
    the async ORM uses this thread's connection, closed after the job as for any task)."""
    return async_to_sync(guarded)(task, req, soft_time_limit)


async def guarded(
    task: Task, req: request_context.Request, soft_time_limit: float | None = None
) -> Any:
    """Await the task's coroutine; past its soft limit it is cancelled (inside, the ``await``
    raises ``asyncio.CancelledError``) and the job ends with ``SoftTimeLimitExceeded``."""
    coroutine = task.run(*req.args, **req.kwargs)
    if not soft_time_limit:
        return await coroutine
    timeout = asyncio.timeout(soft_time_limit)
    try:
        async with timeout:
            return await coroutine
    except TimeoutError as exc:
        if timeout.expired():
            raise SoftTimeLimitExceeded(f"soft time limit ({soft_time_limit}s) exceeded") from exc
        raise


def _begin(task: Task, req: request_context.Request) -> None:
    request_context.push(req)
    signals.task_prerun.send(
        sender=task, task_id=req.id, task=task, args=req.args, kwargs=req.kwargs
    )


def _caught(task: Task, req: request_context.Request, exc: Exception) -> tuple[Any, dict[str, Any]]:
    """The return value hooks see and the outcome, for what the task's call raised."""
    if isinstance(exc, Snooze):  # (a Retry that spends no retry: before Retry)
        return exc, _snoozed(task, req, exc)
    if isinstance(exc, Retry):
        return exc, _retried(task, req, exc)
    if isinstance(exc, Ignore):
        return None, {"state": states.IGNORED, "result": None, "keep_result": False}
    if isinstance(exc, Reject):
        return exc, _rejected(task, req, exc)
    return exc, _task_failed(task, req, exc)


def _end(
    task: Task,
    req: request_context.Request,
    retval: Any,
    outcome: dict[str, Any],
    keep_exception: bool,
) -> dict[str, Any]:
    einfo = outcome.pop("_einfo", None)
    if keep_exception and einfo is not None and outcome["state"] == states.FAILURE:
        outcome["exception"] = einfo.exception
    try:
        task.after_return(outcome["state"], retval, req.id, req.args, req.kwargs, einfo)
    finally:
        signals.task_postrun.send(
            sender=task,
            task_id=req.id,
            task=task,
            args=req.args,
            kwargs=req.kwargs,
            retval=retval,
            state=outcome["state"],
        )
    return outcome


def _call(task: Task, req: request_context.Request, call: Callable[[], Any]) -> Any:
    if not task.autoretry_for:
        return call()
    try:
        return call()
    except (Retry, Ignore, Reject):
        raise
    except task.autoretry_for as exc:
        raise _autoretry(task, req, exc) from exc


def _autoretry(task: Task, req: request_context.Request, exc: BaseException) -> Retry:
    countdown = autoretry_countdown(task, req.retries)
    retry_kwargs = dict(task.retry_kwargs or {})
    if countdown is not None:
        retry_kwargs["countdown"] = countdown
    try:
        task.retry(exc=exc, **retry_kwargs)
    except Retry as retry:
        return retry
    raise AssertionError("Task.retry(throw=True) returned")  # pragma: no cover


def _succeeded(task: Task, req: request_context.Request, retval: Any) -> dict[str, Any]:
    try:
        result = dumps(retval)
    except TypeError as exc:
        error = TypeError(
            f"{task.name}: return value of type {type(retval).__name__} "
            f"cannot be stored as JSON ({exc})"
        )
        return _task_failed(task, req, error)
    task.on_success(retval, req.id, req.args, req.kwargs)
    signals.task_success.send(sender=task, result=retval)
    return {"state": states.SUCCESS, "result": result, "keep_result": True, "repr": _short(retval)}


def _retried(task: Task, req: request_context.Request, retry: Retry) -> dict[str, Any]:
    exc = retry.exc if retry.exc is not None else retry
    einfo = ExceptionInfo(exc)
    task.on_retry(exc, req.id, req.args, req.kwargs, einfo)
    signals.task_retry.send(sender=task, request=req, reason=retry, einfo=einfo)
    outcome: dict[str, Any] = {
        "state": states.RETRY,
        "result": dumps(exception_to_dict(exc)),
        "keep_result": True,
        "traceback": safe_text(einfo.traceback) if retry.exc is not None else None,
        "repr": safe_text(str(retry)),
        "_einfo": einfo,
    }
    if retry.args_json is not None:
        outcome["args"], outcome["kwargs"] = retry.args_json, retry.kwargs_json
    when = retry.when
    if isinstance(when, (dt.date, dt.time)):  # (a datetime: anything with an isoformat)
        outcome["eta"] = when.isoformat()
    else:
        outcome["countdown"] = float(when or 0)
    return outcome


def _snoozed(task: Task, req: request_context.Request, snooze: Snooze) -> dict[str, Any]:
    """Back to waiting (RETRY, as a retry shows) ``seconds`` from now by the database clock,
    without spending a retry: no retry hooks or signals run, ``retries`` stays as it is."""
    return {
        "state": states.RETRY,
        "result": dumps(exception_to_dict(snooze)),
        "keep_result": True,
        "traceback": None,
        "repr": safe_text(str(snooze)),
        "countdown": float(snooze.seconds),
        "snoozed": True,
    }


def _rejected(task: Task, req: request_context.Request, reject: Reject) -> dict[str, Any]:
    if reject.requeue:
        return {
            "state": states.PENDING,
            "result": None,
            "keep_result": False,
            "countdown": 0,
            "repr": f"rejected and requeued: {reject.reason!r}",
            "rejected": True,
        }
    failed = _task_failed(task, req, reject)  # (task-rejected: djq.events)
    return {**failed, "rejected": True, "dead_reason": states.DEAD_REJECTED}


def _task_failed(task: Task, req: request_context.Request, exc: BaseException) -> dict[str, Any]:
    einfo = ExceptionInfo(exc)
    try:
        task.on_failure(exc, req.id, req.args, req.kwargs, einfo)
    finally:
        signals.task_failure.send(
            sender=task,
            task_id=req.id,
            exception=exc,
            args=req.args,
            kwargs=req.kwargs,
            traceback=einfo.tb,
            einfo=einfo,
        )
    expected = isinstance(exc, tuple(getattr(task, "throws", ()) or ()))
    outcome = {**_failed(exc, einfo), "_einfo": einfo, **({"expected": True} if expected else {})}
    if _exhausted(exc):
        outcome["dead_reason"] = states.DEAD_RETRIES_EXHAUSTED
    return outcome


def _exhausted(exc: BaseException) -> bool:
    """Whether the task failed because ``retry`` found its retries used up (``Task.retry``
    raises MaxRetriesExceededError, or re-raises ``exc`` marked as such): a dead letter."""
    return isinstance(exc, MaxRetriesExceededError) or bool(
        getattr(exc, "_djq_retries_exhausted", False)
    )


def _failed(exc: BaseException, einfo: ExceptionInfo) -> dict[str, Any]:
    return {
        "state": states.FAILURE,
        "result": dumps(exception_to_dict(exc)),
        "keep_result": True,
        "traceback": safe_text(einfo.traceback),
        "repr": repr(exc),
    }


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- soft time limits -----------------------------------------------------------------------
@contextmanager
def soft_limit(seconds: float | None) -> Iterator[None]:
    """Raise ``SoftTimeLimitExceeded`` in the running task after ``seconds``.

    In a process's main thread (prefork child, solo) a SIGALRM timer interrupts even blocking
    calls; in a pool thread, the exception is set asynchronously on that thread.
    """
    if not seconds:
        yield
        return
    if threading.current_thread() is threading.main_thread():
        with _alarm(seconds):
            yield
    else:
        with _async_raise_after(seconds):
            yield


def _raise_soft(signum: int, frame: FrameType | None) -> None:
    raise SoftTimeLimitExceeded()


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _raise_soft)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _async_raise_after(seconds: float) -> Iterator[None]:
    thread_id = threading.get_ident()
    done = threading.Event()

    def fire() -> None:
        if not done.wait(seconds):
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread_id), ctypes.py_object(SoftTimeLimitExceeded)
            )

    timer = threading.Thread(target=fire, daemon=True, name="djq-soft-limit")
    timer.start()
    try:
        yield
    finally:
        done.set()


def report_lost(job: Claim, outcome: Outcome) -> None:
    """A job whose process died or was killed (hard time limit, crash) never reached its own
    failure hooks: run ``on_failure`` and ``task_failure`` in the worker, as Celery does."""
    if outcome.state != states.FAILURE or job.name not in tasks:
        return

    task = tasks[job.name]
    exc = dict_to_exception(loads(outcome.result))
    args, kwargs = loads(job.args), loads(job.kwargs)
    einfo = ExceptionInfo(exc)
    try:
        task.on_failure(exc, job.id, args, kwargs, einfo)
    except Exception:
        logging.getLogger("djq.worker").exception("on_failure of %s failed", task.name)
    signals.task_failure.send(
        sender=task,
        task_id=job.id,
        exception=exc,
        args=args,
        kwargs=kwargs,
        traceback=None,
        einfo=einfo,
    )
